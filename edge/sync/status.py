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

    def lag_s(self, now: float | None = None) -> float | None:
        """Seconds since this terminal last held everything the hub had (0 when it does)."""
        if self.lag_changes == 0 and self.state == "following":
            return 0.0
        return None if self.caught_up_at is None else round((now or time.time()) - self.caught_up_at, 1)

    def as_dict(self) -> dict:
        return {**asdict(self), "lag_s": self.lag_s()}


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
            ("last_error_timestamp", "Unix time of the last failure"))}
        state = GaugeMetricFamily("edge_sync_state", "1 for the follower's current state", labels=["app_id", "state"])
        counters = {name: CounterMetricFamily(f"edge_sync_{name}", text, labels=["app_id"]) for name, text in (
            ("pages_applied", "Pages applied"), ("changes_applied", "Hub changes applied"),
            ("pages_refused", "Pages refused whole (bad signature, gap, bad face ...)"),
            ("failures", "Failed attempts (hub unreachable, refused, page refused)"))}
        for app_id, st in sorted(self._statuses().items()):
            values = {"hub_reachable": None if st["hub_reachable"] is None else float(st["hub_reachable"]),
                      "cursor": st["cursor"], "hub_head": st["hub_head"], "lag_changes": st["lag_changes"],
                      "lag_seconds": st["lag_s"], "model_mismatch_faces": st["model_mismatch_faces"],
                      "last_error_timestamp": st["last_error_at"]}
            for name, value in values.items():
                if value is not None:
                    g[name].add_metric([app_id], value)
            for s in STATES:
                state.add_metric([app_id, s], 1.0 if st["state"] == s else 0.0)
            for name, family in counters.items():
                family.add_metric([app_id], st[name])
        yield from g.values()
        yield state
        yield from counters.values()
