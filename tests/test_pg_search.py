"""The hub's 1:N search through pgvector (edge/postgres/search.py) on a real PostgreSQL:
the answers equal an exact search in numpy, with and without group filters, and the
unfiltered search really runs on the HNSW index."""
from __future__ import annotations

import numpy as np
import psycopg
import pytest
from pgvector.psycopg import register_vector

from edge.postgres import search
from edge.postgres.bulk import load_faces
from edge.postgres.schema import ensure_app, quoted
from edge.synthetic import exact_top, identities, noisy
from pg_support import PgServer

K = 12            # FACES_PER_USER * 1 + 8: identify with user_top_num 1
K_MAX = 88        # user_top_num 20: more than pgvector's default ef_search (40)
# The share of the exact top k an HNSW answer must hold at these sizes. Its top faces
# beyond the person's own are strangers at cosine ~0.2, where any graph search is
# approximate: measured 0.93-1.0 here at m=16 (docs/scale.md, Central 1:N search has the 1M figures).
MIN_RECALL = 0.9


@pytest.fixture(scope="module")
def pg(tmp_path_factory):
    srv = PgServer(tmp_path_factory.mktemp("pg"))
    yield srv
    srv.stop()


class App:
    """An app schema with n synthetic faces (face i + 1 is row i) in groups of the given
    shares of the identities, the last group taking the rest."""

    def __init__(self, dsn: str, n: int, shares: list[float], seed: int):
        self.rng = np.random.default_rng(seed)
        self.faces = identities(n, self.rng)
        n_ids = len(self.faces.centres)
        bounds = np.cumsum([0] + [round(f * n_ids) for f in shares] + [n_ids])
        member_group = np.searchsorted(bounds, np.arange(n_ids), side="right")  # 1-based
        self.member_group = member_group[self.rng.permutation(n_ids)]         # groups spread over the ids
        self.face_group = self.member_group[self.faces.owner]
        self.conn = connect(dsn)
        self.schema = ensure_app(self.conn, "app", self.faces.vectors.shape[1])
        self.conn.commit()
        load_faces(self.conn, self.schema, [f"g{g}" for g in range(1, len(bounds))], self.member_group,
                   self.faces.owner + 1, self.faces.vectors)
        self.live = np.ones(n, bool)

    def queries(self, n: int, group: int | None = None) -> np.ndarray:
        ids = np.arange(len(self.faces.centres)) if group is None else np.flatnonzero(self.member_group == group)
        return noisy(self.faces.centres[self.rng.choice(ids, n)], self.rng)

    def truth(self, q: np.ndarray, k: int, groups: list[int] | None = None) -> list[int]:
        rows = np.flatnonzero(self.live & (np.isin(self.face_group, groups) if groups is not None else True))
        return [int(rows[i]) + 1 for i in exact_top(self.faces.vectors[rows], q[None], k)[0]] if len(rows) else []

    def delete(self, face_ids: list[int]) -> None:
        self.conn.execute(f"DELETE FROM {quoted(self.schema)}.faces WHERE id = ANY(%s)", [face_ids])
        self.conn.commit()
        self.live[np.array(face_ids) - 1] = False


def connect(dsn: str, **kw):
    conn = psycopg.connect(dsn, **kw)
    conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    if not conn.autocommit:
        conn.commit()
    register_vector(conn)
    return conn


def check(app: App, queries: np.ndarray, k: int, groups: list[int] | None, conn=None,
          exact: bool = True) -> None:
    """Every answer: k rows (or all there are), best first, of the right groups, with
    their true similarities, never a deleted face. exact: the ids equal the exact top k.
    Otherwise (an HNSW answer, approximate by design): the same top 1 for every query
    whose nearest face is of its own identity, and the exact top k's faces found at a
    mean MIN_RECALL."""
    recalls = []
    for q in queries:
        hits = search.nearest_faces(conn or app.conn, app.schema, q, k, groups)
        truth = app.truth(q, k, groups)
        ids = np.array([h[0] for h in hits], np.int64) - 1
        assert len(hits) == len(truth) and app.live[ids].all()
        sims = [h[2] for h in hits]
        np.testing.assert_allclose(sims, app.faces.vectors[ids] @ q, atol=1e-5)
        assert sims == sorted(sims, reverse=True)
        assert [h[1] for h in hits] == [int(g) for g in app.face_group[ids]]
        if groups is not None:
            assert set(app.face_group[ids]) <= set(groups)
        if exact:
            assert [h[0] for h in hits] == truth
        else:
            own = app.faces.owner[truth[0] - 1] == np.argmax(app.faces.centres @ q)
            assert hits[0][0] == truth[0] or not own
            recalls.append(len(set(truth) & {h[0] for h in hits}) / len(truth))
    if not exact:
        assert np.mean(recalls) >= MIN_RECALL, np.mean(recalls)


