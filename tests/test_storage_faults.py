"""Damage at rest (docs/storage.md): a damaged, emptied or deleted library.db refuses
its app alone with the db error (216300 / 222915), one log line naming the file and
the remedy and no traceback; nothing good is overwritten; `edge library recover`
brings the app back. Also the index folder, a full disk, a read-only folder, the
WAL of a killed writer, the outbox and attendance files, and `edge run`.

Real models on LFW photos through the SDK classes, real SQLite files damaged on disk,
and a real `edge serve` (tests/serving.py) for the server case."""
from __future__ import annotations

import base64
import dataclasses
import json
import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import requests

from edge.aip import AipFace as V2
from edge.aip.v3 import AipFace as V3
from edge.config import load_config
from edge.events import Event
from edge.library import recover
from edge.library.library import FaceLibrary, close_library
from edge.loop.runner import build_bus
from edge.models.manifest import REPO_ROOT
from serving import sdk_client, start_server
from conftest import walking_frames
from test_aip_v2 import A, B, C, photo

sys.path.insert(0, str(Path(__file__).parent))
from library_worker import embedding  # noqa: E402

WORKER = Path(__file__).parent / "library_worker.py"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
def cfg(tmp_path):
    return dataclasses.replace(load_config(), data_dir=str(tmp_path / "data"))


def data_dir(cfg) -> Path:
    return cfg.path(cfg.data_dir)


def app_dir(cfg, app_id: str) -> Path:
    return data_dir(cfg) / "apps" / app_id


def enrol(cfg, app_id: str) -> None:
    """Paul and Jennifer in staff, then the library closed (index and catalog saved)."""
    client = V3(app_id, "", "", config=cfg)
    for name, uid in ((A, "paul"), (B, "jlo")):
        assert client.addUser(b64(photo(name, 1)), "BASE64", "staff", uid, {"user_info": uid})["error_code"] == 0
    close_library(data_dir(cfg), app_id)


def search(cfg, app_id: str) -> dict:
    return V3(app_id, "", "", config=cfg).search(b64(photo(A, 2)), "BASE64", "staff")


def finds_paul(answer: dict) -> bool:
    return answer["error_code"] == 0 and answer["result"]["user_list"][0]["user_id"] == "paul" \
        and answer["result"]["user_list"][0]["score"] > 80


def leaf_pages(db: Path, tables) -> list[int]:
    con = sqlite3.connect(db)
    try:
        marks = ",".join("?" * len(tables))
        return [r[0] for r in con.execute(f"SELECT pageno FROM dbstat WHERE name IN ({marks}) AND pagetype='leaf'",
                                          tuple(tables))]
    finally:
        con.close()


def garble_pages(db: Path, tables=("faces", "members")) -> None:
    """Overwrite the leaf pages of those tables (header included) with noise."""
    pages = leaf_pages(db, tables)
    assert pages
    rng = np.random.default_rng(1)
    with open(db, "r+b") as fh:
        for page in pages:
            fh.seek((page - 1) * 4096)
            fh.write(b"\x00" * 8 + rng.bytes(4000))


def damage(db: Path, how: str) -> None:
    if how == "header":
        with open(db, "r+b") as fh:
            fh.write(b"this is not sqlite")
    elif how == "pages":
        garble_pages(db)
    elif how == "zero":
        db.write_bytes(b"")
    elif how == "deleted":
        db.unlink()


def no_traceback(caplog) -> None:
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


