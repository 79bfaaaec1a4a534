"""`edge run`: cameras -> pipelines -> events, as a long-running service.

One processing thread per camera takes that camera's newest frame (older ones are
skipped, never queued: a slow CPU lowers the frame rate, not the freshness) and runs
its Pipeline; events go to the EventBus (log, webhook outbox, relay, attendance). The
main thread supervises: it writes the status file, feeds systemd's watchdog only while
every processing thread is making progress, and on SIGTERM stops the cameras, emits
the events of tracks still open and closes the sinks (the outbox is flushed).
"""
from __future__ import annotations

import collections
import json
import logging
import os
import shlex
import signal
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from edge.aip.runtime import get_runtime
from edge.camera import CameraSet, CameraState, SourceConfig
from edge.camera.auto import auto_camera
from edge.config import Config
from edge.events import (AttendanceSink, AttendanceStore, CommandRelay, EventBus, GpiozeroRelay, LogSink,
                         RelaySink, WebhookSink)
from edge.events.event import last_decision
from edge.console.events import EventFeed
from edge.events.history import EventHistory, HistorySink
from edge.loop import systemd
from edge.loop.decision import DecisionRules
from edge.imaging import decode_image
from edge.imaging.frame import in_frame
from edge.library.scores import scale_for
from edge.loop.open_set import OpenSetTarget, Threshold, threshold, track_draws
from edge.loop.pipeline import LoopRules, Pipeline
from edge.loop.views import overlay
from edge.models.manifest import sample_path
from edge.sqlite import StorageError, open_or_set_aside
from edge.statusfile import StatusFile
from edge.sync.status import sync_substance

log = logging.getLogger("edge.loop")

STALE_WORKER_S = 20.0   # a processing thread silent this long stops the watchdog feed
STORAGE_LOG_EVERY_S = 60.0


@dataclass
class CameraStatus:
    """What one processing thread reports (read by the supervisor, status and metrics)."""
    frames: int = 0
    skipped: int = 0                   # frames the camera captured that were never processed
    events: collections.Counter = field(default_factory=collections.Counter)
    heartbeat: float = field(default_factory=time.monotonic)
    frame_latency: collections.deque = field(default_factory=lambda: collections.deque(maxlen=300))
    event_latency: collections.deque = field(default_factory=lambda: collections.deque(maxlen=300))
    fps_times: collections.deque = field(default_factory=lambda: collections.deque(maxlen=120))
    stage_ms: dict = field(default_factory=dict)
    errors: collections.deque = field(default_factory=lambda: collections.deque(maxlen=10))
    last_event: dict | None = None     # the last decision (edge.events.event.last_decision), for state topics

    def fps(self) -> float:
        t = self.fps_times
        return (len(t) - 1) / (t[-1] - t[0]) if len(t) > 2 and t[-1] > t[0] else 0.0


def _pct(values, q: float) -> float | None:
    return round(float(np.percentile(list(values), q)) * 1000, 1) if values else None


def loop_rules(config: Config) -> LoopRules:
    run = config.run
    return LoopRules(
        quality_control=run.quality_control, max_pose_deg=run.max_pose_deg, liveness_control=run.liveness_control,
        max_face_num=run.max_face_num, min_face_px=run.min_face_px, groups=tuple(g for g in run.groups.split(",") if g),
        decision=DecisionRules(run.match_score or 80.0, run.margin, run.min_votes, run.max_frames,
                               fused=run.decide_by == "fused"),
        open_set=OpenSetTarget(false_id_per_track=run.false_id_per_track, false_id_per_hour=run.false_id_per_hour,
                               strangers_per_hour=run.strangers_per_hour, max_score=run.max_match_score,
                               override=run.match_score),
        liveness_timeout_s=run.liveness_timeout_s)


def library_threshold(config: Config, library, app_id: str) -> Threshold:
    """What the loop's threshold is, and means, for this library now (the enrolment
    report; the loop itself keeps its Pipeline's): run.groups for the loop's app."""
    rules = loop_rules(config)
    groups = rules.groups if app_id == config.run.app_id else ()
    faces = library.store.searched_face_count(list(groups) or None)
    return threshold(rules.open_set, faces, groups, track_draws(rules.decision.fused),
                     scale_for(config.models.embedder))


