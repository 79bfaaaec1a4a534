"""What a watcher sees of a pipeline's tracks: a small typed view, built on demand.

The live view and the kiosk page (edge/console/) draw these; they never reach into the
tracker or a TrackState themselves. Built only when someone watches (LiveHub.wants),
on the processing thread that owns the tracks, so no lock is needed.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from edge.errors import MESSAGES
from edge.guidance import face_guidance, liveness_guidance

PHASES = ("tracking", "searching", "recognised", "unknown", "rejected")


@dataclass(frozen=True)
class TrackView:
    track_id: int
    box: tuple[int, int, int, int]      # x1, y1, x2, y2 in the frame's pixels
    phase: str                          # one of PHASES: the decision as it forms
    searched: int = 0                   # frames searched so far
    name: str = ""                      # the candidate (searching) or the person (recognised)
    user_id: str = ""
    score: float | None = None          # the candidate's / the decision's score, 0-100
    threshold: float | None = None      # the score a person must reach
    error_code: int = 0                 # rejected: Baidu's code (223120 liveness, 223114 fuzzy ...)
    error_msg: str = ""
    reason: str = ""                    # why, in words (the event's reason; a frame's failed check)
    liveness: str = ""                  # "", "undecided", "live", "spoof"
    liveness_reason: str = ""
    prompt: str = ""                    # HIGH: the pending challenge ("Turn your head left")
    guidance: str = ""                  # what the person should do now ("Come closer")


def track_view(track, threshold: float, shape) -> TrackView:
    """One track as it stands (`threshold`: the pipeline's match score; `shape`: the frame's)."""
    st = track.state.get("loop")
    box = tuple(int(round(v)) for v in track.box[:4])
    if st is None:
        return TrackView(track.track_id, box, "tracking", threshold=threshold)
    verdict = st.liveness.verdict() if st.liveness is not None and st.result is None else None
    live = dict(liveness=verdict.state if verdict else "", liveness_reason=verdict.reason if verdict else "",
                prompt=(verdict.prompt or "") if verdict else "")
    if st.result is not None:                 # announced: the event, and whom a refusal was about
        e, hit = st.result, st.decision.hit if st.decision is not None else None
        name, user = (e.user_info or e.user_id, e.user_id) if e.user_id else \
            ((hit.user_info or hit.user_id, hit.user_id) if hit else ("", ""))
        return TrackView(track.track_id, box, e.kind, len(st.searched), name, user, e.score, threshold,
                         e.error_code, e.error_msg, e.reason, e.liveness)
    hint = face_guidance(st.face, shape, st.code) if st.face is not None else None
    hint = hint or liveness_guidance(verdict) or ""
    code_reason = MESSAGES.get(st.code, "") if st.code else ""
    if st.decision is not None:               # decided, waiting for liveness
        d = st.decision
        return TrackView(track.track_id, box, "searching", d.frames, (d.hit.user_info or d.hit.user_id) if d.hit
                         else "", d.hit.user_id if d.hit else "", d.score, threshold,
                         reason=f"{d.kind}: waiting for liveness" if d.hit else d.reason, guidance=hint, **live)
    if st.searched:
        hits = sorted(st.searched[-1], key=lambda h: -h.score)
        top = hits[0] if hits else None
        return TrackView(track.track_id, box, "searching", len(st.searched), (top.user_info or top.user_id) if top
                         else "", top.user_id if top else "", top.score if top else None, threshold,
                         reason=code_reason, guidance=hint, **live)
    return TrackView(track.track_id, box, "tracking", threshold=threshold, reason=code_reason, guidance=hint, **live)


def overlay(pipeline, shape, ts: float) -> dict:
    """The overlay of the frame captured at `ts` (just processed): the view of every track
    seen in it, largest first, and the guidance for the person in front (the largest
    face's; no face: step in front; two undecided: one at a time)."""
    from edge.guidance import MANY_FACES, NO_FACE
    views = sorted((track_view(t, pipeline.threshold.score, shape) for t in list(pipeline.tracker.tracks.values())
                    if t.last_ts >= ts), key=lambda v: -(v.box[3] - v.box[1]))
    undecided = [v for v in views if v.phase in ("tracking", "searching")]
    guide = NO_FACE if not views else MANY_FACES if len(undecided) > 1 else (views[0].guidance or "")
    return {"width": int(shape[1]), "height": int(shape[0]), "tracks": [asdict(v) for v in views],
            "guidance": guide, "liveness_control": pipeline.rules.liveness_control}
