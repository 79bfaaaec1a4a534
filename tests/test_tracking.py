"""Tracker and per-track decision: real detections of real photos moving across frames."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge.imaging import decode_image as decode
from test_aip_v2 import photo
from edge.loop.decision import DecisionRules, Hit, decide, frame_goodness, frame_vote, fuse
from edge.loop.tracker import Tracker, iou


def canvas_with(faces: list[tuple[np.ndarray, int, int]]) -> np.ndarray:
    """A 640x480 frame with each (photo, x, y) pasted at x, y."""
    frame = np.full((480, 640, 3), 90, np.uint8)
    for img, x, y in faces:
        h, w = img.shape[:2]
        frame[y:y + h, x:x + w] = img
    return frame


@pytest.fixture(scope="module")
def two_people():
    crop = lambda img: cv2.resize(img[40:210, 50:200], (150, 170))  # noqa: E731 - the face region
    return crop(decode(photo("Paul_Wolfowitz", 1))), crop(decode(photo("Jennifer_Lopez", 1)))


def test_two_walking_people_keep_their_track_ids(analyser, two_people):
    paul, jen = two_people
    tracker, ids = Tracker(), []
    for step in range(12):  # Paul walks right, Jennifer walks left, 15 fps
        frame = canvas_with([(paul, 20 + 12 * step, 150), (jen, 470 - 12 * step, 140)])
        faces = analyser.analyse(frame, 5, 0, stages=())
        assert len(faces) == 2
        matched, ended = tracker.update(faces, step / 15)
        assert not ended
        by_x = sorted(matched, key=lambda tf: tf[1].box[0])
        ids.append(tuple(t.track_id for t, _ in by_x))
    # they start on opposite sides: whoever is left stays the same track until they cross
    assert len(set(ids[:8])) == 1 and len(set(ids[0])) == 2


def test_a_track_survives_a_missed_detection_and_ends_after_max_age(analyser, two_people):
    paul, _ = two_people
    tracker = Tracker(max_age_s=0.5)
    first, _ = tracker.update(analyser.analyse(canvas_with([(paul, 100, 150)]), 1, 0, ()), 0.0)
    tid = first[0][0].track_id
    _, ended = tracker.update([], 0.2)                   # the detector missed a frame
    assert not ended
    again, _ = tracker.update(analyser.analyse(canvas_with([(paul, 106, 150)]), 1, 0, ()), 0.3)
    assert again[0][0].track_id == tid
    _, ended = tracker.update([], 1.0)
    assert [t.track_id for t in ended] == [tid]
    new, _ = tracker.update(analyser.analyse(canvas_with([(paul, 106, 150)]), 1, 0, ()), 1.1)
    assert new[0][0].track_id != tid                     # someone (re)appearing later is a new track


def test_iou():
    a = np.array([0, 0, 10, 10.0])
    assert iou(a, a) == 1.0 and iou(a, a + 20) == 0.0
    assert iou(a, np.array([5, 0, 15, 10.0])) == pytest.approx(50 / 150)


def test_frame_goodness_prefers_sharp_frontal_faces(analyser):
    img = decode(photo("Paul_Wolfowitz", 1))
    sharp = analyser.analyse(img, 1, 0, {"landmarks", "quality"})[0]
    blurred = analyser.analyse(cv2.GaussianBlur(img, (0, 0), 3), 1, 0, {"landmarks", "quality"})[0]
    assert frame_goodness(sharp) > frame_goodness(blurred) > 0


# -- decision rules ------------------------------------------------------------------------------
R = DecisionRules(match_score=80, margin=5, min_votes=2, max_frames=4, fused=False)   # votes
RF = DecisionRules(match_score=80, margin=5, min_votes=2, max_frames=4)               # fused, the default
ANN, BOB = Hit("ann", "staff", "Ann", 92.0), Hit("bob", "staff", "Bob", 70.0)


def hit(h: Hit, score: float) -> Hit:
    return Hit(h.user_id, h.group_id, h.user_info, score)


def test_a_frame_votes_only_with_score_and_margin():
    assert frame_vote([ANN, BOB], R)[0] == ANN
    assert frame_vote([hit(ANN, 79.9)], R)[0] is None                 # below the threshold
    assert frame_vote([ANN, hit(BOB, 89.0)], R) == (None, pytest.approx(3.0))  # look-alikes: no vote
    assert frame_vote([], R) == (None, None)


def test_two_agreeing_frames_recognise():
    assert decide([[ANN, BOB]], R) is None                             # one frame is not enough
    d = decide([[ANN, BOB], [hit(ANN, 88.0), BOB]], R)
    assert d.kind == "recognised" and d.hit.user_id == "ann" and d.score == 92.0 and d.margin == 18.0


def test_disagreement_waits_then_unknown():
    frames = [[ANN], [hit(BOB, 90.0)], [hit(ANN, 60.0)]]
    assert decide(frames, R) is None
    d = decide(frames + [[hit(BOB, 50.0)]], R)
    assert d.kind == "unknown" and d.hit is None and d.score == 92.0 and d.frames == 4


def test_a_stranger_is_unknown_after_max_frames():
    frames = [[hit(ANN, 40.0 + i)] for i in range(4)]
    assert decide(frames[:3], R) is None
    assert decide(frames, R).kind == "unknown"


# -- fused frames (the default) -------------------------------------------------------------------
def test_fused_decides_on_the_latest_fused_search_once_enough_frames_are_fused():
    assert RF.fused
    assert decide([[ANN, BOB]], RF) is None                            # one frame fused is not enough
    d = decide([[hit(ANN, 60.0)], [ANN, BOB]], RF)                     # only the fused-so-far hits count
    assert d.kind == "recognised" and d.hit.user_id == "ann" and d.frames == 2 and d.margin == 22.0
    assert decide([[ANN], [ANN, hit(BOB, 89.0)]], RF) is None          # look-alikes: no decision
    frames = [[hit(ANN, 79.0)]] * 4
    assert decide(frames[:3], RF) is None and decide(frames, RF).kind == "unknown"


def test_fusing_real_frames_scores_at_least_their_mean(analyser):
    """The mean of unit embeddings, renormalised: its cosine to any face is at least the
    frames' mean cosine, so fusing never costs a genuine user on average."""
    img = decode(photo("Paul_Wolfowitz", 1))
    enrolled = analyser.analyse(decode(photo("Paul_Wolfowitz", 2)), 1, 0, {"embedding"})[0].embedding
    rng = np.random.default_rng(0)
    frames = [cv2.GaussianBlur(img, (0, 0), 1.5), np.clip(img + rng.normal(0, 12, img.shape), 0, 255).astype(np.uint8),
              cv2.resize(cv2.resize(img, (80, 80)), img.shape[1::-1]), img]
    embs = [analyser.analyse(f, 1, 0, {"embedding"})[0].embedding for f in frames]
    fused = fuse(embs)
    sims = [float(e @ enrolled) for e in embs]
    assert np.linalg.norm(fused) == pytest.approx(1.0, abs=1e-5)
    assert float(fused @ enrolled) >= np.mean(sims) - 1e-6
    assert float(fused @ enrolled) > min(sims)
