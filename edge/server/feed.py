"""The hub's change feed (`GET /edge/sync/v1/changes`, docs/sync.md): a follower pulls
its app's change log from its cursor, in bounded pages, with a long-poll; and the
parameters of its snapshot pages (`GET /edge/sync/v1/snapshot`), for a follower the
compacted log cannot serve.

Waiting followers cost no SQLite reads: one watcher task per app (running only while
someone waits) reads the log's head every WATCH_S, or at once when this process's API
committed a write (poke), and wakes every waiter of that app together; each then reads
its own page. Writes by another process on the same library (`edge enroll` beside the
hub) are seen within WATCH_S.
"""
from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from typing import Awaitable, Callable

from edge.errors import EdgeError
from edge.sync.protocol import (BAD_GROUPS, BAD_LIMIT, BAD_PARAM, BAD_SINCE, GROUPS_MAX, LIMIT_DEFAULT, LIMIT_MAX,
                                NO_PERMISSION, SNAPSHOT_PHASES, WAIT_MAX_S)

WATCH_S = 0.25
_INT_RE = re.compile(r"^[0-9]{1,18}$")
_ID_RE = re.compile(r"^[A-Za-z0-9_]{1,128}$")
_NONCE_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
PARAMS = {"since", "limit", "wait", "groups", "app_id", "nonce", "access_token"}
SNAPSHOT_PARAMS = {"phase", "after", "limit", "groups", "app_id", "nonce", "access_token"}


@dataclass(frozen=True)
class FeedRequest:
    since: int
    limit: int
    wait_s: float
    groups: tuple[str, ...] | None    # None: every group
    nonce: str


@dataclass(frozen=True)
class SnapshotRequest:
    phase: str
    after: int
    limit: int
    groups: tuple[str, ...] | None
    nonce: str


def parse_request(query, app_id: str) -> FeedRequest:
    """The feed's query parameters, or the Baidu-style EdgeError naming the bad one."""
    _known(query, PARAMS)
    if len(query.getall("since", [])) != 1 or not _INT_RE.match(query["since"]):
        raise EdgeError(BAD_SINCE, "since: one integer >= 0 (the last seq applied, 0 at first)")
    limit, groups, nonce = _common(query, app_id)
    try:
        wait = float(query.get("wait", "0"))
    except ValueError:
        wait = -1.0
    if not 0 <= wait <= WAIT_MAX_S:  # NaN fails too
        raise EdgeError(BAD_PARAM, f"wait: seconds from 0 to {WAIT_MAX_S:g}")
    return FeedRequest(int(query["since"]), limit, wait, groups, nonce)


def parse_snapshot_request(query, app_id: str) -> SnapshotRequest:
    """A snapshot page's parameters: phase (groups, members, faces) and the rowid after which to read."""
    _known(query, SNAPSHOT_PARAMS)
    if query.get("phase") not in SNAPSHOT_PHASES:
        raise EdgeError(BAD_PARAM, f"phase: one of {', '.join(SNAPSHOT_PHASES)}")
    if len(query.getall("after", [])) != 1 or not _INT_RE.match(query["after"]):
        raise EdgeError(BAD_SINCE, "after: one integer >= 0 (0 for a phase's first page)")
    limit, groups, nonce = _common(query, app_id)
    return SnapshotRequest(query["phase"], int(query["after"]), limit, groups, nonce)


def _known(query, names: set) -> None:
    unknown = set(query) - names
    if unknown:
        raise EdgeError(BAD_PARAM, f"unknown parameter(s) {', '.join(sorted(unknown))[:100]}")


def _common(query, app_id: str) -> tuple[int, tuple[str, ...] | None, str]:
    """limit, groups, nonce; and app_id, which must be the credential's."""
    limit = query.get("limit", str(LIMIT_DEFAULT))
    if not _INT_RE.match(limit) or not 1 <= int(limit) <= LIMIT_MAX:
        raise EdgeError(BAD_LIMIT, f"limit: an integer from 1 to {LIMIT_MAX}")
    groups = None
    if "groups" in query:
        groups = tuple(query["groups"].split(","))
        if not 1 <= len(groups) <= GROUPS_MAX or any(not _ID_RE.match(g) for g in groups):
            raise EdgeError(BAD_GROUPS, f"groups: 1-{GROUPS_MAX} comma-separated group ids")
    if query.get("app_id", app_id) != app_id:
        raise EdgeError(NO_PERMISSION, "these credentials do not read that app's feed")
    nonce = query.get("nonce", "")
    if nonce and not _NONCE_RE.match(nonce):
        raise EdgeError(BAD_PARAM, "nonce: 1-64 letters, digits, '-' or '_'")
    return int(limit), groups, nonce


