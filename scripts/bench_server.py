"""Load test of `edge serve` on loopback against calling the Python API directly.

    python scripts/bench_server.py [--clients 50] [--faces 10000] [--seconds 20] [--warmup 3]
                                   [--workers 2 | --workers 1,2,3] [--threads N] [--token] [--mixed]
                                   [--direct-threads N] [--skip-direct] [--dir D --keep]

One temporary data folder holds a library of --faces synthetic faces (unit-norm 128-d
vectors, 3 per identity, bulk-registered with register_many) plus a few real people
enrolled through the HTTP API (v3 faceset/user/add with LFW / face_recognition photos,
through a server of its own). Then:

  A  `edge serve` in a subprocess (server.workers = --workers; several values: one
     fresh server each); --clients threads, each with its own requests.Session
     (keep-alive), POST v3 search with other photos of the enrolled people (base64 and
     JSON bodies precomputed) for --warmup + --seconds;
  B  as many threads (--direct-threads, default --clients) calling
     edge.aip.v3.AipFace.search in this process, same config, library and photos, same
     duration.

Reported per phase: throughput (completions inside the measured window / window),
p50/p99 latency of the requests started inside it, errors (HTTP status != 200,
exceptions, error_code != 0 -- over every request, warm-up included; must be 0),
top-1 hits on the expected person, resident memory (VmRSS) of the serving process (the
server for A, this process for B) before the load and after it plus its peak (VmHWM),
the serving process's CPU per request, and the share of the machine other processes
used meanwhile (a shared machine makes every figure meaningless; look there first).
Target (the issue): A's throughput >= 80 % of B's.

With --token the same two phases also run with image_type FACE_TOKEN (the enrolled
faces' tokens): no inference, library search only, so they show the HTTP stack's own
cost; reported separately, no target.

With --mixed, one more HTTP phase: half the clients search by photo, half by FACE_TOKEN,
at once (rows mix-img and mix-tok): a token search needs no inference and must not wait
behind the photos (it runs in the library pool), so its rate should stay near the
token-only phase's.

numpy's OpenBLAS thread settings (OPENBLAS_NUM_THREADS, ...) are passed on to the
server and shown; they matter for the library search under concurrency.

A table is printed, then one JSON line with every figure.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import requests
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from edge.procstat import memory_mb as rss_mb  # noqa: E402 - after the path set-up
from edge.server.process import spawn  # noqa: E402

APP_ID, API_KEY, SECRET_KEY = "1001", "AKbench1001", "SKbench1001-secret"
GROUP = "bench"
FACES_PER_ID = 3
BATCH = 5000
LFW = Path("/work/shared/data/lfw-view1/images")
EXAMPLES = Path("/work/shared/data/peers/face_recognition/examples")
# Enrolled with the first photo, searched with the second (LFW: the person's next photo).
LFW_PEOPLE = ("Ricardo_Lagos", "Paul_Wolfowitz", "Jennifer_Lopez", "Zhu_Rongji", "Hans_Blix", "Angelina_Jolie")
EXAMPLE_PEOPLE = (("obama", "obama.jpg", "obama2.jpg"), ("biden", "biden.jpg", None))
TARGET = 0.80
# Thread settings of numpy's BLAS; they reach the server through its environment.
BLAS_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


# -- small helpers ----------------------------------------------------------------------------
TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int | str = "self") -> float:
    """User + system CPU seconds of a process (all its threads)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / TICK


