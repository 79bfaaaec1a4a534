"""Fitting and checking the glasses table on labelled photos (tests/labels/glasses.csv).

Shared by scripts/glasses_report.py (fits, writes the table, prints the rates) and
tests/test_glasses.py. People, not photos, are split into a tuning half and a report
half (edge.analysis.splits), so no face seen in the fit is scored in the report.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.analysis.glasses import CLASSES, TABLE_PATH, GlassesModel, Logistic
from edge.analysis.liveness import fit_logistic
from edge.analysis.splits import tuning_half

REPO = Path(__file__).resolve().parents[2]
LABELS = REPO / "tests" / "labels" / "glasses.csv"
LFW_IMAGES = REPO.parent / "shared" / "data" / "lfw-view1" / "images"
L2 = 30.0  # ridge on standardised features (142 of them, ~590 tuning faces); picked with CELL by
           # 5-fold by-person cross-validation inside the tuning half (macro F1)


@dataclass(frozen=True)
class Label:
    image: str      # LFW image stem, e.g. Keanu_Reeves_0001
    label: str      # none | common | sun | unsure
    source: str     # random | screened

    @property
    def person(self) -> str:
        return self.image.rsplit("_", 1)[0]

    @property
    def path(self) -> Path:
        return LFW_IMAGES / self.person / f"{self.image}.jpg"

    @property
    def kind(self) -> int:
        return CLASSES.index(self.label)

    @property
    def tuning(self) -> bool:
        return tuning_half(self.person)


def load_labels(path: Path = LABELS) -> list[Label]:
    """The labelled photos, `unsure` ones left out."""
    with open(path, newline="") as f:
        rows = csv.DictReader(line for line in f if not line.startswith("#"))
        return [Label(r["image"], r["label"], r["source"]) for r in rows if r["label"] != "unsure"]


def fit(x: np.ndarray, kinds: np.ndarray, l2: float = L2) -> GlassesModel:
    """Sunglasses vs the rest on all faces; glasses vs none on the faces without sunglasses."""
    w_sun, b_sun = fit_logistic(x, (kinds == 2).astype(float), l2)
    clear = kinds != 2
    w_any, b_any = fit_logistic(x[clear], (kinds[clear] == 1).astype(float), l2)
    return GlassesModel(sun=Logistic(w_sun, b_sun), frame=Logistic(w_any, b_any))


def write_table(model: GlassesModel, note: str, path: Path = TABLE_PATH) -> None:
    table = {"note": note,
             "sun": {"weights": [round(float(v), 6) for v in model.sun.weights], "bias": round(model.sun.bias, 6)},
             "frame": {"weights": [round(float(v), 6) for v in model.frame.weights],
                       "bias": round(model.frame.bias, 6)}}
    path.write_text(json.dumps(table, indent=1) + "\n")


def confusion(truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """3 x 3 counts, rows = truth (none, common, sun), columns = predicted."""
    m = np.zeros((3, 3), dtype=int)
    for t, p in zip(truth, predicted):
        m[int(t), int(p)] += 1
    return m


def precision_recall(m: np.ndarray) -> list[tuple[float, float]]:
    """(precision, recall) per class of a confusion matrix."""
    out = []
    for k in range(len(m)):
        col, row = m[:, k].sum(), m[k].sum()
        out.append((m[k, k] / col if col else float("nan"), m[k, k] / row if row else float("nan")))
    return out