# -- library.db damaged at rest ----------------------------------------------------------------------
@pytest.mark.parametrize("how", ["header", "pages", "zero", "deleted"])
def test_damaged_library_refuses_its_app_only_and_recover_brings_it_back(cfg, caplog, how):
    enrol(cfg, "hurt")
    enrol(cfg, "fine")
    hurt = app_dir(cfg, "hurt")
    manifest = (hurt / "index" / "manifest.json").read_bytes()
    damage(hurt / "library.db", how)
    damaged = (hurt / "library.db").read_bytes() if how != "deleted" else None

    caplog.set_level(logging.INFO)
    for _ in range(3):
        answer = search(cfg, "hurt")
        assert (answer["error_code"], answer["error_msg"]) == (222915, "system busy"), answer
        answer = V2("hurt", "", "", config=cfg).getGroupUsers("staff")
        assert (answer["error_code"], answer["error_msg"]) == (216300, "db error"), answer
    assert finds_paul(search(cfg, "fine"))  # the other app on the same runtime is served
    no_traceback(caplog)
    named = [r for r in caplog.records if r.levelno >= logging.ERROR and str(hurt / "library.db") in r.getMessage()]
    assert len(named) == 1 and "edge library recover --app-id hurt" in named[0].getMessage()
    # nothing was overwritten: neither the damaged file (nor a new empty one made) nor the saved index
    assert (hurt / "index" / "manifest.json").read_bytes() == manifest
    assert ((hurt / "library.db").read_bytes() if how != "deleted" else None) == damaged
    check = recover.check_app(data_dir(cfg), "hurt")
    assert not check.healthy and "recover" in check.advice

    report = recover.recover_app(data_dir(cfg), "hurt")
    assert report.action == "store" and report.faces == 2 and report.users == 2
    assert finds_paul(search(cfg, "hurt"))  # the same runtime sees the rebuilt library, no restart
    users = V3("hurt", "", "", config=cfg).getGroupUsers("staff")["result"]["user_id_list"]
    assert sorted(users) == ["jlo", "paul"]
    kept = sorted(p.name for p in hurt.iterdir())
    assert any(n.startswith("index.foreign-") for n in kept)  # the old saved index, kept
    if how != "deleted":
        aside = next(hurt.glob("library.db.damaged-*[0-9Z]"))
        assert aside.read_bytes() == damaged
    assert recover.check_app(data_dir(cfg), "hurt").healthy


@pytest.mark.parametrize("tables, call", [(("faces", "members"), "search"), (("tokens",), "detect")])
def test_damage_found_while_serving_marks_the_app_unavailable(cfg, caplog, monkeypatch, tables, call):
    """A large library is checked only in its small tables at open (QUICK_CHECK_MAX_BYTES
    0 stands for one): damage elsewhere is met at run time, once."""
    monkeypatch.setattr("edge.sqlite.QUICK_CHECK_MAX_BYTES", 0)
    enrol(cfg, "late")
    client = V3("late", "", "", config=cfg)
    assert client.detect(b64(photo(C, 1)), "BASE64")["error_code"] == 0  # some detected-face tokens
    close_library(data_dir(cfg), "late")
    manifest = (app_dir(cfg, "late") / "index" / "manifest.json").read_bytes()
    garble_pages(app_dir(cfg, "late") / "library.db", tables)
    caplog.set_level(logging.INFO)
    run = (lambda: search(cfg, "late")) if call == "search" else \
        (lambda: client.detect(b64(photo(B, 2)), "BASE64"))
    codes = [run()["error_code"] for _ in range(3)]
    assert codes == [222915] * 3
    no_traceback(caplog)
    assert sum("refused" in r.getMessage() and "library.db" in r.getMessage() for r in caplog.records
               if r.levelno >= logging.ERROR) <= 2  # found (store) + refused (runtime): not once per request
    close_library(data_dir(cfg), "late")  # a damaged library never saves over its saved index
    assert (app_dir(cfg, "late") / "index" / "manifest.json").read_bytes() == manifest
    recover.recover_app(data_dir(cfg), "late")
    assert finds_paul(search(cfg, "late"))


# -- the index folder ----------------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["index-is-a-file", "manifest-garbage", "manifest-a-list", "vectors-truncated"])
def test_a_damaged_index_is_rebuilt_from_the_store(cfg, caplog, how):
    enrol(cfg, "idx")
    index = app_dir(cfg, "idx") / "index"
    if how == "index-is-a-file":
        shutil.rmtree(index)
        index.write_text("not a folder")
    elif how.startswith("manifest"):
        (index / "manifest.json").write_text("{garbage" if how == "manifest-garbage" else "[1, 2]")
    else:
        vectors = next(index.glob("*.vectors"))
        vectors.write_bytes(vectors.read_bytes()[:1000])
    caplog.set_level(logging.WARNING)
    assert finds_paul(search(cfg, "idx"))
    no_traceback(caplog)
    assert any(str(index) in r.getMessage() for r in caplog.records)
    if how == "index-is-a-file":
        assert next(index.parent.glob("index.not-a-folder-*")).read_text() == "not a folder"
    assert recover.check_app(data_dir(cfg), "idx").healthy


