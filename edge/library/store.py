"""The face library's source of truth: one SQLite file per APP_ID.

Baidu's model: an app owns one library of groups; a user (user_id) is a member of one
or more groups, with a user_info per membership; faces hang off a membership, each
with the face_token of the photo it came from. Here a "member" row is one (group,
user) pair, and a face belongs to exactly one member, so a user registered to two
groups at once carries the face in both (as Baidu's multi-group registration does).

Durability: WAL journal, synchronous=FULL, and every public write is ONE transaction
(BEGIN IMMEDIATE ... COMMIT) that also appends its effects to the `changes` log. A
call that returned was committed; a process killed mid-call leaves nothing of it. The
log is ordered by `seq` (monotonic, never reused) and is what the HNSW index replays
to catch up, and what a later replication step ships between terminals.

Several processes may open the same file (the service and an enrollment script):
SQLite serialises writers; `busy_timeout` makes a writer wait rather than fail.
"""
from __future__ import annotations

import base64
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.models.manifest import model_space
from edge.postgres.migration_mark import MARK_KEY, refuse_incomplete
from edge.sqlite import SqliteFile

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS groups (
    id INTEGER PRIMARY KEY,
    group_id TEXT NOT NULL UNIQUE,
    ctime REAL NOT NULL);
CREATE TABLE IF NOT EXISTS members (
    id INTEGER PRIMARY KEY,
    group_ref INTEGER NOT NULL REFERENCES groups(id),
    user_id TEXT NOT NULL,
    user_info TEXT NOT NULL DEFAULT '',
    ctime REAL NOT NULL,
    UNIQUE (group_ref, user_id));
CREATE INDEX IF NOT EXISTS members_user ON members(user_id);
CREATE TABLE IF NOT EXISTS faces (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    member_ref INTEGER NOT NULL REFERENCES members(id),
    group_ref INTEGER NOT NULL,
    face_token TEXT NOT NULL,
    embedding BLOB NOT NULL,
    model TEXT NOT NULL,
    quality TEXT,
    ctime REAL NOT NULL,
    UNIQUE (member_ref, face_token));
CREATE INDEX IF NOT EXISTS faces_token ON faces(face_token);
CREATE TABLE IF NOT EXISTS tokens (
    face_token TEXT PRIMARY KEY,
    embedding BLOB NOT NULL,
    model TEXT NOT NULL,
    quality TEXT,
    ctime REAL NOT NULL);
CREATE INDEX IF NOT EXISTS tokens_ctime ON tokens(ctime);
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    op TEXT NOT NULL,
    group_id TEXT,
    user_id TEXT,
    face_token TEXT,
    face_ref INTEGER,
    data TEXT);
CREATE TABLE IF NOT EXISTS pushed (
    op_id TEXT PRIMARY KEY,
    origin TEXT NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    error_kind TEXT,
    detail TEXT,
    ts REAL NOT NULL);
CREATE INDEX IF NOT EXISTS pushed_origin ON pushed(origin, first_seq);
CREATE TABLE IF NOT EXISTS sync_skipped (
    group_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    face_token TEXT NOT NULL,
    model TEXT NOT NULL,
    PRIMARY KEY (group_id, user_id, face_token));
"""
# meta key of a follower's replica state (docs/sync.md): JSON {hub, app_id, hub_uuid, seq}.
# While it is set the library changes only through apply_replica: local writes are refused.
REPLICA_KEY = "replica"
# meta key of the hub's compacted log: changes up to this seq are gone (compact(); a
# follower behind it gets a snapshot, docs/sync.md).
LOG_FLOOR_KEY = "log_floor"
# What a terminal may push to its hub (docs/sync.md, Up): enrolments and membership
# changes, never group management.
PUSH_ACTIONS = ("register", "delete_user", "leave_groups", "copy_user", "delete_face")
# meta key: the embedding spaces (model_space of each face's model) the faces table has
# held, a sorted JSON list, kept in each face's own transaction - so a runtime can see at
# once whether a library holds faces it cannot compare with its own (edge/aip/runtime.py).
# A superset: deleting a model's last face leaves it listed until recount_spaces().
SPACES_KEY = "model_spaces"
PUSHED_KEEP_S = 7 * 86400.0   # a pushed op_id is remembered at least this long (idempotent retries)
REPLICA_OPS = ("group.add", "group.delete", "user.add", "user.update", "user.delete", "face.add", "face.delete")


class LibraryError(Exception):
    """A library rule was broken; `kind` is mapped to each API version's error code."""

    def __init__(self, kind: str, detail: str = ""):
        self.kind = kind
        super().__init__(f"{kind}: {detail}" if detail else kind)


@dataclass(frozen=True)
class FaceRecord:
    """One face to store: the embedding of a photo's face and where it came from."""
    face_token: str
    embedding: np.ndarray
    model: str
    quality: dict | None = None


@dataclass(frozen=True)
class Change:
    seq: int
    ts: float
    op: str
    group_id: str | None
    user_id: str | None
    face_token: str | None
    face_ref: int | None
    data: dict | None


@dataclass(frozen=True)
class ReplicaChange:
    """One validated change of a hub's feed, as a follower applies it (edge/sync/apply.py)."""
    seq: int
    op: str                           # one of REPLICA_OPS
    group_id: str
    user_id: str | None = None
    face_token: str | None = None
    user_info: str | None = None      # user.add / user.update
    face: FaceRecord | None = None    # face.add


@dataclass(frozen=True)
class ReplicaApplied:
    changes: int
    faces_added: int
    faces_skipped: int                # face.add of another model: not stored, counted (sync_skipped)


