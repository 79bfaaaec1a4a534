"""The capture loop's Prometheus metrics, read from the supervisor's latest snapshot."""
from __future__ import annotations

from typing import Callable

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from edge.sync.status import SyncCollector

STATES = ("starting", "streaming", "stalled", "reconnecting", "stopped", "failed")


class LoopCollector:
    def __init__(self, snapshot: Callable[[], dict | None]):
        self._snapshot = snapshot

    def collect(self):
        snap = self._snapshot() or {"cameras": {}}
        fps = GaugeMetricFamily("edge_loop_fps", "Frames processed per second", labels=["camera"])
        cap = GaugeMetricFamily("edge_camera_fps", "Frames captured per second", labels=["camera"])
        state = GaugeMetricFamily("edge_camera_state", "1 for the camera's current state", labels=["camera", "state"])
        reconnects = CounterMetricFamily("edge_camera_reconnects", "Reconnection attempts", labels=["camera"])
        skipped = CounterMetricFamily("edge_loop_skipped_frames", "Captured frames never processed", labels=["camera"])
        events = CounterMetricFamily("edge_loop_events", "Events by kind", labels=["camera", "kind"])
        latency = GaugeMetricFamily("edge_loop_latency_ms", "Capture to processed frame / event, ms",
                                    labels=["camera", "to", "quantile"])
        stage = GaugeMetricFamily("edge_loop_stage_ms", "Milliseconds per frame by stage", labels=["camera", "stage"])
        tracks = GaugeMetricFamily("edge_loop_open_tracks", "Faces being tracked", labels=["camera"])
        queue = GaugeMetricFamily("edge_loop_embed_queue", "Embedding jobs waiting or running", labels=["camera"])
        jobs = CounterMetricFamily("edge_loop_embed_jobs", "Embedding jobs by outcome", labels=["camera", "outcome"])
        for name, c in sorted(snap["cameras"].items()):
            fps.add_metric([name], c["processed_fps"])
            cap.add_metric([name], c["capture_fps"])
            for s in STATES:
                state.add_metric([name, s], 1.0 if c["state"] == s else 0.0)
            reconnects.add_metric([name], c["reconnects"])
            skipped.add_metric([name], c["skipped_frames"])
            for kind, n in c["events"].items():
                events.add_metric([name, kind], n)
            for to, key in (("frame", "frame_latency_ms"), ("event", "event_latency_ms")):
                for q, v in c[key].items():
                    if v is not None:
                        latency.add_metric([name, to, q], v)
            for st, ms in c["stage_ms_per_frame"].items():
                stage.add_metric([name, st], ms)
            tracks.add_metric([name], c["open_tracks"])
            worker = c.get("embed_worker") or {}
            queue.add_metric([name], worker.get("depth", 0))
            for outcome in ("submitted", "replaced", "refused_worse", "refused_full", "done", "failed", "discarded"):
                jobs.add_metric([name, outcome], worker.get(outcome, 0))
        yield from (fps, cap, state, reconnects, skipped, events, latency, stage, tracks, queue, jobs)
        yield from SyncCollector(lambda: snap.get("sync") or {}).collect()  # a terminal's follower
        sinks = snap.get("sinks") or {}
        if sinks:   # the webhook's and MQTT's outboxes (docs/mqtt.md)
            pending = GaugeMetricFamily("edge_events_pending", "Events waiting in a sink's outbox", labels=["sink"])
            dead = GaugeMetricFamily("edge_events_dead", "Events in a sink's dead-letter table", labels=["sink"])
            up = GaugeMetricFamily("edge_events_connected", "1 while the sink is connected (MQTT)", labels=["sink"])
            for name, r in sorted(sinks.items()):
                pending.add_metric([name], r.get("pending") or 0)
                dead.add_metric([name], r.get("dead") or 0)
                if "connected" in r:
                    up.add_metric([name], 1.0 if r["connected"] else 0.0)
            yield from (pending, dead, up)
        lib = snap.get("library")
        if lib:  # what the library size means at the door (docs/loop.md, "Strangers")
            yield GaugeMetricFamily("edge_library_faces_searched", "Faces the loop searches", value=lib["faces"])
            yield GaugeMetricFamily("edge_loop_match_score", "The loop's effective match score", value=lib["score"])
            yield GaugeMetricFamily("edge_loop_false_id_per_track", "Expected stranger tracks named as someone",
                                    value=lib["expected_per_track"])
            yield GaugeMetricFamily("edge_library_outgrown", "1 when the target needs more than max_match_score",
                                    value=1.0 if lib["outgrown"] else 0.0)


def serve_metrics(port: int, snapshot: Callable[[], dict | None]) -> None:
    """/metrics on 127.0.0.1:port, in a daemon thread."""
    registry = CollectorRegistry()
    registry.register(LoopCollector(snapshot))
    start_http_server(port, addr="127.0.0.1", registry=registry)
