"""The `sync:` section: a terminal follows a hub's library of one app (docs/sync.md)."""
from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass, field

_ID_RE = re.compile(r"^[A-Za-z0-9_]{1,64}$")
_GROUP_RE = re.compile(r"^[A-Za-z0-9_]{1,128}$")


@dataclass(frozen=True)
class SyncConfig:
    """Off while hub_url is empty. The credentials are the hub's: ideally one of the
    app's `feed_keys` (read the feed only, never manage the library)."""
    hub_url: str = ""                 # http(s)://hub:8300 of the hub's `edge serve`
    app_id: str = ""                  # the hub's APP_ID; the terminal's local library of the same id follows it
    api_key: str = ""
    secret_key: str = field(default="", repr=False)
    groups: str = ""                  # comma-separated groups to follow; "" = every group of the app
    wait_s: float = 20.0              # long-poll: how long the hub may hold a request with no news
    limit: int = 500                  # changes per page asked for (the hub caps count and bytes)
    timeout_s: float = 10.0           # connect / no-answer margin beyond wait_s
    backoff_min_s: float = 1.0        # after a failure: first retry delay, doubled up to backoff_max_s
    backoff_max_s: float = 30.0
    ca_file: str = ""                 # PEM CA bundle for an https hub ("" = the system's)
    verify: bool = True               # verify the hub's certificate (https); false only for a lab
    status_interval_s: float = 2.0    # run/sync.json refresh
    push: bool = False                # send this terminal's enrolments to the hub (needs a feed+push key)
    push_max_queued: int = 20000      # pending upstream operations; past it a new enrolment is refused

    @property
    def enabled(self) -> bool:
        return bool(self.hub_url)

    @property
    def group_list(self) -> tuple[str, ...]:
        return tuple(g for g in self.groups.split(",") if g)


def validate_sync(sync: SyncConfig, error) -> None:
    """Raise error(message) for an unusable `sync:` section (only when it is enabled)."""
    if not sync.enabled:
        return
    url = urllib.parse.urlsplit(sync.hub_url)
    if url.scheme not in ("http", "https") or not url.hostname or url.path not in ("", "/") or url.query:
        raise error("sync.hub_url: expected http(s)://HOST[:PORT] of the hub's edge serve")
    if not _ID_RE.match(sync.app_id):
        raise error("sync.app_id: 1-64 letters, digits or underscores")
    if not sync.api_key or not sync.secret_key:
        raise error("sync: api_key and secret_key (the hub's credentials for this app) are required")
    if any(not _GROUP_RE.match(g) for g in sync.group_list):
        raise error("sync.groups: comma-separated group ids (letters, digits, underscores)")
    if not 0 <= sync.wait_s <= 30:
        raise error("sync.wait_s: must be between 0 and 30")
    if not 1 <= sync.limit <= 5000:
        raise error("sync.limit: must be between 1 and 5000")
    if sync.timeout_s <= 0 or sync.backoff_min_s <= 0 or sync.backoff_max_s < sync.backoff_min_s \
            or sync.status_interval_s <= 0:
        raise error("sync: timeout_s, backoff_min_s, status_interval_s positive; backoff_max_s >= backoff_min_s")
    if not isinstance(sync.push, bool):
        raise error("sync.push: true or false")
    if isinstance(sync.push_max_queued, bool) or not isinstance(sync.push_max_queued, int) \
            or not 1 <= sync.push_max_queued <= 1_000_000:
        raise error("sync.push_max_queued: an integer from 1 to 1000000")
