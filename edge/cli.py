"""`edge` command line: models, detect, run, status, serve, enroll, attendance, library, sync, console, bench."""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from edge import __version__
from edge.config import ConfigError, load_config
from edge.errors import EdgeError, ModelError
from edge.sqlite import StorageError

log = logging.getLogger("edge")

# `edge enroll` exit codes (README): 0 nothing new went wrong (a photo rejected again with
# the code of the previous run is not new), 1 new rejections or unreadable photos this run
# (camera: fewer good frames than asked), 2 usage or configuration error.
ENROLL_NEW_PROBLEMS = 1


def _engine(args):
    from edge.service import Engine
    return Engine(load_config(args.config))


def cmd_models(args) -> int:
    from edge.models.fetch import check_all, fetch_all
    cfg = load_config(args.config)
    if args.action == "fetch":
        fetch_all(cfg.models_dir, force=args.force)
        return 0
    status = check_all(cfg.models_dir)
    for name, state in status.items():
        print(f"{name:10s} {state}")
    # an int8 build refused on this machine matters only to a config that asks for int8
    usable = ("ok", "failed-check") if cfg.models.precision == "fp32" else ("ok",)
    return 0 if all(s in usable for s in status.values()) else 1


def cmd_detect(args) -> int:
    engine = _engine(args)
    options = {"max_face_num": args.max_face_num, "face_sort_type": args.face_sort_type,
               "face_fields": args.face_fields}
    data = sys.stdin.buffer.read() if args.image == "-" else Path(args.image).read_bytes()
    out = engine.detect(data, options)
    print(json.dumps(out, ensure_ascii=False, indent=2 if args.pretty else None))
    return 1 if "error_code" in out else 0


def _source(spec: str):
    """`--source`: auto, demo, a camera index or /dev/videoN, a stream URL, a video file or a folder."""
    from edge.camera import SourceConfig
    if spec == "auto":
        from edge.camera.auto import auto_camera
        choice = auto_camera()
        logging.getLogger("edge.loop").info("--source auto: %s camera (%s)", choice.source.kind, choice.reason)
        return choice.source
    if spec == "demo":
        return SourceConfig(name="demo", kind="demo")
    if spec.isdigit() or spec.startswith("/dev/video"):
        return SourceConfig(name="camera", kind="usb", uri=int(spec) if spec.isdigit() else spec)
    if "://" in spec:
        return SourceConfig(name="stream", kind="stream", uri=spec)
    path = Path(spec)
    if not path.exists():
        raise ConfigError(f"edge run: source {spec} not found")
    return SourceConfig(name=path.stem or "source", kind="folder" if path.is_dir() else "file", uri=str(path))


def cmd_run(args) -> int:
    """The terminal's main job: the capture loop on the configured cameras (the built-in
    demo source when none is configured) until SIGTERM or --duration."""
    import dataclasses
    from edge.loop.runner import Runner
    cfg = load_config(args.config)
    if args.source:
        cfg = dataclasses.replace(cfg, cameras=(_source(args.source),))
    if args.duration is not None:
        cfg = dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, duration_s=args.duration))
    return Runner(cfg).run()


def _status_file(path: Path):
    """(snapshot, age in s) of a status file, or None when absent; ValueError when unreadable."""
    if not path.exists():
        return None
    try:
        snap = json.loads(path.read_text())
        return snap, time.time() - float(snap["time"])
    except (OSError, ValueError, TypeError, KeyError):
        raise ValueError(f"edge status: {path} is unreadable or damaged: is `edge run` running?") from None


