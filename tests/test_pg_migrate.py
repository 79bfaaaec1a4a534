"""`edge library migrate`: an app's library moved SQLite -> PostgreSQL -> SQLite through the
real command (subprocesses) against a real PostgreSQL + pgvector (tests/pg_support.py):
every table equal with its ids and seqs, resumable after a kill -9, refusals and bad input
answered in one line."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from conftest import REPO, centre_face, lfw_people, load
from edge.library.library import STORE_FILE, library_dir
from edge.library.store import FaceRecord, LibraryStore, PushOp
from edge.postgres.migrate import MARK_KEY, PROGRESS, TABLES, IncompleteLibrary, refuse_incomplete
from edge.postgres.schema import app_schema, quoted
from pg_support import PgServer

APP = "1001"


@pytest.fixture(scope="module")
def pg(tmp_path_factory):
    root = tmp_path_factory.mktemp("pg")
    server = PgServer(root)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def real_faces(analyser) -> list[FaceRecord]:
    out = []
    for path in lfw_people(4, seed=14):
        face = centre_face(analyser, load(path), stages=("embedding",))
        out.append(FaceRecord(f"real-{path.stem}", np.asarray(face.embedding, np.float32), "edge-test", {"p": 1}))
    return out


def _unit(rng, n: int) -> np.ndarray:
    v = rng.standard_normal((n, 128)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def build_library(data: Path, synthetic: int, real: list[FaceRecord] = (), compact: bool = True) -> Path:
    """A hub's library as it looks after use: real and synthetic faces, users, faces and a
    group deleted (holes in the ids, a deleted top face id), a terminal's pushed
    enrolment, a compacted log, a faces-of-another-model row."""
    path = library_dir(data, APP) / STORE_FILE
    store = LibraryStore(path)
    try:
        for i, face in enumerate(real):
            store.register(["staff", "visitors"] if i == 0 else ["staff"], f"real{i}", f"person {i}", face)
        vecs = _unit(np.random.default_rng(synthetic), synthetic)
        store.register_many([([f"g{i % 7}"], f"u{i}", f"info {i} ü", FaceRecord(f"t{i}", vecs[i], "edge-test"),
                               "append") for i in range(synthetic)])
        store.add_group("gone")
        store.register(["gone"], "u-gone", None, FaceRecord("t-gone", vecs[0], "edge-test"))
        store.delete_group("gone")
        store.delete_user("u5")
        store.delete_face("u8", "g1", "t8")
        store.apply_push(PushOp("op-1", store.last_seq(), store.uuid, "register", "kiosk1", ("staff",),
                                user_info="from a terminal", face=FaceRecord("t-push", vecs[1], "edge-test")),
                         origin="terminal-a")
        top = store.register(["g0"], "u-top", None, FaceRecord("t-top", vecs[2], "edge-test"))["g0"]
        store.delete_user("u-top")          # the top face id is gone: the next one must not reuse it
        if compact:
            store.compact(keep=50)
    finally:
        store.close()
    db = sqlite3.connect(path)
    db.execute("INSERT INTO sync_skipped VALUES ('g0', 'u1', 't-other', 'other-model')")
    db.commit()
    db.close()
    assert top > 0
    return path


def contents(path: Path) -> dict:
    """Every migrated table of a SQLite library, rows in key order, plus its id high-water marks."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        out = {t.name: db.execute(f"SELECT {', '.join(t.columns)} FROM {t.name} ORDER BY {', '.join(t.key)}")
               .fetchall() for t in TABLES}
        out["sqlite_sequence"] = sorted(db.execute("SELECT name, seq FROM sqlite_sequence").fetchall())
    finally:
        db.close()
    return out


def config(folder: Path) -> Path:
    path = folder / "edge.yaml"
    path.write_text(json.dumps({"data_dir": str(folder / "data")}))
    return path


def edge(cfg: Path, *args: str, dsn: str | None = None, wait: bool = True, env: dict | None = None):
    cmd = [sys.executable, "-m", "edge", "--config", str(cfg), "library", "migrate", "--app-id", APP, *args]
    if dsn is not None:
        cmd += ["--dsn", dsn]
    environ = {**os.environ, "PYTHONPATH": str(REPO)}
    environ.pop("EDGE_LIBRARY_DSN", None)
    environ.update(env or {})
    if not wait:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environ)
    return subprocess.run(cmd, capture_output=True, text=True, env=environ, timeout=300)


