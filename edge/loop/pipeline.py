"""One camera's frames to events: detect -> track -> gate -> liveness -> embed best -> decide.

Every frame is detected; faces of tracks not yet announced get the mesh and quality
(~8 ms a face here; a decided track costs only its detection); only a track's best
frames are embedded and searched (SFace is the expensive stage on a Pi, ~70 ms), at most
one every `embed_interval_s`, until the track is decided. The embedding and search run
on an EmbedWorker (edge/loop/embed_worker.py): on its own thread in the service, so the
next frames never wait for them; inline (`threaded=False`) for the replay and tests. Their
results are decided here, on the frame thread, like every other event. A decided track
stays quiet until it leaves, so one person at the door is one event. Liveness evidence
(blinks, 3-D parallax, the HIGH-level challenge) is gathered on every gated frame; a
recognised person is only announced once liveness says live, within
`liveness_timeout_s`, otherwise the track is rejected with 223120.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from edge.analysis.gating import quality_failure
from edge.analysis.motion_liveness import MotionLiveness
from edge.errors import MESSAGES
from edge.events.event import Event
from edge.library.scores import scale_for
from edge.loop.decision import Decision, DecisionRules, Hit, decide, frame_goodness
from edge.loop.embed_worker import EmbedJob, EmbedResult, EmbedWorker
from edge.loop.open_set import OpenSetTarget, Threshold, threshold, track_draws
from edge.loop.tracker import Track, Tracker
from edge.thresholds import LOOP_MAX_POSE_DEG

log = logging.getLogger("edge.loop")

LIVENESS_CODE = 223120
# YuNet finds faces down to ~10 px at its input, but from ~20 px up its boxes and five
# points are as good for alignment as at full resolution (LFW pairs placed in 640x480
# frames: TAR@FAR 1 % 0.984 detected at 1280 or at 320). So video frames are detected at
# the scale where the smallest wanted face is this tall: 640x480 with min_face_px 40 is
# one 320x240 pass (~2 ms here) instead of two passes at 640x480 and 213x160 (~7 ms).
DETECT_FACE_PX = 20


def detect_side(shape, min_face_px: int) -> int:
    """The detector's first-pass long side for frames of `shape`."""
    long_side = max(shape[:2])
    return max(160, math.ceil(long_side * min(1.0, DETECT_FACE_PX / min_face_px)))


@dataclass(frozen=True)
class LoopRules:
    quality_control: str = "NORMAL"
    max_pose_deg: float | None = LOOP_MAX_POSE_DEG  # frames turned further are not searched; None: the level's
    liveness_control: str = "NORMAL"     # NONE, LOW/NORMAL (motion), HIGH (+ challenge)
    max_face_num: int = 5
    min_face_px: int = 40                # faces less tall are not tracked (see DETECT_FACE_PX)
    groups: tuple[str, ...] = ()         # searched groups; () = all
    decision: DecisionRules = DecisionRules()
    # The operator's false-identification target: the match score is derived from it and the
    # faces searched (edge/loop/open_set.py). None: decision.match_score, fixed.
    open_set: OpenSetTarget | None = None
    min_goodness: float = 0.2            # frames below this are not worth an embedding
    embed_interval_s: float = 0.15       # at most one embedding per track this often
    liveness_timeout_s: float = 6.0      # a recognised track must prove liveness within this
    min_track_frames: int = 3            # a track seen fewer frames ends without an event
    track_max_age_s: float = 1.0


@dataclass
class TrackState:
    searched: list[list[Hit]] = field(default_factory=list)   # per searched frame (fused: so far)
    rejections: Counter = field(default_factory=Counter)
    frames: int = 0
    last_embed: float = -1e9
    decision: Decision | None = None
    decided_at: float | None = None
    announced: bool = False
    liveness: MotionLiveness | None = None
    # what the live view shows (edge/loop/views.py); references kept, nothing computed
    face: object | None = None              # the last frame's Face of this track
    code: int | None = None                 # its quality code (None: passed)
    result: Event | None = None             # the track's event, once announced


@dataclass
class StageTimes:
    """Milliseconds per stage, summed since the last `take()` (for the status and bench)."""
    ms: Counter = field(default_factory=Counter)
    frames: int = 0

    def take(self) -> tuple[dict[str, float], int]:
        out, n = dict(self.ms), self.frames
        self.ms.clear()
        self.frames = 0
        return out, n


