"""FaceLibrary: one app's store plus the search index kept in step with it.

The store (SQLite) is the truth; the index is a cache derived from it. Every write
goes to the store first (one transaction, logged), then the index replays the change
log up to the store's newest sequence number. The same replay runs before every
search, so a library written by another process (an enrollment script next to the
service) is searched as it is now, without a restart. It keeps the faces' owners
(edge/library/owners.py) too: a search reads no SQLite beyond asking whether anything
was committed since (docs/storage.md, "1:N at 1M faces").

At start-up the saved index is loaded when its recorded sequence number and library
uuid match the store (then only the newer changes are replayed); otherwise it is
rebuilt from the faces table. A loaded index's graph is read after the open, on a
thread (edge/library/startup.py): searches are exact over the vectors until it is in,
so a large library on a slow card answers in seconds, never from a half-read graph.
Replay is idempotent (adds replace, removes ignore
unknown ids), so no ordering subtleties arise between reading the sequence number and
reading faces.

The saved index is also the second copy of the embeddings (with its catalog, enough
to rebuild the store: docs/storage.md), so it is never thrown away or overwritten
when it does not fit the store: a damaged, foreign or newer one is set aside; a store
that went missing or empty beside a saved index with faces is refused, not recreated.
"""
from __future__ import annotations

import atexit
import errno
import fcntl
import functools
import logging
import os
import re
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from edge.library.catalog import write_catalog
from edge.library.index import MANIFEST, FaceIndex, read_manifest
from edge.library.matching import FACES_PER_USER, UserMatch, faces_wanted, rank_users, user_similarities  # noqa: F401
from edge.library.owners import Owners
from edge.library.scrub import Scrub
from edge.library.startup import GraphLoad
from edge.library.store import FaceRecord, LibraryError, LibraryStore
from edge.sqlite import StorageError, set_aside

log = logging.getLogger(__name__)

APP_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# Save the index after this many replayed changes (and always on close), so a restart
# replays little without saving a large index on every write.
SAVE_EVERY_CHANGES = 20_000
SAVE_RETRY_S = 60.0  # after a failed save (full disk): wait before trying again
# At close a large index is saved only when the changes since its last save are at least
# this share of it: a terminal following a 1M-face hub restarted with a few new faces
# would otherwise write its ~1.25 GB index to the card at every stop for them; the next
# start replays them from the change log instead (docs/loop.md, "Writes on flash").
# Up to CLOSE_SAVE_ALWAYS_FACES faces (<= ~25 MB) any change is saved: cheap, and the
# saved index stays a current second copy of the embeddings.
CLOSE_SAVE_SHARE = 0.01
CLOSE_SAVE_ALWAYS_FACES = 20_000
# A replay adding at least this many faces (a follower's page, a snapshot page, a bulk
# enrolment) leaves its graph inserts to the builder thread (FaceIndex, "Deferred graph
# inserts"); fewer (an enrolment) are inserted at once, as before.
BULK_FACES = 200
STORE_FILE = "library.db"
INDEX_DIR = "index"


def _unlock(lock_file) -> None:
    if lock_file is not None:
        fcntl.flock(lock_file, fcntl.LOCK_UN)
        lock_file.close()


def recover_remedy(app_id: str) -> str:
    return f"run `edge library recover --app-id {app_id}` (docs/storage.md)"


def os_storage_error(exc: OSError, path: Path, remedy: str = "") -> StorageError:
    """A StorageError for a file-system failure around the library's files."""
    kind = {errno.ENOSPC: "full", errno.EDQUOT: "full", errno.EROFS: "readonly", errno.EACCES: "readonly",
            errno.EPERM: "readonly"}.get(exc.errno, "unreadable")
    return StorageError(kind, path, exc.strerror or str(exc), remedy)


def _saved_faces(index_dir: Path) -> tuple[int, str]:
    """(faces, library uuid) a saved index's manifest claims; (0, '') when there is none."""
    manifest = read_manifest(index_dir)
    if manifest is None:
        return 0, ""
    try:
        return int(manifest.get("count", 0)), str(manifest.get("meta", {}).get("library_uuid", ""))
    except (TypeError, ValueError, AttributeError):
        return 0, ""