def ok(result) -> dict:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def one_line_error(result, code: int, *needles: str) -> str:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def schema_of(dsn: str) -> str:
    with psycopg.connect(dsn) as conn:
        return quoted(app_schema(conn, APP)[0])


# -- the round trip ---------------------------------------------------------------
def test_round_trip_keeps_every_row_id_seq_and_uuid(tmp_path, pg, real_faces):
    cfg = config(tmp_path)
    path = build_library(tmp_path / "data", 300, real_faces)
    before = contents(path)
    store = LibraryStore(path)
    uuid, head, floor, dump = store.uuid, store.last_seq(), store.log_floor(), store.dump()
    store.close()
    assert floor > 0 and before["pushed"] and before["sync_skipped"]
    dsn = pg.new_database()

    report = ok(edge(cfg, "--to", "postgres", dsn=dsn))
    assert report["library_uuid"] == uuid and report["head"] == head
    assert report["verified"] == {t: len(before[t]) for t in report["verified"]}
    assert report["rows_per_s"] > 0
    s = schema_of(dsn)
    with psycopg.connect(dsn) as conn:
        assert conn.execute(f"SELECT seq FROM {s}.head").fetchone()[0] == head
        meta = dict(conn.execute(f"SELECT key, value FROM {s}.meta").fetchall())
        assert meta["library_uuid"] == uuid and MARK_KEY not in meta
        assert conn.execute(f"SELECT to_regclass('{s}.{PROGRESS}')").fetchone()[0] is None
        assert conn.execute("SELECT 1 FROM pg_indexes WHERE schemaname=%s AND indexname='faces_hnsw'",
                            (s.strip('"'),)).fetchone()
        ids = [r[0] for r in conn.execute(f"SELECT id FROM {s}.faces ORDER BY id").fetchall()]
        assert ids == [r[0] for r in before["faces"]]
        top = dict(before["sqlite_sequence"])["faces"]
        assert top > ids[-1]                      # the deleted top face ...
        seq = conn.execute("SELECT pg_get_serial_sequence(%s, 'id')", (f"{s}.faces",)).fetchone()[0]
        assert conn.execute(f"SELECT last_value, is_called FROM {seq}").fetchone() == (top, True)  # ... never reused
        emb = conn.execute(f"SELECT embedding::text FROM {s}.faces WHERE face_token=%s LIMIT 1",
                           (real_faces[0].face_token,)).fetchone()[0]
        assert np.array_equal(np.array(json.loads(emb), np.float32), real_faces[0].embedding)

    one_line_error(edge(cfg, "--to", "sqlite", dsn=dsn), 1, "already holds a copy of this library", "--replace")
    back = ok(edge(cfg, "--to", "sqlite", "--replace", dsn=dsn))
    assert back["set_aside"].startswith("library.db.replaced-")
    assert (path.parent / back["set_aside"]).exists()           # set aside, not deleted
    assert contents(path) == before
    store = LibraryStore(path)
    try:
        assert (store.uuid, store.last_seq(), store.log_floor()) == (uuid, head, floor)
        assert store.dump() == dump
        new = store.register(["g0"], "after", None, FaceRecord("t-after", real_faces[1].embedding, "edge-test"))
        assert new["g0"] == top + 1 and store.last_seq() > head
    finally:
        store.close()
    assert not list(path.parent.glob("*.migrating*"))


def test_target_holding_a_library_is_refused_without_replace(tmp_path, pg):
    cfg = config(tmp_path)
    build_library(tmp_path / "data", 50)
    dsn = pg.new_database()
    ok(edge(cfg, "--to", "postgres", dsn=dsn))
    one_line_error(edge(cfg, "--to", "postgres", dsn=dsn), 1, "already holds a complete copy of this library")
    old = schema_of(dsn)
    report = ok(edge(cfg, "--to", "postgres", "--replace", dsn=dsn))
    with psycopg.connect(dsn) as conn:      # the old copy is kept under another name
        kept = conn.execute(f'SELECT COUNT(*) FROM "{report["set_aside"]}".faces').fetchone()[0]
    assert kept == report["verified"]["faces"] and schema_of(dsn) != old


# -- kill -9 and resume --------------------------------------------------------------
def _progress_pg(dsn: str) -> tuple[int, bool] | None:
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            found = app_schema(conn, APP)
            if found is None:
                return None
            row = conn.execute(f"SELECT rows, done FROM {quoted(found[0])}.{PROGRESS} WHERE tbl='faces'").fetchone()
            return None if row is None else (row[0], row[1])
    except psycopg.Error:
        return None


