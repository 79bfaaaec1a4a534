"""Decompression bombs of every accepted format: refused with the right code, cheaply.

Each file is decoded in a child process (edge/imaging/probe.py: fresh, so its peak RSS
is the decode's) whose peak RSS and wall time are checked against generous bounds, for
v2 and v3.  Two ways:
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

import cv2
import numpy as np
import pytest

from edge.errors import IMAGE_ERRORS
from edge.imaging.probe import probe
from edge.models.manifest import REPO_ROOT
from image_bombs import BOMBS

MAX_RSS_MB, MAX_SECONDS = 400, 10.0


@pytest.fixture(scope="module")
def bomb_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bombs")
    paths = {}
    for name, (build, _cause) in BOMBS.items():
        paths[name] = folder / name
        paths[name].write_bytes(build())
    return paths


@pytest.mark.parametrize("mode, api", [("edge_first", "v2"), ("edge_first", "v3"), ("opencv_first", "v3")])
@pytest.mark.parametrize("name", sorted(BOMBS))
def test_bomb_is_refused_cheaply(bomb_files, name, mode, api):
    answer = probe(bomb_files[name], api, mode=mode)
    assert answer["code"] == IMAGE_ERRORS[api][BOMBS[name][1]], answer
    assert answer["rss_mb"] < MAX_RSS_MB and answer["seconds"] < MAX_SECONDS, answer


@pytest.mark.parametrize("name", ["jpeg_stray_byte", "png_ihdr_bomb", "bmp_rle8_header36", "bmp_os2_core"])
def test_opencv_itself_is_bounded_once_edge_is_imported(bomb_files, name):
    answer = probe(bomb_files[name], mode="opencv_direct")
    assert answer["code"] == -1, answer  # OpenCV refused it
    assert answer["rss_mb"] < MAX_RSS_MB and answer["seconds"] < MAX_SECONDS, answer


def test_bound_values_and_an_operators_lower_bound(monkeypatch):
    from edge.image_limits import bound_opencv_decoder, decoder_bound
    env = {"OPENCV_IO_MAX_IMAGE_PIXELS": "1000000", "OPENCV_IO_MAX_IMAGE_WIDTH": "99999999"}
    bound_opencv_decoder(env)
    assert decoder_bound()["OPENCV_IO_MAX_IMAGE_PIXELS"] == 6000 * 6000
    assert env == {"OPENCV_IO_MAX_IMAGE_PIXELS": "1000000", "OPENCV_IO_MAX_IMAGE_WIDTH": "6000",
                   "OPENCV_IO_MAX_IMAGE_HEIGHT": "6000"}


# A small parent that runs the CLI and prints its child's peak RSS: a child forked from
# pytest itself would start with pytest's own pages counted in its high-water mark.
CLI_PEAK = r"""
import resource, subprocess, sys
proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)
sys.stderr.write(proc.stderr)
print(proc.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)
print(proc.stdout)
"""


def test_cli_detect_refuses_a_bomb(bomb_files, tmp_path):
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", CLI_PEAK, sys.executable, "-m", "edge.cli", "detect",
                           str(bomb_files["jpeg_stray_byte"])], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    elapsed = time.monotonic() - started
    head, _, answer = proc.stdout.partition("\n")
    returncode, peak_mb = (int(v) for v in head.split())
    assert returncode == 1 and json.loads(answer)["error_code"] == 216202, proc.stderr[-2000:]
    assert peak_mb < MAX_RSS_MB and elapsed < MAX_SECONDS, (peak_mb, elapsed)


FOLDER_CHILD = r"""
import sys, cv2, numpy as np
from pathlib import Path
from edge.camera.sources import FolderSource
from edge.bench import memory_mb
with FolderSource(Path(sys.argv[1]), name="f", fps=50, loop=True) as src:
    frames = [src.read() for _ in range(2)]
print([f.shape[:2] for f in frames], round(memory_mb()["peak"]))
"""


def test_a_folder_camera_skips_a_bomb(bomb_files, tmp_path):
    # cv2.imread raises (it does not return None) for a file over the bound edge sets.
    (tmp_path / "000.jpg").write_bytes(bomb_files["jpeg_stray_byte"].read_bytes())
    cv2.imwrite(str(tmp_path / "001.png"), np.zeros((48, 64, 3), np.uint8))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCV_IO_")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", "import edge\n" + FOLDER_CHILD, str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    shapes, peak_mb = proc.stdout.strip().rsplit(" ", 1)
    assert shapes == "[(48, 64), (48, 64)]" and float(peak_mb) < MAX_RSS_MB
    assert time.monotonic() - started < MAX_SECONDS