def busy_s() -> float:
    """CPU seconds the whole machine has been busy (every core, every process)."""
    user, nice, system, idle, iowait, irq, softirq, steal = (int(v) for v in
                                                             Path("/proc/stat").read_text().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / TICK


class CpuMeter:
    """CPU used over a phase by the serving process, this (client) process and everything else."""

    def __init__(self, server_pid: int | None = None):
        self.pid = server_pid
        self.t, self.busy, self.me = time.perf_counter(), busy_s(), cpu_s()
        self.srv = cpu_s(server_pid) if server_pid else 0.0

    def done(self, requests: int) -> dict:
        wall = time.perf_counter() - self.t
        me = cpu_s() - self.me
        srv = cpu_s(self.pid) - self.srv if self.pid else 0.0
        other = max(0.0, busy_s() - self.busy - me - srv)
        serving = srv if self.pid else me
        return {"serving_cpu_ms_per_req": round(serving * 1000 / requests, 2) if requests else None,
                "client_cpu_s": round(me, 1) if self.pid else None, "server_cpu_s": round(serving, 1),
                "other_cpu_pct": round(100 * other / (wall * (os.cpu_count() or 1)), 1)}


def b64_file(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode("ascii")


def photo_sets(n_search: int) -> tuple[list[tuple[str, Path]], list[tuple[str, Path]]]:
    """([(user_id, enrol photo)], [(user_id, search photo)]): real people, different photos."""
    enrol, search = [], []
    for name in LFW_PEOPLE:
        files = sorted((LFW / name).glob("*.jpg"))
        if len(files) >= 2:
            enrol.append((name.lower(), files[0]))
            search.append((name.lower(), files[1]))
    for uid, first, second in EXAMPLE_PEOPLE:
        if (EXAMPLES / first).exists():
            enrol.append((uid, EXAMPLES / first))
            if second and (EXAMPLES / second).exists():
                search.append((uid, EXAMPLES / second))
    if not enrol or not search:
        raise SystemExit(f"no photos found under {LFW} / {EXAMPLES}")
    # Keep the larger example photo in when trimming: a mix of sizes, as real clients send.
    search = search[-1:] + search[:-1]
    return enrol, search[:n_search]


def unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


def build_library(data_dir: Path, faces: int, model_id: str, seed: int = 0) -> dict:
    """--faces synthetic faces in GROUP, bulk-registered (register_many, 5,000 a transaction)."""
    from edge.library.library import close_all, open_library
    from edge.library.store import FaceRecord

    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    lib = open_library(data_dir, APP_ID)
    ids = -(-faces // FACES_PER_ID)
    batch, done = [], 0
    for i in range(ids):
        centre = unit(rng.standard_normal(128).astype(np.float32))
        n = min(FACES_PER_ID, faces - done)
        vecs = unit(centre + rng.standard_normal((n, 128)).astype(np.float32) * 0.055)
        for j, vec in enumerate(vecs):
            batch.append(([GROUP], f"syn{i}", f"synthetic {i}", FaceRecord(f"{i:024x}{j:08x}", vec, model_id),
                          "append"))
        done += n
        if len(batch) >= BATCH:
            lib.register_many(batch)
            batch.clear()
    if batch:
        lib.register_many(batch)
    lib.save_index()  # the server then loads the index instead of rebuilding it
    count = lib.store.face_count()
    close_all()
    return {"faces": count, "build_s": time.perf_counter() - t0}


# -- the server subprocess ------------------------------------------------------------------------
def write_config(tmp: Path, workers: int, threads: int | None, clients: int) -> Path:
    from edge.config import load_config
    cfg = {"data_dir": str(tmp / "data"),
           "models": {"dir": str(load_config().models_dir)},
           "server": {"port": 0, "workers": workers, "qps": 1_000_000.0, "max_pending": max(64, clients)},
           "apps": {APP_ID: {"api_key": API_KEY, "secret_key": SECRET_KEY}}}
    if threads:
        cfg["runtime"] = {"threads": threads}
    path = tmp / f"edge-w{workers}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def access_token(url: str) -> str:
    r = requests.get(f"{url}/oauth/2.0/token", params={"grant_type": "client_credentials",
                                                       "client_id": API_KEY, "client_secret": SECRET_KEY}, timeout=30)
    r.raise_for_status()
    return r.json()["access_token"]


def enrol_http(url: str, token: str, people: list[tuple[str, Path]]) -> dict[str, str]:
    """v3 faceset/user/add for each real person; their face_tokens by user_id."""
    tokens = {}
    with requests.Session() as s:
        for uid, path in people:
            body = {"image": b64_file(path), "image_type": "BASE64", "group_id": GROUP, "user_id": uid,
                    "user_info": path.stem, "action_type": "REPLACE"}
            r = s.post(f"{url}/rest/2.0/face/v3/faceset/user/add", params={"access_token": token},
                       json=body, timeout=120)
            j = r.json()
            if r.status_code != 200 or j.get("error_code"):
                print(f"  enrol {uid} ({path.name}) failed: HTTP {r.status_code} {j}", file=sys.stderr)
                continue
            tokens[uid] = j["result"]["face_token"]
    if not tokens:
        raise RuntimeError("no real person could be enrolled")
    return tokens


# -- the load loop ---------------------------------------------------------------------------------
@dataclass
class Load:
    """What one phase measured."""
    window_s: float = 0.0
    completed: int = 0              # completions inside the measured window
    issued: int = 0                 # every request, warm-up and tail included
    latencies: list = field(default_factory=list)   # s, requests started inside the window
    errors: dict = field(default_factory=dict)      # kind -> count, over every request
    samples: list = field(default_factory=list)     # a few error texts
    top1: int = 0                   # answers whose first user is the expected person
    answered: int = 0               # successful answers

    def figures(self) -> dict:
        lat = np.array(self.latencies) * 1000 if self.latencies else np.array([np.nan])
        return {"requests": self.issued, "measured": self.completed, "window_s": round(self.window_s, 2),
                "throughput_rps": round(self.completed / self.window_s, 2) if self.window_s else 0.0,
                "p50_ms": round(float(np.percentile(lat, 50)), 1),
                "p99_ms": round(float(np.percentile(lat, 99)), 1),
                "mean_ms": round(float(lat.mean()), 1),
                "errors": sum(self.errors.values()), "error_kinds": dict(self.errors),
                "error_samples": self.samples[:5],
                "top1_rate": round(self.top1 / self.answered, 4) if self.answered else 0.0}


def run_load(make_caller, jobs: list, clients: int, warmup: float, seconds: float) -> Load:
    """`clients` threads, each calling caller(job) in a loop (its own caller: make_caller()).

    caller returns (error kind or None, top-1 user_id or None). Every thread starts at
    the same instant, warms up for `warmup` s, then the window [t0, t0 + seconds] is
    measured; threads stop issuing at its end and finish what they have in flight."""
    out = Load()
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)
    clock = {}
    stop = threading.Event()

    def worker(k: int):
        caller = make_caller()
        lat, done, issued, errs, samples, top1, answered = [], 0, 0, {}, [], 0, 0
        try:
            start.wait()
            t0, t1 = clock["t0"], clock["t1"]
            i = k
            while not stop.is_set():
                job = jobs[i % len(jobs)]
                i += 1
                s = time.perf_counter()
                if s >= t1:
                    break
                try:
                    kind, got = caller(job)
                except Exception as exc:  # noqa: BLE001 - a failure is a figure, not a crash
                    kind, got = "exception", None
                    if len(samples) < 3:
                        samples.append(repr(exc)[:200])
                e = time.perf_counter()
                issued += 1
                if kind:
                    errs[kind.split(":")[0]] = errs.get(kind.split(":")[0], 0) + 1
                    if len(samples) < 3 and kind != "exception":
                        samples.append(kind[:200])
                else:
                    answered += 1
                    top1 += got == job["expect"]
                if s >= t0:
                    lat.append(e - s)
                if t0 <= e <= t1:
                    done += 1
        finally:
            with lock:
                out.latencies += lat
                out.completed += done
                out.issued += issued
                for key, n in errs.items():
                    out.errors[key] = out.errors.get(key, 0) + n
                out.samples += samples
                out.top1 += top1
                out.answered += answered

    threads = [threading.Thread(target=worker, args=(k,), daemon=True, name=f"client-{k}") for k in range(clients)]
    for t in threads:
        t.start()
    now = time.perf_counter()
    clock["t0"] = now + warmup
    clock["t1"] = now + warmup + seconds
    out.window_s = seconds
    try:
        start.wait()
        for t in threads:
            t.join()
    except BaseException:
        stop.set()
        raise
    return out


def run_mixed(make_caller, groups: dict[str, list], clients: int, warmup: float, seconds: float) -> dict:
    """run_load for each group of jobs at once, the clients split evenly: {name: Load}."""
    out: dict[str, Load] = {}
    share = max(1, clients // len(groups))

    def one(name, jobs):
        out[name] = run_load(make_caller, jobs, share, warmup, seconds)
    threads = [threading.Thread(target=one, args=item, daemon=True) for item in groups.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def http_caller(url: str, token: str):
    """One client: its own keep-alive session, POST v3 search with a precomputed body."""
    search = f"{url}/rest/2.0/face/v3/search?access_token={token}"
    headers = {"Content-Type": "application/json"}

    def make():
        session = requests.Session()

        def call(job):
            r = session.post(search, data=job["body"], headers=headers, timeout=300)
            if r.status_code != 200:
                return f"http:{r.status_code} {r.text[:100]}", None
            j = r.json()
            if j.get("error_code"):
                return f"api:{j['error_code']} {j.get('error_msg')}", None
            return None, j["result"]["user_list"][0]["user_id"]
        return call
    return make


def direct_caller(client):
    def make():
        def call(job):
            j = client.search(job["image"], job["image_type"], GROUP, {})
            if j.get("error_code"):
                return f"api:{j['error_code']} {j.get('error_msg')}", None
            return None, j["result"]["user_list"][0]["user_id"]
        return call
    return make


def make_jobs(items: list[tuple[str, str]], image_type: str) -> list[dict]:
    """[(expected user_id, image or token)] -> jobs with the JSON body precomputed."""
    return [{"expect": uid, "image": image, "image_type": image_type,
             "body": json.dumps({"image": image, "image_type": image_type, "group_id_list": GROUP}).encode()}
            for uid, image in items]


# -- phases ----------------------------------------------------------------------------------------
def enrol_people(config_path: Path, tmp: Path, enrol) -> dict[str, str]:
    """The real people, enrolled through a server of their own (so that every measured
    server starts fresh: its 'RSS before' is the same start-up figure)."""
    srv = spawn(config_path, cwd=tmp, timeout=180.0)
    try:
        tokens = enrol_http(srv.url, access_token(srv.url), enrol)
    finally:
        srv.stop()
    print(f"  enrolled {len(tokens)} real people over HTTP (v3 faceset/user/add)", flush=True)
    return tokens


def phase_http(config_path: Path, tmp: Path, args, state: dict, modes: dict) -> list[dict]:
    """Start a server, run each mode against it, stop it."""
    rows = []
    t0 = time.perf_counter()
    srv = spawn(config_path, cwd=tmp, timeout=180.0)
    try:
        startup = time.perf_counter() - t0
        workers = yaml.safe_load(config_path.read_text())["server"]["workers"]
        print(f"  server pid {srv.proc.pid} up in {startup:.1f} s ({workers} inference worker(s)), {srv.url}",
              flush=True)
        token = access_token(srv.url)
        for mode, build in modes.items():
            jobs = build(state)
            before = rss_mb(srv.proc.pid)
            meter = CpuMeter(srv.proc.pid)
            if isinstance(jobs, dict):  # mixed: several kinds of clients at once
                loads = run_mixed(http_caller(srv.url, token), jobs, args.clients, args.warmup, args.seconds)
            else:
                loads = {mode: run_load(http_caller(srv.url, token), jobs, args.clients, args.warmup, args.seconds)}
            cpu = meter.done(sum(load.issued for load in loads.values()))
            after = rss_mb(srv.proc.pid)
            if srv.proc.poll() is not None:
                raise RuntimeError("edge serve exited during the load:\n" + srv.log_text())
            for name, load in loads.items():
                row = {"phase": "http", "mode": name, "workers": workers, "server_startup_s": round(startup, 2),
                       **load.figures(), **cpu, "rss_before_mb": round(before["rss"], 1),
                       "rss_after_mb": round(after["rss"], 1), "rss_peak_mb": round(after["peak"], 1)}
                rows.append(row)
                print_row(row)
    finally:
        code = srv.stop()
        if code not in (0, None):
            print(f"  edge serve exited with {code}; last lines:\n" + "\n".join(list(srv.lines)[-20:]),
                  file=sys.stderr)
    return rows


def phase_direct(config_path: Path, args, state: dict, modes: dict) -> list[dict]:
    from edge.aip.v3 import AipFace
    from edge.config import load_config

    rows, threads = [], args.direct_threads or args.clients
    start = rss_mb()
    client = AipFace(APP_ID, API_KEY, SECRET_KEY, config=load_config(config_path))
    client._rt.analyser  # noqa: B018 - load the models now, as the server's warm-up does
    client._lib  # noqa: B018 - and open the library
    for mode, build in modes.items():
        jobs = build(state)
        if isinstance(jobs, dict):
            continue  # the mixed phase is about the server's pools: HTTP only
        before = rss_mb()
        meter = CpuMeter()
        load = run_load(direct_caller(client), jobs, threads, args.warmup, args.seconds)
        cpu = meter.done(load.issued)
        after = rss_mb()
        row = {"phase": "direct", "mode": mode, "workers": threads, **load.figures(), **cpu,
               "rss_start_mb": round(start["rss"], 1), "rss_before_mb": round(before["rss"], 1),
               "rss_after_mb": round(after["rss"], 1), "rss_peak_mb": round(after["peak"], 1)}
        rows.append(row)
        print_row(row)
    return rows


HEADER = (f"  {'phase':<7}{'mode':<7}{'wrk':>4}{'requests':>9}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}"
          f"{'errors':>7}{'top-1':>7}{'RSS before':>11}{'RSS after':>10}{'peak':>7}{'CPU ms/req':>11}{'other CPU':>10}")
LEGEND = ("  wrk: server inference workers (http) or calling threads (direct); RSS: the serving process;\n"
          "  CPU ms/req: the serving process's CPU per request; other CPU: share of the machine used by\n"
          "  processes outside this benchmark during the phase (should be ~0 for trustworthy figures)")


def print_row(r: dict) -> None:
    print(f"  {r['phase']:<7}{r['mode']:<7}{r['workers']:>4}{r['requests']:>9}{r['throughput_rps']:>8.1f}"
          f"{r['p50_ms']:>8.1f}{r['p99_ms']:>8.1f}{r['errors']:>7}{r['top1_rate']:>7.1%}"
          f"{r['rss_before_mb']:>9.0f}MB{r['rss_after_mb']:>8.0f}MB{r['rss_peak_mb']:>5.0f}MB"
          f"{r['serving_cpu_ms_per_req'] or 0:>11.1f}{r['other_cpu_pct']:>9.0f}%", flush=True)
    for sample in r["error_samples"]:
        print(f"      error: {sample}", flush=True)


def parse_workers(text: str) -> list[int]:
    try:
        out = [int(w) for w in text.split(",") if w.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("--workers: an integer or a comma-separated list") from None
    if not out or min(out) < 1:
        raise argparse.ArgumentTypeError("--workers: positive integers")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=50, help="concurrent clients / threads (default 50)")
    ap.add_argument("--faces", type=int, default=10_000, help="library size (default 10000)")
    ap.add_argument("--seconds", type=float, default=20.0, help="measured duration of each phase (default 20)")
    ap.add_argument("--warmup", type=float, default=3.0, help="unmeasured load before each phase (default 3)")
    ap.add_argument("--workers", type=parse_workers, default=[2],
                    help="server inference workers; a list (1,2,3) runs phase A once per value (default 2)")
    ap.add_argument("--threads", type=int, default=None,
                    help="runtime.threads (onnxruntime intra-op threads per session); default: edge's default")
    ap.add_argument("--photos", type=int, default=6, help="different search photos (default 6)")
    ap.add_argument("--token", action="store_true", help="also run both phases searching by FACE_TOKEN")
    ap.add_argument("--mixed", action="store_true",
                    help="also run half the clients by photo and half by FACE_TOKEN at once (HTTP only)")
    ap.add_argument("--direct-threads", type=int, default=None,
                    help="threads of phase B (default: --clients, as the issue's target says)")
    ap.add_argument("--skip-direct", action="store_true", help="HTTP phase(s) only (no ratio)")
    ap.add_argument("--dir", help="work folder (default: a new temporary folder, removed afterwards)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    args = ap.parse_args(argv)
    if args.clients < 1 or args.faces < 0 or args.seconds <= 0 or args.warmup < 0:
        ap.error("--clients >= 1, --faces >= 0, --seconds > 0, --warmup >= 0")

    # SIGTERM -> SystemExit, so the finally blocks stop the server and remove the folder.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    wall = time.perf_counter()
    tmp = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="edge-bench-server-"))
    tmp.mkdir(parents=True, exist_ok=True)
    if (tmp / "data").exists():
        ap.error(f"{tmp / 'data'} exists: give --dir a new or empty folder")
    result: dict = {"clients": args.clients, "seconds": args.seconds, "warmup": args.warmup,
                    "threads": args.threads, "cpus": os.cpu_count(),
                    "env": {k: os.environ[k] for k in BLAS_ENV if k in os.environ}}
    try:
        from edge.aip.runtime import Runtime
        from edge.config import load_config

        configs = {w: write_config(tmp, w, args.threads, args.clients) for w in args.workers}
        cfg = load_config(configs[args.workers[0]])
        result["runtime_threads"] = cfg.runtime.threads
        enrol, search = photo_sets(args.photos)
        search_b64 = [(uid, b64_file(path)) for uid, path in search]
        print(f"bench_server: {args.clients} clients, {args.seconds:g} s (+{args.warmup:g} s warm-up) a phase, "
              f"runtime.threads {cfg.runtime.threads}, {os.cpu_count()} CPUs"
              + "".join(f", {k}={v}" for k, v in result["env"].items()) + f"; work folder {tmp}", flush=True)
        print(f"  search photos: {', '.join(p.name for _, p in search)}", flush=True)

        lib = build_library(cfg.path(cfg.data_dir), args.faces, Runtime(cfg).model_id)
        result["library"] = lib
        print(f"  library: {lib['faces']} synthetic faces bulk-registered in {lib['build_s']:.1f} s", flush=True)

        modes = {"image": lambda st: make_jobs(search_b64, "BASE64")}
        if args.token:
            modes["token"] = lambda st: make_jobs(list(st["tokens"].items()), "FACE_TOKEN")
        if args.mixed:
            modes["mixed"] = lambda st: {"mix-img": make_jobs(search_b64, "BASE64"),
                                         "mix-tok": make_jobs(list(st["tokens"].items()), "FACE_TOKEN")}
        state = {"tokens": enrol_people(configs[args.workers[0]], tmp, enrol)}
        print(HEADER, flush=True)
        rows = []
        for w in args.workers:
            rows += phase_http(configs[w], tmp, args, state, modes)
        if not args.skip_direct:
            rows += phase_direct(configs[args.workers[0]], args, state, modes)
        result["phases"] = rows
        result["enrolled"] = len(state.get("tokens", {}))

        direct = {r["mode"]: r for r in rows if r["phase"] == "direct"}
        ratios = {}
        print()
        for r in rows:
            d = direct.get(r["mode"])
            if r["phase"] != "http" or not d or not d["throughput_rps"]:
                continue
            ratio = r["throughput_rps"] / d["throughput_rps"]
            ratios[f"{r['mode']}_w{r['workers']}"] = round(ratio, 3)
            verdict = ("meets" if ratio >= TARGET else "MISSES") + f" the {TARGET:.0%} target" \
                if r["mode"] == "image" else "(no target: HTTP overhead only)"
            print(f"  {r['mode']:<6} HTTP ({r['workers']} worker(s)) / direct ({d['workers']} threads): "
                  f"{r['throughput_rps']:.1f} / {d['throughput_rps']:.1f} req/s = {ratio:.1%} {verdict}")
            if d["workers"] != args.clients:
                print(f"         (direct ran {d['workers']} threads, not --clients {args.clients})")
        errors = sum(r["errors"] for r in rows)
        print(f"  errors over all phases: {errors}" + ("" if errors == 0 else "  (must be 0)"))
        print(LEGEND)
        result["ratios"] = ratios
        result["errors"] = errors
        image_ratios = [v for k, v in ratios.items() if k.startswith("image_")]
        result["target_met"] = bool(image_ratios) and max(image_ratios) >= TARGET and errors == 0
    finally:
        try:
            from edge.library.library import close_all
            close_all()  # before the folder goes: the atexit hook would save into it
        finally:
            if not args.dir and not args.keep:
                shutil.rmtree(tmp, ignore_errors=True)
    result["wall_s"] = round(time.perf_counter() - wall, 1)
    print(f"  wall time {result['wall_s']:.0f} s")
    print(json.dumps(result))
    return 0 if result.get("errors", 1) == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
