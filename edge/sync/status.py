"""What a follower reports: `edge status` (run/sync.json, and the loop's status file)
and the Prometheus metrics of `edge serve` and `edge run`, per app."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

STATES = ("starting", "following", "catching_up", "snapshot", "unreachable", "refused", "stopped")


@dataclass
class SyncStatus:
    app_id: str
    hub: str
    groups: list = field(default_factory=list)       # [] = every group
    state: str = "starting"
    hub_reachable: bool | None = None
    cursor: int = 0                                    # the last hub seq applied here
    hub_head: int | None = None                        # the hub's last seq, as last seen
    lag_changes: int | None = None                     # hub_head - cursor (changes not yet here)
    caught_up_at: float | None = None                  # when this terminal last held all the hub had
    last_contact_at: float | None = None               # the hub's last answer (page or error)
    last_error: str | None = None
    last_error_at: float | None = None
    pages_applied: int = 0
    changes_applied: int = 0
    pages_refused: int = 0
    failures: int = 0                                  # unreachable or refused attempts
    model_mismatch_faces: int = 0                      # faces of another model: not stored, not searched
    model_mismatch: dict = field(default_factory=dict) # model id -> faces
    upstream_enabled: bool = False                     # sync.push: this terminal's enrolments go to the hub
    upstream_queued: int = 0                           # operations in the outbox, not yet applied by the hub
    upstream_oldest_at: float | None = None            # when the oldest of them was acknowledged
    upstream_sent: int = 0                             # applied by the hub, since start
    upstream_refused: int = 0                          # refused by the hub: dead letters (`edge sync refused`)
    upstream_last_refusal: str | None = None
    upstream_last_refusal_at: float | None = None
    upstream_last_error: str | None = None             # why the last push failed (hub down ...); None once it works

    def lag_s(self, now: float | None = None) -> float | None:
        """Seconds since this terminal last held everything the hub had (0 when it does)."""
        if self.lag_changes == 0 and self.state == "following":
            return 0.0
        return None if self.caught_up_at is None else round((now or time.time()) - self.caught_up_at, 1)

    def upstream_oldest_age_s(self, now: float | None = None) -> float | None:
        at = self.upstream_oldest_at
        return None if at is None else round(max(0.0, (now or time.time()) - at), 1)

    def as_dict(self) -> dict:
        return {**asdict(self), "lag_s": self.lag_s(), "upstream_oldest_age_s": self.upstream_oldest_age_s()}


# What changes with every long-poll or retry (times, ages, the failure count): a status
# file waits for its refresh for these alone (edge/statusfile.py).
VOLATILE = frozenset(("last_contact_at", "caught_up_at", "last_error_at", "failures", "lag_s",
                      "upstream_oldest_age_s"))


def sync_substance(status: dict) -> dict:
    """A follower's status (as_dict()) without VOLATILE: its state, reachability, errors,
    cursor and lag, the upstream queue. An idle follower's 20 s long-polls change
    nothing here, so they rewrite no status file."""
    return {k: v for k, v in status.items() if k not in VOLATILE}


class SyncCollector:
    """edge_sync_* gauges from the followers' status dicts (app_id -> as_dict())."""

    def __init__(self, statuses: Callable[[], dict[str, dict]]):
        self._statuses = statuses

    def collect(self):
        g = {name: GaugeMetricFamily(f"edge_sync_{name}", text, labels=["app_id"]) for name, text in (
            ("hub_reachable", "1 when the hub answered the last request"),
            ("cursor", "Last hub change seq applied here"),
            ("hub_head", "The hub's last change seq, as last seen"),
            ("lag_changes", "Hub changes not yet applied here"),
            ("lag_seconds", "Seconds since this terminal last held everything the hub had"),
            ("model_mismatch_faces", "Hub faces of another model: not stored, not searched"),
            ("last_error_timestamp", "Unix time of the last failure"),
            ("upstream_queued", "This terminal's enrolments waiting for the hub"),
            ("upstream_oldest_age_seconds", "Age of the oldest enrolment waiting for the hub"),
            ("upstream_refused", "This terminal's operations the hub refused (dead letters kept)"),
            ("upstream_last_refusal_timestamp", "Unix time of the hub's last refusal"))}
        state = GaugeMetricFamily("edge_sync_state", "1 for the follower's current state", labels=["app_id", "state"])
        counters = {name: CounterMetricFamily(f"edge_sync_{name}", text, labels=["app_id"]) for name, text in (
            ("pages_applied", "Pages applied"), ("changes_applied", "Hub changes applied"),
            ("pages_refused", "Pages refused whole (bad signature, gap, bad face ...)"),
            ("failures", "Failed attempts (hub unreachable, refused, page refused)"),
            ("upstream_sent", "This terminal's operations applied by the hub"))}
        for app_id, st in sorted(self._statuses().items()):
            values = {"hub_reachable": None if st["hub_reachable"] is None else float(st["hub_reachable"]),
                      "cursor": st["cursor"], "hub_head": st["hub_head"], "lag_changes": st["lag_changes"],
                      "lag_seconds": st["lag_s"], "model_mismatch_faces": st["model_mismatch_faces"],
                      "last_error_timestamp": st["last_error_at"]}
            if st.get("upstream_enabled"):
                values.update({"upstream_queued": st["upstream_queued"],
                               "upstream_oldest_age_seconds": st["upstream_oldest_age_s"] or 0.0,
                               "upstream_refused": st["upstream_refused"],
                               "upstream_last_refusal_timestamp": st["upstream_last_refusal_at"]})
            for name, value in values.items():
                if value is not None:
                    g[name].add_metric([app_id], value)
            for s in STATES:
                state.add_metric([app_id, s], 1.0 if st["state"] == s else 0.0)
            for name, family in counters.items():
                if name in st and (not name.startswith("upstream_") or st.get("upstream_enabled")):
                    family.add_metric([app_id], st[name])
        yield from g.values()
        yield state
        yield from counters.values()
