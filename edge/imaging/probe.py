"""Decode one file in a fresh child process and report its answer, peak RSS and time.

Why a child: a process's peak RSS (ru_maxrss) only ever grows, so the cost of one
decode is only visible in a process that did nothing else.  Used by the bomb tests and
scripts/bench_decode.py.

    python -m edge.imaging.probe edge_first|opencv_first|opencv_direct FILE [API [METHOD]]
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

MODES = ("edge_first", "opencv_first", "opencv_direct")


def probe(path, api: str = "v2", method: str | None = None, mode: str = "edge_first", timeout: float = 120) -> dict:
    """{"code": error_code (0: decoded), "rss_mb": child's peak RSS, "seconds": wall time}.

    edge_first: `import edge` bounds OpenCV, then decode_image.  opencv_first: OpenCV
    loaded first with its own defaults, so only edge's header checks stand.
    opencv_direct: cv2.imdecode after `import edge` ("code" 0 if OpenCV decoded it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCV_IO_")}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[2]), env.get("PYTHONPATH", "")])
    args = [sys.executable, "-m", "edge.imaging.probe", mode, str(path), api] + ([method] if method else [])
    started = time.monotonic()
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise RuntimeError(f"probe failed: {proc.stderr[-2000:]}")
    return {**json.loads(proc.stdout.strip().splitlines()[-1]), "seconds": round(seconds, 2)}


def _main(mode: str, path: str, api: str = "v2", method: str | None = None) -> dict:
    if mode == "opencv_first":
        import cv2  # noqa: F401 - OpenCV's own limits (1 Gpixel) for this process
    import edge  # noqa: F401 - sets OPENCV_IO_MAX_IMAGE_* (effective unless cv2 came first)
    from edge.errors import EdgeError
    from edge.imaging import decode_image
    from edge.procstat import memory_mb
    raw = Path(path).read_bytes()
    if mode == "opencv_direct":
        import cv2
        import numpy as np
        try:
            code = 0 if cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR) is not None else -1
        except cv2.error:
            code = -1
    else:
        try:
            decode_image(raw, api=api, method=method)
            code = 0
        except EdgeError as exc:
            code = exc.error_code
    # VmHWM, not ru_maxrss: after fork + exec, ru_maxrss still counts the parent's RSS.
    return {"code": code, "rss_mb": round(memory_mb()["peak"], 1)}


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in MODES:
        sys.exit(__doc__)
    print(json.dumps(_main(*sys.argv[1:])))
