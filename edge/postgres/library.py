"""PgFaceLibrary: the FaceLibrary interface over PostgreSQL, with no local state.

A hub process on PostgreSQL keeps no index of its own: the store is the truth and
the search runs in the database (pgvector's HNSW index, edge/postgres/search.py), so
any number of `edge serve` processes share one app and each sees every commit at
once. What FaceLibrary does for its local index (replay, save, rebuild) has nothing
to do here: sync() replays nothing, save_index() saves nothing.
"""
from __future__ import annotations

import logging
import threading

import numpy as np

from edge.library.matching import UserMatch, faces_wanted, rank_users, user_similarities
from edge.postgres.connect import Database, database
from edge.postgres.store import PgLibraryStore

log = logging.getLogger(__name__)


class PgFaceLibrary:
    index_source = "postgres"   # start-up diagnostics: where the search runs

    def __init__(self, db: Database, app_id: str, *, dim: int = 128):
        self.app_id = app_id
        self.store = PgLibraryStore(db, app_id, dim)
        self.dim = self.store.dim   # an existing app's, as its column was made
        self.dir = None           # no folder of its own
        log.info("library %s on %s (schema %s)", app_id, db.location, self.store.schema_name)

    @property
    def fault(self):
        """Never sticky: a database failure is answered per call (the pool reconnects)."""
        return None

    @property
    def seq(self) -> int:
        return self.store.last_seq()

    def sync(self) -> int:
        return 0

    def save_index(self) -> None:
        """Nothing to save: the index is the database's."""

    def wait_index(self, timeout: float | None = None) -> bool:
        return True

    def stop_builder(self) -> None:
        """No builder thread."""

    def close(self) -> None:
        self.store.close()

    # -- writes --------------------------------------------------------------------
    def register(self, group_ids, user_id, user_info, face, mode="append"):
        return self.store.register(group_ids, user_id, user_info, face, mode)

    def register_many(self, items):
        return self.store.register_many(items)

    def delete_user(self, user_id, group_ids=None):
        return self.store.delete_user(user_id, group_ids)

    def leave_groups(self, group_ids, user_id):
        return self.store.leave_groups(group_ids, user_id)

    def copy_user(self, user_id, src_group, dst_groups, create_groups):
        return self.store.copy_user(user_id, src_group, dst_groups, create_groups)

    def delete_face(self, user_id, group_id, face_token):
        return self.store.delete_face(user_id, group_id, face_token)

    def add_group(self, group_id):
        return self.store.add_group(group_id)

    def delete_group(self, group_id):
        return self.store.delete_group(group_id)

    def apply_replica(self, changes, state, model, expect, reset=False):
        return self.store.apply_replica(changes, state, model, expect, reset)

    def apply_push(self, op, origin: str):
        return self.store.apply_push(op, origin)

    # -- search -------------------------------------------------------------------------
    def search(self, embedding: np.ndarray, group_ids: list[str] | None, max_users: int,
               min_similarity: float = -1.0) -> list[UserMatch]:
        """As FaceLibrary.search: the best (group, user) pairs, best first."""
        with self.store.pinned():
            groups = None
            if group_ids is not None:
                groups = list(self.store.group_refs(group_ids).values())
                if not groups:
                    return []
            hits = self.store.nearest_faces(np.asarray(embedding, np.float32), faces_wanted(max_users), groups)
            hits = [h for h in hits if h[2] >= min_similarity]
            return rank_users(hits, self.store.face_owners([h[0] for h in hits]), max_users)

    def user_similarities(self, embedding: np.ndarray, user_id: str, group_ids: list[str]) -> list[UserMatch]:
        with self.store.pinned():
            return user_similarities(self.store, embedding, user_id, group_ids)


_open: dict[tuple[str, str], PgFaceLibrary] = {}
_open_lock = threading.Lock()


def open_pg_library(dsn: str, app_id: str, *, pool_size: int = 10, timeout_s: float = 5.0,
                    dim: int = 128) -> PgFaceLibrary:
    """The process-wide PgFaceLibrary of an app. Opening creates or upgrades the app's
    schema; a failure (StorageError) is not remembered: the next call tries again."""
    key = (dsn, app_id)
    with _open_lock:
        lib = _open.get(key)
    if lib is not None:
        return lib
    lib = PgFaceLibrary(database(dsn, pool_size, timeout_s), app_id, dim=dim)
    with _open_lock:
        return _open.setdefault(key, lib)


def close_pg_libraries() -> None:
    with _open_lock:
        _open.clear()
