"""The 0..100 score: a monotone calibrated mapping, and what it means on real faces."""
from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from conftest import LFW, load, lfw_people
from edge.library import scores
from edge.library.scores import CalibrationError, load_knots, score_to_similarity, similarity_to_score


def test_mapping_is_monotone_continuous_and_bounded():
    grid = np.linspace(-1, 1, 200_001)
    s = similarity_to_score(grid)
    assert np.all(np.diff(s) > 0)                      # strictly increasing
    assert np.max(np.abs(np.diff(s))) < 0.05           # no jumps on a 1e-5 grid
    assert s[0] == pytest.approx(0) and s[-1] == pytest.approx(100)
    assert isinstance(similarity_to_score(0.5), float) and similarity_to_score(grid[:3]).shape == (3,)


def test_inverse_round_trips():
    for score in (0.5, 43, 60, 70, 80, 85.5, 90, 95, 99.9):
        assert similarity_to_score(score_to_similarity(score)) == pytest.approx(score, abs=1e-6)


def test_table_records_the_far_targets():
    table = json.loads(scores.TABLE_PATH.read_text())
    cps = table["far_checkpoints"]
    for far, score in (("1e-03", 70), ("1e-04", 80), ("1e-05", 90)):
        assert cps[far]["score"] == pytest.approx(score, abs=0.2)
        # measured on ~12 M impostor pairs: within the counting noise of the target
        assert cps[far]["empirical_far"] == pytest.approx(float(far), rel=0.2)
    assert table["impostor_pairs"] > 10_000_000


@pytest.mark.parametrize("knots", [[[0.5, 80], [0.4, 90]], [[-1, 0]], "nope", [[-1, 0], [0.3, 120]]])
def test_bad_tables_are_refused(tmp_path, knots):
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"knots": knots}))
    with pytest.raises(CalibrationError):
        load_knots(path)


def same_pairs(n: int) -> list[tuple[str, int, int]]:
    lines = (LFW / "pairsDevTest.txt").read_text().split("\n")[1:]
    rows = [line.split() for line in lines if len(line.split()) == 3]
    return [(r[0], int(r[1]), int(r[2])) for r in rows][:n]


def embed(analyser, path) -> np.ndarray | None:
    faces = analyser.analyse(load(path), 1, 1, {"embedding"})
    return faces[0].embedding if faces else None


def test_scores_separate_people_on_real_photos(analyser):
    """Different people: ~1e-3 of pairs may pass 70, so 40 people's 780 pairs stay under
    it (a miss here means the calibration is off by orders of magnitude); the same
    person mostly clears Baidu's 80 (97.6 % on this split in the calibration)."""
    embs = [e for e in (embed(analyser, p) for p in lfw_people(40, seed=3)) if e is not None]
    assert len(embs) >= 38
    cross = np.array([similarity_to_score(float(a @ b)) for a, b in itertools.combinations(embs, 2)])
    assert (cross >= 70).sum() <= 1 and cross.max() < 90
    genuine = []
    for name, i, j in same_pairs(40):
        paths = [LFW / "images" / name / f"{name}_{k:04d}.jpg" for k in (i, j)]
        if all(p.exists() for p in paths):
            a, b = (embed(analyser, p) for p in paths)
            if a is not None and b is not None:
                genuine.append(similarity_to_score(float(a @ b)))
    assert len(genuine) >= 35
    assert np.mean(np.array(genuine) >= 80) >= 0.9
    assert np.median(genuine) > 85
