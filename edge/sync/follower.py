"""The follower thread of a terminal: pull the hub's pages from the local cursor,
judge each whole page, apply it with its cursor in one transaction (docs/sync.md).

Local recognition never waits for it: searches read the local library, whose index
follows the local change log as it does for any write. A failure (hub unreachable,
refused credentials, a refused page, a busy disk) leaves the library and the cursor
as they were, is reported (status, metrics, a log line when it changes or once a
minute) and retried with exponential back-off; once the hub answers again the
follower catches up by itself.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from edge.config import Config
from edge.errors import EdgeError
from edge.library.store import LibraryError
from edge.sqlite import StorageError
from edge.statusfile import StatusFile
from edge.sync.apply import PageRefused, SnapshotNeeded, validate_page, validate_snapshot
from edge.sync.feed import FeedClient, HubRefused, HubUnreachable
from edge.sync.status import SyncStatus, sync_substance

log = logging.getLogger("edge.sync")

LOG_REPEAT_S = 60.0
EMBEDDING_DIM = 128   # the terminal's embedder (SFace); a page of another dimension is refused


class NotAReplica(Exception):
    """The local library cannot follow this hub as it is (operator action needed)."""


class Follower:
    def __init__(self, config: Config, library: Callable, model_id: str, dim: int = EMBEDDING_DIM,
                 status_file: bool = True):
        self.sync = sync = config.sync
        self.client = FeedClient(sync, config.path(sync.ca_file) if sync.ca_file else None)
        # <runtime_dir>/sync.json, rewritten when the substance changes or every 30 s; none
        # in `edge run`, whose status file carries the follower's status
        self.status_file = StatusFile(config.runtime_path / "sync.json", sync.status_interval_s) \
            if status_file else None
        self._library, self.model_id, self.dim = library, model_id, dim
        self.st = SyncStatus(sync.app_id, sync.hub_url, list(sync.group_list))
        self._groups = sorted(set(sync.group_list))   # what the replica holds, in the replica state
        self._stop = threading.Event()
        self._apply_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._logged: tuple[str | None, float] = (None, float("-inf"))

    # -- one attempt --------------------------------------------------------------------
    def step(self, wait_s: float | None = None) -> str:
        """Fetch, judge and apply one page: "applied", "idle" (nothing new) or "failed"."""
        wait_s = self.sync.wait_s if wait_s is None else wait_s
        try:
            lib = self._library()
            state = self._replica_state(lib)
            if state and state.get("groups") != self._groups:  # other groups followed now: rebuild for them
                log.warning("sync %s: sync.groups changed from %s to %s: taking a snapshot", self.sync.app_id,
                            state.get("groups"), self._groups)
                return self._snapshot_step(lib, state, start=True)
            if state and "snapshot" in state:  # a snapshot under way (resumed after a restart)
                return self._snapshot_step(lib, state, start=False)
            return self._feed_step(lib, state, wait_s)
        except HubUnreachable as exc:
            return self._failed("unreachable", f"hub unreachable: {exc}", reachable=False)
        except HubRefused as exc:
            return self._failed("refused", f"hub refused the request: {exc}")
        except PageRefused as exc:
            self.st.pages_refused += 1
            return self._failed("refused", f"page refused: {exc}")
        except NotAReplica as exc:
            return self._failed("refused", str(exc), reachable=self.st.hub_reachable)
        except (StorageError, EdgeError, LibraryError) as exc:
            return self._failed("refused", f"local library: {exc}", reachable=self.st.hub_reachable)

    def _feed_step(self, lib, state: dict | None, wait_s: float) -> str:
        cursor = state["seq"] if state else 0
        fetched = self.client.fetch(cursor, wait_s)
        if self._stop.is_set():  # stopping while the long-poll was out: leave the library alone
            return "idle"
        self.st.hub_reachable, self.st.last_contact_at = True, time.time()
        try:
            page = validate_page(fetched.body, signature=fetched.signature, nonce=fetched.nonce,
                                 secret_key=self.sync.secret_key, app_id=self.sync.app_id, cursor=cursor,
                                 hub_uuid=state["hub_uuid"] if state else None, groups=self.sync.group_list,
                                 dim=self.dim, model_id=self.model_id)
        except SnapshotNeeded as exc:
            log.warning("sync %s: %s (cursor %d)", self.sync.app_id, exc, cursor)
            return self._snapshot_step(lib, state, start=True)
        new_state = {"hub": self.sync.hub_url, "app_id": self.sync.app_id, "hub_uuid": page.library_uuid,
                     "seq": page.next, "groups": self._groups}
        done = None
        if page.changes or new_state != state:   # an idle long-poll commits nothing (a flash write and an fsync)
            with self._apply_lock:
                if self._stop.is_set():
                    return "idle"
                done = lib.apply_replica(page.changes, new_state, self.model_id, state)
        st = self.st
        st.cursor, st.hub_head, st.lag_changes = page.next, page.head, page.head - page.next
        st.state = "following" if st.lag_changes == 0 else "catching_up"
        if st.lag_changes == 0:
            st.caught_up_at = time.time()
        if page.changes:
            st.pages_applied += 1
            st.changes_applied += done.changes
        if (done is not None and done.faces_skipped) or st.model_mismatch_faces:
            self._count_mismatch(lib)
        if self._logged[0] is not None:
            log.info("sync %s: following %s again at seq %d", self.sync.app_id, self.sync.hub_url, st.cursor)
            self._logged = (None, float("-inf"))
        return "applied" if page.changes else "idle"

    def _snapshot_step(self, lib, state: dict | None, start: bool) -> str:
        """One snapshot page. The first one empties the replica in its transaction; each
        page's state says where the next starts, so a restart resumes; after the last,
        the feed resumes from the first page's head and replays what changed meanwhile."""
        snap = None if start else state["snapshot"]
        phase, after = ("groups", 0) if start else (snap["phase"], snap["after"])
        fetched = self.client.fetch_snapshot(phase, after)
        if self._stop.is_set():
            return "idle"
        self.st.hub_reachable, self.st.last_contact_at = True, time.time()
        page = validate_snapshot(fetched.body, signature=fetched.signature, nonce=fetched.nonce,
                                 secret_key=self.sync.secret_key, app_id=self.sync.app_id, phase=phase, after=after,
                                 hub_uuid=None, groups=self.sync.group_list, dim=self.dim,
                                 model_id=self.model_id)
        if not start and page.library_uuid != state["hub_uuid"]:  # the hub's library changed mid-snapshot
            log.warning("sync %s: the hub's library changed during the snapshot: starting it again", self.sync.app_id)
            return self._snapshot_step(lib, state, start=True)
        seq = page.seq if start else snap["seq"]
        new_state = {"hub": self.sync.hub_url, "app_id": self.sync.app_id, "hub_uuid": page.library_uuid,
                     "seq": seq, "groups": self._groups}
        if page.next is not None:
            new_state["snapshot"] = {"seq": seq, "phase": page.next[0], "after": page.next[1]}
        with self._apply_lock:
            if self._stop.is_set():
                return "idle"
            done = lib.apply_replica(page.changes, new_state, self.model_id, state, reset=start)
        st = self.st
        st.state, st.cursor = ("snapshot" if page.next is not None else "catching_up"), seq
        st.pages_applied += 1
        st.changes_applied += done.changes
        self._count_mismatch(lib)
        return "applied"

    def _replica_state(self, lib) -> dict | None:
        state = lib.store.replica_state()
        if state is None and not lib.store.is_empty():
            raise NotAReplica(f"the local library of app {self.sync.app_id} holds data of its own, and a terminal's "
                              f"library is a replica of its hub: move apps/{self.sync.app_id}/ away to follow "
                              f"{self.sync.hub_url} (docs/sync.md)")
        if state is not None:
            if self.st.cursor == 0:
                self.st.cursor = state["seq"]
                self._count_mismatch(lib)
        return state

    def _count_mismatch(self, lib) -> None:
        self.st.model_mismatch = lib.store.model_mismatch_count()
        self.st.model_mismatch_faces = sum(self.st.model_mismatch.values())

    def _failed(self, state: str, message: str, reachable: bool | None = True) -> str:
        st, now = self.st, time.time()
        st.state, st.hub_reachable, st.last_error, st.last_error_at = state, reachable, message[:500], now
        st.failures += 1
        if reachable:
            st.last_contact_at = now
        last, at = self._logged
        if message != last or time.monotonic() - at >= LOG_REPEAT_S:
            log.warning("sync %s: %s", self.sync.app_id, message)
            self._logged = (message, time.monotonic())
        return "failed"

    # -- the threads ----------------------------------------------------------------------
    def status(self) -> dict:
        return self.st.as_dict()

    def write_status(self, force: bool = True) -> None:
        """sync.json now (force), or when its substance changed or its refresh is due."""
        if self.status_file is None:
            return
        status = self.status()
        snap, substance = {"time": time.time(), "sync": {self.sync.app_id: status}}, sync_substance(status)
        if force:
            self.status_file.write(snap, substance)
        else:
            self.status_file.offer(snap, substance)

    def _follow(self) -> None:
        backoff = self.sync.backoff_min_s
        while not self._stop.is_set():
            try:
                outcome = self.step()
            except Exception as exc:  # noqa: BLE001 - the follower must outlive a bug; it is reported
                log.exception("sync %s: unexpected error", self.sync.app_id)
                outcome = self._failed("refused", f"internal error: {exc!r}"[:300])
            if outcome == "failed":
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.sync.backoff_max_s)
            else:
                backoff = self.sync.backoff_min_s

    def _report(self) -> None:
        while not self._stop.wait(self.sync.status_interval_s):
            self.write_status(force=False)

    def start(self) -> "Follower":
        log.info("sync %s: following %s%s", self.sync.app_id, self.sync.hub_url,
                 f" (groups {', '.join(self.sync.group_list)})" if self.sync.group_list else "")
        self.write_status()
        for target, name in ((self._follow, "edge-sync"), (self._report, "edge-sync-status")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """No page is applied after this returns (one being applied completes)."""
        self._stop.set()
        with self._apply_lock:
            self.st.state = "stopped"
        for thread in self._threads:
            thread.join(1.0)
        self.write_status()


def start_follower(config: Config, runtime, status_file: bool = True) -> Follower:
    """The terminal's follower for `sync:` on this process's runtime (edge serve, edge run),
    with the pusher of its upstream outbox beside it when `sync.push` is on; status_file:
    it writes sync.json (edge serve) or not (edge run: the loop's status file has it)."""
    app_id = config.sync.app_id
    follower = Follower(config, lambda: runtime.library(app_id), runtime.model_id, runtime.dim,
                        status_file=status_file)
    outbox = runtime.upstream(app_id)
    if outbox is not None:
        from edge.sync.pusher import Pusher
        sync = config.sync
        pusher = Pusher(follower.client, outbox, follower.st, sync.secret_key, runtime.push_wake, follower._stop,
                        sync.backoff_min_s, sync.backoff_max_s)
        follower.start()
        follower._threads.append(pusher.start())
        return follower
    return follower.start()