@pytest.fixture(scope="module")
def small_app(pg):
    """3,000 faces: group 1 holds 10 % of the identities, group 2 the rest."""
    return App(pg.new_database(), 3000, [0.1], seed=3)


@pytest.fixture(scope="module")
def big_app(pg):
    """20,000 faces: group 1 is 0.5 % of the app, group 2 half of it, group 3 the rest."""
    return App(pg.new_database(), 20_000, [0.005, 0.5], seed=20)


def test_unfiltered_is_the_exact_answer_as_far_as_hnsw_goes(small_app):
    check(small_app, small_app.queries(40), K, None, exact=False)


@pytest.mark.parametrize("autocommit", [False, True])
def test_more_faces_than_pgvectors_default_ef_search(pg, small_app, autocommit):
    """k = 88 > pgvector's default ef_search of 40: the search raises it for k, also on an
    autocommit connection, where a plain SET LOCAL would be lost."""
    conn = connect(small_app.conn.info.dsn, autocommit=autocommit)
    check(small_app, small_app.queries(10), K_MAX, None, conn, exact=False)


def test_read_only_transaction(small_app):
    """A read: it runs in a read-only transaction (a hot standby's too)."""
    conn = connect(small_app.conn.info.dsn)
    conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    check(small_app, small_app.queries(5), K, None, conn, exact=False)
    check(small_app, small_app.queries(5), K, [1], conn)


def test_unfiltered_plan_is_the_hnsw_index(small_app):
    s = quoted(small_app.schema)
    q = small_app.queries(1)[0]
    plan = "\n".join(r[0] for r in small_app.conn.execute(
        "EXPLAIN " + search.hnsw_sql(s, False), [q, q, K]).fetchall())
    small_app.conn.rollback()
    assert "Index Scan using faces_hnsw" in plan, plan


def test_filtered_hnsw_plan_is_the_hnsw_index(big_app):
    """The path for large groups: the planner must not swap it for an exact scan of
    them (correct, but the cost the count chose to avoid)."""
    s = quoted(big_app.schema)
    q = big_app.queries(1)[0]
    for groups in ([2], [2, 3], [3]):
        plan = "\n".join(r[0] for r in big_app.conn.execute(
            "EXPLAIN " + search.hnsw_sql(s, True), [q, groups, q, K]).fetchall())
        big_app.conn.rollback()
        assert "Index Scan using faces_hnsw" in plan, plan


def test_exact_plan_never_uses_the_hnsw_index(big_app):
    """Even for a group of half the app, and with the planner told scans are costly."""
    s = quoted(big_app.schema)
    q = big_app.queries(1)[0]
    for groups in ([1], [2], [1, 2, 3]):
        big_app.conn.execute("SET LOCAL enable_seqscan = off")
        plan = "\n".join(r[0] for r in big_app.conn.execute(
            "EXPLAIN " + search.exact_sql(s, True), [q, groups, K]).fetchall())
        big_app.conn.rollback()
        assert "faces_hnsw" not in plan, plan


def test_group_of_half_a_percent(big_app):
    """100 faces of 20,000: an index scan filtered after the fact would find few or none
    of them among its ef_search candidates; the group's own top k come back."""
    assert 90 <= np.sum(big_app.face_group == 1) <= 110
    check(big_app, big_app.queries(20, group=1), K, [1])
    check(big_app, big_app.queries(20), K, [1])          # strangers to the group too


@pytest.mark.parametrize("exact_limit", [search.EXACT_GROUP_FACES, 1000])
def test_group_of_half_the_app(big_app, monkeypatch, exact_limit):
    """Exact (10,000 faces is under EXACT_GROUP_FACES) and through the filtered HNSW scan
    (the limit lowered so that this app's half takes that path)."""
    monkeypatch.setattr(search, "EXACT_GROUP_FACES", exact_limit)
    count = int(np.sum(big_app.face_group == 2))
    assert (search.filtered_ef(K, min(count, exact_limit + 1), 20_000, 0.5) is None) == (exact_limit > count)
    exact = exact_limit > count
    check(big_app, big_app.queries(20, group=2), K, [2], exact=exact)
    check(big_app, big_app.queries(20), K_MAX, [2, 1], exact=exact)


