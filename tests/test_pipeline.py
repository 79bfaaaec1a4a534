"""The per-camera pipeline on recorded sequences made from real photos."""
from __future__ import annotations

import base64
import dataclasses
import itertools

import cv2
import numpy as np
import pytest

from edge.aip.v3 import AipFace
from edge.imaging import decode_image
from edge.loop.decision import DecisionRules
from edge.loop.pipeline import LoopRules, Pipeline, detect_side
from test_aip_v2 import A, B, C, photo

_apps = itertools.count()


@pytest.fixture
def library(edge_config):
    client = AipFace(f"loop{next(_apps)}", "", "", config=edge_config)
    for name, user in ((A, "paul"), (B, "jlo")):
        answer = client.addUser(base64.b64encode(photo(name, 1)).decode(), "BASE64", "staff", user)
        assert answer["error_code"] == 0
    return client._lib


def walk(img: np.ndarray, frames: int = 24, blur: float = 0.0):
    """A 640x480, 15 fps sequence of the photo walking slowly into the middle."""
    h, w = img.shape[:2]
    for i in range(frames):
        frame = np.full((480, 640, 3), 70, np.uint8)
        x, y = 120 + 4 * i, 100 + i
        frame[y:y + h, x:x + w] = img
        if blur:
            frame = cv2.GaussianBlur(frame, (0, 0), blur)
        yield frame, i / 15


def run(pipeline: Pipeline, frames) -> list:
    events = []
    for frame, ts in frames:
        events += pipeline.process(frame, ts)
    return events + pipeline.flush()


RULES = LoopRules(liveness_control="NONE", decision=DecisionRules(max_frames=4))


def test_an_enrolled_person_is_recognised_once(analyser, library):
    events = run(Pipeline(analyser, library, RULES, "gate"), walk(decode_image(photo(A, 2))))
    assert [(e.kind, e.user_id, e.group_id, e.camera) for e in events] == [("recognised", "paul", "staff", "gate")]
    # within a few frames: this photo's yaw (~-19 deg) sits at NORMAL's 20 deg limit, so
    # the odd frame is refused for pose and the next one searched instead
    assert events[0].score >= 80 and events[0].track_id == 1 and events[0].frames <= 6


def test_a_stranger_is_unknown(analyser, library):
    events = run(Pipeline(analyser, library, RULES, "gate"), walk(decode_image(photo(C, 1))))
    assert [(e.kind, e.user_id, e.error_code) for e in events] == [("unknown", "", 0)]


def test_a_blurred_track_is_rejected_with_the_quality_code(analyser, library):
    events = run(Pipeline(analyser, library, RULES, "gate"), walk(decode_image(photo(A, 2)), blur=4))
    assert [(e.kind, e.error_code, e.error_msg) for e in events] == [("rejected", 223114, "face is fuzzy")]


def test_a_photo_moved_in_front_of_the_camera_does_not_pass_liveness(analyser, library):
    rules = dataclasses.replace(RULES, liveness_control="NORMAL", liveness_timeout_s=0.5)
    events = run(Pipeline(analyser, library, rules, "gate"), walk(decode_image(photo(A, 2))))
    assert len(events) == 1 and events[0].kind == "rejected" and events[0].error_code == 223120
    assert events[0].user_id == ""  # a rejected track never names the person


def test_faces_below_min_face_px_are_not_tracked(analyser, library):
    """The same walk-in (faces ~72 px tall) at a gate set to ignore faces under 100 px
    (people far behind the one at the door) gives no event, and costs only detection."""
    rules = dataclasses.replace(RULES, min_face_px=100)
    pipeline = Pipeline(analyser, library, rules, "gate")
    for frame, ts in walk(decode_image(photo(A, 2))):
        assert pipeline.process(frame, ts) == [] and pipeline.tracker.tracks == {}


def test_video_frames_are_detected_at_the_scale_of_the_smallest_wanted_face():
    assert detect_side((480, 640, 3), 40) == 320          # one pass where a 40 px face is 20 px
    assert detect_side((1080, 1920, 3), 40) == 960
    assert detect_side((480, 640, 3), 20) == 640          # full resolution, never upscaled
    assert detect_side((120, 160, 3), 200) == 160         # the detector's smallest input


def test_a_face_turned_past_normals_20_degrees_is_still_searched_by_the_loop(analyser, edge_config):
    """Kenneth Evans's second photo is turned ~26 deg. NORMAL's 20 deg refused every frame
    of it (15 % of enrolled LFW people's tracks never got a search, issue 12); the loop's
    run.max_pose_deg (30) searches it, and he is recognised from his other photo."""
    client = AipFace(f"loop{next(_apps)}", "", "", config=edge_config)
    enrolled = base64.b64encode(photo("Kenneth_Evans", 1)).decode()
    assert client.addUser(enrolled, "BASE64", "staff", "kenneth")["error_code"] == 0
    turned = decode_image(photo("Kenneth_Evans", 2))
    events = run(Pipeline(analyser, client._lib, RULES, "gate"), walk(turned))
    assert [(e.kind, e.user_id) for e in events] == [("recognised", "kenneth")]
    strict = dataclasses.replace(RULES, max_pose_deg=20.0)
    events = run(Pipeline(analyser, client._lib, strict, "gate"), walk(turned))
    assert [(e.kind, e.error_code) for e in events] == [("rejected", 223129)]