def cmd_status(args) -> int:
    """The running loop's status file: cameras, frame rates, latencies, recent errors;
    and a terminal's sync (docs/sync.md: in the loop's file, or sync.json beside it from
    `edge serve`'s follower): hub reachable, cursor, lag, last error. Both files live in
    runtime_dir (default <data_dir>/run)."""
    cfg = load_config(args.config)
    run = cfg.runtime_path   # runtime_dir: <data_dir>/run, or /run/edge under systemd
    try:
        loop = _status_file(run / "status.json")
        sync = _status_file(run / "sync.json") if cfg.sync.enabled else None
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 1
    if loop is None and sync is None:
        print(f"edge status: {run / 'status.json'} does not exist: is `edge run` running?", file=sys.stderr)
        return 1
    snap, age = loop or sync
    out = {**snap, "age_s": round(age, 1)}
    if sync is not None and (loop is None or sync[1] < loop[1] or "sync" not in snap):
        out["sync"] = sync[0]["sync"]  # `edge serve`'s follower (`edge run`'s is in the loop's file)
    print(json.dumps(out, indent=None if args.json else 1))
    summary = (snap.get("library") or {}).get("summary") if isinstance(snap.get("library"), dict) else None
    if summary and not args.json:
        print(summary)
    if not args.json:
        for app_id, st in (out.get("sync") or {}).items():
            print(f"sync {app_id}: {st.get('state')}, hub {'reachable' if st.get('hub_reachable') else 'unreachable'}, "
                  f"cursor {st.get('cursor')}, lag {st.get('lag_changes')} changes / {st.get('lag_s')} s"
                  + (f", {st['model_mismatch_faces']} faces of another model not searched"
                     if st.get("model_mismatch_faces") else "")
                  + (f"; last error: {st['last_error']}" if st.get("last_error") else ""))
            if st.get("upstream_enabled"):
                print(f"sync {app_id} upstream: {st.get('upstream_queued')} queued (oldest "
                      f"{st.get('upstream_oldest_age_s')} s), {st.get('upstream_refused')} refused by the hub"
                      + (f"; last refusal: {st['upstream_last_refusal']}" if st.get("upstream_last_refusal") else "")
                      + (f"; {st['upstream_last_error']}" if st.get("upstream_last_error") else ""))
    if not args.json:
        for name, r in (snap.get("sinks") or {}).items():   # the webhook's and MQTT's outboxes
            where = r.get("broker") or r.get("url") or ""
            link = "" if "connected" not in r else (" connected" if r["connected"] else " not connected") + \
                (f" since {r['since']}" if r.get("since") else "")
            print(f"{name} {where}:{link}, {r.get('pending')} pending, {r.get('delivered')} delivered this run"
                  + (f", {r['dead']} dead letters" if r.get("dead") else "")
                  + (f", {r['dropped']} dropped (outbox full)" if r.get("dropped") else "")
                  + (f"; last error: {r['last_error']}" if r.get("last_error") else ""))
    interval = cfg.run.status_interval_s if loop else cfg.sync.status_interval_s
    # the loop's file is rewritten at least every refresh_s (an unchanged status waits that long)
    refresh = snap.get("refresh_s")
    stale = age > (refresh if isinstance(refresh, (int, float)) else 0.0) + 3 * max(interval, 1.0)
    if stale:
        print(f"edge status: the status is {age:.0f} s old: the {'loop' if loop else 'follower'} is not running",
              file=sys.stderr)
    return 1 if stale else 0


def cmd_serve(args) -> int:
    import dataclasses
    from edge.server.app import serve
    cfg = load_config(args.config)
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port), ("workers", args.workers))
                 if v is not None}
    if overrides:
        cfg = dataclasses.replace(cfg, server=dataclasses.replace(cfg.server, **overrides))
    if not cfg.apps:
        raise ConfigError("edge serve: no APP_ID configured; add `apps:` to the config "
                          "(APP_ID -> api_key, secret_key) or set EDGE_APPS=APP_ID:API_KEY:SECRET_KEY")
    return serve(cfg)


def cmd_enroll(args) -> int:
    """Enrol a folder tree group/user/*.jpg (or, with --camera, frames from a camera)."""
    from tqdm import tqdm

    from edge.enroll import Enroller
    cfg = load_config(args.config)
    enroller = Enroller(cfg, args.app_id, quality=args.quality, liveness=args.liveness,
                        duplicate_score=args.duplicate_score)
    if args.camera:
        return _enroll_camera(args, enroller)
    if not args.folder:
        raise ConfigError("edge enroll: give a FOLDER, or --camera with --group and --user")
    root = Path(args.folder)
    if not root.is_dir():
        raise ConfigError(f"edge enroll: {root} is not a folder (expected <folder>/<group>/<user>/*.jpg)")
    outcomes = enroller.enroll_folder(root, progress=lambda items: tqdm(items, unit="photo", file=sys.stderr))
    for outcome in outcomes:
        print(outcome.line())
    counts = {s: sum(o.status == s for o in outcomes) for s in ("enrolled", "already", "rejected", "error")}
    warnings = sum(bool(o.duplicates) for o in outcomes)
    new = sum(o.new_problem for o in outcomes)
    print(f"{len(outcomes)} photos: {counts['enrolled']} enrolled, {counts['already']} already enrolled, "
          f"{counts['rejected']} rejected, {counts['error']} unreadable, {warnings} duplicate warning(s); "
          f"{new} new problem(s)")
    _say_threshold(cfg, enroller)
    return ENROLL_NEW_PROBLEMS if new else 0


