"""`edge library check` and `edge library recover`: what is damaged, and rebuilding it.

check reads only (a read-only connection, PRAGMA integrity_check, the saved index's
checksums) and says per app what state library.db and the saved index are in.

recover rebuilds what can be rebuilt, and never deletes or overwrites what it
replaces (damaged files are renamed `<name>.<why>-<UTC time>`):
- library.db sound: the index is rebuilt from it (as at every start);
- library.db damaged, empty or missing: a new one is built from what can still be read
  of the old one (groups, members and faces, table by table) and, when that is not
  everything, from the last saved index (its vectors and its catalog of who each face
  belongs to). It is written under a temporary name and renamed into place, so a
  recover that is interrupted leaves the old state. The new store has a new library
  uuid and a fresh change log; detected-face tokens (an hour's cache) are not kept.
"""
from __future__ import annotations

import json
import logging
import os
import sqlite3
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edge.library.catalog import Catalog, read_catalog
from edge.library.index import FaceIndex, check_file, read_manifest
from edge.library.library import INDEX_DIR, STORE_FILE, FaceLibrary, library_dir
from edge.library.store import LibraryStore, face_spaces
from edge.sqlite import SIDECARS, StorageError, check_header, set_aside, storage_kind

log = logging.getLogger(__name__)

INTEGRITY_ERRORS_SHOWN = 5
_BATCH = 2000


class RecoverError(Exception):
    """Nothing usable to rebuild from: the app's files are left as they were."""


@dataclass
class StoreState:
    status: str = "missing"      # ok | missing | empty | corrupt | unreadable
    detail: str = ""
    uuid: str = ""
    seq: int = 0
    groups: int = 0
    users: int = 0
    faces: int = 0
    spaces: list[str] = field(default_factory=list)   # the faces' embedding spaces (model_space)


@dataclass
class IndexState:
    status: str = "missing"      # ok | behind | missing | damaged | foreign | newer
    detail: str = ""
    uuid: str = ""
    seq: int = 0
    faces: int = 0
    catalog: bool = False        # carries who the faces belong to (can rebuild a store)


@dataclass
class AppCheck:
    app_id: str
    directory: str
    store: StoreState
    index: IndexState
    set_aside: list[str] = field(default_factory=list)

    @property
    def new(self) -> bool:
        """Nothing stored yet: created at first use."""
        return self.store.status in ("missing", "empty") and self.index.status == "missing"

    @property
    def healthy(self) -> bool:
        return self.new or (self.store.status == "ok" and self.index.status in ("ok", "behind", "missing"))

    @property
    def advice(self) -> str:
        if self.new:
            return "ok (no library yet)"
        if self.healthy:
            return "ok" if self.index.status != "missing" else "ok (the index is rebuilt at the next start)"
        if self.store.status == "ok":
            return f"the index is rebuilt at the next start, or now by `edge library recover --app-id {self.app_id}`"
        if self.index.catalog or self.store.status == "corrupt":
            return f"run `edge library recover --app-id {self.app_id}`"
        return "no saved copy to rebuild from: restore library.db from a backup"

    def to_dict(self) -> dict:
        return {**asdict(self), "healthy": self.healthy, "advice": self.advice}


def _ro(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)


def check_store(path: Path) -> StoreState:
    if not path.exists():
        return StoreState("missing")
    if path.is_file() and path.stat().st_size == 0:
        wal = path.with_name(path.name + "-wal")
        if not (wal.exists() and wal.stat().st_size):
            return StoreState("empty", "0 bytes")
    try:
        check_header(path)
    except StorageError as err:
        return StoreState("corrupt", err.detail)
    try:
        db = _ro(path)
        try:
            problems = [r[0] for r in db.execute(f"PRAGMA integrity_check({INTEGRITY_ERRORS_SHOWN})")]
            if problems != ["ok"]:
                return StoreState("corrupt", "; ".join(problems))
            one = lambda sql: db.execute(sql).fetchone()[0]  # noqa: E731
            spaces = face_spaces(db)
            return StoreState("ok", "", one("SELECT value FROM meta WHERE key='library_uuid'"),
                              one("SELECT COALESCE(MAX(seq), 0) FROM changes"), one("SELECT COUNT(*) FROM groups"),
                              one("SELECT COUNT(DISTINCT user_id) FROM members"), one("SELECT COUNT(*) FROM faces"),
                              spaces)
        finally:
            db.close()
    except sqlite3.Error as exc:
        kind = storage_kind(exc)
        return StoreState("unreadable" if kind in ("unreadable", "readonly", "busy") else "corrupt", str(exc))
    except TypeError:  # a meta row missing: not one of our stores
        return StoreState("corrupt", "no library uuid")


