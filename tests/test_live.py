"""The live view's hub and overlay: nothing is built or encoded while nobody watches;
while someone does, each kept frame is encoded once for all, capped in rate and size,
and the overlay tells the decision as it forms on a real pipeline."""
from __future__ import annotations

import asyncio
import time

import cv2
import numpy as np

from edge.console.live import LIVE_MAX_WIDTH, LiveHub
from edge.imaging import decode_image
from edge.loop.pipeline import Pipeline
from edge.loop.views import overlay
from test_aip_v2 import A, photo
from test_pipeline import RULES, library, walk  # noqa: F401 - the library fixture


class Overlays:
    """An overlay builder that counts its calls."""
    def __init__(self):
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return {"tracks": [], "n": self.calls}


def test_an_unwatched_hub_builds_no_overlay_and_encodes_nothing():
    hub, built = LiveHub(["gate"]), Overlays()
    frame = np.zeros((720, 1280, 3), np.uint8)
    for _ in range(200):
        if hub.wants("gate"):
            hub.offer("gate", frame, time.monotonic(), built)
        hub.offer("gate", frame, time.monotonic(), built)   # offer itself checks too
    assert built.calls == 0 and not hub.stats and hub.latest("gate") is None
    assert hub.newest_raw("gate") is None and hub._thread is None   # no encoder thread either
    # a viewer came and went: the frames held for it are dropped, and offers stop again
    with hub.watch("gate"):
        hub.offer("gate", frame, time.monotonic(), built)
        assert hub.wait("gate", 0, 5) is not None
    calls = built.calls
    for _ in range(50):
        hub.offer("gate", frame, time.monotonic(), built)
    assert built.calls == calls == 1 and hub.newest_raw("gate") is None
    hub.close()


def test_a_watched_hub_encodes_each_kept_frame_once_capped_in_rate_and_size():
    hub, built = LiveHub(["gate"], max_fps=10), Overlays()
    frame = np.full((720, 1280, 3), 90, np.uint8)
    cv2.circle(frame, (640, 360), 100, (0, 200, 255), -1)

    async def two_viewers():
        async with hub.viewer("gate") as a, hub.viewer("gate") as b:
            start = time.monotonic()
            while time.monotonic() - start < 1.0:   # a 100 fps loop for one second
                hub.offer("gate", frame, time.monotonic() - 0.01, built)
                await asyncio.sleep(0.01)
            fa, fb = await a.next(2), await b.next(2)
            return fa, fb
    fa, fb = asyncio.run(two_viewers())
    assert fa is fb                                  # one encode serves every viewer
    st = hub.stats["gate"]
    assert 8 <= built.calls <= 12 and st.offered == built.calls   # ~10 a second, not 100
    assert st.encoded <= st.offered
    img = cv2.imdecode(np.frombuffer(fa.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert img.shape[1] == LIVE_MAX_WIDTH and img.shape[0] == 360
    assert 0 < time.time() - fa.captured < 2 and fa.overlay["n"] >= 1
    hub.close()


def test_the_overlay_tells_the_decision_as_it_forms(analyser, library):  # noqa: F811
    pipeline = Pipeline(analyser, library, RULES, "gate")
    phases = []
    for frame, ts in walk(decode_image(photo(A, 2))):
        pipeline.process(frame, ts)
        view = overlay(pipeline, frame.shape, ts)
        assert view["width"] == 640 and view["height"] == 480
        if view["tracks"]:
            t = view["tracks"][0]
            x1, y1, x2, y2 = t["box"]
            assert 0 <= x1 < x2 <= 640 and 0 <= y1 < y2 <= 480 and t["track_id"] == 1
            phases.append((t["phase"], t["name"]))
    assert phases[0][0] in ("tracking", "searching")
    assert ("recognised", "paul") in phases and phases[-1] == ("recognised", "paul")
    # no face in the frame: the person is asked to step in front
    blank = np.full((480, 640, 3), 70, np.uint8)
    pipeline.process(blank, 5.0)
    view = overlay(pipeline, blank.shape, 5.0)
    assert view["tracks"] == [] and view["guidance"].startswith("Step in front")
    pipeline.close()


def test_at_high_the_overlay_carries_the_challenge_prompt(analyser, library):  # noqa: F811
    import dataclasses
    pipeline = Pipeline(analyser, library, dataclasses.replace(RULES, liveness_control="HIGH"), "gate")
    prompts = set()
    for frame, ts in walk(decode_image(photo(A, 2))):
        pipeline.process(frame, ts)
        for t in overlay(pipeline, frame.shape, ts)["tracks"]:
            if t["prompt"]:
                prompts.add(t["prompt"])
                assert t["liveness"] == "undecided" and t["phase"] in ("tracking", "searching")
    assert prompts and all(p[0].isupper() for p in prompts), prompts   # e.g. "Turn your head to the left"
    pipeline.close()