def _prepare(directory: Path, remedy: str) -> None:
    """Refuse or repair the app folder's layout before anything is opened or created:
    a folder where the app folder should be; a file where the index folder should be
    (set aside: the index is rebuilt); a missing or empty library.db beside a saved
    index that holds faces (the store was lost: refused, never silently replaced by an
    empty one whose first save would overwrite the last copy of the embeddings)."""
    if directory.exists() and not directory.is_dir():
        raise StorageError("unreadable", directory, "not a folder", "move it away; the app's library is a folder")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise os_storage_error(exc, directory, remedy) from None
    index_dir = directory / INDEX_DIR
    if index_dir.exists() and not index_dir.is_dir():
        aside = set_aside(index_dir, "not-a-folder")
        log.warning("%s was not a folder: moved to %s; the index is rebuilt from %s", index_dir, aside.name,
                    STORE_FILE)
    db = directory / STORE_FILE
    wal = db.with_name(db.name + "-wal")
    empty = not db.exists() or (db.is_file() and db.stat().st_size == 0
                                and not (wal.exists() and wal.stat().st_size > 0))
    faces, uuid = _saved_faces(index_dir)
    if empty and faces > 0:
        raise StorageError("lost", db, f"{'empty' if db.exists() else 'absent'}, while the saved index holds "
                                       f"{faces} faces of library {uuid}", remedy)


