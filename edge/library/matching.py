"""From face hits to users: what a 1:N search and a 1:1 check answer, whatever found the faces.

FaceLibrary (its local index) and PgFaceLibrary (pgvector in PostgreSQL) find the
nearest faces differently; both rank users with these functions, so the API answers
alike on either backend.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Faces fetched per wanted user, so that users with several close faces do not crowd
# other users out of the top-k.
FACES_PER_USER = 4


@dataclass
class UserMatch:
    """A user found by a search: the best similarity over the user's faces."""
    group_id: str
    user_id: str
    user_info: str
    similarity: float
    similarities: list[float] = field(default_factory=list)  # every face hit, best first


def faces_wanted(max_users: int) -> int:
    """How many nearest faces a search of max_users users asks for."""
    return max_users * FACES_PER_USER + 8


def rank_users(hits, owners: dict[int, tuple[str, str, str]], max_users: int,
               min_similarity: float = -1.0) -> list[UserMatch]:
    """The best (group, user) pairs of face hits (face_ref, group_ref, similarity; best
    first), best first; owners: face_ref -> (group_id, user_id, user_info) of the faces
    that still exist (a face deleted since the hits were found is never a hit)."""
    users: dict[tuple[str, str], UserMatch] = {}
    for face_ref, _, sim in hits:
        if sim < min_similarity or face_ref not in owners:
            continue
        group_id, user_id, user_info = owners[face_ref]
        match = users.get((group_id, user_id))
        if match is None:
            users[(group_id, user_id)] = UserMatch(group_id, user_id, user_info, float(sim), [float(sim)])
        else:
            match.similarities.append(float(sim))
    ranked = sorted(users.values(), key=lambda m: -m.similarity)
    return ranked[:max_users]


def user_similarities(store, embedding: np.ndarray, user_id: str, group_ids: list[str]) -> list[UserMatch]:
    """1:1 against one user's faces (exact), per group the user is in, best first."""
    rows = store.user_embeddings(user_id, group_ids)
    if not rows:
        return []
    infos = dict(store.user_groups(user_id, group_ids))
    sims = np.stack([r[2] for r in rows]) @ np.asarray(embedding, np.float32)
    per_group: dict[str, list[float]] = {}
    for (_, group_id, _), sim in zip(rows, sims):
        per_group.setdefault(group_id, []).append(float(sim))
    out = [UserMatch(g, user_id, infos.get(g, ""), max(s), sorted(s, reverse=True)) for g, s in per_group.items()]
    return sorted(out, key=lambda m: -m.similarity)
