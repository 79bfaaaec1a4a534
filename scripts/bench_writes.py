"""Bytes `edge run` writes an hour on the demo camera (issue 16: flash wear), and which files.

    python scripts/bench_writes.py [--seconds 600] [--sync] [--people] [--runtime-dir DIR]
                                   [--status-interval S] [--keep DIR] [--no-strace]

Starts a real `edge run` (child process, a temp data_dir on this disk, the demo camera,
the default config otherwise: attendance on, no event log file) and measures a window
that opens once the loop is READY (its first status write) and closes before it stops:

- /proc/<pid>/io: write_bytes (pages dirtied: what goes to the block device),
  cancelled_write_bytes (dirtied pages of files deleted before writeback), wchar
  (everything handed to write(), the log's pipe too);
- per file, under strace (when installed: -f --seccomp-bpf, one output file per thread
  on /dev/shm): bytes handed to write()/pwrite() and fsync()/fdatasync() calls; SQLite's
  -shm is mmap'd, so its writes appear in write_bytes only;
- every 0.5 s each file's growth and rewrites (a new inode or mtime);
- the log: bytes the process writes to stderr (journald's input under systemd).

--sync: a real hub (`edge serve` on loopback, its own temp data_dir) that the terminal
follows (sync:, the field case). --people: the demo photo's person is enrolled (in the
hub's library with --sync), liveness NONE, so the demo's tracks are recognised: events,
attendance rows (attendance_min_interval_s 0: each track stands for someone passing),
the event log file (events.log_file) and a webhook to a loopback receiver (the outbox).
--runtime-dir: the status files there (a tmpfs such as /dev/shm stands for /run/edge).
Figures are per hour, with the card's endurance at that rate (edge/flash.py). The load
average is printed: other processes change only the frame rate here.
"""
from __future__ import annotations

import argparse
import base64
import collections
import http.server
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

from edge.flash import CARD, budget_bytes_per_hour, endurance_years, host_bytes_per_hour
from edge.models.manifest import REPO_ROOT, sample_path
from edge.procstat import proc_io
from edge.server.process import spawn

APP = "1001"
HUB_APP = {"api_key": "AKhub", "secret_key": "SKhub-secret", "qps": 1000,
           "feed_keys": [{"api_key": "FKdoor", "secret_key": "FSdoor-secret"}]}
TRACE = re.compile(r"^(\d+\.\d+) (write|pwrite64|writev|pwritev|fsync|fdatasync)\((\d+)<([^>]*)>.*\) += (-?\d+)")


def files(roots: list[Path]) -> dict[str, tuple[int, int, int]]:
    """Every file under the roots: (size, inode, mtime_ns)."""
    out = {}
    for root in roots:
        for p in root.rglob("*"):
            try:
                st = p.stat()
            except FileNotFoundError:  # a temp file renamed meanwhile
                continue
            if p.is_file():
                out[str(p)] = (st.st_size, st.st_ino, st.st_mtime_ns)
    return out


def enrol_demo(config: Path, app_id: str) -> None:
    """The demo photo's person in the library the loop searches (the real API)."""
    from edge.aip.v3 import AipFace
    from edge.config import load_config
    cfg = load_config(config)
    image = base64.b64encode(sample_path("demo", cfg.models_dir).read_bytes()).decode()
    out = AipFace(app_id, "", "", config=cfg).addUser(image, "BASE64", "staff", "demo_person")
    if out["error_code"]:
        raise SystemExit(f"enrolling the demo photo failed: {out}")


