"""A process's memory and I/O counters from /proc (Linux), for the benchmarks. Imports
nothing of the models' stack, so a benchmark of the library alone measures only that."""
from __future__ import annotations

from pathlib import Path


def memory_mb(pid: int | str = "self") -> dict[str, float]:
    """Resident set size now ("rss") and at its peak ("peak") of a process (Linux), in MB;
    NaN where /proc cannot tell. Every benchmark reads memory through this."""
    out = {"rss": float("nan"), "peak": float("nan")}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    out["rss" if line.startswith("VmRSS") else "peak"] = int(line.split()[1]) / 1024
    except OSError:
        pass
    return out


def proc_io(pid: int | str = "self") -> dict[str, int]:
    """The kernel's I/O counters of a process (read_bytes / write_bytes: what reached the
    block layer; rchar / wchar: what the process handed to read() / write())."""
    out = {}
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        key, value = line.split(":")
        out[key] = int(value)
    return out


def cpu_seconds(pid: int | str = "self") -> float:
    """CPU time a process has used so far (user + system, all its threads), in seconds."""
    import os
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