def check_index(directory: Path, store: StoreState) -> IndexState:
    if directory.exists() and not directory.is_dir():
        return IndexState("damaged", "not a folder")
    manifest = read_manifest(directory)
    if manifest is None:
        return IndexState("missing" if not (directory / "manifest.json").exists() else "damaged",
                          "" if not (directory / "manifest.json").exists() else "manifest.json does not parse")
    try:
        files, meta = manifest["files"], manifest["meta"]
        state = IndexState("ok", "", str(meta.get("library_uuid", "")), int(meta.get("seq", 0)),
                           int(manifest.get("count", 0)), "catalog" in files)
        bad = [part for part, entry in files.items() if not check_file(directory, entry)]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return IndexState("damaged", f"manifest: {exc!r}")
    if bad:
        state.status, state.detail = "damaged", f"missing or wrong checksum: {', '.join(sorted(bad))}"
    elif store.status == "ok":
        if state.uuid != store.uuid:
            state.status = "foreign"
        elif state.seq > store.seq:
            state.status = "newer"
        elif state.seq < store.seq:
            state.status = "behind"  # normal: the newer changes are replayed at open
    return state


def check_app(data_dir: Path, app_id: str) -> AppCheck:
    directory = library_dir(data_dir, app_id)
    store = check_store(directory / STORE_FILE)
    index = check_index(directory / INDEX_DIR, store)
    aside = sorted(p.name for p in directory.glob("*.*-20*")) if directory.is_dir() else []
    return AppCheck(app_id, str(directory), store, index, aside)


def app_ids(data_dir: Path) -> list[str]:
    root = Path(data_dir) / "apps"
    return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


# -- recover ------------------------------------------------------------------------------
@dataclass
class Rows:
    """What a store held: names, and each face with its embedding."""
    groups: list = field(default_factory=list)     # (group_id, ctime)
    members: list = field(default_factory=list)    # (group_id, user_id, user_info, ctime)
    faces: list = field(default_factory=list)      # (group_id, user_id, token, embedding, model, quality, ctime)
    complete: bool = False
    problems: list[str] = field(default_factory=list)


def _scan(db: sqlite3.Connection, table: str, columns: str, out: list, problems: list) -> bool:
    """Every row of a table in rowid order, batch by batch; stops at the first damaged
    page (what was read is kept). False when it stopped early."""
    last = 0
    while True:
        try:
            rows = db.execute(f"SELECT id, {columns} FROM {table} WHERE id>? ORDER BY id LIMIT ?",
                              (last, _BATCH)).fetchall()
        except sqlite3.Error as exc:
            problems.append(f"{table}: {exc} after rowid {last}")
            return False
        if not rows:
            return True
        out += rows
        last = rows[-1][0]


def salvage(path: Path) -> Rows:
    """What can still be read of a damaged library.db (read-only, nothing written)."""
    rows = Rows()
    if not path.is_file() or path.stat().st_size == 0:
        rows.problems.append(f"{path.name}: nothing to read")
        return rows
    try:
        check_header(path)
        db = _ro(path)
    except (StorageError, sqlite3.Error) as exc:
        rows.problems.append(str(exc))
        return rows
    try:
        groups, members, faces = [], [], []
        ok = all([_scan(db, "groups", "group_id, ctime", groups, rows.problems),
                  _scan(db, "members", "group_ref, user_id, user_info, ctime", members, rows.problems),
                  _scan(db, "faces", "member_ref, face_token, embedding, model, quality, ctime", faces,
                        rows.problems)])
    finally:
        db.close()
    gname = {gid: name for gid, name, _ in groups}
    rows.groups = [(name, ctime) for _, name, ctime in groups]
    owner = {}
    for mid, gref, uid, info, ctime in members:
        if gref in gname:
            owner[mid] = (gname[gref], uid)
            rows.members.append((gname[gref], uid, info, ctime))
    for _, mref, token, blob, model, quality, ctime in faces:
        if mref in owner and isinstance(blob, bytes) and len(blob) % 4 == 0:
            try:
                q = json.loads(quality) if quality else None
            except ValueError:
                q = None
            rows.faces.append((*owner[mref], token, np.frombuffer(blob, np.float32).copy(), model, q, ctime))
    rows.complete = ok and len(rows.faces) == len(faces) and len(rows.members) == len(members)
    return rows