@dataclass(frozen=True)
class PushOp:
    """One operation a terminal committed to its upstream outbox, as its hub applies it.
    cursor / hub_uuid: the terminal's replica state when it was enrolled (the conflict rule)."""
    op_id: str
    cursor: int
    hub_uuid: str | None
    action: str                               # one of PUSH_ACTIONS
    user_id: str
    group_ids: tuple[str, ...] | None         # None: delete_user from every group
    user_info: str | None = None              # register
    mode: str = "append"                      # register: append, replace, update
    face: FaceRecord | None = None            # register
    src_group: str | None = None              # copy_user
    create_groups: bool = False               # copy_user (v2 addGroupUser creates them)
    face_token: str | None = None             # delete_face


@dataclass(frozen=True)
class PushResult:
    kind: str | None          # None: applied; else the LibraryError kind that refused it
    detail: str
    first_seq: int            # the changes it made are (first_seq, last_seq]
    last_seq: int
    duplicate: bool           # this op_id was already applied or refused: nothing done now


def _blob(vec: np.ndarray) -> bytes:
    return np.ascontiguousarray(vec, dtype=np.float32).tobytes()


def _vec(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.float32)


# What a deletion covers of sync_skipped, by op.
_SKIPPED_KEYS = {"group.delete": ("group_id",), "user.delete": ("group_id", "user_id"),
                 "face.delete": ("group_id", "user_id", "face_token")}


def face_spaces(db) -> list[str]:
    """The embedding spaces (model_space) of the faces table, counted on `db` (either
    backend's connection; also the read-only check, edge/library/recover.py)."""
    return sorted({model_space(r[0]) for r in db.execute("SELECT DISTINCT model FROM faces").fetchall()})


def _meta(db, key: str) -> str | None:
    row = db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
    return None if row is None else row[0]


