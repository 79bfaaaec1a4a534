"""A slow card on this box: cold page cache, and a process whose reads are throttled.

Benchmarks only (scripts/bench_startup.py): dropping the page cache and cgroup v1 blkio
throttling need root. The rate stands for an SD card on a Pi (docs/storage.md,
"Start-up on a slow card": a Pi 4's reader gives ~40 MB/s sequential at best).
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

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


def proc_io(pid: int | str = "self") -> dict[str, int]:
    """The kernel's I/O counters of a process (read_bytes: what came from the disk)."""
    out = {}
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        key, value = line.split(":")
        out[key] = int(value)
    return out


def rss_mb() -> float:
    """Resident MB of this process now (VmRSS; no import of the models' stack)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")