def from_saved_index(directory: Path) -> tuple[Rows, str]:
    """The store as of the last index save: the catalog's names with the index's vectors."""
    manifest = read_manifest(directory)
    files = manifest.get("files") if manifest else None
    entry = files.get("catalog") if isinstance(files, dict) else None
    if not isinstance(entry, dict):
        return Rows(), "the saved index has no catalog (saved by an older edge, or none saved)"
    if not check_file(directory, entry):
        return Rows(), "the saved index's catalog is damaged"
    loaded = FaceIndex.load(directory, int(manifest.get("dim", 128)))
    if loaded is None:
        return Rows(), "the saved index's vectors are damaged"
    index, _ = loaded
    try:
        cat: Catalog = read_catalog(directory / entry["name"])
    except (OSError, ValueError, TypeError, KeyError) as exc:
        return Rows(), f"the saved index's catalog does not read: {exc}"
    rows = Rows(list(cat.groups), list(cat.members), [], True)
    for ref, gid, uid, token, model, quality, ctime in cat.faces:
        vec = index.vector(ref)
        if vec is None:
            rows.complete = False
            continue
        rows.faces.append((gid, uid, token, vec, model, quality, ctime))
    return rows, ""


def _merge(first: Rows, second: Rows) -> Rows:
    """first's rows, plus second's that first does not have."""
    out = Rows(list(first.groups), list(first.members), list(first.faces), first.complete or second.complete)
    have_g = {g for g, _ in first.groups}
    out.groups += [r for r in second.groups if r[0] not in have_g]
    have_m = {(g, u) for g, u, *_ in first.members}
    out.members += [r for r in second.members if (r[0], r[1]) not in have_m]
    have_f = {(g, u, t) for g, u, t, *_ in first.faces}
    out.faces += [r for r in second.faces if (r[0], r[1], r[2]) not in have_f]
    return out


@dataclass
class RecoverReport:
    app_id: str
    action: str                   # nothing | index | store
    sources: list[str] = field(default_factory=list)
    groups: int = 0
    users: int = 0
    faces: int = 0
    set_aside: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def recover_app(data_dir: Path, app_id: str) -> RecoverReport:
    directory = library_dir(data_dir, app_id)
    before = check_app(data_dir, app_id)
    store_lost_to_index = before.store.status == "ok" and before.store.faces == 0 \
        and before.index.faces > 0 and before.index.status in ("foreign", "newer")
    if before.store.status == "ok" and not store_lost_to_index:
        if before.healthy and before.index.status == "ok":
            return RecoverReport(app_id, "nothing", groups=before.store.groups, users=before.store.users,
                                 faces=before.store.faces, notes=["library.db and the saved index are sound"])
        lib = FaceLibrary(directory)  # rebuilds (and sets aside a foreign or newer save), saves
        try:
            return RecoverReport(app_id, "index", [STORE_FILE], before.store.groups, before.store.users,
                                 len(lib.index), notes=[f"index {lib.index_source}"])
        finally:
            lib.close()
    if before.store.status == "unreadable":
        raise RecoverError(f"{directory / STORE_FILE} cannot be read ({before.store.detail}): fix its "
                           "permissions or the disk first; nothing was changed")
    db = directory / STORE_FILE
    report = RecoverReport(app_id, "store")
    old = salvage(db) if before.store.status != "ok" else Rows()
    if old.faces or old.members or old.groups:
        report.sources.append(f"{STORE_FILE} ({len(old.faces)} faces readable)")
    report.notes += old.problems
    rows = old
    if not old.complete:
        saved, why = from_saved_index(directory / INDEX_DIR)
        if why:
            report.notes.append(why)
        elif saved.faces or saved.members or saved.groups:
            report.sources.append(f"the saved index ({len(saved.faces)} faces)")
            rows = _merge(old, saved)
    if not (rows.faces or rows.members or rows.groups):
        raise RecoverError(f"nothing to rebuild {app_id}'s library from ({'; '.join(report.notes) or 'no data'}); "
                           "nothing was changed: restore library.db from a backup")
    tmp = db.with_name(db.name + ".recovering")
    for suffix in ("", *SIDECARS):  # our own leftover from an interrupted recover
        tmp.with_name(tmp.name + suffix).unlink(missing_ok=True)
    store = LibraryStore(tmp)
    try:
        report.faces = store.restore(rows.groups, rows.members, rows.faces)
        report.groups, report.users = len(store.list_groups(0, 1 << 30)), store.user_count()
    finally:
        store.close()
    if db.exists() or db.is_symlink():
        report.set_aside.append(set_aside(db, "damaged" if before.store.status != "ok" else "replaced").name)
    os.replace(tmp, db)
    lib = FaceLibrary(directory)  # the old saved index is another library's now: set aside, rebuilt
    lib.close()
    report.set_aside += [p.name for p in directory.glob("index.*-20*") if p.name not in before.set_aside]
    log.warning("library %s rebuilt from %s: %d groups, %d users, %d faces", directory,
                " and ".join(report.sources), report.groups, report.users, report.faces)
    return report