def _say_threshold(cfg, enroller) -> None:
    """What the grown library means at the door (docs/loop.md, "Strangers")."""
    from edge.loop.runner import library_threshold
    th = library_threshold(cfg, enroller.library, enroller.app_id)
    print(f"edge run on {enroller.app_id}: {th.describe()}")
    if th.outgrown:
        print("edge enroll: the library has outgrown run.false_id_per_track at run.max_match_score "
              "(docs/loop.md, \"Strangers\")", file=sys.stderr)


def _enroll_camera(args, enroller) -> int:
    from edge.camera import Camera
    if not (args.group and args.user):
        raise ConfigError("edge enroll --camera: --group and --user are needed")
    camera = Camera(_source(args.camera)).start()
    try:
        outcomes = enroller.enroll_camera(camera, args.group, args.user, frames=args.frames,
                                          timeout_s=args.timeout, say=lambda text: print(f">> {text}", flush=True))
    finally:
        camera.stop()
    for outcome in outcomes:
        print(outcome.line())
    enrolled = sum(o.status == "enrolled" for o in outcomes)
    print(f"{enrolled} of {args.frames} frames enrolled for {args.group}/{args.user}")
    _say_threshold(load_config(args.config), enroller)
    return 0 if enrolled >= args.frames else ENROLL_NEW_PROBLEMS


def cmd_attendance(args) -> int:
    """Export the attendance records (who, when, camera, score) as CSV."""
    import datetime as dt

    from edge.events import AttendanceStore
    cfg = load_config(args.config)
    day = lambda text: dt.date.fromisoformat(text) if text else None  # noqa: E731
    try:
        since, until = day(args.since), day(args.until)
    except ValueError:
        raise ConfigError("edge attendance: --since/--until are dates, YYYY-MM-DD") from None
    if until is not None:
        until = until + dt.timedelta(days=1)  # --until is inclusive
    store = AttendanceStore(cfg.path(cfg.data_dir) / "attendance.db")
    try:
        n = store.export_csv(sys.stdout if args.output == "-" else args.output, since, until)
    finally:
        store.close()
    print(f"{n} attendance record(s)", file=sys.stderr)
    return 0


def cmd_library(args) -> int:
    """check: the state of each app's library.db and saved index (exit 1 if any is not
    healthy); recover: rebuild one app's index or store (docs/storage.md)."""
    from dataclasses import asdict

    from edge.analysis import embedders
    from edge.library import recover
    from edge.library.library import APP_ID_RE
    from edge.models.manifest import model_space
    cfg = load_config(args.config)
    data = cfg.path(cfg.data_dir)
    if args.app_id is not None and not APP_ID_RE.match(args.app_id):
        raise ConfigError(f"edge library: {args.app_id!r} is not an APP_ID")
    if args.action == "compact":
        return _compact(cfg, data, args)
    if args.action == "migrate":
        return _migrate(cfg, data, args)
    if args.action == "recover":
        if not args.app_id:
            raise ConfigError("edge library recover: --app-id is needed")
        try:
            report = recover.recover_app(data, args.app_id)
        except recover.RecoverError as exc:
            print(f"edge library recover: {exc}", file=sys.stderr)
            return 1
        print(json.dumps(asdict(report), ensure_ascii=False, indent=None if args.json else 1))
        return 0
    ids = [args.app_id] if args.app_id else sorted(set(recover.app_ids(data)) | {a.app_id for a in cfg.apps})
    checks = [recover.check_app(data, app_id) for app_id in ids]
    ours = model_space(embedders.model_id(cfg.models.embedder, cfg.models_dir, cfg.models.precision))
    for c in checks:
        foreign = [s for s in c.store.spaces if s != ours]
        if args.json:
            print(json.dumps({**c.to_dict(), "embedder": cfg.models.embedder, "other_embedders": foreign},
                             ensure_ascii=False))
            continue
        print(f"{c.app_id}: library.db {c.store.status}{' (' + c.store.detail + ')' if c.store.detail else ''}, "
              f"{c.store.faces} faces; index {c.index.status}"
              f"{' (' + c.index.detail + ')' if c.index.detail else ''}, {c.index.faces} faces"
              f"{', catalog' if c.index.catalog else ''}; {c.advice}")
        for name in c.set_aside:
            print(f"{c.app_id}:   set aside: {name}")
        if foreign:   # not damage, but the API refuses it (216300): say why and what to do
            print(f"{c.app_id}:   faces embedded by {', '.join(foreign)}, not by this engine's models.embedder "
                  f"{cfg.models.embedder} ({ours}): refused until models are set back or its people are "
                  "enrolled again into a new appid (docs/accuracy.md)")
    return 0 if all(c.healthy for c in checks) else 1


