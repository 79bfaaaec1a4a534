"""The console's cost to `edge serve`: peak resident memory (VmHWM) with the console off,
at its first start (the admin's password hashed) and after N logins at once; a login's
latency; one Argon2id verification. Prints one JSON line per figure, with the load.

    python scripts/bench_console.py [--logins 4] [--repeat 20]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from edge.procstat import memory_mb  # noqa: E402


def emit(**figure) -> None:
    figure = {k: round(v, 1) if isinstance(v, float) else v for k, v in figure.items()}
    print(json.dumps({**figure, "load": round(os.getloadavg()[0], 2)}), flush=True)


def serve(tmp: Path, console: dict):
    from serving import start_server
    srv = start_server(tmp, {"1001": ("AKbench", "SKbench-secret")}, extra={"console": console})
    found = re.search(r"created user admin with password (\S+)", srv.log_text())
    return srv, found.group(1) if found else None


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--logins", type=int, default=4, help="logins sent at once")
    p.add_argument("--repeat", type=int, default=20, help="Argon2id verifications timed")
    args = p.parse_args()
    from console_support import login
    from edge.console.auth import ARGON2, HASHER
    digest = HASHER.hash("x" * 12)
    times = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        HASHER.verify(digest, "x" * 12)
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    emit(figure="argon2id_verify_ms", params=ARGON2, p50=round(times[len(times) // 2], 1), max=round(times[-1], 1))
    with tempfile.TemporaryDirectory() as off_dir, tempfile.TemporaryDirectory() as on_dir:
        srv, _ = serve(Path(off_dir), {"enabled": False})
        emit(figure="serve_peak_mb", console="off", **memory_mb(srv.proc.pid))
        srv.stop()
        srv, password = serve(Path(on_dir), {})
        try:
            emit(figure="serve_peak_mb", console="first start", **memory_mb(srv.proc.pid))
            with ThreadPoolExecutor(args.logins) as pool:
                def one(_):
                    t = time.perf_counter()
                    status = login(srv.url, "admin", password)[1].status_code
                    return status, (time.perf_counter() - t) * 1000
                done = list(pool.map(one, range(args.logins)))
            assert all(s == 303 for s, _ in done), done
            ms = sorted(m for _, m in done)
            emit(figure="serve_peak_mb", console=f"after {args.logins} logins at once", **memory_mb(srv.proc.pid))
            emit(figure="login_ms", logins_at_once=args.logins, p50=round(ms[len(ms) // 2], 1), max=round(ms[-1], 1))
        finally:
            srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
