"""The walking video's real walkers under the loop's own tracking and motion liveness
(docs/motion_liveness.md, "Where live people are lost"): before issue 18's fix, three of
them were called a print (planar parallax on 2 pairs of a small face) and one was live.
Now none is called spoof and those who turn their heads in the first 1.2 s are live."""
import itertools
from pathlib import Path

import pytest

from edge.analysis import liveness_eval as le
from edge.analysis import motion_liveness as ml
from edge.loop.pipeline import LoopRules

CLIP = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "video" / "walking_people.mp4"


@pytest.mark.skipif(not CLIP.exists(), reason="needs ../shared/data/video/walking_people.mp4")
def test_real_walkers_are_not_called_spoof_and_turning_ones_are_live_early(analyser):
    frames = itertools.islice(le.video_frames(CLIP), 30)       # the first 1.2 s
    traces = le.trace(analyser, frames, LoopRules(min_face_px=28), "walk", True)
    assert [t.track_id for t in traces if t.first("spoof") is not None] == []
    live = [t for t in traces if t.first("live") is not None]
    assert len(live) >= 2, [le.track_line(t) for t in traces]
    for t in live:
        assert t.first("live") <= 1.2
        assert len(t.pairs) >= ml.MIN_PAIRS["NORMAL"]
