"""The library's catalog: who the saved index's faces belong to, saved with the index.

The saved index holds each face's embedding and rowids, enough to rebuild the index
from, but not to rebuild the store (group and user names, user_info, face tokens).
The catalog is that missing half, written beside the vectors at every index save: if
library.db is lost or damaged beyond salvage, `edge library recover` rebuilds groups,
members and faces from the last save (docs/storage.md).

It is a small SQLite file of its own (groups, members, faces without embeddings and
without the change log; ~150 B a face), made by SQLite itself from the store through a
read-only connection in one read transaction: a consistent snapshot, no Python per row
(20k faces ~ 0.1 s), and the service's own connection is never held up. Faces added
after the snapshot are simply not in it.
"""
from __future__ import annotations

import json
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


_COPY = (
    "CREATE TABLE cat.meta AS SELECT key, value FROM meta",
    "INSERT INTO cat.meta VALUES ('catalog_format', '%d')" % FORMAT,
    "INSERT INTO cat.meta SELECT 'seq', COALESCE(MAX(seq), 0) FROM changes",
    "CREATE TABLE cat.groups AS SELECT group_id, ctime FROM groups ORDER BY id",
    "CREATE TABLE cat.members AS SELECT g.group_id, m.user_id, m.user_info, m.ctime FROM members m "
    "JOIN groups g ON g.id=m.group_ref ORDER BY m.id",
    "CREATE TABLE cat.faces AS SELECT f.id AS face_ref, g.group_id, m.user_id, f.face_token, f.model, f.quality, "
    "f.ctime FROM faces f JOIN members m ON m.id=f.member_ref JOIN groups g ON g.id=m.group_ref ORDER BY f.id",
)


def write_catalog(store_path: Path, out: Path) -> None:
    """Copy the store's names into a new SQLite file `out` (fsynced by the caller)."""
    out.unlink(missing_ok=True)
    db = sqlite3.connect(f"file:{store_path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000,
                         isolation_level=None)
    try:
        db.execute("ATTACH DATABASE ? AS cat", (str(out),))
        db.execute("PRAGMA cat.journal_mode=OFF")
        db.execute("BEGIN")  # one snapshot of the store for every statement
        for sql in _COPY:
            db.execute(sql)
        db.execute("COMMIT")
        db.execute("DETACH DATABASE cat")
    except sqlite3.Error as exc:
        raise StorageError(storage_kind(exc) or "corrupt", store_path, f"writing the catalog: {exc}") from None
    finally:
        db.close()


def read_catalog(path: Path) -> Catalog:
    """The catalog in `path` (checked by its CRC first); ValueError when it is not one."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise ValueError(f"{path.name}: {exc}") from None
    try:
        meta = dict(db.execute("SELECT key, value FROM meta"))
        if meta.get("catalog_format") != str(FORMAT):
            raise ValueError(f"{path.name}: not a catalog")
        return Catalog(
            str(meta.get("library_uuid", "")), int(meta.get("seq", 0)),
            [(g, float(t)) for g, t in db.execute("SELECT group_id, ctime FROM groups")],
            [(g, u, i or "", float(t)) for g, u, i, t in db.execute("SELECT group_id, user_id, user_info, ctime "
                                                                     "FROM members")],
            [(int(r), g, u, tok, model, json.loads(q) if q else None, float(t)) for r, g, u, tok, model, q, t in
             db.execute("SELECT face_ref, group_id, user_id, face_token, model, quality, ctime FROM faces")])
    except sqlite3.Error as exc:
        raise ValueError(f"{path.name}: {exc}") from None
    finally:
        db.close()
