"""Where live evidence is lost: the loop's own tracking and motion liveness, traced per track.

`Tracer` is the real Pipeline (detector, tracker, quality gate, one MotionLiveness per
track, fed exactly as the loop feeds it) with one difference: no track is ever decided
(an impossible match rule, as edge.loop.replay.Recorder), so liveness keeps gathering
over the whole track instead of stopping when the loop announces an unknown face. For
each analysed frame it records the face height, pose, eye aspect ratio, quality code,
the single-image liveness score and the track's motion verdict at that frame; nothing
it records feeds back into the loop. `loop_events` runs the unmodified loop (empty
library) and returns its events, to compare with what the loop really announces.

`diagnose` names, per live track not judged live, where the evidence was lost. The
cut-offs it uses (`SHORT_S`, `SMALL_IOD_PX`) are diagnostic labels, not decisions.
"""
from __future__ import annotations

import collections
import dataclasses
import random
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import cv2
import numpy as np

from edge.analysis import motion_liveness as ml
from edge.analysis.liveness import liveness_score
from edge.imaging import decode_image
from edge.loop.decision import DecisionRules
from edge.loop.pipeline import LoopRules, Pipeline

SHORT_S = 1.0          # a track shorter than this is "too short" (label only)
SMALL_IOD_PX = 20.0    # native inter-ocular distance below this: "too small" (face_view upsamples to 56)
PLANAR_GAIN = 0.15     # a pair with at most this gain "reads planar" (the label of the pair table)
NUAA_FPS = 20.0        # NUAA picNo -> seconds (only spacing matters)
NUAA_MAX_AGE_S = 10.0  # NUAA frames are sampled seconds apart: the tracker must bridge them

NEVER_DECIDE = DecisionRules(match_score=100.0, margin=0.0, min_votes=10 ** 6, max_frames=10 ** 6, fused=False)


@dataclass
class FrameTrace:
    ts: float
    height: float            # face box height, px
    iod: float               # mesh inter-ocular distance, px (nan: no mesh)
    yaw: float
    pitch: float
    ear: float               # mean eye aspect ratio (nan: no mesh)
    code: int | None         # quality failure (None: passed, fed to liveness with the image)
    single: float            # single-image liveness score (edge.analysis.liveness)
    state: str               # motion verdict after this frame
    max_predicted: float     # the newest kept view's largest predicted parallax vs the others (IOD)


@dataclass
class TrackTrace:
    source: str
    track_id: int
    live: bool
    frames: list[FrameTrace] = field(default_factory=list)
    verdict: ml.MotionVerdict | None = None
    pairs: list = field(default_factory=list)
    blinks: int = 0
    ear_dip: float = float("nan")     # lowest EAR / open-eye baseline over steady frames
    dip_run: int = 0                  # longest run of steady frames below BLINK_OPEN x baseline
    all_pairs: list = field(default_factory=list)   # (Parallax, native IOD px) of every pair ever made
    spoof_pairs: list = field(default_factory=list)  # the evidence when the verdict first read spoof
    # Extra accumulators (Tracer(levels=...)): per level, the state after every frame,
    # the last verdict, the reason at the first frame of each state, the HIGH challenge.
    level_states: dict = field(default_factory=dict)
    level_verdicts: dict = field(default_factory=dict)
    level_reasons: dict = field(default_factory=dict)   # (level, state) -> reason when first reached
    challenge: str | None = None

    @property
    def duration(self) -> float:
        return self.frames[-1].ts - self.frames[0].ts if self.frames else 0.0

    def first(self, state: str) -> float | None:
        """Seconds from the track's first frame to the first frame with this verdict."""
        for f in self.frames:
            if f.state == state:
                return f.ts - self.frames[0].ts
        return None

    @property
    def gated_share(self) -> float:
        return float(np.mean([f.code is not None for f in self.frames])) if self.frames else 0.0


