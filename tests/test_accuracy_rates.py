"""The embedder comparison's maths (edge/accuracy/rates.py): rates at a FAR, the split,
the two fusions."""
from __future__ import annotations

import numpy as np

from edge.accuracy import rates


def test_tar_at_far_counts_impostors_above_the_threshold():
    imp = np.arange(10_000, dtype=np.float32) / 10_000          # 0 .. 0.9999
    gen = np.array([0.9995, 0.9990, 0.9985, 0.5], np.float32)
    scores = np.concatenate([imp, gen])
    same = np.r_[np.zeros(len(imp), bool), np.ones(len(gen), bool)]
    tar, thr, k = rates.tar_at_far(scores, same, 1e-3)         # 10 impostors may pass: 0.9990 .. 0.9999
    assert k == 10 and abs(thr - 0.9989) < 1e-6
    assert tar == 0.5                                            # 0.9995 and 0.9990 pass; 0.9985 and 0.5 do not
    tar, thr, k = rates.tar_at_far(scores, same, 1e-5)           # below one impostor: the highest one is the bar
    assert k == 0 and abs(thr - 0.9999) < 1e-6 and tar == 0.0


def test_the_split_keeps_each_person_on_one_side_and_pairs_within_it():
    person = np.repeat(np.arange(40), 3)
    report = rates.person_split(person, seed=3)
    assert 0.4 < report.mean() < 0.6
    for p in range(40):
        assert len(set(report[person == p])) == 1
    pairs = rates.all_pairs(np.flatnonzero(report), person)
    assert report[pairs.i].all() and report[pairs.j].all()
    n = int(report.sum())
    assert len(pairs.i) == n * (n - 1) // 2 and pairs.genuine == 3 * (n // 3)


def test_weighted_cosines_are_the_cosine_of_the_concatenated_embeddings():
    rng = np.random.default_rng(0)
    ea, eb = (rng.normal(size=(30, 16)) for _ in range(2))
    ea /= np.linalg.norm(ea, axis=1, keepdims=True)
    eb /= np.linalg.norm(eb, axis=1, keepdims=True)
    pairs = rates.all_pairs(np.arange(30), np.arange(30))
    w = 0.3
    fused = rates.cosines(rates.concat_embeddings(ea, eb, w), pairs)
    assert np.allclose(fused, rates.weighted(rates.cosines(ea, pairs), rates.cosines(eb, pairs), w), atol=1e-6)


def test_a_far_map_is_monotone_and_matches_the_counted_far():
    imp = np.random.default_rng(1).normal(0, 0.1, 200_000).astype(np.float32)
    m = rates.FarMap.fit(imp)
    grid = np.linspace(-0.5, 0.8, 500)
    lf = m(grid)
    assert np.all(np.diff(lf) <= 1e-12)
    for far in (1e-1, 1e-2):
        c = np.quantile(imp, 1 - far)
        assert abs(m(np.array([c]))[0] - np.log10(far)) < 0.05
    # past the counted tail the exponential goes on falling: evidence for two models adds up
    assert m(np.array([0.6]))[0] < m(np.array([0.5]))[0] < np.log10(rates.TAIL_FAR)
    assert rates.far_fused(np.array([0.5]), np.array([0.5]), m, m)[0] > rates.far_fused(
        np.array([0.5]), np.array([0.2]), m, m)[0]
