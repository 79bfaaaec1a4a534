"""The PostgreSQL library's schema versions and failures: created at the current version,
an older app upgraded with its data intact, a newer one refused with the db error; an
unreachable or restarted server answered with the db error and recovered from without
a restart, each outage logged once with the DSN's password left out."""
from __future__ import annotations

import dataclasses
import logging
import socket
import time

import numpy as np
import psycopg
import pytest

from edge.aip import AipFace as AipFaceV2
from edge.aip.v3 import AipFace as AipFaceV3
from edge.config import LibraryConfig
from edge.library.store import FaceRecord, PushOp
from edge.postgres.connect import Database, database
from edge.postgres.schema import SCHEMA_VERSION, app_schema, ensure_app
from edge.postgres.store import PgLibraryStore
from edge.sqlite import StorageError


def _face(token: str) -> FaceRecord:
    v = np.random.default_rng(len(token)).standard_normal(8).astype(np.float32)
    return FaceRecord(token, v / np.linalg.norm(v), "m")


def _version(dsn: str, app_id: str) -> int:
    with psycopg.connect(dsn) as conn:
        return app_schema(conn, app_id)[1]


def test_a_fresh_database_reaches_the_current_version(pg_server):
    dsn = pg_server.new_database()
    store = PgLibraryStore(database(dsn), "fresh", 8)
    assert _version(dsn, "fresh") == SCHEMA_VERSION == 2
    assert store.last_seq() == 0 and store.dump() == {"groups": [], "members": [], "faces": []}


def test_an_app_made_at_version_1_is_upgraded_with_its_data(pg_server):
    dsn = pg_server.new_database()
    vec = _face("t1").embedding
    with psycopg.connect(dsn) as conn:
        from pgvector.psycopg import register_vector
        name = ensure_app(conn, "old", 8, upto=1)
        register_vector(conn)
        s = f'"{name}"'
        conn.execute(f"INSERT INTO {s}.groups VALUES (1, 'staff', 1.0)")
        conn.execute(f"INSERT INTO {s}.members VALUES (1, 1, 'paul', 'Paul', 1.0)")
        conn.execute(f"INSERT INTO {s}.faces VALUES (1, 1, 1, 't1', %s, 'm', NULL, 1.0)", (vec,))
        for seq, op, user, token in ((1, "group.add", None, None), (2, "user.add", "paul", None),
                                     (3, "face.add", "paul", "t1")):
            conn.execute(f"INSERT INTO {s}.changes VALUES (%s, 1.0, %s, 'staff', %s, %s, NULL, NULL)",
                         (seq, op, user, token))
        conn.execute(f"UPDATE {s}.head SET seq = 3")
    assert _version(dsn, "old") == 1
    store = PgLibraryStore(database(dsn), "old", 8)
    assert _version(dsn, "old") == SCHEMA_VERSION
    dump = store.dump()
    assert dump["members"] == [["staff", "paul", "Paul"]] and [f[:3] for f in dump["faces"]] == [["staff", "paul", "t1"]]
    assert store.last_seq() == 3 and np.array_equal(store.token_embedding("t1", 0), vec)
    # version 2's tables work: a pushed operation is recorded, and face ids go on from the old ones
    done = store.apply_push(PushOp("op1", 3, store.uuid, "register", "zed", ("staff",), face=_face("t22")), "door")
    assert done.kind is None and (done.first_seq, done.last_seq) == (3, 5)
    assert store.register(["staff"], "paul", None, _face("t333")) == {"staff": 3}


def test_a_newer_schema_is_refused_with_the_db_error(pg_server, edge_config, tmp_path, caplog):
    dsn = pg_server.new_database()
    PgLibraryStore(database(dsn), "future", 8)
    with psycopg.connect(dsn) as conn:
        conn.execute("UPDATE edge.apps SET version = %s WHERE app_id = 'future'", (SCHEMA_VERSION + 1,))
    with pytest.raises(StorageError) as err:
        PgLibraryStore(database(dsn), "future", 8)
    assert err.value.kind == "schema" and f"version {SCHEMA_VERSION + 1}" in str(err.value)
    config = dataclasses.replace(edge_config, data_dir=str(tmp_path),
                                 library=LibraryConfig(backend="postgres", dsn=dsn))
    with caplog.at_level(logging.ERROR, logger="edge.postgres"):
        v3 = AipFaceV3("future", "key", "secret", config=config).getGroupList()
        v2 = AipFaceV2("future", "key", "secret", config=config).getGroupList()
    assert v3["error_code"] == 222915 and v3["result"] is None
    assert v2["error_code"] == 216300
    assert any("newer than this program" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_server_answers_the_db_error_in_seconds(caplog):
    dsn = f"host=127.0.0.1 port={_free_port()} dbname=edge user=edge password=hunter2-secret"
    db = Database(dsn, pool_size=2, timeout_s=1.0)
    try:
        with caplog.at_level(logging.INFO, logger="edge.postgres"):
            for _ in range(2):
                t0 = time.monotonic()
                with pytest.raises(StorageError) as err:
                    PgLibraryStore(db, "app", 8)
                assert time.monotonic() - t0 < 10
                assert err.value.kind == "unreachable" and "hunter2" not in str(err.value)
        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1 and "port=" in errors[0] and "hunter2" not in " ".join(errors)
    finally:
        db.close()


def test_a_restarted_server_is_recovered_from_without_a_restart(tmp_path, caplog):
    from pg_support import PgServer
    srv = PgServer(tmp_path)
    try:
        db = Database(srv.new_database(), pool_size=2, timeout_s=2.0)
        store = PgLibraryStore(db, "app", 8)
        store.register(["g"], "before", None, _face("t1"))
        srv.stop()
        with caplog.at_level(logging.INFO, logger="edge.postgres"):
            for _ in range(2):
                with pytest.raises(StorageError) as err:
                    store.register(["g"], "during", None, _face("t22"))
                assert err.value.kind == "unreachable"
            srv.start()
            assert store.register(["g"], "after", None, _face("t333")) == {"g": 2}
        messages = [(r.levelno, r.getMessage()) for r in caplog.records]
        assert len([m for lvl, m in messages if lvl == logging.ERROR]) == 1
        assert any(lvl == logging.INFO and "available again" in m for lvl, m in messages)
        assert [m[1] for m in store.dump()["members"]] == ["after", "before"]
        db.close()
    finally:
        srv.stop()