class Tracer(Pipeline):
    """The loop with every frame of every track traced and no track ever decided."""

    def __init__(self, analyser, library, rules: LoopRules, source: str = "", live: bool = True,
                 levels: tuple[str, ...] = (), seed: int = 0):
        """`levels`: also feed one MotionLiveness per level per track the same frames the
        loop's own accumulator gets (HIGH: a random challenge per track, seeded by
        `seed`, the source and the track id)."""
        super().__init__(analyser, library, dataclasses.replace(rules, decision=NEVER_DECIDE), "trace")
        self.source, self.live = source, live
        self.levels, self.seed = tuple(levels), seed
        self.traces: dict[int, TrackTrace] = {}
        self._extra: dict[int, dict[str, ml.MotionLiveness]] = {}

    def _frame(self, track, face, image, ts):
        event = super()._frame(track, face, image, ts)
        st = track.state["loop"]
        acc = st.liveness
        tr = self.traces.setdefault(track.track_id, TrackTrace(self.source, track.track_id, self.live))
        mesh = face.mesh
        ear = float(np.mean(ml.eye_aspect_ratios(mesh))) if mesh is not None else float("nan")
        iod = float(ml.inter_ocular(mesh)) if mesh is not None else float("nan")
        views = list(acc._views) if acc is not None else []
        maxp = max((ml.predicted_parallax(v, views[-1]) for v in views[:-1]), default=0.0)
        verdict = acc.verdict() if acc is not None else None
        tr.frames.append(FrameTrace(float(ts), float(face.height), iod, float(face.yaw), float(face.pitch), ear,
                                    st.code, liveness_score(image, face.box, face.kps5),
                                    verdict.state if verdict else "", float(maxp)))
        if self.levels:
            self._feed_levels(track.track_id, tr, acc, verdict, face if st.code is None else None, ts,
                              image if st.code is None else None)
        if acc is not None:
            tr.verdict, tr.pairs, tr.blinks = verdict, acc.evidence(), verdict.blink_count
            if tr.pairs and (not tr.all_pairs or tr.all_pairs[-1][0] is not tr.pairs[-1]):
                tr.all_pairs.append((tr.pairs[-1], iod))
            if verdict.state == "spoof" and not tr.spoof_pairs:
                tr.spoof_pairs = list(tr.pairs)
            hist = [f.ear if f is not None else np.nan for f in acc._history]
            if np.isfinite(hist).sum() >= ml.BASELINE_MIN:
                base = ml.open_eye_baseline(hist)
                with np.errstate(invalid="ignore", divide="ignore"):
                    ratio = np.asarray(hist) / base
                tr.ear_dip = float(np.nanmin(ratio)) if np.isfinite(ratio).any() else float("nan")
                run = best = 0
                for r in ratio:
                    run = run + 1 if r < ml.BLINK_OPEN else 0
                    best = max(best, run)
                tr.dip_run = best
        return event


    def _feed_levels(self, tid: int, tr: TrackTrace, own, own_verdict, face, ts: float, image) -> None:
        """`own`: the loop's accumulator, already fed this frame; it serves its own level
        (not HIGH, whose challenge here is seeded), so no frame's parallax is measured twice."""
        accs = self._extra.get(tid)
        if accs is None:
            rng = random.Random(f"{self.seed}:{self.source}:{tid}")
            accs = self._extra[tid] = {
                lv: own if own is not None and lv == own.level != "HIGH" else
                ml.MotionLiveness(lv, challenge=ml.Challenge.random(rng) if lv == "HIGH" else None)
                for lv in self.levels}
            tr.challenge = accs["HIGH"].challenge.kind if "HIGH" in accs else None
        for lv, acc in accs.items():
            if acc is own:
                v = own_verdict
            else:
                acc.update(face, ts, image)
                v = acc.verdict()
            tr.level_states.setdefault(lv, []).append(v.state)
            tr.level_verdicts[lv] = v
            tr.level_reasons.setdefault((lv, v.state), v.reason)


def scratch_library():
    from edge.library.library import FaceLibrary  # heavy import, only when run
    tmp = tempfile.TemporaryDirectory(prefix="liveness-trace-")
    return tmp, FaceLibrary(Path(tmp.name) / "lib")


def video_frames(path: Path, loops: int = 1) -> Iterator[tuple[np.ndarray, float]]:
    """The clip's frames with capture times, played `loops` times back to back. Streamed
    on the first pass (a 1080p clip held whole is ~6 MB a frame); kept only to replay."""
    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    kept: list[np.ndarray] = []
    n = 0
    try:
        while (got := cap.read())[0]:
            if loops > 1:
                kept.append(got[1])
            yield got[1], n / fps
            n += 1
    finally:
        cap.release()
    for k in range(1, loops):
        for i, f in enumerate(kept):
            yield f, (k * n + i) / fps