def webhook_receiver() -> tuple[http.server.ThreadingHTTPServer, list]:
    got = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            got.append(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, got


def traced_child(strace_pid: int) -> int:
    """strace's child running `edge run`: the process whose counters are read."""
    for kid in Path(f"/proc/{strace_pid}/task/{strace_pid}/children").read_text().split():
        if b"edge.cli" in Path(f"/proc/{kid}/cmdline").read_bytes():
            return int(kid)
    raise SystemExit("edge run is not running under strace")


def per_file_writes(trace_dir: Path, t0: float, t1: float) -> dict[str, list[int]]:
    """path -> [bytes written, write calls, fsyncs] between wall times t0 and t1."""
    out = collections.defaultdict(lambda: [0, 0, 0])
    for f in trace_dir.glob("trace.*"):
        for line in f.read_text(errors="replace").splitlines():
            m = TRACE.match(line)
            if not m or not t0 <= float(m[1]) <= t1:
                continue
            path, ret = m[4], int(m[5])
            if m[2].startswith("f"):
                out[path][2] += 1
            elif ret > 0:
                out[path][0] += ret
                out[path][1] += 1
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--status-interval", type=float, default=None, help="run.status_interval_s (default: the config's)")
    ap.add_argument("--sync", action="store_true", help="follow a real hub on loopback")
    ap.add_argument("--people", action="store_true", help="the demo's person enrolled: recognised events")
    ap.add_argument("--runtime-dir", help="runtime_dir: the status files there (e.g. a tmpfs)")
    ap.add_argument("--keep", help="folder to use and keep (default: a temp dir on this disk)")
    ap.add_argument("--no-strace", action="store_true", help="no per-file write() and fsync counts")
    args = ap.parse_args()
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="edge-writes-", dir="/var/tmp"))
    data, models = tmp / "data", str(REPO_ROOT / "models")
    body: dict = {"data_dir": str(data), "models": {"dir": models}, "run": {}, "events": {}}
    if args.status_interval:
        body["run"]["status_interval_s"] = args.status_interval
    runtime = Path(args.runtime_dir) if args.runtime_dir else data / "run"
    if args.runtime_dir:
        body["runtime_dir"] = str(runtime)
    hub = receiver = None
    got: list = []
    if args.sync:
        hub_cfg = tmp / "hub" / "edge.yaml"
        hub_cfg.parent.mkdir(parents=True)
        hub_cfg.write_text(yaml.safe_dump({"data_dir": str(tmp / "hub" / "data"), "models": {"dir": models},
                                           "server": {"port": 0}, "apps": {APP: HUB_APP}}))
        if args.people:
            enrol_demo(hub_cfg, APP)
        hub = spawn(hub_cfg, cwd=tmp / "hub")
        key = HUB_APP["feed_keys"][0]
        body["sync"] = {"hub_url": hub.url, "app_id": APP, "api_key": key["api_key"], "secret_key": key["secret_key"]}
        body["run"]["app_id"] = APP
    (tmp / "edge.yaml").write_text(yaml.safe_dump(body))
    if args.people:
        receiver, got = webhook_receiver()
        body["run"]["liveness_control"] = "NONE"
        body["events"] = {"log_file": str(data / "events.jsonl"), "attendance_min_interval_s": 0,
                          "webhook_url": f"http://127.0.0.1:{receiver.server_port}/events"}
        if not args.sync:
            enrol_demo(tmp / "edge.yaml", "edge")
        (tmp / "edge.yaml").write_text(yaml.safe_dump(body))
    strace = None if args.no_strace else shutil.which("strace")
    trace_dir = Path(tempfile.mkdtemp(prefix="edge-writes-trace-", dir="/dev/shm")) if strace else None
    cmd = [sys.executable, "-m", "edge.cli", "--config", str(tmp / "edge.yaml"), "run"]
    if strace:
        cmd = [strace, "-f", "--seccomp-bpf", "-ttt", "-y", "-qq", "-s", "0", "-ff", "-o", str(trace_dir / "trace"),
               "-e", "trace=write,pwrite64,writev,pwritev,fsync,fdatasync", *cmd]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    log_bytes = [0, 0]   # [in the window, total]: drained, so the pipe never fills and blocks the loop
    window = threading.Event()

    def drain():
        for chunk in iter(lambda: proc.stderr.read1(65536), b""):
            log_bytes[1] += len(chunk)
            if window.is_set():
                log_bytes[0] += len(chunk)
    threading.Thread(target=drain, daemon=True).start()
    pid = proc.pid
    try:
        deadline = time.monotonic() + 180
        while not (runtime / "status.json").exists():  # the first status write follows READY and the warm-up
            if proc.poll() is not None or time.monotonic() > deadline:
                print("edge run did not start", file=sys.stderr)
                return 1
            time.sleep(0.2)
        pid = traced_child(proc.pid) if strace else proc.pid
        roots = [data] + ([runtime] if args.runtime_dir else [])
        t0, w0, io0, seen0 = time.monotonic(), time.time(), proc_io(pid), files(roots)
        window.set()
        got0 = len(got)
        seen, rewrites = dict(seen0), {}
        while time.monotonic() - t0 < args.seconds and proc.poll() is None:
            time.sleep(0.5)
            now = files(roots)
            for name, (size, ino, mtime) in now.items():
                if name in seen and seen[name][1:] != (ino, mtime):
                    rewrites[name] = rewrites.get(name, 0) + 1
            seen.update(now)
        window.clear()
        t1, w1, io1 = time.monotonic(), time.time(), proc_io(pid)
        events = [line for line in (data / "events.jsonl").read_text().splitlines()
                  if w0 <= float(line.split('"ts":', 1)[1].split(",", 1)[0]) <= w1] \
            if (data / "events.jsonl").exists() else []
        posts = len(got) - got0
    finally:
        if proc.poll() is None:
            try:
                os.kill(pid, signal.SIGTERM)   # edge run itself (strace exits with it)
            except ProcessLookupError:
                proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
        if hub is not None:
            hub.stop()
        if receiver is not None:
            receiver.shutdown()
    hours = (t1 - t0) / 3600
    traced = per_file_writes(trace_dir, w0, w1) if strace else {}
    if trace_dir:
        shutil.rmtree(trace_dir, ignore_errors=True)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    what = ", ".join(w for w, on in (("sync with a hub", args.sync), ("people passing", args.people),
                                     (f"runtime_dir {runtime}", args.runtime_dir)) if on) or "default config"
    print(f"edge run, demo camera, {what}: {t1 - t0:.0f} s measured (load average {load}); folder {tmp}")
    d = {k: io1[k] - io0[k] for k in ("write_bytes", "cancelled_write_bytes", "wchar", "syscw")}
    for key, unit in (("write_bytes", "bytes"), ("cancelled_write_bytes", "bytes"), ("wchar", "bytes"),
                      ("syscw", "write() calls")):
        print(f"  {key:22s} {d[key]:>12,} {unit} in the run, {d[key] / hours:>14,.0f} an hour")
    print(f"  {'the log (stderr)':22s} {log_bytes[0]:>12,} bytes in the run, {log_bytes[0] / hours:>14,.0f} an hour")
    net = (d["write_bytes"] - d["cancelled_write_bytes"]) / hours
    fsyncs = sum(v[2] for v in traced.values()) / hours
    host = host_bytes_per_hour(net, fsyncs)
    print(f"  to the card: {net / 1e6:.2f} MB/h (write_bytes - cancelled)"
          + (f" + journal {fsyncs:,.0f} fsyncs/h = {host / 1e6:.2f} MB/h" if strace else "")
          + f": {endurance_years(host):,.0f} years on a {CARD.size_bytes / 1e9:.0f} GB card "
          f"({CARD.pe_cycles:.0f} P/E, write amplification {CARD.write_amplification:.0f}; "
          f"budget {budget_bytes_per_hour() / 1e6:.1f} MB/h for 10 years)")
    if args.people:
        n = max(len(events), 1)
        print(f"  events in the window: {len(events)} ({len(events) / hours:,.0f}/h), webhook posts {posts}; "
              f"per event: {net * hours / n / 1024:,.1f} KiB write_bytes, {d['wchar'] / n / 1024:,.1f} KiB wchar, "
              f"{log_bytes[0] / n:,.0f} B of log")
    print("  files (growth over the run; rewrites seen at 0.5 s polls; write()/fsync from strace; an hour):")
    base = str(tmp) + "/"
    names = sorted(set(seen) | {p for p in traced if p.startswith("/")})
    for name in names:
        size = seen.get(name, (0,))[0]
        grew = size - seen0.get(name, (0,))[0]
        written, calls, syncs = traced.get(name, (0, 0, 0))
        print(f"    {name.replace(base, ''):34s} {size:>10,} B  grew {grew:>9,} B  "
              f"rewritten {rewrites.get(name, 0) / hours:>6,.0f}/h  write() {written / hours:>11,.0f} B/h "
              f"in {calls / hours:>6,.0f}  fsync {syncs / hours:>5,.0f}/h")
    pipes = sum(v[0] for p, v in traced.items() if not p.startswith("/"))
    if strace:
        print(f"    {'(pipes and sockets: the log, HTTP)':34s} write() {pipes / hours:>11,.0f} B/h")
    return 0


if __name__ == "__main__":
    sys.exit(main())
