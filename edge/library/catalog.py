"""The library's catalog: who the saved index's faces belong to, saved with the index.

The saved index holds each face's embedding and rowids, enough to rebuild the index
from, but not to rebuild the store (group and user names, user_info, face tokens).
The catalog is that missing half, written beside the vectors at every index save: if
library.db is lost or damaged beyond salvage, `edge library recover` rebuilds groups,
members and faces from the last save (docs/storage.md).

One JSON document per line, so writing and reading stream (1M faces ~ 120 MB):
    {"catalog": 1, "library_uuid": ..., "seq": ...}
    {"g": [group_id, ctime]}
    {"m": [group_id, user_id, user_info, ctime]}
    {"f": [face_ref, group_id, user_id, face_token, model, quality, ctime]}
It is read from its own read-only connection in one read transaction (a consistent
snapshot that never holds up the service's connection); faces added after the snapshot
are simply not in it.
"""
from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from edge.sqlite import BUSY_TIMEOUT_MS, StorageError, storage_kind

FORMAT = 1


@dataclass
class Catalog:
    """Rows of a store, without embeddings (those come from the index or the store)."""
    library_uuid: str = ""
    seq: int = 0
    groups: list[tuple[str, float]] = field(default_factory=list)
    members: list[tuple[str, str, str, float]] = field(default_factory=list)
    faces: list[tuple[int, str, str, str, str, dict | None, float]] = field(default_factory=list)


def write_catalog(store_path: Path, out: Path) -> None:
    """Stream the store's groups, members and faces into `out` (fsynced by the caller)."""
    db = sqlite3.connect(f"file:{store_path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        db.execute("BEGIN")  # one snapshot for every SELECT below
        uuid = db.execute("SELECT value FROM meta WHERE key='library_uuid'").fetchone()[0]
        seq = db.execute("SELECT COALESCE(MAX(seq), 0) FROM changes").fetchone()[0]
        with open(out, "w", encoding="utf-8") as fh:
            dump = lambda obj: fh.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n")  # noqa: E731
            dump({"catalog": FORMAT, "library_uuid": uuid, "seq": seq})
            for row in db.execute("SELECT group_id, ctime FROM groups ORDER BY id"):
                dump({"g": list(row)})
            for row in db.execute("SELECT g.group_id, m.user_id, m.user_info, m.ctime FROM members m "
                                  "JOIN groups g ON g.id=m.group_ref ORDER BY m.id"):
                dump({"m": list(row)})
            for ref, gid, uid, token, model, quality, ctime in db.execute(
                    "SELECT f.id, g.group_id, m.user_id, f.face_token, f.model, f.quality, f.ctime FROM faces f "
                    "JOIN members m ON m.id=f.member_ref JOIN groups g ON g.id=m.group_ref ORDER BY f.id"):
                dump({"f": [ref, gid, uid, token, model, json.loads(quality) if quality else None, ctime]})
            fh.flush()
            os.fsync(fh.fileno())
        db.execute("COMMIT")
    except sqlite3.Error as exc:
        raise StorageError(storage_kind(exc) or "corrupt", store_path, f"writing the catalog: {exc}") from None
    finally:
        db.close()


def read_catalog(path: Path) -> Catalog:
    """The catalog in `path`; ValueError when it is not one (checked by its CRC first)."""
    cat = Catalog()
    with open(path, encoding="utf-8") as fh:
        head = json.loads(fh.readline() or "null")
        if not isinstance(head, dict) or head.get("catalog") != FORMAT:
            raise ValueError(f"{path.name}: not a catalog")
        cat.library_uuid, cat.seq = str(head.get("library_uuid", "")), int(head.get("seq", 0))
        for line in fh:
            row = json.loads(line)
            if "f" in row:
                ref, gid, uid, token, model, quality, ctime = row["f"]
                cat.faces.append((int(ref), gid, uid, token, model, quality, float(ctime)))
            elif "m" in row:
                gid, uid, info, ctime = row["m"]
                cat.members.append((gid, uid, info, float(ctime)))
            elif "g" in row:
                gid, ctime = row["g"]
                cat.groups.append((gid, float(ctime)))
    return cat
