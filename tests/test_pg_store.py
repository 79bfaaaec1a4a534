"""PgLibraryStore against the SQLite store it must equal: one long random sequence of
library operations (every write, its error cases, replication and pushes with the
stale rule) run on both, compared after every operation, then row by row."""
from __future__ import annotations

import base64
import random
import zlib

import numpy as np
import pytest

from edge.library.store import (FaceRecord, LibraryError, LibraryStore, PushOp, ReplicaChange)
from edge.postgres.connect import database
from edge.postgres.store import PgLibraryStore

DIM = 8
GROUPS = ["g1", "g2", "G3", "a_4"]        # a capital and an underscore: byte order vs collation
USERS = ["u1", "u2", "U3", "u_4", "ü5"]
TOKENS = [f"tok{i}" for i in range(12)]


def _embedding(token: str) -> np.ndarray:
    rng = np.random.default_rng(zlib.crc32(token.encode()))
    v = rng.standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def _face(token: str, model: str = "m1") -> FaceRecord:
    return FaceRecord(token, _embedding(token), model, {"score": len(token)})


def _outcome(fn):
    try:
        return "ok", fn()
    except LibraryError as exc:
        return "error", exc.kind


def _plain(result, uuids):
    """A result as comparable data: a PushResult's detail with each store's uuid named alike."""
    if hasattr(result, "detail"):
        detail = result.detail
        for u in uuids:
            detail = detail.replace(u, "<uuid>")
        return (result.kind, detail, result.first_seq, result.last_seq, result.duplicate)
    if isinstance(result, np.ndarray):
        return result.tolist()
    return result


def _random_op(rng: random.Random, step: int):
    """(name, fn(store) -> result) of one random operation."""
    g = lambda: rng.choice(GROUPS)                                   # noqa: E731
    u = lambda: rng.choice(USERS)                                    # noqa: E731
    t = lambda: rng.choice(TOKENS)                                   # noqa: E731
    groups = lambda: rng.sample(GROUPS, rng.randint(1, 2))           # noqa: E731
    kind = rng.choices(["register", "register_many", "delete_user", "leave_groups", "copy_user", "delete_face",
                        "add_group", "delete_group", "tokens", "compact", "push", "reads"],
                       [10, 3, 3, 2, 2, 3, 2, 1, 2, 1, 6, 2])[0]
    if kind == "register":
        args = (groups(), u(), rng.choice([None, "info", f"info{step}"]), _face(t()),
                rng.choice(["append", "append", "replace", "update"]))
        return kind, lambda s: s.register(*args)
    if kind == "register_many":
        items = [(groups(), u(), None, _face(t()), rng.choice(["append", "replace"])) for _ in range(rng.randint(1, 3))]
        return kind, lambda s: s.register_many(items)
    if kind == "delete_user":
        args = (u(), rng.choice([None, groups()]))
        return kind, lambda s: s.delete_user(*args)
    if kind == "leave_groups":
        args = (groups(), u())
        return kind, lambda s: s.leave_groups(*args)
    if kind == "copy_user":
        args = (u(), g(), groups(), rng.random() < 0.5)
        return kind, lambda s: s.copy_user(*args)
    if kind == "delete_face":
        args = (u(), g(), t())
        return kind, lambda s: s.delete_face(*args)
    if kind == "add_group":
        group = g() if rng.random() < 0.7 else f"new{step}"
        return kind, lambda s: s.add_group(group)
    if kind == "delete_group":
        group = g()
        return kind, lambda s: s.delete_group(group)
    if kind == "tokens":
        faces = [_face(f"det{rng.randint(0, 5)}") for _ in range(rng.randint(1, 3))]
        probe = rng.choice([faces[0].face_token, t(), "nothing"])
        return kind, lambda s: (s.put_tokens(faces, 3600.0), s.token_embedding(probe, 3600.0))[1]
    if kind == "compact":
        keep = rng.randint(5, 60)
        return kind, lambda s: s.compact(keep)
    if kind == "reads":
        user, group = u(), g()
        return kind, lambda s: (s.list_groups(0, 100), s.list_group_users(group, 0, 100), s.user_groups(user),
                                [tok for tok, _ in s.list_faces(user, group)], s.group_refs(GROUPS),
                                s.searched_face_count([group]), s.searched_face_count(), s.user_count(),
                                s.face_count(), s.group_exists(group), s.last_seq(), s.log_floor(),
                                [(r, gr, e.tolist()) for r, gr, e in s.user_embeddings(user, GROUPS)])
    # a terminal's pushed operation: cursor behind, at or past the head; the hub's uuid, another, or none
    action = rng.choice(["register", "register", "copy_user", "delete_user", "leave_groups", "delete_face"])
    op_id = f"op{rng.randint(0, step)}"      # sometimes a retry of an earlier op_id
    cursor_back, uuid_choice = rng.choice([0, 1, 3, 10, 40]), rng.choice(["own", "own", "own", "other", None])
    origin = rng.choice(["door1", "door2"])
    fields = dict(user_id=u(), group_ids=tuple(groups()) if action != "delete_face" else (g(),))
    if action == "register":
        fields.update(user_info="pushed", mode=rng.choice(["append", "replace", "update"]), face=_face(t()))
    elif action == "copy_user":
        fields.update(src_group=g(), create_groups=rng.random() < 0.5)
    elif action == "delete_user" and rng.random() < 0.3:
        fields["group_ids"] = None
    elif action == "delete_face":
        fields["face_token"] = t()

    ahead = rng.choice([0, 0, 5])

    def push(s):
        hub_uuid = {"own": s.uuid, "other": "f" * 32, None: None}[uuid_choice]
        cursor = max(0, s.last_seq() - cursor_back) if cursor_back else s.last_seq() + ahead
        return s.apply_push(PushOp(op_id, cursor, hub_uuid, action, **fields), origin)
    return kind, push