@dataclass(frozen=True)
class FollowerSeen:
    """A follower's last feed request: the cursor it asked from is the last hub seq it
    applied (so the hub's head minus it is the changes it still lacks)."""
    app_id: str
    api_key: str               # the credential it pulls with (a terminal's feed key)
    cursor: int
    groups: tuple[str, ...] | None
    remote: str
    at: float                  # time.time() of the request
    waiting: bool = False      # a long-poll: it holds everything up to the head it saw


class FollowerLog:
    """The followers this hub has served, newest request per (app, key): in memory only
    (a restart forgets them until their next request, within one long-poll)."""
    MAX = 10_000

    def __init__(self):
        self._seen: dict[tuple[str, str], FollowerSeen] = {}

    def record(self, app_id: str, api_key: str, req: FeedRequest, remote: str, now: float | None = None) -> None:
        key = (app_id, api_key)
        self._seen.pop(key, None)
        self._seen[key] = FollowerSeen(app_id, api_key, req.since, req.groups, remote,
                                       time.time() if now is None else now, req.wait_s > 0)
        while len(self._seen) > self.MAX:          # the least recently seen go first
            self._seen.pop(next(iter(self._seen)))

    def followers(self) -> list[FollowerSeen]:
        return sorted(self._seen.values(), key=lambda f: (f.app_id, f.api_key))


class FeedWatch:
    """Wakes every follower waiting on an app when its change log's head moves."""

    def __init__(self, read_head: Callable[[str], Awaitable[int]]):
        self._read_head = read_head
        self._heads: dict[str, int] = {}
        self._events: dict[str, asyncio.Event] = {}
        self._pokes: dict[str, asyncio.Event] = {}
        self._waiting: dict[str, int] = {}
        self._tasks: dict[str, asyncio.Task] = {}
        self.closing = False

    def close(self) -> None:
        """The server is stopping: every waiter answers now (an empty page), so a
        SIGTERM does not wait out the followers' long-polls."""
        self.closing = True
        for event in self._events.values():
            event.set()

    @property
    def waiting(self) -> int:
        return sum(self._waiting.values())

    def poke(self, app_id: str) -> None:
        """This process committed a write for app_id: look at once."""
        if app_id in self._pokes:
            self._pokes[app_id].set()

    async def wait(self, app_id: str, beyond: int, timeout: float) -> None:
        """Return once the head is known to be past `beyond`, or after timeout."""
        event = self._events.setdefault(app_id, asyncio.Event())
        self._waiting[app_id] = self._waiting.get(app_id, 0) + 1
        try:
            task = self._tasks.get(app_id)
            if task is None or task.done():
                self._pokes[app_id] = asyncio.Event()
                self._tasks[app_id] = asyncio.get_running_loop().create_task(self._watch(app_id))
            if self._heads.get(app_id, -1) > beyond or self.closing:
                return
            try:
                await asyncio.wait_for(event.wait(), timeout)
            except asyncio.TimeoutError:
                pass
        finally:
            self._waiting[app_id] -= 1

    async def _watch(self, app_id: str) -> None:
        poke = self._pokes[app_id]
        while self._waiting.get(app_id, 0) > 0:
            try:
                head = await self._read_head(app_id)
            except Exception:  # noqa: BLE001 - a broken library: the waiters time out, their reads report it
                head = self._heads.get(app_id, -1)
            if head != self._heads.get(app_id):
                self._heads[app_id] = head
                event, self._events[app_id] = self._events[app_id], asyncio.Event()
                event.set()
            try:
                await asyncio.wait_for(poke.wait(), WATCH_S)
            except asyncio.TimeoutError:
                pass
            poke.clear()


async def long_poll(req: FeedRequest, app_id: str, read_page: Callable[[], Awaitable[tuple[int, int, bytes]]],
                    watch: FeedWatch) -> bytes:
    """The page to answer: at once when it holds changes or wait is 0, else after the
    first change of the follower's groups or when wait runs out (an empty page whose
    next moves past other groups' changes)."""
    deadline = time.monotonic() + req.wait_s
    while True:
        head, count, body = await read_page()
        remaining = deadline - time.monotonic()
        if count or remaining <= 0 or watch.closing:
            return body
        await watch.wait(app_id, head, remaining)