def build_bus(config: Config, feed: EventFeed | None = None) -> EventBus:
    """The sinks the config asks for; the relay first (someone is waiting at the door).
    `feed` (event_feed): the console's live stream, after the event history it searches."""
    ev, data = config.events, config.path(config.data_dir)
    sinks = []
    groups = [g for g in ev.relay_groups.split(",") if g] or None
    relay_args = dict(allowed_groups=groups, pulse_s=ev.relay_pulse_s, debounce_s=ev.debounce_s,
                      anti_passback_s=ev.anti_passback_s)
    if ev.relay_command:
        sinks.append(RelaySink(CommandRelay(shlex.split(ev.relay_command)), **relay_args))
    elif ev.relay_gpio_pin:
        sinks.append(RelaySink(GpiozeroRelay({"door": ev.relay_gpio_pin}), **relay_args))
    sinks.append(LogSink(config.path(ev.log_file) if ev.log_file else None))
    # A damaged outbox or attendance file is set aside (kept) and a new one started:
    # the door must not stay shut for want of a webhook queue.
    if ev.webhook_url:
        outbox = data / "run" / "outbox.db"
        sinks.append(open_or_set_aside(
            lambda: WebhookSink(ev.webhook_url, outbox, secret=ev.webhook_secret or None), outbox, "webhook outbox"))
    if config.mqtt.enabled:
        from edge.events.mqtt import MqttSink   # paho only where MQTT is configured
        mqtt_outbox = data / "run" / "mqtt-outbox.db"
        sinks.append(open_or_set_aside(lambda: MqttSink(config.mqtt, mqtt_outbox), mqtt_outbox, "mqtt outbox"))
    if ev.attendance:
        records = data / "attendance.db"
        sinks.append(AttendanceSink(open_or_set_aside(
            lambda: AttendanceStore(records, ev.attendance_min_interval_s), records, "attendance")))
    if feed is not None:
        if feed.history is not None:
            sinks.append(HistorySink(feed.history))
        sinks.append(feed)
    return EventBus(sinks)


def event_feed(config: Config) -> EventFeed:
    """The console's events: a ring of the recent ones and, unless events.history is off,
    the searchable history in <data_dir>/run/events.db (set aside and restarted when
    damaged, like the outbox)."""
    ev = config.events
    history = None
    if ev.history:
        path = config.path(config.data_dir) / "run" / "events.db"
        history = open_or_set_aside(lambda: EventHistory(path, ev.history_max_rows, ev.history_max_days),
                                    path, "event history")
    return EventFeed(history)


def worker_embedder(config: Config, analyser):
    """The embedder of the embedding workers: the analyser's own (run.embed_threads 0),
    or one with sessions of their own with that many intra-op threads, so that it does
    not take both cores from the detector running beside it (docs/loop.md, "The
    embedding worker")."""
    n = config.run.embed_threads
    if n <= 0:
        return analyser.embedder
    from edge.analysis import embedders
    from edge.models.manifest import runtime_files
    return embedders.build(config.models.embedder, runtime_files(config.models_dir, config.models.precision), n)


