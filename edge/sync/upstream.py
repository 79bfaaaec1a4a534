"""A terminal's own enrolments, on their way to the hub (docs/sync.md, "Up").

With `sync.push: true`, a library write through the terminal's API (v2, v3, the
in-process SDK, `edge enroll`) is not made locally: the request is judged and embedded
as always (the same Baidu codes for bad input), checked against the local replica
(the hub's library as of the cursor: updating a user the hub does not have answers
223103 as it would there), then committed to the app's upstream outbox, a SQLite file
in the terminal's data dir, before the call answers. Acknowledged means durable. The
replica is untouched: the operation reaches the local library only when it comes back
through the feed, so the replica stays exactly the hub's (searchable after a round
trip; with the hub down, after it is back).

The outbox is the webhook's (edge/events/outbox.py): ordered, one consumer (the
pusher thread), dead letters kept for the operator. Unlike events, enrolments are
never dropped to make room: at `sync.push_max_queued` pending operations a new one is
refused (v3 222915 / v2 216300) and the caller can retry.
"""
from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from edge.events.outbox import Outbox
from edge.library.store import FaceRecord, LibraryError, PushOp
from edge.sync.push import op_to_wire

log = logging.getLogger("edge.sync")


@dataclass(frozen=True)
class _Queued:
    """What Outbox.put takes: an id and a JSON body."""
    event_id: str
    body: str

    def to_json(self) -> str:
        return self.body


class UpstreamOutbox(Outbox):
    """The pending operations of one app; `origin` names this outbox at the hub, so the
    conflict rule can tell this terminal's own earlier deletions from the hub's."""

    REMEDY = "move it away: its pending enrolments are lost, enrol them again (docs/sync.md)"

    def __init__(self, path: Path | str, max_pending: int):
        super().__init__(path, max_rows=2 * max_pending + 1000)
        self.max_pending = max_pending
        with self._write() as db:
            db.execute("CREATE TABLE IF NOT EXISTS origin (id TEXT NOT NULL)")
            if db.execute("SELECT 1 FROM origin").fetchone() is None:
                db.execute("INSERT INTO origin VALUES (?)", (uuid.uuid4().hex,))
        self.origin = self._one("SELECT id FROM origin")

    def put_op(self, op: PushOp) -> None:
        if self.pending_count() >= self.max_pending:
            raise LibraryError("upstream_full", f"{self.max_pending} operations wait for the hub")
        self.put(_Queued(op.op_id, json.dumps(op_to_wire(op), separators=(",", ":"))))

    def oldest_pending(self) -> float | None:
        """Creation time of the oldest operation still waiting."""
        return self._one("SELECT MIN(created) FROM outbox WHERE delivered IS NULL")


def outbox_path(data_dir: Path, app_id: str) -> Path:
    return Path(data_dir) / "sync" / app_id / "upstream.db"


class PushingLibrary:
    """A replica's FaceLibrary whose writes go to the upstream outbox; reads (search,
    store, ...) are the library's own. Group management stays at the hub (6)."""

    def __init__(self, library, outbox: UpstreamOutbox, wake=None):
        self._library, self._outbox, self._wake = library, outbox, wake

    def __getattr__(self, name):
        return getattr(self._library, name)

    def _queue(self, action: str, user_id: str, group_ids, **fields) -> None:
        state = self._library.store.replica_state() or {}
        op = PushOp(uuid.uuid4().hex, int(state.get("seq", 0)), state.get("hub_uuid"), action, user_id,
                    None if group_ids is None else tuple(group_ids), **fields)
        self._outbox.put_op(op)
        log.info("sync: queued %s of %s for the hub (op %s, cursor %d)", action, user_id, op.op_id, op.cursor)
        if self._wake is not None:
            self._wake()

    def _memberships(self, user_id: str, group_ids=None) -> list[str]:
        return [g for g, _ in self._library.store.user_groups(user_id, group_ids)]

    # -- the writes of FaceLibrary ------------------------------------------------
    def register(self, group_ids, user_id, user_info, face: FaceRecord, mode="append"):
        if mode == "update":
            missing = set(group_ids) - set(self._memberships(user_id, group_ids))
            if missing:
                raise LibraryError("user_not_found", f"{user_id} in {sorted(missing)[0]}")
        self._queue("register", user_id, group_ids, user_info=user_info, mode=mode, face=face)
        return {g: 0 for g in group_ids}

    def register_many(self, items) -> int:
        for group_ids, user_id, user_info, face, mode in items:
            self.register(group_ids, user_id, user_info, face, mode)
        return len(items)

    def delete_user(self, user_id, group_ids=None):
        rows = self._memberships(user_id, group_ids)
        if not rows:
            raise LibraryError("user_not_found", user_id)
        self._queue("delete_user", user_id, group_ids)
        return len(rows)

    def leave_groups(self, group_ids, user_id):
        rows = self._memberships(user_id)
        leaving = [g for g in rows if g in set(group_ids)]
        if not leaving:
            raise LibraryError("user_not_found", user_id)
        if len(leaving) == len(rows):
            raise LibraryError("last_group", user_id)
        self._queue("leave_groups", user_id, group_ids)

    def copy_user(self, user_id, src_group, dst_groups, create_groups):
        if not self._memberships(user_id, [src_group]):
            raise LibraryError("user_not_found", f"{user_id} in {src_group}")
        for group_id in dst_groups:
            if not create_groups and not self._library.store.group_exists(group_id):
                raise LibraryError("group_not_found", group_id)
            if self._memberships(user_id, [group_id]):
                raise LibraryError("user_exists", f"{user_id} in {group_id}")
        self._queue("copy_user", user_id, dst_groups, src_group=src_group, create_groups=create_groups)

    def delete_face(self, user_id, group_id, face_token):
        if not self._library.store.group_exists(group_id):
            raise LibraryError("group_not_found", group_id)
        faces = self._library.store.list_faces(user_id, group_id)
        if not faces and not self._memberships(user_id, [group_id]):
            raise LibraryError("user_not_found", f"{user_id} in {group_id}")
        if face_token not in {t for t, _ in faces}:
            raise LibraryError("face_not_found", face_token)
        self._queue("delete_face", user_id, [group_id], face_token=face_token)

    def add_group(self, group_id):
        raise LibraryError("replica", "groups are managed at the hub")

    def delete_group(self, group_id):
        raise LibraryError("replica", "groups are managed at the hub")


def age(created: float | None, now: float | None = None) -> float | None:
    return None if created is None else round((now or time.time()) - created, 1)
