"""1:N search of an app's faces in PostgreSQL through pgvector (docs/scale.md, Central 1:N search).

No group filter: the HNSW index (`ORDER BY embedding <#> q LIMIT k`) with ef_search
raised for k. A group filter: pgvector 0.6 applies the WHERE clause to the ef_search
rows the index scan yields, so a group that is a small part of the app would come back
short, or with faces that are not its nearest. The search therefore counts the groups'
faces first (an index-only count that stops at EXACT_GROUP_FACES + 1: bounded cost,
exact, nothing kept on the write path; a larger group's share comes from the planner's
statistics of faces.group_ref, in the same round trip) and
- small groups: exact, through the btree faces_group, ordered by an expression the
  HNSW index cannot serve, so the planner cannot pick it;
- large groups: HNSW with ef_search raised by 1/fraction, so that as many candidates
  survive the filter as an unfiltered scan has (up to pgvector's limit of 1000; exact
  when fewer than FILTERED_CANDIDATES would); when fewer than k survive, exact.
The survivors of a filtered index scan are the group's faces nearer than the scan's
farthest candidate, so k survivors are the group's top k (as far as the HNSW graph's
recall goes): the fallback only has to catch the short answers.

Everything runs in the caller's connection, reads only; ef_search is set with
set_config(..., is_local) in the same pipeline as the query (one round trip), inside the
caller's transaction or, on an autocommit connection, a transaction of its own.
"""
from __future__ import annotations

import contextlib
import math

import numpy as np

from edge.postgres.schema import quoted

# ef_search of an unfiltered search (k below it): recall@1 100 % (400 queries) at 1M
# synthetic faces with m=24, ef_construction=128; 200 gives 98.7 % (docs/scale.md, Central 1:N search).
EF_SEARCH = 300
# pgvector's upper limit of hnsw.ef_search (0.6: 1000); an index scan yields at most that many rows.
EF_SEARCH_MAX = 1000
# Groups up to this many faces are searched exactly: an exact search of them costs about
# what a filtered HNSW scan does (bench_hub.py search: 1 % of 1M = 10k faces, exact), and
# the bounded count that decides it reads at most this many index entries.
EXACT_GROUP_FACES = 20_000
# Candidates per face asked for: the top k of an HNSW scan are good when its candidate
# list is a few times k long (k = 88 for user_top_num 20), and a filtered scan's
# survivors vary around their mean, where a short answer costs an exact search on top.
EF_PER_K = 2
# A filtered scan is worth it only if this many of its <= EF_SEARCH_MAX candidates fall
# in the groups (else exact): 120 gave 100 % recall@1 for a group's members at 1M.
FILTERED_CANDIDATES = 120

# One round trip: the groups' face count, bounded; the app's row count and the group_ref
# statistics as the planner has them (ANALYZE, autovacuum's), for the share of a large group.
GROUP_SIZE_SQL = """
SELECT (SELECT count(*) FROM (SELECT 1 FROM {s}.faces WHERE group_ref = ANY(%s) LIMIT %s) x),
       (SELECT reltuples FROM pg_class WHERE oid = %s::regclass),
       st.most_common_vals::text::bigint[], st.most_common_freqs, st.n_distinct, st.null_frac
FROM (SELECT 1) one LEFT JOIN pg_stats st
    ON st.schemaname = %s AND st.tablename = 'faces' AND st.attname = 'group_ref'"""


def nearest_faces(conn, schema_name: str, query: np.ndarray, k: int,
                  group_refs: list[int] | None = None) -> list[tuple[int, int, float]]:
    """(face_ref, group_ref, cosine similarity) of the k faces nearest to a unit-length
    query, best first, within group_refs (all groups when None)."""
    s, q, k = quoted(schema_name), np.asarray(query, np.float32), int(k)
    groups = None if group_refs is None else sorted({int(g) for g in group_refs})
    if k <= 0 or groups == []:
        return []
    with _reading(conn):
        if groups is None:
            ef = ef_search_for(k)
            rows = [] if ef is None else _hnsw(conn, s, q, k, ef, None)
        else:
            count, total, *stats = conn.execute(GROUP_SIZE_SQL.format(s=s),
                                                [groups, EXACT_GROUP_FACES + 1, f"{s}.faces", schema_name]).fetchone()
            if count == 0:
                return []
            ef = filtered_ef(k, count, total, group_share(groups, total, *stats))
            if ef is None:
                return _exact(conn, s, q, k, groups)
            rows = _hnsw(conn, s, q, k, ef, groups)
        return rows if len(rows) >= k else _exact(conn, s, q, k, groups)