def test_short_filtered_scan_falls_back_to_exact(big_app, monkeypatch):
    """A candidate list too short for the group's share: the index scan of half the app
    yields at most 8 of its faces for k = 12, and the exact search answers instead."""
    monkeypatch.setattr(search, "EXACT_GROUP_FACES", 50)
    monkeypatch.setattr(search, "EF_SEARCH", 4)
    monkeypatch.setattr(search, "EF_PER_K", 0.1)
    monkeypatch.setattr(search, "FILTERED_CANDIDATES", 1)
    assert search.filtered_ef(K, 51, 20_000, 0.5) == 8   # at most 8 rows, whatever the graph
    paths = []
    for name in ("_hnsw", "_exact"):   # the real functions, counted
        real = getattr(search, name)
        monkeypatch.setattr(search, name, lambda *a, real=real, name=name: paths.append(name) or real(*a))
    check(big_app, big_app.queries(10, group=2), K, [2])
    assert paths == ["_hnsw", "_exact"] * 10


def test_k_larger_than_the_group_and_empty_groups(big_app):
    q = big_app.queries(1, group=1)[0]
    hits = search.nearest_faces(big_app.conn, big_app.schema, q, 500, [1])
    assert [h[0] for h in hits] == big_app.truth(q, 500, [1]) and len(hits) == np.sum(big_app.face_group == 1)
    assert search.nearest_faces(big_app.conn, big_app.schema, q, K, []) == []
    assert search.nearest_faces(big_app.conn, big_app.schema, q, K, [99]) == []   # no such group
    assert search.nearest_faces(big_app.conn, big_app.schema, q, 0, None) == []


def test_filtered_ef_rules():
    limit = search.EXACT_GROUP_FACES
    assert search.filtered_ef(K, limit, 10 * limit) is None                  # small: exact
    base = search.ef_search_for(K)
    assert base == max(search.EF_SEARCH, search.EF_PER_K * K)
    assert search.filtered_ef(K, limit + 1, 2 * limit) == 2 * base              # half: twice the candidates
    assert search.filtered_ef(K, limit + 1, 1e9) is None                        # a sliver of a huge app
    assert search.filtered_ef(K, limit + 1, 1e9, 0.5) == 2 * base               # ... unless the statistics say half
    assert search.filtered_ef(K, limit + 1, -1) == base                         # never analysed
    assert search.filtered_ef(search.EF_SEARCH_MAX + 1, limit + 1, limit) is None
    assert search.ef_search_for(search.EF_SEARCH_MAX) is None                   # exact, never a short answer
    assert search.ef_search_for(K, 0.3) == search.EF_SEARCH_MAX                 # capped: ~300 candidates survive
    assert search.ef_search_for(K, 0.1) is None                                 # 100 would: exact


def test_group_share_from_the_planners_statistics(big_app):
    """The statistics ANALYZE left (load_faces runs it): the three groups' real shares."""
    s = quoted(big_app.schema)
    for groups in ([1], [2], [1, 3]):
        count, total, *stats = big_app.conn.execute(search.GROUP_SIZE_SQL.format(s=s),
                                                    [groups, 10, f"{s}.faces", big_app.schema]).fetchone()
        big_app.conn.rollback()
        assert count == 10 and total == 20_000
        assert search.group_share(groups, total, *stats) == pytest.approx(np.isin(big_app.face_group, groups).mean(),
                                                                        abs=0.01)
    assert search.group_share([1], -1, None, None, None, None) is None
    assert search.group_share([5], 1000, [1, 2], [0.5, 0.3], 4.0, 0.0) == pytest.approx(0.1)   # not a common value


def test_deleted_faces_never_returned(pg):
    app = App(pg.new_database(), 3000, [0.1], seed=7)
    queries = app.queries(10, group=1)
    gone = sorted({f for q in queries for f in app.truth(q, 3, [1])})
    app.delete(gone)   # the index still holds them until a vacuum
    for groups in (None, [1], [1, 2]):
        check(app, queries, K, groups, exact=groups == [1])   # check: never a deleted face