def nuaa_sequences(root: Path, by: str = "recording") -> list[tuple[str, bool, list[tuple[Path, float]]]]:
    """NUAA recordings (ID_glasses_pose_session) of labels.csv, frames in picNo order,
    timestamps picNo / NUAA_FPS s. by="subject": each
    subject's recordings one after the other in pose order, the next starting 1 s after
    the previous one's last frame (a print shown again, bent or moved differently)."""
    groups = collections.defaultdict(list)
    with open(root / "labels.csv", encoding="utf-8") as f:
        next(f)
        for line in f:
            rel, label = line.strip().rsplit(",", 1)
            parts = Path(rel).stem.split("_")
            key = "_".join(parts[:4]) if by == "recording" else parts[0]
            groups[(key, label == "live")].append(((int(parts[2]), int(parts[4])), root / rel))
    out = []
    for (name, live), items in sorted(groups.items()):
        items.sort()
        stamps, offset, pose_before = [], 0.0, None
        for (pose, pic), _ in items:
            if pose_before is not None and pose != pose_before:
                offset = stamps[-1] + 1.0 - pic / NUAA_FPS
            stamps.append(offset + pic / NUAA_FPS)
            pose_before = pose
        out.append((name, live, [(p, ts) for (_, p), ts in zip(items, stamps)]))
    return out


def file_frames(items: Iterable[tuple[Path, float]]) -> Iterator[tuple[np.ndarray, float]]:
    """(image file, seconds) -> (decoded frame, seconds), one file at a time."""
    for path, ts in items:
        yield decode_image(Path(path).read_bytes()), ts


def nuaa_rules(rules: LoopRules) -> LoopRules:
    """The loop's rules with a tracker that bridges NUAA's seconds-apart frames."""
    return dataclasses.replace(rules, track_max_age_s=max(rules.track_max_age_s, NUAA_MAX_AGE_S))


def trace(analyser, frames: Iterable[tuple[np.ndarray, float]], rules: LoopRules, source: str,
          live: bool, levels: tuple[str, ...] = (), seed: int = 0) -> list[TrackTrace]:
    tmp, library = scratch_library()
    try:
        pipe = Tracer(analyser, library, rules, source, live, levels, seed)
        for img, ts in frames:
            pipe.process(img, ts)
        pipe.flush()
        pipe.close()
    finally:
        library.close()
        tmp.cleanup()
    return [t for t in pipe.traces.values() if len(t.frames) >= rules.min_track_frames]


def loop_events(analyser, frames: Iterable[tuple[np.ndarray, float]], rules: LoopRules) -> list:
    """The unmodified loop's events (empty library: everyone unknown unless spoof)."""
    tmp, library = scratch_library()
    try:
        pipe = Pipeline(analyser, library, rules, "trace")
        events = []
        for img, ts in frames:
            events += pipe.process(img, ts)
        events += pipe.flush()
        pipe.close()
    finally:
        library.close()
        tmp.cleanup()
    return events


def diagnose(t: TrackTrace) -> str:
    """Where a track's live evidence was lost (the first that applies)."""
    v = t.verdict
    if v is None:
        return "no liveness"
    if v.state == "live":
        return "live"
    if v.state == "spoof":
        return "spoof: planar parallax"
    fed = [f for f in t.frames if f.code is None]
    if not fed:
        return "quality-gated every frame"
    if t.duration < SHORT_S:
        return "too short"
    iod = np.nanmedian([f.iod for f in fed]) if fed else float("nan")
    if v.parallax_pairs == 0:
        if np.isfinite(iod) and iod < SMALL_IOD_PX:
            return "too small (no view change read)"
        return "too frontal (no view change read)"
    return "parallax thresholds (inconclusive)"


def _r(xs, fmt="{:.0f}"):
    xs = [x for x in xs if np.isfinite(x)]
    return "-" if not xs else (fmt + ".." + fmt).format(min(xs), max(xs))


def track_line(t: TrackTrace) -> str:
    v = t.verdict
    fed = [f for f in t.frames if f.code is None]
    single = [f.single for f in t.frames]
    tl, ts = t.first("live"), t.first("spoof")
    to = f"live@{tl:.2f}s" if tl is not None else (f"spoof@{ts:.2f}s" if ts is not None else "-")
    pairs = t.pairs
    pred = [p.predicted for p in pairs]
    return (f"  {t.source}#{t.track_id:<3d} {len(t.frames):3d}f {t.duration:4.1f}s gated {t.gated_share:4.0%} "
            f"h {_r([f.height for f in t.frames])}px iod {_r([f.iod for f in fed])}px "
            f"yaw {_r([f.yaw for f in fed])} pitch {_r([f.pitch for f in fed])} "
            f"blinks {t.blinks} ear-dip {t.ear_dip:.2f}x{t.dip_run} "
            f"maxpred {max([f.max_predicted for f in t.frames], default=0):.3f} "
            f"pairs {len(pairs)} pred {_r(pred, '{:.3f}')} gain {_r([p.gain for p in pairs], '{:.2f}')} "
            f"med {v.gain:.2f} agree {v.agreement:.2f} "
            f"single med {np.median(single):.2f} [{min(single):.2f}..{max(single):.2f}] "
            f"-> {v.state} {to} ({diagnose(t)}): {v.reason}")


