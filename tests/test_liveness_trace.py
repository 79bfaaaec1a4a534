"""The walking video's spoof verdicts on real people (docs/motion_liveness.md, "Where live
people are lost"): planar parallax decided on the minimum of 2 pairs of a small face.
Pins the measured finding; when the fix lands this test is expected to change."""
import itertools
from pathlib import Path

import pytest

from edge.analysis import liveness_eval as le
from edge.analysis import motion_liveness as ml
from edge.loop.pipeline import LoopRules

CLIP = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "video" / "walking_people.mp4"


@pytest.mark.skipif(not CLIP.exists(), reason="needs ../shared/data/video/walking_people.mp4")
def test_real_walkers_called_spoof_by_planar_parallax_on_small_faces(analyser):
    frames = itertools.islice(le.video_frames(CLIP), 30)       # the first 1.2 s
    traces = le.trace(analyser, frames, LoopRules(min_face_px=28), "walk", True)
    spoofed = [t for t in traces if t.first("spoof") is not None]
    assert spoofed, "the finding no longer holds: update docs/motion_liveness.md"
    for t in spoofed:
        assert len(t.spoof_pairs) == ml.MIN_PAIRS_PLANAR
        assert min(f.iod for f in t.frames if f.code is None) < 24
        assert max(f.single for f in t.frames) < 0.3            # the single-image score calls them prints too