class Runner:
    @staticmethod
    def _auto_camera() -> SourceConfig:
        """No `cameras:` configured: the Pi camera when one is attached, else the demo."""
        choice = auto_camera()
        log.info("no camera configured: %s camera (%s)", choice.source.kind, choice.reason)
        return choice.source

    def __init__(self, config: Config):
        self.config = config
        rt = get_runtime(config)
        analyser, library = rt.analyser, rt.library(config.run.app_id)
        cams = config.cameras or (self._auto_camera(),)
        self.cameras = CameraSet(cams, models_dir=config.models_dir)
        rules = loop_rules(config)
        threaded = config.run.embed_worker == "thread"
        embedder = worker_embedder(config, analyser) if threaded else None
        self.pipelines = {c.name: Pipeline(analyser, library, rules, c.name, embedder=embedder, threaded=threaded)
                          for c in cams}
        self.status = {c.name: CameraStatus() for c in cams}
        self.event_feed = event_feed(config)     # the console's live stream and history (ConsoleContext.events)
        self.bus = build_bus(config, self.event_feed)
        self.stop_event = threading.Event()
        # rewritten when what an operator acts on changes, else every 30 s (edge/statusfile.py)
        self.status_file = StatusFile(config.runtime_path / "status.json", config.run.status_interval_s)
        self.started = time.time()
        self.last_snapshot: dict | None = None
        self.fault: StorageError | None = None   # the library broke while running
        self.follower = None                     # the hub's follower when `sync:` is set (docs/sync.md)
        self._storage_logged = float("-inf")
        self.live = None                         # edge.console.live.LiveHub when the console is hosted
        self.console = None                      # edge.console.hosting.ConsoleHost (run.serve)

    def _warm_up(self) -> None:
        """The models' first runs on the demo photo in a 640x480 frame, before any camera
        starts (Pipeline.warm_up); every pipeline shares the analyser and the worker's SFace
        session, so once. Without the demo photo (not fetched) the first frames pay instead."""
        try:
            photo = decode_image(sample_path("demo", self.config.models_dir).read_bytes())
        except (OSError, ValueError, KeyError) as exc:
            log.info("edge run: no warm-up (%s)", exc)
            return
        next(iter(self.pipelines.values())).warm_up(in_frame(photo))

    # -- processing, one thread per camera -----------------------------------------------
    def _work(self, name: str) -> None:
        camera, pipeline, st = self.cameras[name], self.pipelines[name], self.status[name]
        seq = 0
        while not self.stop_event.is_set():
            st.heartbeat = time.monotonic()
            frame = camera.latest(after_seq=seq, timeout=0.5)
            if frame is None:
                if not self._handle(name, pipeline, pipeline.poll, st, what="poll"):  # the worker's results meanwhile
                    break
                if camera.state in (CameraState.STOPPED, CameraState.FAILED):
                    if camera.state is CameraState.STOPPED:  # a finite source (file, folder) ended
                        log.info("camera %s: source ended", name)
                        break
                    self.stop_event.wait(1.0)  # failed for good (see its last_error); others go on
                continue
            if seq and frame.seq > seq + 1:
                st.skipped += frame.seq - seq - 1
            seq = frame.seq
            if not self._handle(name, pipeline, lambda: pipeline.process(frame.image, frame.timestamp), st,
                                frame.timestamp, f"frame {frame.seq}"):
                break
            live = self.live
            if live is not None and live.wants(name):   # a dict lookup while nobody watches
                live.offer(name, frame.image, frame.timestamp,
                           lambda: overlay(pipeline, frame.image.shape, frame.timestamp))
        for event in pipeline.flush():
            self._publish(event, st)
        if isinstance(pipeline.flush_error, StorageError):
            self._storage_failed(name, pipeline.flush_error, st)

    def _handle(self, name: str, pipeline: Pipeline, call, st: CameraStatus, captured: float | None = None,
                what: str = "frame") -> bool:
        """Run a frame (`captured`: its capture time) or a poll of the embedding worker and
        publish its events; False when the loop must stop (the library is unusable)."""
        try:
            events = call()
        except StorageError as exc:
            return not self._storage_failed(name, exc, st)
        except Exception as exc:  # noqa: BLE001 - one bad frame must not stop the gate
            log.exception("camera %s: %s failed", name, what)
            st.errors.append(f"{time.strftime('%H:%M:%S')} {exc!r}")
            return True
        done = time.monotonic()
        if captured is not None:
            st.frames += 1
            st.fps_times.append(done)
            st.frame_latency.append(done - captured)
        for event, source in zip(events, pipeline.sources):
            self._publish(event, st)
            st.event_latency.append(time.monotonic() - source)  # from the frame the event rests on
        return True

    def _publish(self, event, st: CameraStatus) -> None:
        self.bus.publish(event)
        st.events[event.kind] += 1
        st.last_event = last_decision(event)

    def _storage_failed(self, name: str, exc: StorageError, st: CameraStatus) -> bool:
        """A damaged library stops the loop (True): exit 1, and systemd's restart then
        refuses with the file and the remedy. A full or busy disk is logged once a
        minute and the next frame tries again."""
        st.errors.append(f"{time.strftime('%H:%M:%S')} {exc}")
        if exc.sticky:
            log.error("camera %s: the face library is unusable, stopping: %s", name, exc)
            self.fault = exc
            self.stop_event.set()
            return True
        if time.monotonic() - self._storage_logged >= STORAGE_LOG_EVERY_S:
            self._storage_logged = time.monotonic()
            log.error("camera %s: %s", name, exc)
        return False

    # -- supervision --------------------------------------------------------------------
    def snapshot(self) -> dict:
        cams = self.cameras.stats()
        out = {"time": time.time(), "uptime_s": round(time.time() - self.started, 1), "pid": os.getpid(),
               "app_id": self.config.run.app_id, "cameras": {}}
        if self.pipelines:  # every camera searches the same library and groups
            pipeline = next(iter(self.pipelines.values()))
            try:
                out["library"] = pipeline.refresh_threshold().as_dict()
            except StorageError:  # the library broke (self.fault): report the last threshold known
                out["library"] = pipeline.threshold.as_dict()
        if self.follower is not None:
            out["sync"] = {self.follower.sync.app_id: self.follower.status()}
        for name, st in self.status.items():
            stage, n = self.pipelines[name].take_times()
            if n:
                st.stage_ms = {k: round(v / n, 2) for k, v in stage.items()}
            c = cams[name]
            out["cameras"][name] = {
                "state": c.state.value, "capture_fps": round(c.fps, 1), "reconnects": c.reconnects,
                "last_error": c.last_error, "processed_fps": round(st.fps(), 1), "frames": st.frames,
                "skipped_frames": st.skipped, "events": dict(st.events),
                "frame_latency_ms": {"p50": _pct(st.frame_latency, 50), "p95": _pct(st.frame_latency, 95)},
                "event_latency_ms": {"p50": _pct(st.event_latency, 50), "p95": _pct(st.event_latency, 95)},
                "stage_ms_per_frame": st.stage_ms, "recent_errors": list(st.errors),
                "embed_worker": self.pipelines[name].worker.snapshot(),
                "open_tracks": len(self.pipelines[name].tracker.tracks), "last_event": st.last_event}
        sinks = self.bus.reports()   # queues and connections: the webhook's and MQTT's outboxes
        if sinks:
            out["sinks"] = sinks
        return out

    @staticmethod
    def status_substance(snap: dict) -> object:
        """What of a snapshot makes the status file worth a flash write before its
        refresh: camera states and errors, the kinds of events seen (their counts, like
        frame counts and rates, wait for the refresh: at a busy door every event would
        be a write), the library's threshold, the follower's state (sync_substance)."""
        keep = ("state", "reconnects", "last_error", "recent_errors")
        return (json.dumps(snap.get("library"), sort_keys=True),
                {n: r.get("connected") for n, r in (snap.get("sinks") or {}).items()},
                {app: sync_substance(st) for app, st in (snap.get("sync") or {}).items()},
                {n: ({k: c.get(k) for k in keep}, sorted(c.get("events") or ())) for n, c in snap["cameras"].items()})

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop_event.set())
        if self.config.run.serve:   # before the warm-up: the address is printed at once
            from edge.console.hosting import start_console
            self.console = start_console(self)
        self._warm_up()
        self.cameras.start()
        if self.config.sync.enabled:
            from edge.sync.follower import start_follower
            if self.config.sync.app_id != self.config.run.app_id:
                log.warning("edge run: sync follows app %s, the loop searches app %s", self.config.sync.app_id,
                            self.config.run.app_id)
            # its status rides in the loop's status file: no run/sync.json beside it
            self.follower = start_follower(self.config, get_runtime(self.config), status_file=False)
        workers = [threading.Thread(target=self._work, args=(name,), name=f"edge-loop-{name}", daemon=True)
                   for name in self.pipelines]
        for w in workers:
            w.start()
        if self.config.run.metrics_port:
            from edge.loop.metrics import serve_metrics
            serve_metrics(self.config.run.metrics_port, lambda: self.last_snapshot)
        systemd.notify("READY=1")
        log.info("edge run: %d camera(s) %s, library %s, quality %s, liveness %s", len(workers),
                 ", ".join(self.pipelines), self.config.run.app_id, self.config.run.quality_control,
                 self.config.run.liveness_control)
        for pipeline in list(self.pipelines.values())[:1]:
            th = pipeline.threshold
            (log.warning if th.outgrown else log.info)("edge run: %s", th.describe())
        interval = self.config.run.status_interval_s
        deadline = time.monotonic() + self.config.run.duration_s if self.config.run.duration_s > 0 else None
        next_status = time.monotonic()
        # Wake at least every second for the watchdog; the metrics snapshot is refreshed
        # every status_interval_s, the status file (flash writes on a Pi) when its substance
        # changed or its refresh is due.
        while not self.stop_event.wait(min(interval, 1.0)):
            if time.monotonic() >= next_status:
                next_status = time.monotonic() + interval
                snap = self.last_snapshot = self.snapshot()
                self.status_file.offer(snap, self.status_substance(snap))
                self.bus.offer_status(snap)   # MQTT's retained camera state
            alive = all(time.monotonic() - st.heartbeat < STALE_WORKER_S for st in self.status.values()) and \
                all(p.worker.stuck_for() < STALE_WORKER_S for p in self.pipelines.values())
            if alive:  # a stuck processing thread or search starves the watchdog: systemd restarts us
                systemd.notify("WATCHDOG=1\nSTATUS=" + "; ".join(
                    f"{n}: {c['state']} {c['processed_fps']} fps"
                    for n, c in self.last_snapshot["cameras"].items()))
            if (deadline and time.monotonic() >= deadline) or not any(w.is_alive() for w in workers):
                self.stop_event.set()  # time is up, or every source has ended
        systemd.notify("STOPPING=1")
        log.info("edge run: stopping")
        for w in workers:
            w.join(10)
        for pipeline in self.pipelines.values():
            pipeline.close()
        self.cameras.stop()
        if self.follower is not None:
            self.follower.stop()
        if self.console is not None:
            self.console.stop()
        final = self.snapshot()
        self.status_file.write(final)
        self.bus.offer_status(final)   # the cameras' last state (stopped) before MQTT says offline
        self.bus.close()
        return 1 if self.fault else 0
