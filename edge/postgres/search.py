"""1:N search of an app's faces in PostgreSQL through pgvector (docs/scale.md)."""
from __future__ import annotations

import numpy as np

from edge.postgres.schema import quoted


def nearest_faces(conn, schema_name: str, query: np.ndarray, k: int,
                  group_refs: list[int] | None = None) -> list[tuple[int, int, float]]:
    """(face_ref, group_ref, cosine similarity) of the k faces nearest to a unit-length
    query, best first, within group_refs (all groups when None). Exact: a first version."""
    where, args = "", []
    if group_refs is not None:
        where, args = "WHERE group_ref = ANY(%s)", [list(group_refs)]
    rows = conn.execute(f"SELECT id, group_ref, -(embedding <#> %s) FROM {quoted(schema_name)}.faces {where} "
                        f"ORDER BY embedding <#> %s LIMIT %s",
                        [np.asarray(query, np.float32), *args, np.asarray(query, np.float32), int(k)]).fetchall()
    return [(int(r[0]), int(r[1]), float(r[2])) for r in rows]
