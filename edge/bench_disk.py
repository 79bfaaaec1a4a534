"""A slow card on this box: cold page cache, and a process whose reads are throttled.

Benchmarks only (scripts/bench_startup.py): dropping the page cache and cgroup v1 blkio
throttling need root; `service` times a whole `edge serve` / `edge run` so throttled. The rate stands for an SD card on a Pi (docs/storage.md,
"Start-up on a slow card": a Pi 4's reader gives ~40 MB/s sequential at best).
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from edge.procstat import proc_io

BLKIO = Path("/sys/fs/cgroup/blkio")


def drop_caches() -> None:
    """Write back and drop the page cache: every read afterwards comes from the disk."""
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def disk_of(path: Path) -> str:
    """'major:minor' of the whole disk holding path (blkio throttles disks, not partitions)."""
    dev = os.stat(path).st_dev
    sysdir = Path(f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}")
    if (sysdir / "partition").exists():
        return (sysdir.resolve().parent / "dev").read_text().strip()
    return f"{os.major(dev)}:{os.minor(dev)}"


@contextmanager
def throttled(path: Path, read_bps: int, name: str = "edge_slow"):
    """A blkio cgroup reading at most read_bps from the disk of path; yields the file to
    write a pid into (a child joins it before it reads anything). Removed afterwards."""
    group = BLKIO / name
    group.mkdir(exist_ok=True)
    try:
        (group / "blkio.throttle.read_bps_device").write_text(f"{disk_of(path)} {int(read_bps)}\n")
        yield group / "cgroup.procs"
    finally:
        for pid in (group / "cgroup.procs").read_text().split():  # leftovers go back to the root
            try:
                (BLKIO / "cgroup.procs").write_text(pid)
            except OSError:
                pass
        group.rmdir()


def service(directory: Path, rate: float, code: Path, command: str) -> dict:
    """`edge serve` or `edge run` (demo camera) with the library as its app, cold: seconds
    to its first /health answer (serve) or READY=1 (run: sd_notify), and, for serve,
    until /health's index_loading is empty."""
    with tempfile.TemporaryDirectory() as tmp, socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        app = "1" if command == "serve" else "edge"  # edge run searches app `edge`
        (Path(tmp) / "apps").mkdir()
        (Path(tmp) / "apps" / app).symlink_to(directory.resolve())
        notify.bind(str(Path(tmp) / "notify"))
        notify.settimeout(0.05)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        cfg = Path(tmp) / "edge.yaml"
        cfg.write_text(f"data_dir: {tmp}\nserver:\n  port: {port}\n")
        env = {**os.environ, "EDGE_APPS": "1:key:secret", "PYTHONPATH": str(code),
               "NOTIFY_SOCKET": str(Path(tmp) / "notify")}
        args = ["serve"] if command == "serve" else ["run", "--source", "demo", "--duration", "600"]
        drop_caches()
        with throttled(directory, int(rate * 1e6)) as procs, open(Path(tmp) / "log", "w") as log:
            t0 = time.monotonic()
            proc = subprocess.Popen([sys.executable, "-m", "edge", "--config", str(cfg), *args], env=env, cwd=code,
                                    stdout=log, stderr=log, preexec_fn=lambda: procs.write_text(str(os.getpid())))
            ready = served = None
            try:
                while served is None and proc.poll() is None and time.monotonic() - t0 < 600:
                    if command == "run":
                        try:
                            if b"READY=1" in notify.recv(4096):
                                ready = served = time.monotonic() - t0
                        except OSError:
                            pass
                        continue
                    try:
                        health = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5))
                    except OSError:
                        time.sleep(0.05)
                        continue
                    ready = ready or time.monotonic() - t0
                    if not health.get("index_loading"):
                        served = time.monotonic() - t0
                    time.sleep(0.05)
                read_mb = proc_io(proc.pid)["read_bytes"] / 1e6
            finally:
                proc.terminate()
                proc.wait(60)
        lines = (Path(tmp) / "log").read_text().splitlines()
    return {"ready_s": ready, "graph_serves_s": served, "read_mb": read_mb,
            "log": [ln for ln in lines if "library" in ln or "ERROR" in ln][-4:]}
