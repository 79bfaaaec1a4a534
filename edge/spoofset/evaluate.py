"""The test set through the loop's real Pipeline: per-track verdicts over time and APCER/BPCER.

One detection pass per sequence (liveness_eval.Tracer: the loop's detector, tracker,
quality gate, no track ever decided) feeds one MotionLiveness per level per track the
same frames. A presentation is one track (tracks shorter than rules.min_track_frames
are dropped, as the loop drops them).

- APCER: attack presentations judged live at any moment within liveness_timeout_s of
  the track's start (the loop accepts a recognised person the moment liveness says live).
- BPCER: live presentations that reach decision size and are not judged live by the
  end of the track. Decision size: a frame the loop could decide on - face height >=
  min_face_px and through the quality gate (a track never through it gets a quality
  rejection, not a liveness one); "live within 2 s" counts from that frame.
"""
from __future__ import annotations

import collections
import dataclasses
import re
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np

from edge.analysis import liveness_eval as le
from edge.loop.pipeline import LoopRules
from edge.spoofset.sequences import SpoofSequence

LEVELS = ("LOW", "NORMAL", "HIGH")
FAST_S = 2.0          # "live within 2 s of reaching decision size": what a user at a gate waits


@dataclass(frozen=True)
class TrackResult:
    sequence: str
    attack: str               # "live" or an attack type
    subject: str
    source: str
    track_id: int
    level: str
    frames: int
    duration: float           # s, first to last frame of the track
    reached_size: bool        # some frame at face height >= min_face_px through the quality gate
    first_live: float | None  # s from the track's first frame
    first_spoof: float | None
    first_live_sized: float | None   # s from the first frame at decision size
    first_spoof_sized: float | None
    final: str                # the verdict after the track's last frame
    reason: str               # the final verdict's reason
    live_reason: str          # the reason when first judged live ("" never)
    spoof_reason: str
    challenge: str | None     # HIGH: the track's challenge

    @property
    def live(self) -> bool:
        return self.attack == "live"


def default_rules_for(seq: SpoofSequence, rules: LoopRules) -> LoopRules:
    if seq.attack == "live" and "nuaa" in seq.name:
        return le.nuaa_rules(rules)
    return rules


def _first(states: list[str], ts: list[float], state: str, t0: float) -> float | None:
    for s, t in zip(states, ts):
        if s == state and t >= t0:
            return t - t0
    return None


def track_results(seq: SpoofSequence, traces: Iterable[le.TrackTrace], min_face_px: float,
                  levels=LEVELS) -> list[TrackResult]:
    out = []
    for t in traces:
        ts = [f.ts for f in t.frames]
        sized = [f.ts for f in t.frames if f.height >= min_face_px and f.code is None]
        t0 = ts[0]
        for lv in levels:
            states = t.level_states.get(lv, [])
            if not states:
                continue
            v = t.level_verdicts[lv]
            out.append(TrackResult(
                seq.name, seq.attack, seq.subject, seq.source, t.track_id, lv, len(t.frames), t.duration,
                bool(sized), _first(states, ts, "live", t0), _first(states, ts, "spoof", t0),
                _first(states, ts, "live", sized[0]) if sized else None,
                _first(states, ts, "spoof", sized[0]) if sized else None,
                v.state, v.reason, t.level_reasons.get((lv, "live"), ""), t.level_reasons.get((lv, "spoof"), ""),
                t.challenge if lv == "HIGH" else None))
    return out


def evaluate(sequences: list[SpoofSequence], analyser, rules: LoopRules | None = None, levels=LEVELS,
             seed: int = 0, rules_for: Callable[[SpoofSequence, LoopRules], LoopRules] = default_rules_for,
             log: Callable[[str], None] | None = None) -> list[TrackResult]:
    """Every sequence through the Pipeline (default LoopRules(): min_face_px 40), one
    result per track and level."""
    rules = rules or LoopRules()
    out = []
    for k, seq in enumerate(sequences):
        r = rules_for(seq, rules)
        traces = le.trace(analyser, seq.frames(), r, seq.name, seq.attack == "live", tuple(levels), seed)
        res = track_results(seq, traces, r.min_face_px, levels)
        out += res
        if log:
            log(f"  [{k + 1}/{len(sequences)}] {seq.name}: {len(traces)} track(s)")
    return out


# --- Rates ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Rates:
    group: str
    level: str
    presentations: int
    error: float              # APCER (attacks) or BPCER (live), NaN when nothing counts
    live: float               # final-verdict shares
    spoof: float
    undecided: float
    ever_spoof: float         # share ever judged spoof (for live: real people called spoof)
    fast: float               # live: share live within FAST_S of decision size; attacks: NaN
    median_live_s: float      # median time to first live among those judged live (from decision size for live)


def rates(results: list[TrackResult], timeout_s: float = LoopRules().liveness_timeout_s) -> Rates:
    r0 = results[0]
    n = len(results)
    share = lambda f: sum(map(f, results)) / n  # noqa: E731
    if r0.live:
        sized = [r for r in results if r.reached_size]
        err = (sum(r.first_live_sized is None for r in sized) / len(sized)) if sized else float("nan")
        fast = (sum(r.first_live_sized is not None and r.first_live_sized <= FAST_S for r in sized)
                / len(sized)) if sized else float("nan")
        times = [r.first_live_sized for r in sized if r.first_live_sized is not None]
    else:
        err = share(lambda r: r.first_live is not None and r.first_live <= timeout_s)
        fast = float("nan")
        times = [r.first_live for r in results if r.first_live is not None]
    return Rates(r0.attack, r0.level, n, err, share(lambda r: r.final == "live"), share(lambda r: r.final == "spoof"),
                 share(lambda r: r.final == "undecided"), share(lambda r: r.first_spoof is not None), fast,
                 float(np.median(times)) if times else float("nan"))


def group_key(r: TrackResult) -> str:
    """Rows: attack types, and live sources (the walking video, NUAA)."""
    if r.live:
        return "live:walking" if "walking" in r.sequence else "live:nuaa"
    return r.attack


def rate_rows(results: list[TrackResult], level: str, timeout_s: float = LoopRules().liveness_timeout_s) -> list[Rates]:
    groups = collections.defaultdict(list)
    for r in results:
        if r.level == level:
            groups[group_key(r)].append(r)
    return [dataclasses.replace(rates(g, timeout_s), group=k) for k, g in sorted(groups.items(), key=lambda kv: (
        kv[0].startswith("live"), kv[0]))]


def _short(reason: str) -> str:
    return re.sub(r"-?\d+\.\d+|\b\d+\b(?!-D)", "#", reason)


def cue_notes(results: list[TrackResult], level: str) -> list[str]:
    """Per row: which cue decided (the verdict's reason when first live / first spoof)."""
    out = []
    groups = collections.defaultdict(list)
    for r in results:
        if r.level == level:
            groups[group_key(r)].append(r)
    for k, g in sorted(groups.items()):
        live = collections.Counter(_short(r.live_reason) for r in g if r.live_reason)
        spoof = collections.Counter(_short(r.spoof_reason) for r in g if r.spoof_reason)
        parts = [f"live by: {', '.join(f'{c} x{n}' for c, n in live.most_common(3))}" if live else "never live"]
        parts.append(f"spoof by: {', '.join(f'{c} x{n}' for c, n in spoof.most_common(3))}" if spoof
                     else "never spoof")
        out.append(f"  {k}: " + "; ".join(parts))
    return out