def group_share(groups: list[int], total: float, common: list[int] | None, freqs: list[float] | None,
                n_distinct: float | None, null_frac: float | None) -> float | None:
    """The share of the app's faces in `groups` by the planner's statistics (pg_stats of
    faces.group_ref): a common group's own frequency, any other group the average of the
    rest; None without statistics (a table never analysed)."""
    if n_distinct is None:
        return None
    common, freqs = common or [], freqs or []
    known = dict(zip(common, freqs))
    distinct = n_distinct if n_distinct > 0 else -n_distinct * max(total, 1.0)  # < 0: minus a share of the rows
    rest = max(0.0, 1.0 - sum(freqs) - (null_frac or 0.0)) / max(1.0, distinct - len(common))
    return min(1.0, sum(known.get(g, rest) for g in groups))


def filtered_ef(k: int, count: int, total: float, share: float | None = None) -> int | None:
    """ef_search of a filtered HNSW scan for k of `count` faces (EXACT_GROUP_FACES + 1
    meaning "more") among about `total` (pg_class.reltuples: -1 before the first ANALYZE,
    an old figure after); `share` the planner statistics' estimate of their fraction,
    used when the bounded count cannot tell. None for an exact search: a small group, or
    one that would need more than pgvector's limit."""
    if count <= EXACT_GROUP_FACES or k > EF_SEARCH_MAX:
        return None
    fraction = min(1.0, count / total) if total > 0 else 1.0   # a lower bound: count stopped at the limit
    return ef_search_for(k, max(fraction, share or 0.0))


def ef_search_for(k: int, fraction: float = 1.0) -> int | None:
    """ef_search for k results when a filter keeps `fraction` of the candidates: as many
    survive as an unfiltered scan has, as far as pgvector's limit allows; None (exact)
    when fewer than FILTERED_CANDIDATES (or 2k) would, or k itself needs more."""
    want = max(EF_SEARCH, EF_PER_K * k)
    if fraction >= 1.0:
        return want if want <= EF_SEARCH_MAX else None
    if EF_SEARCH_MAX * fraction < max(FILTERED_CANDIDATES, EF_PER_K * k):
        return None
    return min(EF_SEARCH_MAX, math.ceil(want / fraction))


@contextlib.contextmanager
def _reading(conn):
    """The caller's transaction, or one of this search's own on an autocommit connection:
    set_config(..., true) lasts until the end of a transaction and is lost without one."""
    if conn.autocommit:
        with conn.transaction():
            yield
    else:
        yield


def hnsw_sql(s: str, filtered: bool) -> str:
    """The index scan: `ORDER BY embedding <#> q` is the operator form HNSW answers.
    Parameters: q, [group refs,] q, k."""
    where = "WHERE group_ref = ANY(%s)" if filtered else ""
    return f"SELECT id, group_ref, -(embedding <#> %s) FROM {s}.faces {where} ORDER BY embedding <#> %s LIMIT %s"


def exact_sql(s: str, filtered: bool) -> str:
    """Every face of the groups (of the app) compared: `ORDER BY sim DESC` is not the
    index's operator form, so the planner cannot answer it from the HNSW index and reads
    the groups through the btree faces_group. Parameters: q, [group refs,] k."""
    where = "WHERE group_ref = ANY(%s)" if filtered else ""
    return f"SELECT id, group_ref, -(embedding <#> %s) AS sim FROM {s}.faces {where} ORDER BY sim DESC, id LIMIT %s"


def _hnsw(conn, s: str, q: np.ndarray, k: int, ef: int, groups: list[int] | None) -> list[tuple[int, int, float]]:
    with conn.pipeline():
        conn.execute("SELECT set_config('hnsw.ef_search', %s, true)", [str(ef)])
        cur = conn.execute(hnsw_sql(s, groups is not None), [q, *([groups] if groups else []), q, k])
    return [(int(i), int(g), float(sim)) for i, g, sim in cur.fetchall()]


def _exact(conn, s: str, q: np.ndarray, k: int, groups: list[int] | None) -> list[tuple[int, int, float]]:
    rows = conn.execute(exact_sql(s, groups is not None), [q, *([groups] if groups else []), k]).fetchall()
    return [(int(i), int(g), float(sim)) for i, g, sim in rows]