class LibraryRules:
    """The library's rules over SQL both backends speak (`?` placeholders): every
    write, read and the change log. A backend (LibraryStore: SQLite; PgLibraryStore:
    PostgreSQL, edge/postgres/store.py) gives it _write/_one/_all and the hooks below,
    where the two dialects differ; the rows, change log and errors are the same."""

    BYTES_ORDER = ""   # appended to an ORDER BY of text: byte order, as SQLite's BINARY

    # -- the backend's hooks (SQLite's here) ------------------------------------
    def _head(self, db) -> int:
        """The newest change seq, inside a write transaction (last_seq() outside one)."""
        return db.execute("SELECT COALESCE(MAX(seq), 0) FROM changes").fetchone()[0]

    def _log(self, db, op: str, group_id=None, user_id=None, face_token=None, face_ref=None, data=None):
        db.execute("INSERT INTO changes (ts, op, group_id, user_id, face_token, face_ref, data) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?)",
                   (time.time(), op, group_id, user_id, face_token, face_ref,
                    None if data is None else json.dumps(data, ensure_ascii=False)))

    def _insert(self, db, table: str, **cols) -> int:
        """INSERT a row of groups, members or faces; returns its new id."""
        return db.execute(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                          tuple(cols.values())).lastrowid

    def _put_meta(self, db, key: str, value: str) -> None:
        db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def _note_space(self, db, model: str) -> None:
        """List the face's embedding space in SPACES_KEY (a library from before the key
        is left without it: model_spaces() counts it once)."""
        value = _meta(db, SPACES_KEY)
        if value is None:
            return
        spaces = json.loads(value)
        if model_space(model) not in spaces:
            self._put_meta(db, SPACES_KEY, json.dumps(sorted(spaces + [model_space(model)])))

    def _skip_face(self, db, group_id: str, user_id: str, face_token: str, model: str) -> None:
        db.execute("INSERT OR IGNORE INTO sync_skipped VALUES (?, ?, ?, ?)", (group_id, user_id, face_token, model))

    def _token_write(self):
        """The transaction of put_tokens: SQLite has one writer anyway."""
        return self._write()

    def _put_token_rows(self, db, rows: list[tuple]) -> None:
        db.executemany("INSERT OR REPLACE INTO tokens (face_token, embedding, model, quality, ctime) "
                       "VALUES (?, ?, ?, ?, ?)", rows)

    @staticmethod
    def _emb(vec: np.ndarray):
        """An embedding as the database stores it."""
        return _blob(vec)

    @staticmethod
    def _unemb(value) -> np.ndarray:
        """A stored embedding as float32."""
        return _vec(value)

    @staticmethod
    def _matrix(values: list) -> np.ndarray:
        return np.frombuffer(b"".join(values), dtype=np.float32).reshape(len(values), -1)

    def _wire_rows(self, phase: str, rows: list) -> list:
        """snapshot_rows' rows with embeddings as float32 bytes."""
        return rows

    # -- plumbing -------------------------------------------------------------

    def _writable(self, db) -> None:
        """A follower's replica changes only through apply_replica (docs/sync.md)."""
        value = _meta(db, REPLICA_KEY)
        if value is not None:
            hub = json.loads(value).get("hub", "its hub")
            raise LibraryError("replica", f"this library follows {hub}: change it there")

    def _group_ref(self, db, group_id: str, create: bool) -> int | None:
        row = db.execute("SELECT id FROM groups WHERE group_id=?", (group_id,)).fetchone()
        if row:
            return row[0]
        if not create:
            return None
        ref = self._insert(db, "groups", group_id=group_id, ctime=time.time())
        self._log(db, "group.add", group_id=group_id)
        return ref

    def _member(self, db, group_ref: int, user_id: str):
        return db.execute("SELECT id, user_info FROM members WHERE group_ref=? AND user_id=?",
                          (group_ref, user_id)).fetchone()

    def _upsert_member(self, db, group_ref: int, group_id: str, user_id: str, user_info: str | None) -> int:
        row = self._member(db, group_ref, user_id)
        if row is None:
            ref = self._insert(db, "members", group_ref=group_ref, user_id=user_id, user_info=user_info or "",
                               ctime=time.time())
            self._log(db, "user.add", group_id, user_id, data={"user_info": user_info or ""})
            return ref
        if user_info is not None and user_info != row[1]:
            db.execute("UPDATE members SET user_info=? WHERE id=?", (user_info, row[0]))
            self._log(db, "user.update", group_id, user_id, data={"user_info": user_info})
        return row[0]

    def _add_face(self, db, member_ref: int, group_ref: int, group_id: str, user_id: str, face: FaceRecord) -> int:
        if db.execute("SELECT 1 FROM faces WHERE member_ref=? AND face_token=?",
                      (member_ref, face.face_token)).fetchone():
            raise LibraryError("face_exists", f"{face.face_token} already registered to {user_id} in {group_id}")
        quality = None if face.quality is None else json.dumps(face.quality)
        ref = self._insert(db, "faces", member_ref=member_ref, group_ref=group_ref, face_token=face.face_token,
                           embedding=self._emb(face.embedding), model=face.model, quality=quality, ctime=time.time())
        self._note_space(db, face.model)
        self._log(db, "face.add", group_id, user_id, face.face_token, ref,
                  {"embedding": base64.b64encode(_blob(face.embedding)).decode(), "model": face.model,
                   "quality": face.quality})
        return ref

    def _delete_faces(self, db, where: str, args, group_id: str, user_id: str) -> int:
        # by face_token: the order SQLite's (member_ref, face_token) index gives, made explicit
        rows = db.execute(f"SELECT id, face_token FROM faces WHERE {where} ORDER BY face_token{self.BYTES_ORDER}",
                          args).fetchall()
        for face_ref, token in rows:
            db.execute("DELETE FROM faces WHERE id=?", (face_ref,))
            self._log(db, "face.delete", group_id, user_id, token, face_ref)
        return len(rows)

    def _delete_member(self, db, member_ref: int, group_id: str, user_id: str) -> None:
        self._delete_faces(db, "member_ref=?", (member_ref,), group_id, user_id)
        db.execute("DELETE FROM members WHERE id=?", (member_ref,))
        self._log(db, "user.delete", group_id, user_id)

    def _group_members(self, db, group_ref: int) -> list[tuple[int, str]]:
        """(member_ref, user_id) of a group, by user_id (the order of SQLite's
        (group_ref, user_id) index, made explicit)."""
        return db.execute(f"SELECT id, user_id FROM members WHERE group_ref=? ORDER BY user_id{self.BYTES_ORDER}",
                          (group_ref,)).fetchall()

    def _memberships(self, db, user_id: str) -> list[tuple[int, int, str]]:
        """(member_ref, group_ref, group_id) of every group the user is in."""
        return db.execute("SELECT m.id, g.id, g.group_id FROM members m JOIN groups g ON g.id=m.group_ref "
                          f"WHERE m.user_id=? ORDER BY g.group_id{self.BYTES_ORDER}", (user_id,)).fetchall()

    # -- writes -----------------------------------------------------------------
    def register(self, group_ids: list[str], user_id: str, user_info: str | None, face: FaceRecord,
                 mode: str = "append") -> dict[str, int]:
        """Add a face to a user in each group. Modes:
        append  - create group/user as needed, keep the user's other faces;
        replace - create as needed, the new face replaces the user's faces in those groups;
        update  - the user must already be in every group (user_not_found), faces replaced.
        Returns {group_id: face_ref}."""
        with self._write() as db:
            self._writable(db)
            return self._register(db, group_ids, user_id, user_info, face, mode)

    def register_many(self, items) -> int:
        """Several registrations (tuples of register's arguments) in ONE transaction:
        all or none. For bulk enrollment and replication, where a commit per face
        (an fsync each) would dominate."""
        n = 0
        with self._write() as db:
            self._writable(db)
            for group_ids, user_id, user_info, face, mode in items:
                self._register(db, group_ids, user_id, user_info, face, mode)
                n += 1
        return n

    def _register(self, db, group_ids, user_id, user_info, face: FaceRecord, mode: str) -> dict[str, int]:
        if mode not in ("append", "replace", "update"):
            raise ValueError(mode)
        out = {}
        for group_id in group_ids:
            group_ref = self._group_ref(db, group_id, create=mode != "update")
            row = None if group_ref is None else self._member(db, group_ref, user_id)
            if mode == "update" and row is None:
                raise LibraryError("user_not_found", f"{user_id} in {group_id}")
            member_ref = self._upsert_member(db, group_ref, group_id, user_id, user_info)
            if mode in ("replace", "update"):
                self._delete_faces(db, "member_ref=?", (member_ref,), group_id, user_id)
            out[group_id] = self._add_face(db, member_ref, group_ref, group_id, user_id, face)
        db.execute("DELETE FROM tokens WHERE face_token=?", (face.face_token,))
        return out

    def delete_user(self, user_id: str, group_ids: list[str] | None = None) -> int:
        """Remove the user from the given groups (all groups when None). Returns how many."""
        with self._write() as db:
            self._writable(db)
            return self._delete_user(db, user_id, group_ids)

    def _delete_user(self, db, user_id: str, group_ids: list[str] | None) -> int:
        rows = self._memberships(db, user_id)
        if group_ids is not None:
            rows = [r for r in rows if r[2] in set(group_ids)]
        if not rows:
            raise LibraryError("user_not_found", user_id)
        for member_ref, _, group_id in rows:
            self._delete_member(db, member_ref, group_id, user_id)
        return len(rows)

    def leave_groups(self, group_ids: list[str], user_id: str) -> None:
        """v2 deleteGroupUser: leave the listed groups but never the last one."""
        with self._write() as db:
            self._writable(db)
            self._leave_groups(db, group_ids, user_id)

    def _leave_groups(self, db, group_ids: list[str], user_id: str) -> None:
        rows = self._memberships(db, user_id)
        leaving = [r for r in rows if r[2] in set(group_ids)]
        if not leaving:
            raise LibraryError("user_not_found", user_id)
        if len(leaving) == len(rows):
            raise LibraryError("last_group", user_id)
        for member_ref, _, group_id in leaving:
            self._delete_member(db, member_ref, group_id, user_id)

    def copy_user(self, user_id: str, src_group: str, dst_groups: list[str], create_groups: bool) -> None:
        """Copy a membership (user_info and faces) into other groups."""
        with self._write() as db:
            self._writable(db)
            self._copy_user(db, user_id, src_group, dst_groups, create_groups)

    def _copy_user(self, db, user_id: str, src_group: str, dst_groups: list[str], create_groups: bool) -> None:
        src_ref = self._group_ref(db, src_group, create=False)
        src = None if src_ref is None else self._member(db, src_ref, user_id)
        if src is None:
            raise LibraryError("user_not_found", f"{user_id} in {src_group}")
        faces = db.execute("SELECT face_token, embedding, model, quality FROM faces WHERE member_ref=? "
                           "ORDER BY id", (src[0],)).fetchall()
        for group_id in dst_groups:
            dst_ref = self._group_ref(db, group_id, create=create_groups)
            if dst_ref is None:
                raise LibraryError("group_not_found", group_id)
            if self._member(db, dst_ref, user_id) is not None:
                raise LibraryError("user_exists", f"{user_id} in {group_id}")
            member_ref = self._upsert_member(db, dst_ref, group_id, user_id, src[1])
            for token, blob, model, quality in faces:
                self._add_face(db, member_ref, dst_ref, group_id, user_id,
                               FaceRecord(token, self._unemb(blob), model, json.loads(quality) if quality else None))

    def delete_face(self, user_id: str, group_id: str, face_token: str) -> None:
        with self._write() as db:
            self._writable(db)
            self._delete_face(db, user_id, group_id, face_token)

    def _delete_face(self, db, user_id: str, group_id: str, face_token: str) -> None:
        group_ref = self._group_ref(db, group_id, create=False)
        if group_ref is None:
            raise LibraryError("group_not_found", group_id)
        row = self._member(db, group_ref, user_id)
        if row is None:
            raise LibraryError("user_not_found", f"{user_id} in {group_id}")
        if not self._delete_faces(db, "member_ref=? AND face_token=?", (row[0], face_token), group_id, user_id):
            raise LibraryError("face_not_found", face_token)

    def add_group(self, group_id: str) -> None:
        with self._write() as db:
            self._writable(db)
            if self._group_ref(db, group_id, create=False) is not None:
                raise LibraryError("group_exists", group_id)
            self._group_ref(db, group_id, create=True)

    def delete_group(self, group_id: str) -> None:
        with self._write() as db:
            self._writable(db)
            group_ref = self._group_ref(db, group_id, create=False)
            if group_ref is None:
                raise LibraryError("group_not_found", group_id)
            for member_ref, user_id in self._group_members(db, group_ref):
                self._delete_member(db, member_ref, group_id, user_id)
            db.execute("DELETE FROM groups WHERE id=?", (group_ref,))
            self._log(db, "group.delete", group_id=group_id)

    def restore(self, groups, members, faces) -> int:
        """Fill an empty store from recovered rows, in ONE transaction, keeping their
        ctimes; the change log is written afresh. groups: (group_id, ctime); members:
        (group_id, user_id, user_info, ctime); faces: (group_id, user_id, face_token,
        embedding, model, quality, ctime). Returns the faces stored."""
        n = 0
        with self._write() as db:
            if db.execute("SELECT 1 FROM groups LIMIT 1").fetchone():
                raise ValueError("restore() needs an empty store")
            refs: dict[str, int] = {}
            mrefs: dict[tuple[str, str], int] = {}
            for group_id, ctime in groups:
                if group_id not in refs:
                    refs[group_id] = self._insert(db, "groups", group_id=group_id, ctime=ctime)
                    self._log(db, "group.add", group_id=group_id)
            for group_id, user_id, user_info, ctime in members:
                if (group_id, user_id) in mrefs or group_id not in refs:
                    continue
                mrefs[group_id, user_id] = self._insert(db, "members", group_ref=refs[group_id], user_id=user_id,
                                                        user_info=user_info or "", ctime=ctime)
                self._log(db, "user.add", group_id, user_id, data={"user_info": user_info or ""})
            seen = set()
            for group_id, user_id, token, vec, model, quality, ctime in faces:
                member_ref = mrefs.get((group_id, user_id))
                if member_ref is None or (member_ref, token) in seen:
                    continue
                seen.add((member_ref, token))
                ref = self._insert(db, "faces", member_ref=member_ref, group_ref=refs[group_id], face_token=token,
                                   embedding=self._emb(vec), model=model,
                                   quality=None if quality is None else json.dumps(quality), ctime=ctime)
                self._note_space(db, model)
                self._log(db, "face.add", group_id, user_id, token, ref,
                          {"embedding": base64.b64encode(_blob(vec)).decode(), "model": model, "quality": quality})
                n += 1
            self._put_meta(db, "restored_at", str(time.time()))
        return n

    # -- replication: a follower's side (docs/sync.md) ------------------------------
    def replica_state(self) -> dict | None:
        value = self._one("SELECT value FROM meta WHERE key=?", (REPLICA_KEY,))
        return None if value is None else json.loads(value)

    def is_empty(self) -> bool:
        return self._one("SELECT 1 FROM groups LIMIT 1") is None

    def apply_replica(self, changes: list[ReplicaChange], state: dict, model: str,
                      expect: dict | None, reset: bool = False) -> ReplicaApplied:
        """Apply a validated page of a hub's changes AND the new replica state (cursor)
        in ONE transaction: a kill at any moment leaves the page applied with its
        cursor, or neither. `expect` is the state the page was validated against (None:
        a first page into an empty library); anything else refuses the whole page.
        Faces of another model than `model` are not stored: they are listed in
        sync_skipped (counted, reported). Effects already present are no-ops, so the
        local change log and index see exactly what changed. reset (a snapshot's first
        page) first empties the replica, in the same transaction."""
        added = skipped = 0
        with self._write() as db:
            value = _meta(db, REPLICA_KEY)
            current = None if value is None else json.loads(value)
            if current != expect:
                raise LibraryError("replica_moved", f"replica state {current} is not the page's {expect}")
            if current is None and db.execute("SELECT 1 FROM groups LIMIT 1").fetchone():
                raise LibraryError("not_a_replica", "the local library holds data of its own")
            if reset:
                for (group_id,) in db.execute("SELECT group_id FROM groups ORDER BY id").fetchall():
                    self._apply_one(db, ReplicaChange(0, "group.delete", group_id))
                db.execute("DELETE FROM sync_skipped")
            for c in changes:
                if c.op == "face.add" and model_space(c.face.model) != model_space(model):
                    self._skip_face(db, c.group_id, c.user_id, c.face_token, c.face.model)
                    skipped += 1
                    continue
                added += self._apply_one(db, c)
            self._put_meta(db, REPLICA_KEY, json.dumps(state, sort_keys=True))
        return ReplicaApplied(len(changes), added, skipped)

    def _apply_one(self, db, c: ReplicaChange) -> int:
        """One change; returns 1 when it stored a face."""
        create = c.op in ("group.add", "user.add", "user.update", "face.add")
        group_ref = self._group_ref(db, c.group_id, create=create)
        if c.op in _SKIPPED_KEYS:   # a deletion also forgets the other-model faces it covers
            keys = _SKIPPED_KEYS[c.op]
            db.execute(f"DELETE FROM sync_skipped WHERE {' AND '.join(k + '=?' for k in keys)}",
                       tuple(getattr(c, k) for k in keys))
        if group_ref is None or c.op == "group.add":
            return 0
        if c.op == "group.delete":
            for member_ref, user_id in self._group_members(db, group_ref):
                self._delete_member(db, member_ref, c.group_id, user_id)
            db.execute("DELETE FROM groups WHERE id=?", (group_ref,))
            self._log(db, "group.delete", group_id=c.group_id)
            return 0
        row = self._member(db, group_ref, c.user_id)
        if c.op in ("user.add", "user.update"):
            self._upsert_member(db, group_ref, c.group_id, c.user_id, c.user_info or "")
        elif c.op == "user.delete" and row is not None:
            self._delete_member(db, row[0], c.group_id, c.user_id)
        elif c.op == "face.delete" and row is not None:
            self._delete_faces(db, "member_ref=? AND face_token=?", (row[0], c.face_token), c.group_id, c.user_id)
        elif c.op == "face.add":
            member_ref = row[0] if row is not None else self._upsert_member(db, group_ref, c.group_id, c.user_id, "")
            if not db.execute("SELECT 1 FROM faces WHERE member_ref=? AND face_token=?",
                              (member_ref, c.face_token)).fetchone():
                self._add_face(db, member_ref, group_ref, c.group_id, c.user_id, c.face)
                return 1
        return 0

    # -- replication: a hub's side of a terminal's pushed operations ----------------
    def apply_push(self, op: PushOp, origin: str, stale_check: bool = True) -> PushResult:
        """Apply one pushed operation through the normal writes, and record its op_id with
        the outcome, in ONE transaction: a retried op_id (its answer lost) is not applied
        twice, and answers what the first attempt did. A LibraryError refuses it (nothing
        of it is kept, the refusal is recorded). The conflict rule (docs/sync.md): a
        register or copy into a group where this user (or the group) was deleted after
        the terminal's cursor, by anyone but this terminal's own earlier operations, is
        refused as stale: the hub's deletion came first."""
        with self._write() as db:
            row = db.execute("SELECT error_kind, detail, first_seq, last_seq FROM pushed WHERE op_id=?",
                             (op.op_id,)).fetchone()
            if row is not None:
                return PushResult(row[0], row[1] or "", row[2], row[3], True)
            first = self._head(db)
            db.execute("SAVEPOINT push")
            kind, detail = None, ""
            try:
                self._writable(db)
                if stale_check and op.action in ("register", "copy_user"):
                    self._refuse_stale(db, op, origin)
                self._apply_push(db, op)
                db.execute("RELEASE push")
            except LibraryError as exc:
                db.execute("ROLLBACK TO push")
                db.execute("RELEASE push")
                kind, detail = exc.kind, str(exc)[:300]
            last = self._head(db)
            db.execute("INSERT INTO pushed VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (op.op_id, origin, first, last, kind, detail, time.time()))
        return PushResult(kind, detail, first, last, False)

    def _refuse_stale(self, db, op: PushOp, origin: str) -> None:
        floor = int(_meta(db, LOG_FLOOR_KEY) or 0)
        head = self._head(db)
        kind = "user_not_found"
        if op.hub_uuid is not None and op.hub_uuid != self.uuid:
            raise LibraryError(kind, f"stale: enrolled against hub library {op.hub_uuid}, the hub's is now "
                                     f"{self.uuid}")
        if op.cursor < floor or op.cursor > head:
            raise LibraryError(kind, f"stale: the hub's log ({floor}, {head}] does not cover the terminal's "
                                     f"cursor {op.cursor}, so a deletion since cannot be ruled out")
        groups = list(op.group_ids or ())
        if not groups:  # SQL's IN () matches nothing (PostgreSQL refuses to parse it)
            return
        marks = ",".join("?" * len(groups))
        hit = db.execute(
            f"SELECT c.seq, c.op, c.group_id FROM changes c WHERE c.seq>? AND c.group_id IN ({marks}) "
            f"AND (c.op='group.delete' OR (c.op='user.delete' AND c.user_id=?)) "
            f"AND NOT EXISTS (SELECT 1 FROM pushed p WHERE p.origin=? AND c.seq>p.first_seq AND c.seq<=p.last_seq) "
            f"ORDER BY c.seq LIMIT 1", (op.cursor, *groups, op.user_id, origin)).fetchone()
        if hit is not None:
            what = "group" if hit[1] == "group.delete" else "user"
            raise LibraryError("group_not_found" if what == "group" else kind,
                               f"stale: the hub deleted {what} {op.user_id if what == 'user' else hit[2]} "
                               f"in {hit[2]} at seq {hit[0]}, after the terminal's cursor {op.cursor}")

    def _apply_push(self, db, op: PushOp) -> None:
        groups = list(op.group_ids) if op.group_ids is not None else None
        if op.action == "register":
            self._register(db, groups, op.user_id, op.user_info, op.face, op.mode)
        elif op.action == "delete_user":
            self._delete_user(db, op.user_id, groups)
        elif op.action == "leave_groups":
            self._leave_groups(db, groups, op.user_id)
        elif op.action == "copy_user":
            self._copy_user(db, op.user_id, op.src_group, groups, op.create_groups)
        elif op.action == "delete_face":
            self._delete_face(db, op.user_id, groups[0], op.face_token)
        else:
            raise ValueError(op.action)

    def embedding_dim(self) -> int | None:
        """The length of the faces' embeddings (None while there is no face): a library
        keeps the size its embedder gave it, whichever embedder opens it (docs/api.md)."""
        n = self._one("SELECT length(embedding) FROM faces LIMIT 1")
        return None if n is None else int(n) // 4

    def model_spaces(self) -> list[str]:
        """The embedding spaces of the faces held (a superset, see SPACES_KEY). A library
        from before the key is counted once here (a scan of the faces table)."""
        value = self._one("SELECT value FROM meta WHERE key=?", (SPACES_KEY,))
        return json.loads(value) if value is not None else self.recount_spaces()

    def recount_spaces(self) -> list[str]:
        """SPACES_KEY counted afresh from the faces table, in one write with the count."""
        with self._write() as db:
            spaces = face_spaces(db)
            self._put_meta(db, SPACES_KEY, json.dumps(spaces))
        return spaces

    def model_mismatch_count(self) -> dict[str, int]:
        """Faces a follower did not store because another model made them, by model id."""
        return dict(self._all("SELECT model, COUNT(*) FROM sync_skipped GROUP BY model"))

    def dump(self) -> dict:
        """The whole library as sorted plain lists (groups, members with user_info, faces
        with model and embedding): what a replica must equal (tests, checks)."""
        c = self.BYTES_ORDER
        groups = [r[0] for r in self._all(f"SELECT group_id FROM groups ORDER BY group_id{c}")]
        members = [list(r) for r in self._all(
            "SELECT g.group_id, m.user_id, m.user_info FROM members m JOIN groups g ON g.id=m.group_ref "
            f"ORDER BY g.group_id{c}, m.user_id{c}")]
        faces = [[g, u, t, m, base64.b64encode(_blob(self._unemb(e))).decode()] for g, u, t, m, e in self._all(
            "SELECT g.group_id, m.user_id, f.face_token, f.model, f.embedding FROM faces f "
            "JOIN members m ON m.id=f.member_ref JOIN groups g ON g.id=m.group_ref "
            f"ORDER BY g.group_id{c}, m.user_id{c}, f.face_token{c}")]
        return {"groups": groups, "members": members, "faces": faces}

    # -- face tokens of detected (not registered) faces ------------------------
    def put_tokens(self, faces: list[FaceRecord], max_age_s: float) -> None:
        """Remember a request's detected faces, in one transaction that also drops the
        tokens older than max_age_s, so the table holds only the last hour's faces."""
        now = time.time()
        with self._token_write() as db:
            db.execute("DELETE FROM tokens WHERE ctime<?", (now - max_age_s,))
            self._put_token_rows(db, [(f.face_token, self._emb(f.embedding), f.model,
                                       None if f.quality is None else json.dumps(f.quality), now) for f in faces])

    def token_embedding(self, face_token: str, max_age_s: float) -> np.ndarray | None:
        """A registered face's embedding (permanent), else a detected one younger than max_age_s."""
        blob = self._one("SELECT embedding FROM faces WHERE face_token=? LIMIT 1", (face_token,))
        if blob is None:
            blob = self._one("SELECT embedding FROM tokens WHERE face_token=? AND ctime>=?",
                             (face_token, time.time() - max_age_s))
        return None if blob is None else np.array(self._unemb(blob), dtype=np.float32)

    # -- reads --------------------------------------------------------------------
    def group_refs(self, group_ids: list[str]) -> dict[str, int]:
        """The rowids of the groups that exist, by group_id."""
        if not group_ids:
            return {}
        marks = ",".join("?" * len(group_ids))
        return dict(self._all(f"SELECT group_id, id FROM groups WHERE group_id IN ({marks})", tuple(group_ids)))

    def list_groups(self, start: int, num: int) -> list[str]:
        return [r[0] for r in self._all("SELECT group_id FROM groups ORDER BY id LIMIT ? OFFSET ?", (num, start))]

    def group_exists(self, group_id: str) -> bool:
        return self._one("SELECT 1 FROM groups WHERE group_id=?", (group_id,)) is not None

    def list_group_users(self, group_id: str, start: int, num: int) -> list[tuple[str, str]]:
        return self._all("SELECT m.user_id, m.user_info FROM members m JOIN groups g ON g.id=m.group_ref "
                         "WHERE g.group_id=? ORDER BY m.id LIMIT ? OFFSET ?", (group_id, num, start))

    def user_groups(self, user_id: str, group_ids: list[str] | None = None) -> list[tuple[str, str]]:
        """(group_id, user_info) of the user's memberships, optionally only in group_ids."""
        rows = self._all("SELECT g.group_id, m.user_info FROM members m JOIN groups g ON g.id=m.group_ref "
                         "WHERE m.user_id=? ORDER BY m.id", (user_id,))
        return [r for r in rows if group_ids is None or r[0] in set(group_ids)]

    def list_faces(self, user_id: str, group_id: str) -> list[tuple[str, float]]:
        """(face_token, ctime) of a member's faces, oldest first."""
        return self._all("SELECT f.face_token, f.ctime FROM faces f JOIN members m ON m.id=f.member_ref "
                         "JOIN groups g ON g.id=m.group_ref WHERE m.user_id=? AND g.group_id=? ORDER BY f.id",
                         (user_id, group_id))

    def user_embeddings(self, user_id: str, group_ids: list[str]) -> list[tuple[int, str, np.ndarray]]:
        """(face_ref, group_id, embedding) of the user's faces in those groups."""
        if not group_ids:
            return []
        marks = ",".join("?" * len(group_ids))
        rows = self._all(f"SELECT f.id, g.group_id, f.embedding FROM faces f JOIN members m ON m.id=f.member_ref "
                         f"JOIN groups g ON g.id=m.group_ref WHERE m.user_id=? AND g.group_id IN ({marks}) "
                         f"ORDER BY f.id", (user_id, *group_ids))
        return [(r[0], r[1], self._unemb(r[2])) for r in rows]

    def face_owners(self, face_refs: list[int]) -> dict[int, tuple[str, str, str]]:
        """face_ref -> (group_id, user_id, user_info) for the faces that still exist."""
        if not face_refs:
            return {}
        marks = ",".join("?" * len(face_refs))
        rows = self._all(f"SELECT f.id, g.group_id, m.user_id, m.user_info FROM faces f "
                         f"JOIN members m ON m.id=f.member_ref JOIN groups g ON g.id=m.group_ref "
                         f"WHERE f.id IN ({marks})", tuple(face_refs))
        return {r[0]: (r[1], r[2], r[3]) for r in rows}

    def face_count(self) -> int:
        return self._one("SELECT COUNT(*) FROM faces")

    def searched_face_count(self, group_ids: list[str] | None = None) -> int:
        """Distinct faces (photos) a search of these groups (None: all) compares with; a
        photo registered in two searched groups is one comparison's worth of evidence."""
        if group_ids is None:
            return self._one("SELECT COUNT(DISTINCT face_token) FROM faces")
        if not group_ids:
            return 0
        marks = ",".join("?" * len(group_ids))
        return self._one(f"SELECT COUNT(DISTINCT f.face_token) FROM faces f JOIN groups g ON g.id=f.group_ref "
                         f"WHERE g.group_id IN ({marks})", tuple(group_ids))

    def user_count(self) -> int:
        return self._one("SELECT COUNT(DISTINCT user_id) FROM members")

    # -- what FaceLibrary keeps in memory for its searches (edge/library/owners.py) ----
    def _by_id(self, select: str, batch: int):
        """Rows of `SELECT id, ... FROM table` in batches of ascending id: each batch one
        short read, so a writer is never held off for the whole table."""
        last = 0
        while True:
            rows = self._all(f"{select} WHERE id>? ORDER BY id LIMIT ?", (last, batch))
            if not rows:
                return
            last = rows[-1][0]
            yield rows

    def _by_refs(self, select: str, refs: list[int]) -> list:
        """Rows of `SELECT id, ... FROM table` whose id is in refs (900 at a time: SQLite's
        bound-parameter limit)."""
        rows = []
        for i in range(0, len(refs), 900):
            chunk = refs[i:i + 900]
            rows += self._all(f"{select} WHERE id IN ({','.join('?' * len(chunk))})", tuple(chunk))
        return rows

    def _owned(self, rows):
        return (*(np.array([r[i] for r in rows], dtype=np.int64) for i in range(3)),
                self._matrix([r[3] for r in rows]))

    def iter_faces_owned(self, batch: int = 10_000):
        """(face_refs, group_refs, member_refs, embeddings) in batches, for rebuilding the index."""
        for rows in self._by_id("SELECT id, group_ref, member_ref, embedding FROM faces", batch):
            yield self._owned(rows)

    def faces_owned(self, face_refs: list[int]):
        """(face_refs, group_refs, member_refs, embeddings) of the given faces that still exist."""
        rows = self._by_refs("SELECT id, group_ref, member_ref, embedding FROM faces", face_refs)
        if not rows:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64), None
        return self._owned(rows)

    def face_members(self, batch: int = 100_000):
        """(face_refs, member_refs) of every face, in batches (an index saved without its owners)."""
        for rows in self._by_id("SELECT id, member_ref FROM faces", batch):
            pairs = np.array(rows, dtype=np.int64)
            yield pairs[:, 0], pairs[:, 1]

    def members_by_ref(self, member_refs: list[int]) -> list[tuple[int, int, str, str]]:
        """(member_ref, group_ref, user_id, user_info) of the given members that exist."""
        return self._by_refs("SELECT id, group_ref, user_id, user_info FROM members", member_refs)

    def iter_members(self, batch: int = 10_000):
        """(member_ref, group_ref, user_id, user_info) rows of every member, in batches."""
        yield from self._by_id("SELECT id, group_ref, user_id, user_info FROM members", batch)

    def all_groups(self) -> list[tuple[str, int]]:
        """(group_id, group_ref) of every group."""
        return self._all("SELECT group_id, id FROM groups")

    def member_infos(self, pairs: list[tuple[str, str]]) -> list[tuple[int, str]]:
        """(member_ref, user_info) of the (group_id, user_id) members that exist."""
        return [row for group_id, user_id in pairs for row in self._all(
            "SELECT m.id, m.user_info FROM members m JOIN groups g ON g.id=m.group_ref "
            "WHERE g.group_id=? AND m.user_id=?", (group_id, user_id))]

    def index_changes_since(self, seq: int, limit: int = 100_000) -> list[tuple[int, str, int | None, str | None,
                                                                              str | None]]:
        """(seq, op, face_ref, group_id, user_id) of the changes after seq: what the index
        and the owners replay."""
        return self._all("SELECT seq, op, face_ref, group_id, user_id FROM changes WHERE seq>? ORDER BY seq LIMIT ?",
                         (seq, limit))

    # -- change log ---------------------------------------------------------------
    def last_seq(self) -> int:
        return self._one("SELECT COALESCE(MAX(seq), 0) FROM changes")

    def face_changes_since(self, seq: int, limit: int = 100_000) -> list[tuple[int, str, int | None]]:
        """(seq, op, face_ref) of the changes after seq: what the index replays."""
        return self._all("SELECT seq, op, face_ref FROM changes WHERE seq>? ORDER BY seq LIMIT ?", (seq, limit))

    def log_floor(self) -> int:
        """The last seq compact() removed (0: the log is whole)."""
        return int(self._one("SELECT value FROM meta WHERE key=?", (LOG_FLOOR_KEY,)) or 0)

    def compact(self, keep: int) -> tuple[int, int]:
        """Remove the change log but its last `keep` changes (at least one is kept, so
        a reader behind the floor always sees the hole). One transaction; returns
        (changes removed, the new floor). Readers behind the floor rebuild: the
        library's index (FaceLibrary.sync) and followers (a snapshot, docs/sync.md)."""
        with self._write() as db:
            head = self._head(db)
            floor = int(_meta(db, LOG_FLOOR_KEY) or 0)
            new = head - max(keep, 1)
            if new <= floor:
                return 0, floor
            removed = db.execute("DELETE FROM changes WHERE seq<=?", (new,)).rowcount
            self._put_meta(db, LOG_FLOOR_KEY, str(new))
            # pushed op_ids below the floor are no longer needed by the stale rule (a cursor
            # below the floor is refused anyway); kept PUSHED_KEEP_S for retries of lost answers
            db.execute("DELETE FROM pushed WHERE last_seq<=? AND ts<?", (new, time.time() - PUSHED_KEEP_S))
        return removed, new

    def snapshot_rows(self, phase: str, after: int, limit: int,
                      group_ids: list[str] | None = None) -> tuple[int, list[tuple]]:
        """(head, rows) of a snapshot page: the rows of one table (groups, members or
        faces) after rowid `after`, by rowid, read after head. Later pages read later
        states; replaying the log from the first page's head makes them exact
        (docs/sync.md, Snapshot). Rows: (id, ctime, group_id[, user_id, user_info |
        user_id, face_token, embedding, model, quality])."""
        head = self.last_seq()
        where, args = "", ()
        if group_ids is not None:
            where, args = f" AND g.group_id IN ({','.join('?' * len(group_ids))})", tuple(group_ids)
        sql = {"groups": "SELECT g.id, g.ctime, g.group_id FROM groups g WHERE g.id>?",
               "members": "SELECT m.id, m.ctime, g.group_id, m.user_id, m.user_info FROM members m "
                          "JOIN groups g ON g.id=m.group_ref WHERE m.id>?",
               "faces": "SELECT f.id, f.ctime, g.group_id, m.user_id, f.face_token, f.embedding, f.model, f.quality "
                        "FROM faces f JOIN members m ON m.id=f.member_ref JOIN groups g ON g.id=m.group_ref "
                        "WHERE f.id>?"}[phase]
        order = {"groups": "g.id", "members": "m.id", "faces": "f.id"}[phase]
        return head, self._wire_rows(phase, self._all(f"{sql}{where} ORDER BY {order} LIMIT ?", (after, *args, limit)))

    def feed_rows(self, since: int, limit: int, group_ids: list[str] | None = None) -> tuple[int, list[tuple]]:
        """(head, rows) for a hub's change feed: head is the last committed seq (every
        seq up to it is committed: writers are serialised), rows the changes in
        (since, head], of those groups when given, oldest first, at most limit:
        (seq, ts, op, group_id, user_id, face_token, data JSON text)."""
        head = self.last_seq()
        sql = ("SELECT seq, ts, op, group_id, user_id, face_token, data FROM changes WHERE seq>? AND seq<=?")
        args: tuple = (since, head)
        if group_ids is not None:
            sql += f" AND group_id IN ({','.join('?' * len(group_ids))})"
            args += tuple(group_ids)
        return head, self._all(sql + " ORDER BY seq LIMIT ?", args + (limit,))

    def changes_since(self, seq: int, limit: int = 100_000) -> list[Change]:
        rows = self._all("SELECT seq, ts, op, group_id, user_id, face_token, face_ref, data FROM changes "
                         "WHERE seq>? ORDER BY seq LIMIT ?", (seq, limit))
        return [Change(*r[:7], json.loads(r[7]) if r[7] else None) for r in rows]