class FaceLibrary:
    def __init__(self, directory: Path | str, *, dim: int = 128, index_options: dict | None = None,
                 graph_in_background: bool = True):
        """dim: the embedder's, for a library with no face yet; one with faces keeps
        theirs (a library of another embedder opens as it is and is refused by the
        runtime, 216300, rather than rebuilt). graph_in_background: open with the saved
        index's vectors and read its graph after (edge/library/startup.py); False reads
        everything first (the old start-up, kept for benchmarks: scripts/bench_startup.py
        --eager)."""
        self.dir = Path(directory)
        self._graph_later = graph_in_background
        self.remedy = recover_remedy(self.dir.name)
        # Bulk builds (rebuild, large replays) may use every core; searches are single queries.
        self._index_options = {"threads": min(os.cpu_count() or 1, 4), **(index_options or {})}
        _prepare(self.dir, self.remedy)
        self.store = LibraryStore(self.dir / STORE_FILE, remedy=self.remedy)
        self.dim = self.store.embedding_dim() or dim
        self._lock = threading.RLock()
        self._unsaved = 0
        self._save_failed = 0.0
        self._builder: threading.Thread | None = None
        self._build_wake = threading.Event()
        self._builder_lock = threading.Lock()
        self._closing = False
        self._scrub: Scrub | None = None  # the faces table checked in the background (large libraries)
        self._graph_unsaved = 0  # faces the builder put into the graph since the last save
        self._stamp = None  # the store's change_stamp() when the index last caught up
        self._graph_load: GraphLoad | None = None  # the saved graph, read after the open
        t0 = time.perf_counter()
        lock_file = None
        try:
            self.index, self._seq, how, lock_file = self._open_index()
            self.index_source = how  # "loaded" or "rebuilt": start-up diagnostics and tests
            self.owners = self._load_owners(self.index)
            self.sync()
            if self.index.pending:  # a save made mid-catch-up: finish its graph
                self._wake_builder()
            if how == "rebuilt":
                self._try_save("after the rebuild")
            if lock_file is not None:  # the graph's read comes first, then the faces table's check
                self._graph_load = GraphLoad(self.index, self.dir / INDEX_DIR, lock_file,
                                             self._after_graph).start()
                lock_file = None
            else:
                self._scrub = Scrub.start_if_large(self.store, self.remedy)
        except OSError as exc:
            _unlock(lock_file)
            self.store.close()
            raise os_storage_error(exc, self.dir / INDEX_DIR, self.remedy) from None
        except BaseException:
            _unlock(lock_file)
            self.store.close()
            raise
        log.info("library %s: %d faces, index %s in %.2f s%s", self.dir, len(self.index), how,
                 time.perf_counter() - t0, " (its graph follows; searches exact until then)"
                 if self._graph_load is not None else "")

    @property
    def fault(self) -> StorageError | None:
        """Why the library refuses every call (its store is damaged), or None."""
        return self.store.fault

    # -- index lifecycle --------------------------------------------------------
    @contextmanager
    def _file_lock(self, exclusive: bool):
        """Serialises index saves and loads between processes sharing the directory."""
        with open(self.dir / "index.lock", "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _open_index(self) -> tuple[FaceIndex, int, str, object]:
        """(index, its seq, "loaded" or "rebuilt", the shared index.lock still held while
        the loaded index's graph is to be read, else None)."""
        lock_file = open(self.dir / "index.lock", "a+")
        try:
            fcntl.flock(lock_file, fcntl.LOCK_SH)
            loaded = FaceIndex.load(self.dir / INDEX_DIR, self.dim, graph_later=self._graph_later,
                                    **self._index_options)
            unusable = loaded is None and (self.dir / INDEX_DIR / MANIFEST).exists()
            last = self.store.last_seq()
            if loaded is not None and loaded[0].graph_loading:
                seq, uuid = loaded[1].get("seq"), loaded[1].get("library_uuid")
                if uuid == self.store.uuid and isinstance(seq, int) and 0 <= seq <= last:
                    keep, lock_file = lock_file, None
                    return loaded[0], seq, "loaded", keep
        finally:
            _unlock(lock_file)
        if unusable:  # its files may still hold what a double fault needs: keep them
            with self._file_lock(exclusive=True):
                aside = set_aside(self.dir / INDEX_DIR, "damaged")
            log.warning("saved index kept as %s; rebuilding it from %s", aside, self.store.path)
        if loaded is not None:
            index, meta = loaded
            seq, uuid = meta.get("seq"), meta.get("library_uuid")
            if uuid == self.store.uuid and isinstance(seq, int) and 0 <= seq <= last:
                return index, seq, "loaded", None
            if len(index) and not self.store.face_count():
                raise StorageError("lost", self.store.path, f"library {self.store.uuid} holds no face, while the "
                                   f"saved index holds {len(index)} faces of library {uuid}", self.remedy)
            # Another library's (or a newer) save: possibly the last copy of those faces.
            with self._file_lock(exclusive=True):
                aside = set_aside(self.dir / INDEX_DIR, "foreign" if uuid != self.store.uuid else "newer")
            log.warning("saved index of library %s at seq %s does not belong to %s (library %s at seq %d): "
                        "kept as %s, rebuilding", uuid, seq, self.store.path, self.store.uuid, last, aside)
        return self._index_from_store(last), last, "rebuilt", None

    @property
    def seq(self) -> int:
        """The store's change sequence number the index has replayed to (every search syncs first)."""
        return self._seq

    def _load_owners(self, index: FaceIndex) -> Owners:
        """The owners of the index's faces, from the store (start-up, rebuild): the
        groups, and the members that own a face. A save without the faces' owners (an
        older edge's) gets them from the faces table."""
        if not index.has_owners:
            pairs = list(self.store.face_members())
            index.set_owners(np.concatenate([p[0] for p in pairs] or [np.zeros(0, np.int64)]),
                             np.concatenate([p[1] for p in pairs] or [np.zeros(0, np.int64)]))
        owners = Owners()
        owners.set_groups(self.store.all_groups())
        live = np.unique(index.owners())
        for rows in self.store.iter_members():
            refs = np.fromiter((r[0] for r in rows), np.int64, len(rows))
            keep = np.isin(refs, live)
            owners.put([r for r, k in zip(rows, keep.tolist()) if k])
        owners.retain(live)  # counts as fresh
        return owners

    def sync(self) -> int:
        """Replay the store's changes the index (and the owners) have not seen; returns
        how many. A search calls it first: when nothing was committed since the last
        call (the store's change_stamp), that is one PRAGMA and no read of the log."""
        stamp = self.store.change_stamp()
        if stamp == self._stamp:
            return 0
        with self._lock:
            if self.store.last_seq() == self._seq:
                self._stamp = stamp
                return 0
            done = 0
            while True:
                changes = self.store.index_changes_since(self._seq)
                if not changes:
                    break
                if changes[0][0] > self._seq + 1:  # the log was compacted past us: what we missed is gone
                    self._rebuild_index()
                    continue
                self._replay(changes)
                self._seq = changes[-1][0]
                done += len(changes)
            self._stamp = stamp  # read before the log: a commit since then changes the stamp
            self._unsaved += done
            if self.owners.needs_retain(len(self.index)):
                self.owners.retain(self.index.owners())
        if self.index.pending:
            self._wake_builder()
        if self._save_due() and not self.index.pending:  # mid-catch-up, the builder saves when done
            self._try_save(f"after {self._unsaved} changes")
        return done

    def _replay(self, changes) -> None:
        """One batch of the change log into the index and the owners. A face is in the
        index only once its owner is known (searches run meanwhile), and leaves it before
        its group is forgotten."""
        state: dict[int, bool] = {}  # face_ref -> present after these changes
        groups: set[str] = set()
        infos: dict[tuple[str, str], None] = {}
        for _, op, face_ref, group_id, user_id in changes:
            if face_ref is not None and op in ("face.add", "face.delete"):
                state[face_ref] = op == "face.add"
            elif op in ("group.add", "group.delete"):
                groups.add(group_id)
            elif op == "user.update":
                infos[(group_id, user_id)] = None
        gone = [ref for ref, present in state.items() if not present]
        if gone:
            self.index.remove(np.array(gone, dtype=np.int64))
        if groups:
            refs = self.store.group_refs(sorted(groups))
            self.owners.update_groups({g: refs.get(g) for g in groups})
        refs, group_refs, members, vecs = self.store.faces_owned([r for r, present in state.items() if present])
        if len(refs):
            self.owners.put(self.store.members_by_ref(np.unique(members).tolist()))
        if infos:
            self.owners.update_info(self.store.member_infos(list(infos)))
        if len(refs):
            self.index.add(refs, group_refs, vecs, defer=len(refs) >= BULK_FACES or self.index.pending > 0,
                           owners=members)

    def _save_due(self) -> bool:
        """Save every SAVE_EVERY_CHANGES changes, or every len/2 for a large index: a 1M
        catch-up then writes its ~1.5 GB index a few times, not once per 20k changes."""
        return (self._unsaved + self._graph_unsaved >= max(SAVE_EVERY_CHANGES, len(self.index) // 2)
                and time.monotonic() - self._save_failed > SAVE_RETRY_S
                and not self.index.graph_loading)  # the graph's reader saves once it is in

    def _after_graph(self) -> None:
        """The saved graph is in (GraphLoad): insert what it lacks, save if due, and only
        now check the faces table (its reads would have slowed the graph's)."""
        if self.index.pending:
            self._wake_builder()
        if self._save_due() and not self.index.pending:
            self._try_save(f"after {self._unsaved} changes")
        with self._builder_lock:
            if not self._closing:
                self._scrub = Scrub.start_if_large(self.store, self.remedy)

    def _wake_builder(self) -> None:
        """Start (or wake) the thread inserting the index's pending faces into its graph."""
        with self._builder_lock:
            if self._builder is None and not self._closing:
                self._builder = threading.Thread(target=self._build_pending, name="edge-index-build", daemon=True)
                self._builder.start()
            self._build_wake.set()

    def _build_pending(self) -> None:
        """Insert pending faces chunk by chunk, between the follower's pages and searches;
        save the index when done (the graph of a bulk catch-up is the costly part)."""
        while not self._closing:
            self._build_wake.clear()
            try:
                index = self.index
                before = index.pending
                while index.insert_pending() and not self._closing:
                    pass
                self._graph_unsaved += max(0, before - index.pending)
            except Exception:  # noqa: BLE001 - the index is a cache: searches stay exact for pending faces
                log.exception("library %s: building the index's graph failed", self.dir)
                with self._builder_lock:
                    self._builder = None
                return
            if self._closing:
                return
            if self._save_due():
                self._try_save("after building its graph")
            if not self.index.pending:
                self._build_wake.wait(5.0)
                with self._builder_lock:  # _wake_builder starts a new one after this
                    if not self.index.pending and not self._build_wake.is_set():
                        self._builder = None
                        return

    def wait_index(self, timeout: float | None = None) -> bool:
        """Wait until the index holds every face in its graph (benchmarks, tests)."""
        end = None if timeout is None else time.monotonic() + timeout
        # graph_loading first: attach_graph clears it only after queuing what the graph lacks
        while self.index.graph_loading or self.index.pending:
            if end is not None and time.monotonic() > end:
                return False
            time.sleep(0.01)
        return True

    def _rebuild_index(self) -> None:
        """The whole index afresh from the store (its log was compacted past the index's seq)."""
        log.info("library %s: change log compacted past the index (seq %d): rebuilding it", self.dir, self._seq)
        last = self.store.last_seq()
        index = self._index_from_store(last)
        self.owners = self._load_owners(index)  # first: a search beside the swap finds no face without its owner
        self.index, self._seq = index, last

    def _index_from_store(self, seq: int) -> FaceIndex:
        """A new index of every face the store holds (read after its change `seq`, so a
        later replay from seq can only repeat, never miss, a change); the graph inserts
        are left to the builder thread: searches are exact until it is done."""
        index = FaceIndex(self.dim, **self._index_options)
        for refs, groups, members, vecs in self.store.iter_faces_owned():
            index.add(refs, groups, vecs, defer=True, owners=members)
        return index

    def _try_save(self, when: str) -> None:
        """Save the index; a failure (full disk) is logged, not raised: the index is a
        cache, and the change that led here is committed."""
        try:
            self.save_index()
        except (StorageError, OSError) as exc:
            self._save_failed = time.monotonic()
            log.error("library %s: saving the index %s failed (%s); the index is kept in memory", self.dir,
                      when, exc)

    def save_index(self) -> None:
        """Save the index with its catalog. Never over a damaged store's: the saved
        index may be the last good copy of its embeddings."""
        if self.fault is not None:
            log.warning("library %s is damaged: its saved index is left as it is", self.dir)
            return
        if self._graph_load is not None:
            self._graph_load.join()  # holds the shared lock until the graph is in
        with self._lock, self._file_lock(exclusive=True):
            self.index.save(self.dir / INDEX_DIR, {"seq": self._seq, "library_uuid": self.store.uuid,
                                                   "faces": len(self.index)},
                            extras={"catalog": functools.partial(write_catalog, self.store.path)})
            self._unsaved = self._graph_unsaved = 0

    def stop_builder(self) -> None:
        """Stop the graph builder after its current chunk (what is left stays pending),
        and the background check of the faces table. A graph being read is waited for
        (hnswlib's load cannot be interrupted; a save at close needs it)."""
        with self._builder_lock:
            self._closing = True
            self._build_wake.set()
            builder = self._builder
        if self._graph_load is not None:
            self._graph_load.close()
            self._graph_load.join()
        scrub = self._scrub
        if scrub is not None:
            scrub.stop()
        if builder is not None:
            builder.join()

    def _close_save_due(self) -> bool:
        unsaved = self._unsaved + self._graph_unsaved
        return bool(unsaved) and (len(self.index) <= CLOSE_SAVE_ALWAYS_FACES
                                  or unsaved >= CLOSE_SAVE_SHARE * len(self.index))

    def close(self) -> None:
        self.stop_builder()
        with self._lock:
            if self._close_save_due() and self.fault is None:
                self._try_save("at close")
            self.store.close()

    # -- writes: the store, then the index ---------------------------------------
    def _write(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        finally:
            self.sync()

    def register(self, group_ids, user_id, user_info, face: FaceRecord, mode="append"):
        return self._write(self.store.register, group_ids, user_id, user_info, face, mode)

    def register_many(self, items):
        return self._write(self.store.register_many, items)

    def delete_user(self, user_id, group_ids=None):
        return self._write(self.store.delete_user, user_id, group_ids)

    def leave_groups(self, group_ids, user_id):
        return self._write(self.store.leave_groups, group_ids, user_id)

    def copy_user(self, user_id, src_group, dst_groups, create_groups):
        return self._write(self.store.copy_user, user_id, src_group, dst_groups, create_groups)

    def delete_face(self, user_id, group_id, face_token):
        return self._write(self.store.delete_face, user_id, group_id, face_token)

    def add_group(self, group_id):
        return self._write(self.store.add_group, group_id)

    def apply_replica(self, changes, state, model, expect, reset=False):
        """A follower's page and cursor, one transaction (edge/sync/apply.py)."""
        return self._write(self.store.apply_replica, changes, state, model, expect, reset)

    def delete_group(self, group_id):
        return self._write(self.store.delete_group, group_id)

    def apply_push(self, op, origin: str):
        """A hub applying one operation a terminal pushed (docs/sync.md, Up)."""
        return self._write(self.store.apply_push, op, origin)

    # -- search -------------------------------------------------------------------
    def search(self, embedding: np.ndarray, group_ids: list[str] | None, max_users: int,
               min_similarity: float = -1.0) -> list[UserMatch]:
        """The best (group, user) pairs for a face, best first, within group_ids (all
        groups when None); a user in two searched groups may appear once per group."""
        self.sync()
        index, owners = self.index, self.owners
        groups = None
        if group_ids is not None:
            groups = owners.group_refs(group_ids)
            if not groups:
                return []
        hits = index.search(np.asarray(embedding, np.float32), faces_wanted(max_users), groups)
        hits = [h for h in hits if h[2] >= min_similarity]
        found = owners.lookup(index.owners_of([h[0] for h in hits]))
        return rank_users(hits, {h[0]: o for h, o in zip(hits, found) if o is not None}, max_users)

    def user_similarities(self, embedding: np.ndarray, user_id: str, group_ids: list[str]) -> list[UserMatch]:
        """1:1 against one user's faces (exact), per group the user is in, best first."""
        return user_similarities(self.store, embedding, user_id, group_ids)


# -- one library per app per process ---------------------------------------------
_open: dict[Path, FaceLibrary] = {}
_open_lock = threading.Lock()


def library_dir(data_dir: Path, app_id: str) -> Path:
    if not APP_ID_RE.match(str(app_id)):
        raise LibraryError("bad_app_id", str(app_id))
    return Path(data_dir) / "apps" / str(app_id)


def open_library(data_dir: Path, app_id: str, **kwargs) -> FaceLibrary:
    """The process-wide FaceLibrary of an app (Baidu: one face library per APP_ID)."""
    path = library_dir(data_dir, app_id).resolve()
    with _open_lock:
        lib = _open.get(path)
        if lib is None:
            if not _open:
                atexit.register(close_all)  # save the indexes a process leaves behind
            lib = _open[path] = FaceLibrary(path, **kwargs)
        return lib


def close_library(data_dir: Path, app_id: str, *, save: bool = True) -> None:
    """Close an app's process-wide library (saving its index unless save=False or it
    is damaged), so the next open_library reads the files afresh."""
    path = library_dir(data_dir, app_id).resolve()
    with _open_lock:
        lib = _open.pop(path, None)
    if lib is None:
        return
    if save:
        lib.close()
    else:
        lib.stop_builder()
        with lib._lock:
            lib.store.close()


def discard_library(data_dir: Path, app_id: str) -> None:
    """Forget a damaged library without saving anything of it."""
    close_library(data_dir, app_id, save=False)


def graph_loading(data_dir: Path, app_id: str) -> bool:
    """Whether this process's open library of the app is still reading its saved graph:
    it answers, exactly and slower (/health's index_loading)."""
    try:
        path = library_dir(data_dir, app_id).resolve()
    except LibraryError:
        return False
    with _open_lock:
        lib = _open.get(path)
    return lib is not None and lib.index.graph_loading


def close_all() -> None:
    with _open_lock:
        for lib in _open.values():
            try:
                lib.close()
            except Exception:  # noqa: BLE001 - at exit, one library must not stop the others
                log.exception("closing library %s", lib.dir)
        _open.clear()
