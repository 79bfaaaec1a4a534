#!/usr/bin/env python3
"""The live view's figures (docs/console.md, "Live view"): the loop's fps and CPU with no
viewer, one browser, one browser + 2 WebSocket viewers, and none again; the browser's
capture -> drawn latency; bytes per second per viewer. Usage:
    PYTHONPATH=. python scripts/bench_live.py [--seconds 20] [--fps 30]"""
import argparse
import os
import tempfile
from pathlib import Path

from edge.config import load_config
from edge.console.bench import encode_ms, overlay_ms, run_bench

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("--seconds", type=float, default=20.0, help="per phase")
p.add_argument("--fps", type=float, default=30.0, help="the demo camera's rate (above what the loop processes)")
p.add_argument("--extra", type=int, default=2, help="WebSocket viewers besides the browser")
a = p.parse_args()
with tempfile.TemporaryDirectory(prefix="bench-console-") as tmp:
    print(f"load average {os.getloadavg()[0]:.2f} at start")
    cfg = load_config()
    print(f"one frame scaled and JPEG-encoded (640x480, quality 70, encoder thread): "
          f"{encode_ms(cfg.models_dir):.2f} ms")
    print("a demo frame processed: {:.1f} ms; its overlay built (processing thread, watched frames only): "
          "{:.2f} ms".format(*overlay_ms(cfg, Path(tmp))))
    for ph in run_bench(Path(tmp), a.seconds, a.fps, a.extra):
        print(ph.line())
    print(f"load average {os.getloadavg()[0]:.2f} at end")
