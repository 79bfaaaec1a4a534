"""One camera's frames to events: detect -> track -> gate -> liveness -> embed best -> decide.

Every frame is detected; faces of tracks not yet announced get the mesh and quality
(~8 ms a face here; a decided track costs only its detection); only a track's best frames are embedded and searched (SFace is the
expensive stage on a Pi, ~70 ms), at most one every `embed_interval_s`, until the track
is decided. A decided track stays quiet until it leaves, so one person at the door is
one event. Liveness evidence (blinks, 3-D parallax, the HIGH-level challenge) is
gathered on every gated frame; a recognised person is only announced once liveness says
live, within `liveness_timeout_s`, otherwise the track is rejected with 223120.
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

from edge.aip.runtime import score
from edge.analysis.gating import quality_failure
from edge.analysis.motion_liveness import MotionLiveness
from edge.errors import MESSAGES
from edge.events.event import Event
from edge.loop.decision import Decision, DecisionRules, Hit, decide, frame_goodness, fuse
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
    embeddings: list[np.ndarray] = field(default_factory=list)
    rejections: Counter = field(default_factory=Counter)
    frames: int = 0
    last_embed: float = -1e9
    decision: Decision | None = None
    decided_at: float | None = None
    announced: bool = False
    liveness: MotionLiveness | None = None


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


class Pipeline:
    def __init__(self, analyser, library, rules: LoopRules, camera: str):
        self.analyser, self.library, self.rules, self.camera = analyser, library, rules, camera
        self.tracker = Tracker(max_age_s=rules.track_max_age_s)
        self.times = StageTimes()
        self._groups = list(rules.groups) or None
        self._seq: int | None = None
        self._threshold_lock = threading.Lock()   # the status snapshot refreshes it too
        self.threshold: Threshold = self.refresh_threshold()

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
                                       track_draws(self.rules.decision.fused))
            self._decision = dataclasses.replace(self.rules.decision, match_score=self.threshold.score)
            if self.threshold.outgrown:
                log.warning("camera %s: %s", self.camera, self.threshold.describe())
            elif self._seq is not None:
                log.info("camera %s: %s", self.camera, self.threshold.describe())
            self._seq = seq
        return self.threshold

    def process(self, image: np.ndarray, ts: float) -> list[Event]:
        """Events this frame completes; `ts` is the capture time in seconds."""
        t0 = time.perf_counter()
        # Boxes only (tracks need no more), largest first, so the size cut keeps the right ones.
        # No rotated retry: a mounted camera is upright, and most frames hold no face at all,
        # which is exactly when the retry would cost three more passes (docs/loop.md).
        faces = self.analyser.analyse(image, self.rules.max_face_num, 0, (),
                                      det_max_side=detect_side(image.shape, self.rules.min_face_px),
                                      rotated=False)
        faces = [f for f in faces if f.height >= self.rules.min_face_px]
        t1 = time.perf_counter()
        matched, ended = self.tracker.update(faces, ts)
        events = []
        for track, face in matched:
            event = self._frame(track, face, image, ts)
            if event:
                events.append(event)
        for track in ended:
            event = self._ended(track)
            if event:
                events.append(event)
        t2 = time.perf_counter()
        self.times.ms["detect"] += (t1 - t0) * 1000
        self.times.ms["per-face: mesh+quality+liveness+embed+search"] += (t2 - t1) * 1000
        self.times.frames += 1
        return events

    def flush(self) -> list[Event]:
        """Events of every open track (the camera stopped)."""
        return [e for e in (self._ended(t) for t in self.tracker.flush()) if e]

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
        if st.announced:  # decided and announced: no mesh, quality or search until it leaves
            return None
        self.analyser.complete(image, face, {"landmarks", "quality"})
        code = quality_failure(face, self.rules.quality_control, self.rules.max_pose_deg)
        if st.liveness is not None:
            st.liveness.update(face if code is None else None, ts, image if code is None else None)
        if code:
            st.rejections[code] += 1
        elif st.decision is None and ts - st.last_embed >= self.rules.embed_interval_s \
                and frame_goodness(face) >= self.rules.min_goodness:
            st.last_embed = ts
            self.analyser.complete(image, face, {"embedding"})
            st.embeddings.append(face.embedding)
            st.searched.append(self._search(fuse(st.embeddings) if self._decision.fused else face.embedding))
            st.decision = decide(st.searched, self._decision)
            if st.decision is not None:
                st.decided_at = ts
        if st.decision is None:
            return None
        return self._announce(track, st, ts, final=False)

    def _search(self, embedding: np.ndarray) -> list[Hit]:
        matches = self.library.search(embedding, self._groups, 2)
        self.refresh_threshold(self.library.seq)  # the library state this search saw; no extra query
        return [Hit(m.user_id, m.group_id, m.user_info, score(m.similarity)) for m in matches]

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
        d = st.decision
        hit = d.hit if d is not None and kind == "recognised" else None
        return Event(kind, camera=self.camera, track_id=track.track_id,
                     user_id=hit.user_id if hit else "", group_id=hit.group_id if hit else "",
                     user_info=hit.user_info if hit else "",
                     score=(d.score if d is not None else None), error_code=code,
                     error_msg=MESSAGES.get(code, "") if code else "", reason=reason,
                     frames=st.frames, liveness=verdict.state if verdict else "",
                     ts=time.time())