DRAIN_TIMEOUT_S = 10.0   # the camera stopped: how long the open tracks' jobs may still take


class Pipeline:
    """`embedder`: the Embedder the worker uses (default the analyser's); `threaded`:
    embed on the worker's own thread (the service) or inline (replay, tests)."""

    def __init__(self, analyser, library, rules: LoopRules, camera: str, embedder=None, threaded: bool = False):
        self.analyser, self.library, self.rules, self.camera = analyser, library, rules, camera
        self.tracker = Tracker(max_age_s=rules.track_max_age_s)
        self.times = StageTimes()
        self._groups = list(rules.groups) or None
        self._seq: int | None = None
        self._threshold_lock = threading.Lock()   # the status snapshot and the worker refresh it too
        embedder = embedder or getattr(analyser, "embedder", None)
        self.scale = scale_for(getattr(embedder, "name", "sface"))   # the embedder's own score table
        self.threshold: Threshold = self.refresh_threshold()
        self.worker = EmbedWorker(embedder, self._search_job,
                                  rules.decision.fused, threaded=threaded, name=f"edge-embed-{camera}")
        self._closing: dict[int, Track] = {}           # ended tracks waiting for their jobs
        self._carry: list[tuple[Event, float]] = []     # events of a frame that raised, given next time
        self._last_ts = 0.0
        self.flush_error: Exception | None = None
        self.sources: list[float] = []                  # per returned event: the capture time it rests on
        self._redecide = threading.Event()

    def refresh_threshold(self, seq: int | None = None) -> Threshold:
        """The match score for the faces searched at change `seq` (None: the store's newest);
        recounted only when the library changed. A library that outgrew the operator's
        target is logged, once per change."""
        with self._threshold_lock:
            return self._refresh_threshold(self.library.store.last_seq() if seq is None else seq)

    def _refresh_threshold(self, seq: int) -> Threshold:
        if seq != self._seq:
            faces = self.library.store.searched_face_count(self._groups)
            target = self.rules.open_set or OpenSetTarget(override=self.rules.decision.match_score)
            self.threshold = threshold(target, faces, tuple(self.rules.groups),
                                       track_draws(self.rules.decision.fused), self.scale)
            self._decision = dataclasses.replace(self.rules.decision, match_score=self.threshold.score)
            if self.threshold.outgrown:
                log.warning("camera %s: %s", self.camera, self.threshold.describe())
            elif self._seq is not None:
                log.info("camera %s: %s", self.camera, self.threshold.describe())
            self._seq = seq
        return self.threshold

    def redecide(self) -> None:
        """Decide the open tracks afresh from the next frame (any thread): a person was just
        enrolled from the live view and must not wait to leave the camera to be named. Their
        earlier event stands; each track gets one more."""
        self._redecide.set()

    def _forget_decisions(self) -> None:
        self._redecide.clear()
        for track in self.tracker.tracks.values():
            track.state.pop("loop", None)
            self.worker.cancel(track.track_id)

    def process(self, image: np.ndarray, ts: float) -> list[Event]:
        """Events this frame (or the worker's results since the last one) completes; `ts`
        is the capture time in seconds. `self.sources` then holds, per event, the capture
        time of the frame it rests on (a searched frame's, for a worker's result)."""
        t0 = time.perf_counter()
        self._last_ts = ts
        if self._redecide.is_set():
            self._forget_decisions()
        # Results finished while this frame was awaited are decided now, not after it; their
        # events wait in _carry, so that a failing frame cannot lose them.
        error = self._collect(ts, self._carry)
        out: list[tuple[Event, float]] = []
        # Boxes only (tracks need no more), largest first, so the size cut keeps the right ones.
        # No rotated retry: a mounted camera is upright, and most frames hold no face at all,
        # which is exactly when the retry would cost three more passes (docs/loop.md).
        faces = self.analyser.analyse(image, self.rules.max_face_num, 0, (),
                                      det_max_side=detect_side(image.shape, self.rules.min_face_px),
                                      rotated=False)
        faces = [f for f in faces if f.height >= self.rules.min_face_px]
        t1 = time.perf_counter()
        matched, ended = self.tracker.update(faces, ts)
        for track, face in matched:
            event = self._frame(track, face, image, ts)
            if event:
                out.append((event, ts))
        for track in ended:
            self._closing[track.track_id] = track
        error = self._collect(ts, out) or error
        t2 = time.perf_counter()
        self.times.ms["detect"] += (t1 - t0) * 1000
        self.times.ms["per-face: mesh+quality+liveness (+embed+search inline)"] += (t2 - t1) * 1000
        self.times.frames += 1
        return self._deliver(out, error)

    def poll(self) -> list[Event]:
        """Events of the worker's results when no frame came (a stalled camera)."""
        out = []
        return self._deliver(out, self._collect(self._last_ts, out))

    def warm_up(self, image: np.ndarray) -> bool:
        """Every model this loop runs, once, on `image` (a photo with a face, in a frame of
        the camera's size), before the first camera frame: onnxruntime's first run of each
        model and input shape grows its arena and costs tens of milliseconds, during which
        the camera's next frames would be skipped. No track, library or event is touched.
        False when no face was found (nothing beyond the detector was warmed)."""
        side = detect_side(image.shape, self.rules.min_face_px)
        faces = self.analyser.analyse(image, 1, 0, ("landmarks", "quality"), det_max_side=side, rotated=False)
        if not faces:
            return False
        if self.worker.embedder is not None:
            self.worker.embedder.embed_face(image, faces[0])
        return True

    def flush(self) -> list[Event]:
        """Events of every open track (the camera stopped): their jobs finish first. A
        storage error of those last searches is logged and left in `flush_error`."""
        if not self.worker.drain(DRAIN_TIMEOUT_S):
            log.error("camera %s: the embedding worker did not finish within %g s", self.camera, DRAIN_TIMEOUT_S)
        out, self._carry = self._carry, []
        for track in self.tracker.flush():
            self._closing[track.track_id] = track
        self.flush_error = self._collect(self._last_ts, out, final=True)
        if self.flush_error is not None:
            log.error("camera %s: %s", self.camera, self.flush_error)
        self.sources = [src for _, src in out]
        return [e for e, _ in out]

    def take_times(self) -> tuple[dict[str, float], int]:
        """Milliseconds per stage since the last call (the worker's too) and the frames."""
        stages, n = self.times.take()
        for k, v in self.worker.take_ms().items():
            stages[f"worker: {k}"] = v
        return stages, n

    def close(self) -> None:
        self.worker.close()

    def _deliver(self, out: list[tuple[Event, float]], error: Exception | None) -> list[Event]:
        """The events, or the worker's error raised with the events kept for the next call
        (never lost: the Runner handles the error and calls again, or flushes)."""
        out, self._carry = self._carry + out, []
        if error is not None:
            self._carry = out
            raise error
        self.sources = [src for _, src in out]
        return [e for e, _ in out]

    def _collect(self, ts: float, out: list[tuple[Event, float]], final: bool = False) -> Exception | None:
        """Decide the worker's results into `out`; then end the closed tracks none of whose
        jobs still run (all of them when `final`). Returns the first job's error."""
        error = None
        for result in self.worker.take():
            if result.error is not None:
                error = error or result.error
                continue
            tid = result.job.track_id
            track = self.tracker.tracks.get(tid) or self._closing.get(tid)
            if track is not None:
                event = self._searched(track, result, ts)
                if event:
                    out.append((event, result.job.ts))
        for tid, track in list(self._closing.items()):
            if final or not self.worker.busy(tid):
                del self._closing[tid]
                self.worker.cancel(tid)
                event = self._ended(track)
                if event:   # rests on this frame: the one that found the track gone
                    out.append((event, ts))
        return error

    # -- per track ------------------------------------------------------------------
    def _state(self, track: Track) -> TrackState:
        st = track.state.get("loop")
        if st is None:
            level = self.rules.liveness_control
            st = track.state["loop"] = TrackState(
                liveness=MotionLiveness(level) if level != "NONE" else None)
        return st

    def _frame(self, track: Track, face, image: np.ndarray, ts: float) -> Event | None:
        st = self._state(track)
        st.frames += 1
        st.face = face
        if st.announced:  # decided and announced: no mesh, quality or search until it leaves
            return None
        self.analyser.complete(image, face, {"landmarks", "quality"})
        code = st.code = quality_failure(face, self.rules.quality_control, self.rules.max_pose_deg)
        if st.liveness is not None:
            st.liveness.update(face if code is None else None, ts, image if code is None else None)
        if code:
            st.rejections[code] += 1
        elif st.decision is None and ts - st.last_embed >= self.rules.embed_interval_s:
            goodness = frame_goodness(face)
            waiting = self.worker.pending_goodness(track.track_id)
            if goodness >= self.rules.min_goodness and (waiting is None or goodness >= waiting):
                if self.worker.submit(self._job(track, face, image, ts, goodness)) in ("queued", "replaced"):
                    st.last_embed = ts
        if st.decision is None:
            return None
        return self._announce(track, st, ts, final=False)

    def _job(self, track: Track, face, image: np.ndarray, ts: float, goodness: float) -> EmbedJob:
        """The frame as the worker needs it: the embedder's chips, not the frame."""
        return EmbedJob(track.track_id, ts, self.worker.embedder.cut(image, face), goodness)

    def _searched(self, track: Track, result: EmbedResult, ts: float) -> Event | None:
        """A searched frame's hits (the worker's result) into the track's decision."""
        st = self._state(track)
        if st.decision is not None or st.announced:
            return None
        st.searched.append(result.hits)
        st.decision = decide(st.searched, self._decision)
        if st.decision is None:
            return None
        st.decided_at = result.job.ts
        self.worker.cancel(track.track_id)   # decided: its later frames are not searched
        if track.track_id in self._closing:
            return None                      # announced by _ended, in the same call
        return self._announce(track, st, ts, final=False)

    def _search_job(self, job: EmbedJob, embedding: np.ndarray, query: np.ndarray) -> list[Hit]:
        """The worker's search for a job: `query` is the track's frames fused, or this
        frame's `embedding`. Runs on the worker's thread."""
        return self._search(query)

    def _search(self, query: np.ndarray) -> list[Hit]:
        matches = self.library.search(query, self._groups, 2)
        self.refresh_threshold(self.library.seq)  # the library state this search saw; no extra query
        return [Hit(m.user_id, m.group_id, m.user_info, self.scale.score(m.similarity)) for m in matches]

    def _announce(self, track: Track, st: TrackState, ts: float, final: bool) -> Event | None:
        """The track's event once decision and liveness allow it (or it ended)."""
        d = st.decision
        verdict = st.liveness.verdict() if st.liveness is not None else None
        live = verdict is None or verdict.state == "live"
        if verdict is not None and verdict.state == "spoof":
            return self._event(track, st, "rejected", LIVENESS_CODE, verdict.reason, verdict)
        if d.kind == "unknown":
            return self._event(track, st, "unknown", 0, d.reason, verdict)
        if live:
            return self._event(track, st, "recognised", 0, d.reason, verdict)
        if final or ts - st.decided_at >= self.rules.liveness_timeout_s:
            return self._event(track, st, "rejected", LIVENESS_CODE, f"liveness not proven: {verdict.reason}",
                               verdict)
        return None

    def _ended(self, track: Track) -> Event | None:
        st = self._state(track)
        if st.announced or st.frames < self.rules.min_track_frames:
            return None
        if st.decision is not None:
            return self._announce(track, st, track.last_ts, final=True)
        if st.searched:
            best = max((h.score for hits in st.searched for h in hits), default=0.0)
            st.decision = Decision("unknown", None, best, len(st.searched), None,
                                   f"left after {len(st.searched)} searched frame(s) without a match")
            return self._announce(track, st, track.last_ts, final=True)
        if st.rejections:
            code, _ = st.rejections.most_common(1)[0]
            return self._event(track, st, "rejected", code,
                               f"no frame passed quality_control {self.rules.quality_control}",
                               st.liveness.verdict() if st.liveness is not None else None)
        return None

    def _event(self, track: Track, st: TrackState, kind: str, code: int, reason: str, verdict) -> Event:
        """The track's one event; `verdict` is the liveness verdict it was decided on."""
        st.announced = True
        self.worker.cancel(track.track_id)
        d = st.decision
        hit = d.hit if d is not None and kind == "recognised" else None
        st.result = Event(kind, camera=self.camera, track_id=track.track_id,
                     user_id=hit.user_id if hit else "", group_id=hit.group_id if hit else "",
                     user_info=hit.user_info if hit else "",
                     score=(d.score if d is not None else None), error_code=code,
                     error_msg=MESSAGES.get(code, "") if code else "", reason=reason,
                     frames=st.frames, liveness=verdict.state if verdict else "",
                     ts=time.time())
        return st.result