def test_another_librarys_saved_index_is_set_aside_not_overwritten(cfg):
    enrol(cfg, "mine")
    enrol(cfg, "other")
    mine = app_dir(cfg, "mine")
    saved = {p.name: p.read_bytes() for p in (mine / "index").iterdir()}
    for suffix in ("", "-wal", "-shm"):  # an operator copies the wrong library.db in
        (mine / f"library.db{suffix}").unlink(missing_ok=True)
    shutil.copy(app_dir(cfg, "other") / "library.db", mine / "library.db")
    assert finds_paul(search(cfg, "mine"))
    aside = next(mine.glob("index.foreign-*"))
    assert {p.name: p.read_bytes() for p in aside.iterdir()} == saved


# -- full disk, read-only folder --------------------------------------------------------------------
def test_a_full_disk_answers_the_db_error_and_writes_nothing(cfg, caplog):
    enrol(cfg, "full")
    v2 = V2("full", "", "", config=cfg)
    store = v2._lib.store
    state = lambda: (store.face_count(), store.last_seq(), store._one("SELECT COUNT(*) FROM members"))  # noqa: E731
    caplog.set_level(logging.INFO)
    store._db.execute(f"PRAGMA max_page_count={store._one('PRAGMA page_count')}")  # SQLITE_FULL past this
    failures = 0
    try:
        for i in range(60):  # until the free space in the last pages is used up, then twice more
            before = state()
            answer = v2.addUser(f"r{i}", "x" * 200, "staff", photo(C, 2))
            if "error_code" in answer:
                assert (answer["error_code"], answer["error_msg"]) == (216300, "db error"), answer
                assert state() == before  # no half-written user, face or change
                failures += 1
                if failures == 3:
                    break
        assert failures == 3
        assert finds_paul(search(cfg, "full"))  # reads go on: the app is not refused
    finally:
        store._db.execute("PRAGMA max_page_count=1073741823")
    no_traceback(caplog)
    assert any("disk is full" in r.getMessage() and "library.db" in r.getMessage() for r in caplog.records
               if r.levelno >= logging.WARNING)
    assert "error_code" not in v2.addUser("again", "x", "staff", photo(C, 2))  # space back: written


@pytest.fixture
def read_only(tmp_path):
    """make(folder) -> the folder, now read-only: a read-only bind mount as root (who
    ignores permissions), chmod otherwise."""
    mounts, chmods = [], []

    def make(src: Path) -> Path:
        if os.geteuid() != 0:
            for p in [src, *src.rglob("*")]:
                os.chmod(p, 0o555 if p.is_dir() else 0o444)
                chmods.append(p)
            return src
        ro = tmp_path / f"ro{len(mounts)}"
        ro.mkdir()
        if subprocess.run(["mount", "--bind", str(src), str(ro)], capture_output=True).returncode:
            pytest.skip("root without mount: cannot make a read-only folder here")
        mounts.append(ro)
        if subprocess.run(["mount", "-o", "remount,ro,bind", str(ro)], capture_output=True).returncode:
            pytest.skip("cannot remount read-only")
        return ro

    yield make
    for ro in mounts:
        subprocess.run(["umount", "--lazy", str(ro)], check=False)  # files may still be open
    for p in chmods:
        os.chmod(p, 0o755)


@pytest.mark.parametrize("existing", [False, True])
def test_a_read_only_data_dir_refuses_the_app_with_a_clear_error(cfg, read_only, caplog, existing):
    if existing:
        enrol(cfg, "ro")
    else:
        (data_dir(cfg) / "apps").mkdir(parents=True)
    ro_cfg = dataclasses.replace(cfg, data_dir=str(read_only(data_dir(cfg))))
    caplog.set_level(logging.INFO)
    assert search(ro_cfg, "ro")["error_code"] == 222915
    assert V2("ro", "", "", config=ro_cfg).getGroupList()["error_code"] == 216300
    no_traceback(caplog)
    assert any("read-only" in r.getMessage() or "cannot be opened" in r.getMessage() for r in caplog.records
               if r.levelno >= logging.ERROR)


