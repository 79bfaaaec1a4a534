"""Bytes `edge run` writes an hour on the demo camera (issue 16: flash wear), and which files.

    python scripts/bench_writes.py [--seconds 600] [--status-interval S] [--keep DIR]

Starts a real `edge run` (child process, a temp data_dir on this disk, the demo camera,
the default config otherwise: attendance on, no event log file), reads /proc/<pid>/io
(write_bytes: what reached the block layer; wchar: what the process handed to write())
once the loop is READY and again before it stops, and polls the data_dir every 0.5 s:
each file's growth and how often it was rewritten (a new inode or mtime). Figures are
per hour; the child's own counters only (SQLite, the status file and the log are all
written by it). The load average is printed: other processes change nothing here
except the frame rate.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from edge.models.manifest import REPO_ROOT


def proc_io(pid: int) -> dict[str, int]:
    with open(f"/proc/{pid}/io") as fh:
        return {k: int(v) for k, v in (line.split(": ") for line in fh)}


def files(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every file under root: (size, inode, mtime_ns)."""
    out = {}
    for p in root.rglob("*"):
        try:
            st = p.stat()
        except FileNotFoundError:  # a temp file renamed meanwhile
            continue
        if p.is_file():
            out[str(p.relative_to(root))] = (st.st_size, st.st_ino, st.st_mtime_ns)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--status-interval", type=float, default=None, help="run.status_interval_s (default: the config's)")
    ap.add_argument("--keep", help="data_dir to use and keep (default: a temp dir on this disk)")
    args = ap.parse_args()
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="edge-writes-", dir="/var/tmp"))
    data = tmp / "data"
    run = f"run: {{status_interval_s: {args.status_interval}}}\n" if args.status_interval else ""
    (tmp / "edge.yaml").write_text(f"data_dir: {data}\nmodels: {{dir: {REPO_ROOT / 'models'}}}\n{run}")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "--config", str(tmp / "edge.yaml"), "run"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        status = data / "run" / "status.json"
        deadline = time.monotonic() + 120
        while not status.exists():  # the first status write follows READY and the warm-up
            if proc.poll() is not None or time.monotonic() > deadline:
                print("edge run did not start:", proc.stderr.read()[-2000:], file=sys.stderr)
                return 1
            time.sleep(0.2)
        t0, io0, seen0 = time.monotonic(), proc_io(proc.pid), files(data)
        seen, rewrites = dict(seen0), {}
        while time.monotonic() - t0 < args.seconds and proc.poll() is None:
            time.sleep(0.5)
            now = files(data)
            for name, (size, ino, mtime) in now.items():
                if name in seen and seen[name][1:] != (ino, mtime):
                    rewrites[name] = rewrites.get(name, 0) + 1
            seen.update(now)
        t1, io1 = time.monotonic(), proc_io(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    hours = (t1 - t0) / 3600
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"edge run, demo camera, {t1 - t0:.0f} s measured (load average {load}); data_dir {data}")
    for key in ("write_bytes", "wchar", "syscw"):
        d = io1[key] - io0[key]
        unit = "write() calls" if key == "syscw" else "bytes"
        print(f"  {key:12s} {d:>12,} {unit} in the run, {d / hours:>14,.0f} an hour")
    print("  files (growth over the run; rewrites seen at 0.5 s polls, an hour):")
    for name in sorted(seen):
        size = seen[name][0]
        grew = size - seen0.get(name, (0,))[0]
        print(f"    {name:32s} {size:>10,} B  grew {grew:>9,} B  rewritten {rewrites.get(name, 0) / hours:>7,.0f}/h")
    return 0


if __name__ == "__main__":
    sys.exit(main())
