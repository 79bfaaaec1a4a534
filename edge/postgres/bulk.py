"""Bulk load of synthetic faces into an app schema (scripts/bench_hub.py).

A benchmark shortcut, not a write path: rows go straight into groups, members and faces
through binary COPY, with no change log, no head seq and no tokens, so a terminal
following this app would see nothing. The HNSW index is dropped first and built after
(one build is far faster than a million inserts into the graph), with the definition
schema.py gave it, read back from the catalogue.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass

import numpy as np

from edge.postgres.schema import quoted

COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
COPY_TRAILER = (-1).to_bytes(2, "big", signed=True)
ROWS_PER_COPY = 50_000  # rows encoded per numpy block: bounded memory at any size
# The HNSW build's memory (the graph must fit for a fast build: ~0.95 KB a face at
# m=24, dim 128, so 2 GB holds 2M faces) and its workers on this 2-core box: the leader
# and one more. Every bulk build (bench_hub, edge library migrate) sets these.
BUILD_SETTINGS = {"maintenance_work_mem": "2GB", "max_parallel_maintenance_workers": "1"}


@dataclass(frozen=True)
class LoadTimes:
    copy_s: float
    index_s: float


def _records(fields: list[tuple[str, str]], n: int) -> np.ndarray:
    """An (n,) big-endian record array of one COPY tuple each: field count, then a
    length word and the value of each field (all fixed size here)."""
    dtype = [("nfields", ">i2")]
    for name, kind in fields:
        dtype += [(name + "_len", ">i4"), (name, kind)]
    rec = np.zeros(n, dtype)
    rec["nfields"] = len(fields)
    for name, _ in fields:
        rec[name + "_len"] = rec.dtype.fields[name][0].itemsize
    return rec


def _copy(conn, table: str, columns: str, blocks) -> None:
    with conn.cursor().copy(f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT binary)") as cp:
        cp.write(COPY_HEADER)
        for block in blocks:
            cp.write(block.tobytes())
        cp.write(COPY_TRAILER)


def _member_blocks(member_group: np.ndarray, now: float):
    for a in range(0, len(member_group), ROWS_PER_COPY):
        n = len(member_group[a:a + ROWS_PER_COPY])
        rec = _records([("id", ">i8"), ("group_ref", ">i8"), ("user_id", "S9"), ("ctime", ">f8")], n)
        ids = np.arange(a + 1, a + n + 1)
        rec["id"], rec["group_ref"], rec["ctime"] = ids, member_group[a:a + n], now
        rec["user_id"] = np.char.add(b"u", np.char.zfill(ids.astype("S8"), 8))
        yield rec


def _face_blocks(member_ref: np.ndarray, group_ref: np.ndarray, vectors: np.ndarray, now: float):
    dim = vectors.shape[1]
    for a in range(0, len(vectors), ROWS_PER_COPY):
        n = len(vectors[a:a + ROWS_PER_COPY])
        rec = _records([("id", ">i8"), ("member_ref", ">i8"), ("group_ref", ">i8"), ("face_token", "S32"),
                        ("embedding", [("dim", ">i2"), ("unused", ">i2"), ("x", ">f4", (dim,))]),
                        ("model", "S9"), ("ctime", ">f8")], n)
        ids = np.arange(a + 1, a + n + 1)
        rec["id"], rec["member_ref"], rec["group_ref"] = ids, member_ref[a:a + n], group_ref[a:a + n]
        rec["face_token"] = np.char.zfill(np.char.mod("%x", ids).astype("S32"), 32)
        rec["embedding"]["dim"], rec["embedding"]["x"] = dim, vectors[a:a + n]
        rec["model"], rec["ctime"] = b"synthetic", now
        yield rec


def build_index(conn, schema_name: str, options: dict[str, int] | None = None, indexdef: str | None = None) -> float:
    """(Re)builds faces_hnsw, committed, as schema.py defined it or with other WITH options
    (a benchmark's tuning: m, ef_construction); returns the build's seconds."""
    s = quoted(schema_name)
    indexdef = indexdef or conn.execute("SELECT pg_get_indexdef(%s::regclass)", (f"{s}.faces_hnsw",)).fetchone()[0]
    if options:
        indexdef = re.sub(r"WITH \(.*\)", "WITH (" + ", ".join(f"{k} = {int(v)}" for k, v in options.items()) + ")",
                          indexdef)
    conn.execute(f"DROP INDEX IF EXISTS {s}.faces_hnsw")
    conn.commit()
    t = time.perf_counter()
    for key, value in BUILD_SETTINGS.items():
        conn.execute(f"SET {key} = '{value}'")
    conn.execute(indexdef)
    conn.commit()
    return time.perf_counter() - t


def index_options(conn, schema_name: str) -> str:
    """faces_hnsw's WITH options, as the catalogue has them."""
    return conn.execute("SELECT array_to_string(reloptions, ', ') FROM pg_class WHERE oid = %s::regclass",
                        (f"{quoted(schema_name)}.faces_hnsw",)).fetchone()[0]


def load_faces(conn, schema_name: str, group_names: list[str], member_group: np.ndarray,
               face_member: np.ndarray, vectors: np.ndarray, options: dict[str, int] | None = None) -> LoadTimes:
    """Groups 1..len(group_names), members 1..M (member m in group member_group[m-1]),
    faces 1..N (face i of member face_member[i-1]) into an empty app schema, committed;
    the HNSW index rebuilt after (with `options` for WITH, when given), then VACUUM
    ANALYZE. Row ids are those numbers: a test or a benchmark knows each face's id
    without reading it back."""
    s = quoted(schema_name)
    now = time.time()
    face_group = member_group[face_member - 1]
    t0 = time.perf_counter()
    indexdef = conn.execute("SELECT pg_get_indexdef(%s::regclass)", (f"{s}.faces_hnsw",)).fetchone()[0]
    conn.execute(f"DROP INDEX {s}.faces_hnsw")
    with conn.cursor() as cur:
        cur.executemany(f"INSERT INTO {s}.groups (id, group_id, ctime) VALUES (%s, %s, %s)",
                        [(i + 1, name, now) for i, name in enumerate(group_names)])
    _copy(conn, f"{s}.members", "id, group_ref, user_id, ctime", _member_blocks(member_group, now))
    _copy(conn, f"{s}.faces", "id, member_ref, group_ref, face_token, embedding, model, ctime",
          _face_blocks(face_member, face_group, vectors, now))
    for table in ("groups", "members", "faces"):  # later inserts take ids after these
        conn.execute(f"SELECT setval(pg_get_serial_sequence(%s, 'id'), (SELECT max(id) FROM {s}.{table}))",
                     (f"{s}.{table}",))
    conn.commit()
    t1 = time.perf_counter()
    index_s = build_index(conn, schema_name, options, indexdef)
    conn.autocommit, autocommit = True, conn.autocommit
    conn.execute(f"VACUUM ANALYZE {s}.faces")  # visibility map and statistics, as autovacuum would
    conn.autocommit = autocommit
    return LoadTimes(t1 - t0, index_s)
