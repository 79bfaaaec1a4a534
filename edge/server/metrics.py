"""Prometheus metrics of the HTTP service, in a registry of its own (one per server)."""
from __future__ import annotations

from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Seconds: library calls take ~1 ms, a photo 30-300 ms on a Pi, a queue can add more.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _LibrarySize:
    """Faces and users per APP_ID, read when scraped (never stale, costs nothing between)."""

    def __init__(self, sizes: Callable[[], dict[str, tuple[int, int]]]):
        self._sizes = sizes

    def collect(self):
        faces = GaugeMetricFamily("edge_library_faces", "Faces in the face library", labels=["app_id"])
        users = GaugeMetricFamily("edge_library_users", "Users in the face library", labels=["app_id"])
        for app_id, (n_faces, n_users) in sorted(self._sizes().items()):
            faces.add_metric([app_id], n_faces)
            users.add_metric([app_id], n_users)
        yield faces
        yield users


class ServerMetrics:
    def __init__(self, library_sizes: Callable[[], dict[str, tuple[int, int]]]):
        self.registry = r = CollectorRegistry()
        self.requests = Counter("edge_http_requests", "HTTP requests by path and Baidu error code",
                                ["path", "error_code"], registry=r)
        self.latency = Histogram("edge_http_request_seconds", "Request latency by path", ["path"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.pending = Gauge("edge_inference_pending", "Requests queued for or running in an inference worker",
                             registry=r)
        self.rejected = Counter("edge_http_rejected", "Connections and messages refused below the app, by kind",
                                ["kind"], registry=r)
        self.library_pending = Gauge("edge_library_pending",
                                     "Requests queued for or running in a library worker (no inference)",
                                     registry=r)
        self.in_flight = Gauge("edge_http_in_flight", "Requests being handled", registry=r)
        r.register(_LibrarySize(library_sizes))

    def watch_feed(self, waiting: Callable[[], int], follower: Callable[[], object]) -> None:
        """The hub's waiting followers, and this terminal's follower when it has one (docs/sync.md)."""
        from edge.sync.status import SyncCollector
        Gauge("edge_sync_feed_waiting", "Followers long-polling this hub's change feed",
              registry=self.registry).set_function(waiting)
        self.registry.register(SyncCollector(
            lambda: {} if follower() is None else {follower().sync.app_id: follower().status()}))

    def observe(self, path: str, error_code: int, seconds: float) -> None:
        self.requests.labels(path, str(error_code)).inc()
        self.latency.labels(path).observe(seconds)

    def count_rejected(self, kind: str) -> None:
        """kind: an aiohttp parse error's class name or a deadline/cap (a bounded set)."""
        self.rejected.labels(kind).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