def _feed(store):
    head, rows = store.feed_rows(0, 1_000_000)
    return head, [r[:1] + r[2:] for r in rows]   # without ts


def _snapshot(store):
    return {phase: [r[:1] + r[2:] for r in store.snapshot_rows(phase, 0, 1_000_000)[1]]
            for phase in ("groups", "members", "faces")}


def _log(store):
    return [(c.seq, c.op, c.group_id, c.user_id, c.face_token, c.face_ref, c.data) for c in store.changes_since(0)]


@pytest.fixture
def stores(pg_server, tmp_path):
    db = database(pg_server.new_database())
    return LibraryStore(tmp_path / "library.db"), PgLibraryStore(db, "diff", DIM), db


def test_postgres_store_equals_the_sqlite_store_op_by_op(stores):
    sqlite, pg, _ = stores
    rng = random.Random(14)
    kinds = {}
    for step in range(600):
        name, fn = _random_op(rng, step)
        a, b = _outcome(lambda: fn(sqlite)), _outcome(lambda: fn(pg))
        uuids = (sqlite.uuid, pg.uuid)
        assert (a[0], _plain(a[1], uuids)) == (b[0], _plain(b[1], uuids)), (step, name)
        assert sqlite.dump() == pg.dump(), (step, name)
        kinds.setdefault(name, set()).add(a[1] if a[0] == "error" else "ok")
        if name == "push":
            kinds.setdefault("pushed", set()).add((a[1].kind, "stale:" in a[1].detail, a[1].duplicate))
    # the run met every operation and its main refusals
    assert {"face_exists", "user_not_found", "ok"} <= kinds["register"]
    assert "group_exists" in kinds["add_group"] and "last_group" in kinds["leave_groups"]
    pushed = kinds["pushed"]
    assert (None, False, False) in pushed and ("user_not_found", True, False) in pushed  # applied; stale
    assert any(dup for _, _, dup in pushed)  # a retried op_id answers what its first attempt did
    assert sqlite.last_seq() == pg.last_seq() > 300 and sqlite.log_floor() == pg.log_floor() > 0
    assert _feed(sqlite) == _feed(pg)
    assert _snapshot(sqlite) == _snapshot(pg)
    assert _log(sqlite) == _log(pg)
    assert sqlite.model_mismatch_count() == pg.model_mismatch_count()
    refs = [r for r, _, _ in pg.user_embeddings("u1", GROUPS)]
    s_refs, s_groups, _, s_vecs = sqlite.faces_owned(refs)
    p_refs, p_groups, _, p_vecs = pg.faces_owned(refs)
    assert s_refs.tolist() == p_refs.tolist() and s_groups.tolist() == p_groups.tolist()
    assert (s_vecs is None and p_vecs is None) or np.array_equal(s_vecs, p_vecs)


def _replica_pages(hub: LibraryStore, size: int):
    """The hub's log as validated replica changes, in pages."""
    changes = []
    for c in hub.changes_since(0):
        face = None
        if c.op == "face.add":
            vec = np.frombuffer(base64.b64decode(c.data["embedding"]), np.float32)
            face = FaceRecord(c.face_token, vec, c.data["model"], c.data["quality"])
        changes.append(ReplicaChange(c.seq, c.op, c.group_id, c.user_id, c.face_token,
                                     (c.data or {}).get("user_info"), face))
    return [changes[i:i + size] for i in range(0, len(changes), size)]


def test_postgres_replica_applies_pages_as_the_sqlite_one(stores, tmp_path):
    hub, _, db = stores
    rng = random.Random(7)
    for step in range(150):
        _, fn = _random_op(rng, step)
        if _ == "compact":
            continue
        _outcome(lambda: fn(hub))
    hub.register(["g1"], "other-model", None, _face("tokX", model="m2"))
    replicas = (LibraryStore(tmp_path / "replica.db"), PgLibraryStore(db, "replica", DIM))
    pages = _replica_pages(hub, 17)
    for r in replicas:
        r.register(["g1"], "mine", None, _face("tok1"))
    outcomes = [_outcome(lambda: r.apply_replica(pages[0], {"seq": 1}, "m1", None)) for r in replicas]
    assert outcomes[0] == outcomes[1] == ("error", "not_a_replica")
    for r in replicas:
        r.delete_group("g1")
    expect = None
    for i, page in enumerate(pages):
        state = {"hub": "h", "seq": page[-1].seq}
        if i == 3:   # a page validated against another cursor is refused whole
            assert [_outcome(lambda: r.apply_replica(page, state, "m1", {"seq": -1}))[1] for r in replicas] \
                == ["replica_moved"] * 2
        results = [r.apply_replica(page, state, "m1", expect) for r in replicas]
        assert results[0] == results[1]
        expect = state
        assert replicas[0].dump() == replicas[1].dump()
    assert [_outcome(lambda: r.register(["g1"], "x", None, _face("tok2")))[1] for r in replicas] == ["replica"] * 2
    # a snapshot's first page empties the replica in the same transaction: here the whole log again
    whole = [c for page in pages for c in page]
    state = {"hub": "h", "seq": whole[-1].seq, "snapshot": 1}
    assert replicas[0].apply_replica(whole, state, "m1", expect, reset=True) == \
        replicas[1].apply_replica(whole, state, "m1", expect, reset=True)
    assert replicas[0].dump() == hub.dump() | {"faces": [f for f in hub.dump()["faces"] if f[3] == "m1"]}
    assert _log(replicas[0]) == _log(replicas[1])
    assert replicas[0].model_mismatch_count() == replicas[1].model_mismatch_count() == {"m2": 1}
    assert replicas[0].replica_state() == replicas[1].replica_state()
