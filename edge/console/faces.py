"""The face library as the console's pages use it: the same v3 AipFace calls an
application makes (codes and rules included), in a worker thread, per APP_ID.

Browsing reads the runtime's library store (the calls getGroupUsers answers ids only,
the page shows user_info beside them). Search by user_info scans the members in pages
(SCAN_MAX at most: a library larger than that is searched by exact user id, which is
one indexed query); a move is userCopy then deleteUser, as an application does it.
"""
from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass

from edge.aip.v3 import ALL_GROUPS, AipFace

PAGE = 50            # groups or users a page
SEARCH_HITS = 100    # results a search shows at most
SCAN_MAX = 50_000    # members a user_info search reads at most
SCAN_BATCH = 1000


@dataclass(frozen=True)
class Answer:
    """One v3 answer: error_code 0 and its result, or Baidu's code and message."""
    error_code: int
    error_msg: str
    result: object = None

    @property
    def ok(self) -> bool:
        return self.error_code == 0


@dataclass(frozen=True)
class Member:
    group_id: str
    user_id: str
    user_info: str


def app_ids(ctx) -> list[str]:
    """The libraries this process serves: the API's apps, and a terminal's loop library."""
    ids = [a.app_id for a in ctx.config.apps]
    if ctx.role == "terminal" and ctx.config.run.app_id not in ids:
        ids.insert(0, ctx.config.run.app_id)
    return ids


class Faces:
    def __init__(self, ctx):
        self.ctx = ctx
        self._clients: dict[str, AipFace] = {}

    def client(self, app_id: str) -> AipFace:
        if app_id not in app_ids(self.ctx):
            raise KeyError(app_id)
        if app_id not in self._clients:
            self._clients[app_id] = AipFace(app_id, "", "", config=self.ctx.config)
        return self._clients[app_id]

    def store(self, app_id: str):
        return self.ctx.runtime.library(app_id).store

    async def run(self, fn, *args):
        """fn(*args) off the event loop: in the API's library pool when this process has one."""
        service = self.ctx.service
        pool = None if service is None else service.io_pool
        return await asyncio.get_running_loop().run_in_executor(pool, functools.partial(fn, *args))

    def call(self, app_id: str, method: str, *args) -> Answer:
        """A v3 method of the app's client, as an Answer (never raises for Baidu's errors)."""
        body = getattr(self.client(app_id), method)(*args)
        return Answer(body.get("error_code", 0), body.get("error_msg", ""), body.get("result"))

    def written(self, app_id: str) -> None:
        """After a write, on the event loop: the hub's followers' long-polls wake at once."""
        if self.ctx.service is not None:
            self.ctx.service.feed.poke(app_id)

    def replica_of(self, app_id: str) -> str | None:
        """The hub this app's library follows (a replica changes only through it), or None."""
        state = self.store(app_id).replica_state()
        return None if state is None else str(state.get("hub") or "its hub")

    # -- reads ------------------------------------------------------------------------
    def groups(self, app_id: str, start: int) -> Answer:
        return self.call(app_id, "getGroupList", {"start": start, "length": PAGE})

    def members(self, app_id: str, group_id: str, start: int) -> list[Member]:
        rows = self.store(app_id).list_group_users(group_id, start, PAGE)
        return [Member(group_id, u, info or "") for u, info in rows]

    def user(self, app_id: str, user_id: str) -> tuple[Answer, dict[str, list[dict]]]:
        """(getUser over every group, group -> faceGetlist's faces)."""
        found = self.call(app_id, "getUser", user_id, ALL_GROUPS)
        faces = {}
        if found.ok:
            for m in found.result["user_list"]:
                got = self.call(app_id, "faceGetlist", user_id, m["group_id"])
                faces[m["group_id"]] = got.result["face_list"] if got.ok else []
        return found, faces

    def search(self, app_id: str, text: str) -> tuple[list[Member], bool]:
        """Members whose user id is `text`, then those whose id or user_info contains it
        (case-insensitive); (hits, whether the scan stopped at SCAN_MAX)."""
        store, needle = self.store(app_id), text.casefold()
        hits: list[Member] = [Member(g, text, info or "") for g, info in store.user_groups(text)]
        seen = {(m.group_id, m.user_id) for m in hits}
        scanned, start = 0, 0
        while True:
            groups = store.list_groups(start, SCAN_BATCH)
            for g in groups:
                offset = 0
                while True:
                    rows = store.list_group_users(g, offset, SCAN_BATCH)
                    scanned += len(rows)
                    for u, info in rows:
                        if (g, u) not in seen and (needle in u.casefold() or needle in (info or "").casefold()):
                            hits.append(Member(g, u, info or ""))
                            seen.add((g, u))
                            if len(hits) >= SEARCH_HITS:
                                return hits, False
                    if scanned >= SCAN_MAX:
                        return hits, True
                    if len(rows) < SCAN_BATCH:
                        break
                    offset += SCAN_BATCH
            if len(groups) < SCAN_BATCH:
                return hits, False
            start += SCAN_BATCH

    # -- changes (admin) ----------------------------------------------------------------
    def add_group(self, app_id: str, group_id: str) -> Answer:
        return self.call(app_id, "groupAdd", group_id)

    def copy(self, app_id: str, user_id: str, src: str, dst: str) -> Answer:
        return self.call(app_id, "userCopy", user_id, {"src_group_id": src, "dst_group_id": dst})

    def move(self, app_id: str, user_id: str, src: str, dst: str) -> Answer:
        copied = self.copy(app_id, user_id, src, dst)
        return copied if not copied.ok else self.call(app_id, "deleteUser", src, user_id)

    def delete_user(self, app_id: str, group_id: str, user_id: str) -> Answer:
        return self.call(app_id, "deleteUser", group_id, user_id)

    def delete_face(self, app_id: str, group_id: str, user_id: str, face_token: str) -> Answer:
        return self.call(app_id, "faceDelete", user_id, group_id, face_token)