# -- the WAL of a killed writer -----------------------------------------------------------------------------
def test_the_wal_of_a_killed_writer_is_kept_and_read(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen([sys.executable, str(WORKER), str(tmp_path), "enroll", "k", "100000"],
                            stdout=subprocess.PIPE, text=True, env=env)
    acked = []
    for line in proc.stdout:
        acked.append(line.split()[1])
        if len(acked) >= 40:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    acked += [line.split()[1] for line in proc.stdout.read().splitlines() if line.startswith("ACK ")]
    wal = tmp_path / "library.db-wal"
    assert wal.stat().st_size > 0
    assert recover.check_store(tmp_path / "library.db").status == "ok"
    assert wal.exists()
    lib = FaceLibrary(tmp_path)
    try:
        for uid in acked:
            assert lib.search(embedding(uid), ["staff"], 1)[0].user_id == uid
    finally:
        lib.close()


def test_an_emptied_database_with_a_full_wal_is_refused_not_reset(tmp_path):
    lib = FaceLibrary(tmp_path / "w")
    lib.close()
    db = tmp_path / "w" / "library.db"
    (tmp_path / "w" / "library.db-wal").write_bytes(b"\x37\x7f\x06\x82" + bytes(4092))
    db.write_bytes(b"")
    from edge.sqlite import StorageError
    with pytest.raises(StorageError, match="library.db-wal holds 4096 bytes"):
        FaceLibrary(tmp_path / "w")
    assert (tmp_path / "w" / "library.db-wal").stat().st_size == 4096


# -- the loop's outbox and attendance, and `edge run` -------------------------------------------------------
@pytest.mark.parametrize("how", ["header", "zero"])
def test_a_damaged_outbox_or_attendance_file_is_set_aside_and_the_loop_goes_on(cfg, how):
    cfg = dataclasses.replace(cfg, events=dataclasses.replace(cfg.events, webhook_url="http://127.0.0.1:9/x",
                                                               attendance=True))
    data = data_dir(cfg)
    build_bus(cfg).close()
    files = [data / "run" / "outbox.db", data / "attendance.db"]
    for f in files:
        damage(f, how)
    before = {f: f.read_bytes() for f in files}
    bus = build_bus(cfg)
    try:
        event = Event("recognised", camera="gate", user_id="paul", group_id="staff", score=93.0)
        out = bus.publish(event)
        assert out.ok, out.errors
    finally:
        bus.close()
    for f in files:
        if how == "header":  # set aside byte for byte; a zero-byte file is just an empty database
            assert next(f.parent.glob(f.name + ".corrupt-*[0-9Z]")).read_bytes() == before[f]


def test_edge_run_refuses_to_start_on_a_damaged_library(tmp_path):
    (tmp_path / "edge.yaml").write_text(f"data_dir: {tmp_path / 'data'}\nmodels: {{dir: {REPO_ROOT / 'models'}}}\n")
    cfg = load_config(tmp_path / "edge.yaml")
    enrol(cfg, "edge")
    damage(app_dir(cfg, "edge") / "library.db", "header")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    out = subprocess.run([sys.executable, "-m", "edge.cli", "--config", str(tmp_path / "edge.yaml"), "run",
                          "--duration", "5"], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out
    assert "Traceback" not in out.stderr + out.stdout
    assert "library.db is damaged" in out.stderr and "edge library recover --app-id edge" in out.stderr


# -- the real server ----------------------------------------------------------------------------------------
def cli(config: Path, *args) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run([sys.executable, "-m", "edge.cli", "--config", str(config), "library", *args],
                          env=env, capture_output=True, text=True, timeout=300)


def test_edge_serve_refuses_a_damaged_app_serves_the_others_and_recovers(tmp_path):
    apps = {"7001": ("AK7001", "SK7001-secret"), "7002": ("AK7002", "SK7002-secret")}
    srv = start_server(tmp_path, apps)
    try:
        for app_id, (key, secret) in apps.items():
            v3 = sdk_client("4.16.13", srv.url, app_id, key, secret)
            for name, uid in ((A, "paul"), (B, "jlo")):
                assert v3.addUser(b64(photo(name, 1)), "BASE64", "staff", uid)["error_code"] == 0
    finally:
        assert srv.stop() == 0
    db = tmp_path / "data" / "apps" / "7001" / "library.db"
    garble_pages(db)
    srv = start_server(tmp_path, apps)  # starts: the damaged app does not stop the others
    try:
        hurt = sdk_client("4.16.13", srv.url, "7001", *apps["7001"])
        fine = sdk_client("4.16.13", srv.url, "7002", *apps["7002"])
        v2 = sdk_client("2.2.2.0", srv.url, "7001", *apps["7001"])
        for _ in range(2):
            assert hurt.search(b64(photo(A, 2)), "BASE64", "staff")["error_code"] == 222915
            assert v2.getGroupUsers("staff")["error_code"] == 216300
        assert finds_paul(fine.search(b64(photo(A, 2)), "BASE64", "staff"))
        health = requests.get(f"{srv.url}/health").json()
        assert health["status"] == "degraded" and list(health["unavailable"]) == ["7001"]
        log = srv.log_text()
        assert "Traceback" not in log
        errors = [line for line in log.splitlines() if " ERROR " in line and str(db) in line]
        assert len(errors) == 1 and "edge library recover --app-id 7001" in errors[0]

        check = cli(srv.config_path, "check")
        assert check.returncode == 1 and "7001: library.db corrupt" in check.stdout and "7002: library.db ok" \
            in check.stdout, check
        fixed = cli(srv.config_path, "recover", "--app-id", "7001", "--json")
        assert fixed.returncode == 0, fixed
        assert json.loads(fixed.stdout)["faces"] == 2
        assert finds_paul(hurt.search(b64(photo(A, 2)), "BASE64", "staff"))  # back without a restart
        assert requests.get(f"{srv.url}/health").json()["status"] == "ok"
        assert cli(srv.config_path, "check").returncode == 0
    finally:
        assert srv.stop() == 0


def test_edge_status_on_a_damaged_status_file_says_so(tmp_path):
    (tmp_path / "edge.yaml").write_text(f"data_dir: {tmp_path / 'data'}\n")
    (tmp_path / "data" / "run").mkdir(parents=True)
    (tmp_path / "data" / "run" / "status.json").write_bytes(b'{"time": 17\x00\x00')
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    out = subprocess.run([sys.executable, "-m", "edge.cli", "--config", str(tmp_path / "edge.yaml"), "status"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "Traceback" not in out.stderr and "damaged" in out.stderr, out


def test_edge_run_stops_when_its_library_breaks_while_running(tmp_path):
    """A library over QUICK_CHECK_MAX_BYTES is checked only in its small tables at start
    (here made large by an hour's worth of detected-face tokens), so the damaged faces
    table is met by the background check of that table (edge/library/scrub.py; searches
    no longer read SQLite): the loop stops (exit 1, for systemd to restart it into the
    refusal) with one line, not a traceback per frame - or, when the check is done before
    the loop starts, edge run is refused at once (exit 2), as at a restart."""
    from edge.sqlite import QUICK_CHECK_MAX_BYTES
    (tmp_path / "edge.yaml").write_text(
        f"data_dir: {tmp_path / 'data'}\nmodels: {{dir: {REPO_ROOT / 'models'}}}\n"
        f"run: {{liveness_control: NONE}}\n"
        f"cameras:\n  - {{name: gate, kind: folder, uri: {tmp_path / 'frames'}, fps: 10, loop: true}}\n")
    cfg = load_config(tmp_path / "edge.yaml")
    enrol(cfg, "edge")
    db = app_dir(cfg, "edge") / "library.db"
    con = sqlite3.connect(db)
    with con:
        con.executemany("INSERT INTO tokens VALUES (?, zeroblob(1048576), 'm', NULL, strftime('%s'))",
                        [(f"pad{i}",) for i in range(QUICK_CHECK_MAX_BYTES // 2**20 + 4)])
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    assert db.stat().st_size > QUICK_CHECK_MAX_BYTES
    garble_pages(db, ("faces",))
    walking_frames(tmp_path / "frames", photo(A, 2), 5, down=False)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    out = subprocess.run([sys.executable, "-m", "edge.cli", "--config", str(tmp_path / "edge.yaml"), "run",
                          "--duration", "60"], env=env, capture_output=True, text=True, timeout=180)
    log = out.stdout + out.stderr
    assert out.returncode in (1, 2), log[-3000:]
    assert "Traceback" not in log and "library.db is damaged" in log
    if out.returncode == 1:
        assert "the face library is unusable, stopping" in log
    else:
        assert "refused" in log and "recognised" not in log
