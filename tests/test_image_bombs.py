"""Decompression bombs of every accepted format: refused with the right code, cheaply.

Each file is decoded in a child process (fresh, so the process's peak RSS is the
decode's) whose peak RSS and wall time are checked against generous bounds.  Two ways:
edge imported first (its OpenCV bound and its header checks), and OpenCV loaded first
with its own defaults (edge's header checks alone).  A third asks OpenCV directly, after
`import edge`, to show the bound edge sets is effective in the process.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from edge.errors import IMAGE_ERRORS
from edge.models.manifest import REPO_ROOT
from image_bombs import BOMBS

MAX_RSS_MB, MAX_SECONDS = 400, 10.0

CHILD = r"""
import json, resource, sys
mode, path = sys.argv[1:3]
if mode == "opencv_first":
    import cv2  # OpenCV's own limits (1 Gpixel): only edge's header checks stand
import edge
from edge.errors import EdgeError
from edge.imaging import decode_image
raw = open(path, "rb").read()
out = {}
if mode == "opencv_direct":
    import cv2, numpy as np
    try:
        img = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
        out["decoded"] = img is not None
    except cv2.error:
        out["decoded"] = False
else:
    for api in ("v2", "v3"):
        try:
            decode_image(raw, api=api)
            out[api] = 0
        except EdgeError as exc:
            out[api] = exc.error_code
out["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def run_child(mode: str, path) -> tuple[dict, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCV_IO_")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", CHILD, mode, str(path)], env=env, capture_output=True,
                          text=True, timeout=120)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), elapsed


@pytest.fixture(scope="module")
def bomb_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bombs")
    paths = {}
    for name, (build, _cause) in BOMBS.items():
        paths[name] = folder / name
        paths[name].write_bytes(build())
    return paths


@pytest.mark.parametrize("mode", ["edge_first", "opencv_first"])
@pytest.mark.parametrize("name", sorted(BOMBS))
def test_bomb_is_refused_cheaply(bomb_files, name, mode):
    answer, elapsed = run_child(mode, bomb_files[name])
    cause = BOMBS[name][1]
    assert answer["v2"] == IMAGE_ERRORS["v2"][cause], answer
    assert answer["v3"] == IMAGE_ERRORS["v3"][cause], answer
    assert answer["rss_mb"] < MAX_RSS_MB and elapsed < MAX_SECONDS, (answer, elapsed)


@pytest.mark.parametrize("name", ["jpeg_stray_byte", "png_ihdr_bomb", "bmp_rle8_header36", "bmp_os2_core"])
def test_opencv_itself_is_bounded_once_edge_is_imported(bomb_files, name):
    answer, elapsed = run_child("opencv_direct", bomb_files[name])
    assert answer["decoded"] is False
    assert answer["rss_mb"] < MAX_RSS_MB and elapsed < MAX_SECONDS, (answer, elapsed)


def test_bound_values_and_an_operators_lower_bound(monkeypatch):
    from edge.image_limits import bound_opencv_decoder, decoder_bound
    env = {"OPENCV_IO_MAX_IMAGE_PIXELS": "1000000", "OPENCV_IO_MAX_IMAGE_WIDTH": "99999999"}
    bound_opencv_decoder(env)
    assert decoder_bound()["OPENCV_IO_MAX_IMAGE_PIXELS"] == 6000 * 6000
    assert env == {"OPENCV_IO_MAX_IMAGE_PIXELS": "1000000", "OPENCV_IO_MAX_IMAGE_WIDTH": "6000",
                   "OPENCV_IO_MAX_IMAGE_HEIGHT": "6000"}