def _compact(cfg, data: Path, args) -> int:
    """Prune an app's change log to its last --keep changes (docs/sync.md, Snapshot), in
    the configured backend's library."""
    from edge.library.library import STORE_FILE, library_dir
    from edge.library.store import LibraryStore
    if not args.app_id or args.keep is None or args.keep < 1:
        raise ConfigError("edge library compact: --app-id and --keep N (N >= 1) are needed")
    if cfg.library.backend == "postgres":
        from edge.postgres.connect import database
        from edge.postgres.store import PgLibraryStore
        store = PgLibraryStore(database(cfg.library.dsn, 1, cfg.library.timeout_s), args.app_id)
    else:
        path = library_dir(data, args.app_id) / STORE_FILE
        if not path.exists():
            raise ConfigError(f"edge library compact: {path} does not exist")
        store = LibraryStore(path)
    try:
        removed, floor = store.compact(args.keep)
    finally:
        store.close()
    print(json.dumps({"app_id": args.app_id, "removed": removed, "log_floor": floor}))
    return 0


def _migrate(cfg, data: Path, args) -> int:
    """Move one app's library between SQLite and PostgreSQL (docs/scale.md, Migrate):
    exit 0 moved and verified, 1 refused or failed (one line why; a rerun resumes)."""
    if not args.app_id or args.to not in ("postgres", "sqlite"):
        raise ConfigError("edge library migrate: --app-id and --to postgres|sqlite are needed")
    dsn = args.dsn or cfg.library.dsn   # the config's already holds $EDGE_LIBRARY_DSN
    if not dsn:
        raise ConfigError("edge library migrate: no database: give --dsn, library.dsn or $EDGE_LIBRARY_DSN")
    try:
        from edge.postgres.migrate import BATCH_ROWS, MigrateError, migrate
    except ImportError as exc:
        raise ConfigError(f"edge library migrate: the postgres extra is not installed ({exc})") from None
    if args.batch is not None and args.batch < 1:
        raise ConfigError("edge library migrate: --batch is at least 1")
    say = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
    try:
        report = migrate(data, args.app_id, args.to, dsn, replace=args.replace, batch=args.batch or BATCH_ROWS,
                         say=say)
    except MigrateError as exc:
        print(f"edge library migrate: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(report.to_dict(), ensure_ascii=False, indent=None if args.json else 1))
    return 0


def cmd_sync(args) -> int:
    """refused: the operations the hub refused (the upstream outbox's dead letters,
    newest first); queued: those still waiting (docs/sync.md, Up)."""
    from edge.sync.upstream import UpstreamOutbox, outbox_path
    cfg = load_config(args.config)
    if not cfg.sync.enabled or not cfg.sync.push:
        raise ConfigError("edge sync: this config has no `sync:` section with push: true")
    path = outbox_path(cfg.path(cfg.data_dir), cfg.sync.app_id)
    if not path.exists():
        raise ConfigError(f"edge sync: {path} does not exist (nothing was ever queued)")
    outbox = UpstreamOutbox(path, cfg.sync.push_max_queued)
    try:
        if args.action == "refused":
            rows = [{"op": json.loads(d.body), "created": d.created, "refused_at": d.failed, "error": d.error}
                    for d in outbox.dead_letters(args.limit)]
        else:
            rows = [{"op": json.loads(i.body), "created": i.created, "attempts": i.attempts}
                    for i in outbox.claim(args.limit, now=float("inf"))]
    finally:
        outbox.close()
    for row in rows:
        if row["op"].get("face"):
            row["op"]["face"]["embedding"] = "..."  # not for a terminal's screen
        print(json.dumps(row, ensure_ascii=False))
    return 0


def _read_password(name: str) -> str:
    """From a prompt (typed twice) on a terminal, else the first line of stdin; never argv."""
    import getpass
    if sys.stdin.isatty():
        first = getpass.getpass(f"new password for {name}: ")
        if getpass.getpass("again: ") != first:
            raise ConfigError("edge console: the two passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def cmd_console(args) -> int:
    """The console's users (docs/console.md): add, passwd, delete, list."""
    from edge.console.auth import ConsoleDB, UserError, db_path
    cfg = load_config(args.config)
    if args.action != "list" and not args.name:
        raise ConfigError(f"edge console user {args.action}: name the user")
    db = ConsoleDB(db_path(cfg))
    try:
        if args.action == "list":
            for name, role, created in db.users():
                print(f"{name}\t{role}\t{time.strftime('%Y-%m-%d %H:%M', time.localtime(created))}")
        elif args.action == "add":
            db.add_user(args.name, _read_password(args.name), args.role)
            print(f"edge console: added {args.name} ({args.role})")
        elif args.action == "passwd":
            db.set_password(args.name, _read_password(args.name))
            print(f"edge console: new password for {args.name}; its sessions ended")
        else:
            db.delete_user(args.name)
            print(f"edge console: deleted {args.name}; its sessions ended")
    except UserError as exc:
        print(f"edge console: {exc}", file=sys.stderr)
        return 2
    finally:
        db.close()
    return 0


def cmd_bench(args) -> int:
    from edge.bench import main as bench_main
    return bench_main(args)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edge", description="Offline face recognition for camera terminals.")
    p.add_argument("--config", help="YAML config (default: $EDGE_CONFIG or config/edge.yaml)")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("--version", action="version", version=f"edge {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    m = sub.add_parser("models", help="fetch and check the model files")
    m.add_argument("action", choices=["fetch", "status"])
    m.add_argument("--force", action="store_true", help="re-extract and re-verify every model")
    m.set_defaults(func=cmd_models)

    d = sub.add_parser("detect", help="Baidu detect on one image, JSON out")
    d.add_argument("image", help="image file, or - for stdin")
    d.add_argument("--max-face-num", type=int, default=1)
    d.add_argument("--face-sort-type", type=int, default=0, choices=[0, 1])
    d.add_argument("--face-fields", default="age,expression,faceshape,gender,landmark,qualities,faceliveness")
    d.add_argument("--pretty", action="store_true")
    d.set_defaults(func=cmd_detect)

    r = sub.add_parser("run", help="the terminal's main job: the capture loop")
    r.add_argument("--source", help="instead of the configured cameras: auto (the Pi camera if one is "
                                    "attached, else demo), demo, a camera index, a URL, "
                                    "a video file or an image folder")
    r.add_argument("--duration", type=float, help="stop after this many seconds")
    r.set_defaults(func=cmd_run)

    st = sub.add_parser("status", help="the running loop's status (exit 1 when it is not running)")
    st.add_argument("--json", action="store_true", help="one line")
    st.set_defaults(func=cmd_status)

    s = sub.add_parser("serve", help="the Baidu face REST API over HTTP (docs/server.md)")
    s.add_argument("--host", help="override server.host (default 127.0.0.1)")
    s.add_argument("--port", type=int, help="override server.port (0: any free port)")
    s.add_argument("--workers", type=int, help="override server.workers (inference threads)")
    s.set_defaults(func=cmd_serve)

    e = sub.add_parser("enroll", help="enrol photos from a folder tree <group>/<user>/*.jpg")
    e.add_argument("folder", nargs="?", help="root of the tree: one folder per group, one per user inside")
    e.add_argument("--camera", help="enrol one person from a camera instead: demo, an index, a URL, a file")
    e.add_argument("--group", help="with --camera: the group to enrol into")
    e.add_argument("--user", help="with --camera: the user id")
    e.add_argument("--frames", type=int, default=5, help="with --camera: good frames to take (default 5)")
    e.add_argument("--timeout", type=float, default=60.0, help="with --camera: give up after this many seconds")
    e.add_argument("--config", default=argparse.SUPPRESS, help="as the global --config")
    e.add_argument("--app-id", default="edge", help="the face library (APP_ID) to enrol into (default: edge)")
    e.add_argument("--quality", default="NORMAL", choices=["NONE", "LOW", "NORMAL", "HIGH"],
                   help="quality_control every photo must pass (default NORMAL)")
    e.add_argument("--liveness", default="NONE", choices=["NONE", "LOW", "NORMAL", "HIGH"])
    e.add_argument("--duplicate-score", type=float, default=80.0,
                   help="warn when a new face matches another person at this score or above")
    e.set_defaults(func=cmd_enroll)

    a = sub.add_parser("attendance", help="export attendance records as CSV")
    a.add_argument("output", nargs="?", default="-", help="CSV file (default: standard output)")
    a.add_argument("--since", help="first day, YYYY-MM-DD")
    a.add_argument("--until", help="last day, YYYY-MM-DD (inclusive)")
    a.set_defaults(func=cmd_attendance)

    lb = sub.add_parser("library", help="check a face library's files, recover a damaged one, compact its log, "
                                        "migrate it between SQLite and PostgreSQL")
    lb.add_argument("action", choices=["check", "recover", "compact", "migrate"])
    lb.add_argument("--app-id", help="the app (default for check: every app)")
    lb.add_argument("--keep", type=int, help="compact: the last changes kept (followers behind get a snapshot)")
    lb.add_argument("--to", choices=["postgres", "sqlite"], help="migrate: where the app's library goes")
    lb.add_argument("--dsn", help="migrate: the PostgreSQL database (default: library.dsn / $EDGE_LIBRARY_DSN)")
    lb.add_argument("--replace", action="store_true",
                    help="migrate: set aside a target that already holds a library (never deleted)")
    lb.add_argument("--batch", type=int, help="migrate: rows per transaction (default 5000)")
    lb.add_argument("--json", action="store_true", help="JSON lines")
    lb.set_defaults(func=cmd_library)

    sy = sub.add_parser("sync", help="a terminal's enrolments for the hub: the refused ones, the queued ones")
    sy.add_argument("action", choices=["refused", "queued"])
    sy.add_argument("--limit", type=int, default=100)
    sy.set_defaults(func=cmd_sync)

    c = sub.add_parser("console", help="the web console's users (docs/console.md)")
    c.add_argument("what", choices=["user"])
    c.add_argument("action", choices=["add", "passwd", "delete", "list"])
    c.add_argument("name", nargs="?", help="the user (add, passwd, delete); the password is read from a "
                                           "prompt, or from stdin when it is not a terminal")
    c.add_argument("--role", default="viewer", choices=["admin", "viewer"], help="add: the role (default viewer)")
    c.set_defaults(func=cmd_console)

    b = sub.add_parser("bench", help="per-stage latency and memory figures")
    b.add_argument("--repeat", type=int, default=50)
    b.add_argument("--threads", type=int, nargs="*", help="default: 1 2 (--compare: 2)")
    b.add_argument("--compare", choices=["opencv"],
                   help="OpenCV's own pipeline beside edge's on 100 LFW photos, interleaved (docs/speed.md)")
    b.add_argument("--quick", action="store_true", help="--compare: 3 photos")
    b.add_argument("--profile", action="store_true", help="--compare: where each millisecond goes")
    b.set_defaults(func=cmd_bench)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (ConfigError, ModelError, StorageError) as exc:
        print(f"edge: {exc}", file=sys.stderr)
        return 2
    except EdgeError as exc:
        print(json.dumps(exc.to_dict(), ensure_ascii=False))
        if exc.detail != exc.error_msg:
            print(f"edge: {exc.detail}", file=sys.stderr)   # the why, which the Baidu body leaves out
        return 1


if __name__ == "__main__":
    sys.exit(main())