def _progress_sqlite(tmp: Path) -> tuple[int, bool] | None:
    if not tmp.exists():
        return None
    try:
        db = sqlite3.connect(f"file:{tmp}?mode=ro", uri=True, timeout=1)
        try:
            row = db.execute(f"SELECT rows, done FROM {PROGRESS} WHERE tbl='faces'").fetchone()
        finally:
            db.close()
    except sqlite3.Error:
        return None
    return None if row is None else (row[0], bool(row[1]))


def kill_mid_faces(proc, progress) -> int:
    """kill -9 the migration once its progress shows the faces table half copied."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        state = progress()
        if state is not None and state[0] > 0 and not state[1]:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return state[0]
        time.sleep(0.005)
    proc.kill()
    raise AssertionError(f"the migration ended before it was seen mid-table: {proc.communicate()}")


def test_killed_migration_to_postgres_resumes_and_verifies(tmp_path, pg):
    cfg = config(tmp_path)
    path = build_library(tmp_path / "data", 6000, compact=False)
    faces = len(contents(path)["faces"])
    dsn = pg.new_database()
    copied = kill_mid_faces(edge(cfg, "--to", "postgres", "--batch", "100", dsn=dsn, wait=False),
                            lambda: _progress_pg(dsn))
    s = schema_of(dsn)
    with psycopg.connect(dsn) as conn:
        mark = conn.execute(f"SELECT value FROM {s}.meta WHERE key=%s", (MARK_KEY,)).fetchone()[0]
        assert conn.execute(f"SELECT COUNT(*) FROM {s}.faces").fetchone()[0] < faces
    with pytest.raises(IncompleteLibrary, match="unfinished migration"):
        refuse_incomplete(mark, f"app {APP}")     # what the PostgreSQL store's open calls

    report = ok(edge(cfg, "--to", "postgres", "--batch", "100", dsn=dsn))
    assert report["resumed"] and not report["restarted"]
    assert 0 < report["copied"]["faces"] <= faces - copied
    assert report["verified"]["faces"] == faces


def test_a_copy_that_differs_fails_verification_and_stays_unserved(tmp_path, pg):
    cfg = config(tmp_path)
    build_library(tmp_path / "data", 6000, compact=False)
    dsn = pg.new_database()
    kill_mid_faces(edge(cfg, "--to", "postgres", "--batch", "100", dsn=dsn, wait=False), lambda: _progress_pg(dsn))
    s = schema_of(dsn)
    with psycopg.connect(dsn) as conn:   # one float of one copied face off by one ulp
        emb = conn.execute(f"SELECT id, embedding::text FROM {s}.faces ORDER BY id LIMIT 1").fetchone()
        vec = np.array(json.loads(emb[1]), np.float32)
        vec[0] = np.nextafter(vec[0], np.float32(2))
        conn.execute(f"UPDATE {s}.faces SET embedding=%s::vector WHERE id=%s",
                     ("[" + ",".join(repr(float(x)) for x in vec) + "]", emb[0]))
    one_line_error(edge(cfg, "--to", "postgres", dsn=dsn), 1, "verification failed: faces differs")
    with psycopg.connect(dsn) as conn:
        assert conn.execute(f"SELECT value FROM {s}.meta WHERE key=%s", (MARK_KEY,)).fetchone()
    result = edge(cfg, "--to", "postgres", dsn=dsn)
    assert ok(result)["restarted"] == "the last run's verification failed"


def test_source_changed_between_runs_restarts_the_copy(tmp_path, pg):
    cfg = config(tmp_path)
    path = build_library(tmp_path / "data", 6000, compact=False)
    faces = len(contents(path)["faces"])
    dsn = pg.new_database()
    kill_mid_faces(edge(cfg, "--to", "postgres", "--batch", "100", dsn=dsn, wait=False), lambda: _progress_pg(dsn))
    store = LibraryStore(path)
    store.register(["g0"], "late", None, FaceRecord("t-late", _unit(np.random.default_rng(1), 1)[0], "edge-test"))
    store.close()
    result = edge(cfg, "--to", "postgres", "--batch", "1000", dsn=dsn)
    report = ok(result)
    assert "starting the copy over" in result.stderr and "source changed" in report["restarted"]
    assert not report["resumed"] and report["copied"]["faces"] == faces + 1
    assert report["verified"]["faces"] == faces + 1


def test_killed_migration_to_sqlite_resumes_and_is_never_opened_half_done(tmp_path, pg):
    cfg = config(tmp_path)
    path = build_library(tmp_path / "data", 6000, compact=False)
    before = contents(path)
    dsn = pg.new_database()
    ok(edge(cfg, "--to", "postgres", dsn=dsn))
    tmp = path.with_name(path.name + ".migrating")
    kill_mid_faces(edge(cfg, "--to", "sqlite", "--replace", "--batch", "100", dsn=dsn, wait=False),
                   lambda: _progress_sqlite(tmp))
    assert contents(path) == before                       # the old library.db untouched so far
    with pytest.raises(IncompleteLibrary):
        LibraryStore(tmp)                                 # the half-made copy is refused at open
    report = ok(edge(cfg, "--to", "sqlite", "--replace", "--batch", "100", dsn=dsn))
    assert report["resumed"] and report["verified"]["faces"] == len(before["faces"])
    assert contents(path) == before and not tmp.exists()


def test_two_migrations_of_one_app_never_run_at_once(tmp_path, pg):
    cfg = config(tmp_path)
    build_library(tmp_path / "data", 3000, compact=False)
    dsn = pg.new_database()
    first = edge(cfg, "--to", "postgres", "--batch", "100", dsn=dsn, wait=False)
    deadline = time.monotonic() + 120
    while (_progress_pg(dsn) or (0, False))[0] == 0 and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.005)
    first.send_signal(signal.SIGSTOP)              # mid-copy, holding its locks
    try:
        one_line_error(edge(cfg, "--to", "postgres", dsn=dsn), 1, f"another migration of app {APP} is running")
        one_line_error(edge(cfg, "--to", "sqlite", "--replace", dsn=dsn), 1, "another migration")
    finally:
        first.send_signal(signal.SIGCONT)
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert json.loads(out)["verified"]["faces"] > 0


# -- bad input ----------------------------------------------------------------------------
def test_bad_input_is_one_line_and_an_exit_code(tmp_path, pg):
    cfg = config(tmp_path)
    dsn = pg.new_database()
    one_line_error(edge(cfg, "--to", "postgres", dsn=dsn), 1, f"app {APP} has no SQLite library")
    one_line_error(edge(cfg, "--to", "sqlite", dsn=dsn), 1, f"app {APP} is not in the database")
    one_line_error(edge(cfg, "--to", "postgres"), 2, "--dsn", "EDGE_LIBRARY_DSN")
    build_library(tmp_path / "data", 20)
    one_line_error(edge(cfg, "--to", "postgres", dsn="postgresql://edge@127.0.0.1:1/edge"), 1,
                   "cannot connect to PostgreSQL at edge@127.0.0.1:1/edge")
    one_line_error(edge(cfg, "--to", "postgres", dsn="host=/nonexistent port=5 dbname=x =broken"), 1,
                   "not a valid PostgreSQL DSN")
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        conn.execute("CREATE ROLE pwuser LOGIN PASSWORD 'right-password'")
        hba = Path(conn.execute("SHOW hba_file").fetchone()[0])
        hba.write_text("local all pwuser scram-sha-256\n" + hba.read_text())
        conn.execute("SELECT pg_reload_conf()")
    wrong = make_conninfo(dsn, user="pwuser", password="wrong-password")
    line = one_line_error(edge(cfg, "--to", "postgres", dsn=wrong), 1, "cannot connect to PostgreSQL",
                          "password authentication failed")
    assert "wrong-password" not in line
    ok(edge(cfg, "--to", "postgres", env={"EDGE_LIBRARY_DSN": dsn}))   # the DSN from the environment


def test_incomplete_sqlite_library_is_refused_at_open(tmp_path):
    path = build_library(tmp_path / "data", 20)
    db = sqlite3.connect(path)
    db.execute("INSERT INTO meta VALUES (?, ?)", (MARK_KEY, json.dumps({"source": "test"})))
    db.commit()
    db.close()
    with pytest.raises(IncompleteLibrary, match="unfinished migration"):
        LibraryStore(path)
    result = subprocess.run([sys.executable, "-m", "edge", "--config", str(config(tmp_path)), "library",
                             "compact", "--app-id", APP, "--keep", "1"], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    one_line_error(result, 2, "unfinished migration", "edge library migrate")
