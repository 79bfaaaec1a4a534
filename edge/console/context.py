"""What the console's pages may use, handed over once by the process that serves them.

`edge serve` (role "hub") fills in the API's runtime and service; `edge run` (role
"terminal") adds its cameras' live frames, its status snapshot and its events. A page
whose part is missing (no cameras on a hub) says so instead of failing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from aiohttp import web

ROLES = ("terminal", "hub")


@dataclass
class ConsoleContext:
    config: Any                                  # edge.config.Config
    runtime: Any                                 # edge.aip.runtime.Runtime: libraries and the analyser
    role: str = "hub"                            # "terminal": `edge run`; "hub": `edge serve`
    service: Any = None                          # edge.server.app.FaceService (follower, metrics, health)
    live: Any = None                             # edge.console.live.LiveHub: newest frame + overlay per camera
    status: Callable[[], dict | None] | None = None   # the loop's status snapshot (Runner.snapshot shape)
    events: Any = None                           # edge.console.events.EventFeed: history + live stream

    @property
    def badge(self) -> str:
        """What the nav calls this server: an `edge serve` following a hub is a replica."""
        if self.role == "hub" and getattr(getattr(self.config, "sync", None), "enabled", False):
            return "replica"
        return self.role

    def __post_init__(self):
        if self.role not in ROLES:
            raise ValueError(f"console role {self.role!r} is not one of {ROLES}")


CTX_KEY = web.AppKey("console_ctx", ConsoleContext)   # request.app[CTX_KEY] in a page