class LibraryStore(LibraryRules, SqliteFile):
    """Groups, members and faces of one app in its SQLite file, with the change log. Thread-safe."""

    SMALL_TABLES = ("meta", "groups", "members")

    def found_damage(self, err) -> None:
        """Damage found outside a call (edge/library/scrub.py): refuse from now on, as a read meeting it would."""
        with self._lock:
            if self.fault is None:
                self.fault = err
                log.error("%s: refused until repaired", err)

    def change_stamp(self) -> tuple[int, int]:
        """Changes whenever anything may have been committed to the file since the last
        call: by another connection (any process; SQLite's data_version, read from the
        WAL index in shared memory, no page read) or by this one (total_changes). Equal
        stamps: nothing changed, a search need not look at the change log."""
        with self._lock:
            return self._one("PRAGMA data_version"), self._db.total_changes

    def __init__(self, path: Path | str, remedy: str = ""):
        super().__init__(path, SCHEMA, foreign_keys=True, remedy=remedy)
        try:
            refuse_incomplete(self._one("SELECT value FROM meta WHERE key=?", (MARK_KEY,)), self.path)
            with self._write():
                self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                self._db.execute("INSERT OR IGNORE INTO meta VALUES ('library_uuid', lower(hex(randomblob(16))))")
            self.uuid = self._one("SELECT value FROM meta WHERE key='library_uuid'")
        except BaseException:
            self._db.close()
            raise
