#!/usr/bin/env python3
"""Calibrate the int8 SFace build: activation ranges over aligned faces of LFW view 1
pairsDevTrain people (never pairsDevTest's, which the accuracy gate measures on).

Writes the committed ranges file named in models/manifest.yaml; `edge models fetch`
then builds the int8 model from it. Run after any change to the graph it quantizes
(fetch.int8_source: the manifest's int8 edits, else SFace's fp32 runtime file).

    python scripts/calibrate_int8.py [--data ../shared/data/lfw-view1] [--faces 400]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from edge.analysis.align import align_face  # noqa: E402
from edge.analysis.app import AnalyserConfig, FaceAnalyser  # noqa: E402
from edge.analysis.embedder import preprocess  # noqa: E402
from edge.fileio import write_atomic  # noqa: E402
from edge.imaging import decode_image  # noqa: E402
from edge.models.fetch import int8_source, sha256  # noqa: E402
from edge.models.manifest import default_models_dir, load_manifest  # noqa: E402
from edge.models.quantize import calibrate, ranges_document  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "lfw-view1"


def train_photos(root: Path, limit: int) -> list[Path]:
    """One photo per pairsDevTrain person (in the list's order) that the shared copy holds."""
    names = [line.split("\t")[0] for line in (root / "peopleDevTrain.txt").read_text().splitlines()[1:] if line]
    photos = (next(iter(sorted((root / "images" / n).glob("*.jpg"))), None) for n in names)
    return [p for p in photos if p is not None][:limit]


def chips(analyser: FaceAnalyser, photos: list[Path]):
    """SFace's inputs exactly as the pipeline makes them (mesh-levelled points, aligned)."""
    for path in photos:
        img = decode_image(path.read_bytes())
        faces = analyser.analyse(img, max_face_num=1, face_sort_type=1, stages={"landmarks"})
        if faces:
            yield preprocess([align_face(img, faces[0].kps5)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--faces", type=int, default=400)
    args = ap.parse_args()
    models_dir = default_models_dir()
    spec = load_manifest(models_dir)["embedder"]
    fp32 = int8_source(spec, models_dir)
    photos = train_photos(args.data, args.faces)
    analyser = FaceAnalyser(AnalyserConfig(models_dir=models_dir, rotated_retry=False))
    inputs = list(chips(analyser, photos))
    ranges = calibrate(fp32, inputs)
    where = f"LFW view 1 pairsDevTrain people: {len(inputs)} aligned faces, one photo each"
    write_atomic(spec.int8.ranges, ranges_document("embedder", sha256(fp32), ranges, where).encode())
    print(f"{len(ranges)} tensor ranges from {len(inputs)} faces -> {spec.int8.ranges}")


if __name__ == "__main__":
    main()