IOD_BINS = (0, 24, 32, 1e9)
PRED_BINS = (ml.PREDICTED_MIN, 0.03, 0.05, 1e9)


def pair_table(traces: list[TrackTrace]) -> list[str]:
    """Every parallax pair the tracks made, by native face size and predicted parallax:
    how often a pair reads planar (gain <= PLANAR_GAIN) and its median gain/agreement."""
    pairs = [(p, iod) for t in traces for p, iod in t.all_pairs]
    out = [f"  pairs: {len(pairs)}; planar share / median gain / median agreement, by IOD px x predicted IOD:"]
    for i0, i1 in zip(IOD_BINS, IOD_BINS[1:]):
        cells = []
        for p0, p1 in zip(PRED_BINS, PRED_BINS[1:]):
            sel = [p for p, iod in pairs if i0 <= iod < i1 and p0 <= p.predicted < p1]
            if sel:
                g = np.array([p.gain for p in sel])
                cells.append(f"pred {p0:.2f}+ n={len(sel):3d} {np.mean(g <= PLANAR_GAIN):4.0%} "
                             f"{np.median(g):5.2f} {np.median([p.agreement for p in sel]):5.2f}")
            else:
                cells.append(f"pred {p0:.2f}+ n=  0")
        out.append(f"    iod {i0:>3.0f}-{i1 if i1 < 1e8 else 'up':>3}: " + " | ".join(cells))
    return out


def summary(traces: list[TrackTrace], title: str) -> list[str]:
    out = [f"{title}: {len(traces)} tracks, {sum(len(t.frames) for t in traces)} frames"]
    counts = collections.Counter(diagnose(t) for t in traces)
    out.append("  final verdict / where lost: " + ", ".join(f"{k} {n}" for k, n in counts.most_common()))
    ever_live = [t for t in traces if t.first("live") is not None]
    ever_spoof = [t for t in traces if t.first("spoof") is not None]
    fast = sum(t.first("live") <= 2.0 for t in ever_live)
    out.append(f"  ever live {len(ever_live)} (within 2 s of the track's start {fast}), ever spoof "
               f"{len(ever_spoof)}, blinks counted in {sum(t.blinks > 0 for t in traces)}")
    for t in ever_spoof:
        sp = t.spoof_pairs
        iods = [f.iod for f in t.frames if f.code is None]
        out.append(f"    spoof {t.source}#{t.track_id} at {t.first('spoof'):.2f} s: cue parallax (planar), "
                   f"{len(sp)} pairs, predicted {_r([p.predicted for p in sp], '{:.3f}')} IOD, gains "
                   f"{', '.join(f'{p.gain:.2f}' for p in sp)}, native IOD {np.nanmedian(iods):.0f} px, "
                   f"single-image max {max(f.single for f in t.frames):.2f}")
    closed = collections.Counter()
    for t in traces:
        ears = np.array([f.ear for f in t.frames])
        if np.isfinite(ears).sum() < ml.BASELINE_MIN:
            continue
        base = np.nanpercentile(ears, ml.BASELINE_PERCENTILE)
        for f in t.frames:
            if f.ear < ml.BLINK_CLOSE * base:
                closed["fed" if f.code is None else f.code] += 1
    out.append("  frames with EAR < BLINK_CLOSE x the track's p75 (gated frames included): "
               + (", ".join(f"{k} x{n}" for k, n in closed.most_common()) or "none"))
    dips = [t for t in traces if t.ear_dip < ml.BLINK_CLOSE]
    out.append(f"  eye closure: {len(dips)} tracks dip below BLINK_CLOSE x baseline, {sum(t.blinks > 0 for t in dips)} "
               f"counted; their longest dips {', '.join(str(t.dip_run) for t in dips) or '-'} frames "
               f"(BLINK_MAX_FRAMES {ml.BLINK_MAX_FRAMES})")
    fed = [f for t in traces for f in t.frames]
    if fed:
        single = np.array([f.single for f in fed])
        out.append(f"  single-image score: median {np.median(single):.2f}, share of frames >= NORMAL 0.3 "
                   f"{np.mean(single >= 0.3):.1%}, tracks with any frame >= 0.3 "
                   f"{sum(max(f.single for f in t.frames) >= 0.3 for t in traces)}")
        gated = np.array([f.code is not None for f in fed])
        codes = collections.Counter(f.code for f in fed if f.code is not None)
        out.append(f"  quality-gated frames (not fed to liveness): {gated.mean():.0%} "
                   f"({', '.join(f'{c} x{n}' for c, n in codes.most_common())})")
    out += pair_table(traces)
    return out
