"""The same photos through detect + embed on two machines, compared (x86 against arm64).

onnxruntime's kernels differ between CPUs, int8's more than fp32's, so a model checked on
x86 is not assumed to give the same faces on a Pi: scripts/arm64_check.sh runs `dump` with
the host's x86 venv and inside the emulated arm64 root, then `compare`. Agreement: the same
number of faces per photo, each x86 box matched by an arm64 box with IoU >= MIN_IOU, and
their embeddings' cosine >= MIN_COSINE.

    python -m edge.crosscheck dump OUT.json PHOTO... [--precision fp32 int8] [--models-dir DIR]
    python -m edge.crosscheck compare X86.json ARM.json     # exit 1 on disagreement
    python -m edge.crosscheck int8-anyway DIR               # build + check int8 into DIR

`int8-anyway` answers the question a refused int8 build leaves (a machine where `edge
models fetch` found it failing its reference check): how far its faces are from x86's.
It builds the int8 files into DIR beside links to the fp32 files, whatever the check says.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MIN_IOU = 0.9
MIN_COSINE = 0.99
MAX_FACES = 20     # per photo: more than the group photos used hold


@dataclass(frozen=True)
class Agreement:
    """One precision's comparison over every photo."""
    precision: str
    photos: int
    faces: int
    min_cosine: float
    mean_cosine: float
    min_iou: float
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def line(self) -> str:
        return (f"{self.precision}: {self.photos} photos, {self.faces} faces, box IoU min {self.min_iou:.3f}, "
                f"cosine min {self.min_cosine:.5f} mean {self.mean_cosine:.5f}: "
                + ("agree" if self.ok else "DISAGREE: " + "; ".join(self.problems)))


def box_iou(a, b) -> float:
    """Intersection over union of two x1, y1, x2, y2 boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def analyse(paths: list[Path], precision: str, models_dir: Path | None = None) -> dict:
    """{photo name: {"boxes": [[x1, y1, x2, y2]...], "embeddings": [[128 floats]...]}}."""
    from edge.analysis.app import AnalyserConfig, FaceAnalyser
    from edge.imaging import decode_image
    analyser = FaceAnalyser(AnalyserConfig(models_dir=models_dir, threads=2, precision=precision))
    out = {}
    for path in paths:
        faces = analyser.analyse(decode_image(Path(path).read_bytes()), max_face_num=MAX_FACES,
                                 stages={"embedding"})
        out[Path(path).name] = {"boxes": [[float(v) for v in f.box] for f in faces],
                                "embeddings": [[float(v) for v in f.embedding] for f in faces]}
    return out


def int8_anyway(out_dir: Path, models_dir: Path | None = None) -> list[str]:
    """Each int8 build made into out_dir (the fp32 files linked) and its reference check's
    result on this machine: one line per build. Never installs into models_dir."""
    from edge.errors import ModelError
    from edge.models.fetch import build_int8, int8_source, verify_int8
    from edge.models.manifest import default_models_dir, load_manifest
    models_dir, out_dir = Path(models_dir or default_models_dir()), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for spec in load_manifest(models_dir).values():
        link = out_dir / spec.file
        if not link.exists():
            link.symlink_to((models_dir / spec.file).resolve())
        if spec.int8 is None:
            continue
        path = out_dir / spec.int8.file
        path.write_bytes(build_int8(spec, int8_source(spec, models_dir)))
        try:
            verify_int8(path, spec)
            lines.append(f"{spec.int8.file}: reference check passed here")
        except ModelError as exc:
            lines.append(f"{spec.int8.file}: reference check FAILED here ({exc}); built anyway in {out_dir}")
    return lines


def compare(ref: dict, got: dict, precision: str) -> Agreement:
    """`got`'s faces against `ref`'s, photo by photo (faces matched by best IoU)."""
    problems, cosines, ious, faces = [], [], [], 0
    for name, want in sorted(ref.items()):
        have = got.get(name)
        if have is None:
            problems.append(f"{name}: missing")
            continue
        if len(have["boxes"]) != len(want["boxes"]):
            problems.append(f"{name}: {len(have['boxes'])} faces, reference {len(want['boxes'])}")
            continue
        for box, emb in zip(want["boxes"], want["embeddings"]):
            faces += 1
            overlaps = [box_iou(box, b) for b in have["boxes"]]
            j = int(np.argmax(overlaps))
            cos = float(np.dot(emb, have["embeddings"][j]) /
                        (np.linalg.norm(emb) * np.linalg.norm(have["embeddings"][j])))
            ious.append(overlaps[j])
            cosines.append(cos)
            if overlaps[j] < MIN_IOU:
                problems.append(f"{name}: a face's box IoU {overlaps[j]:.3f} < {MIN_IOU}")
            elif cos < MIN_COSINE:
                problems.append(f"{name}: a face's embedding cosine {cos:.4f} < {MIN_COSINE}")
    if not faces:
        problems.append("no face compared")
    return Agreement(precision, len(ref), faces, min(cosines, default=0.0),
                     float(np.mean(cosines)) if cosines else 0.0, min(ious, default=0.0), problems)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m edge.crosscheck", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("dump", help="detect + embed the photos, write JSON")
    d.add_argument("out", type=Path)
    d.add_argument("photos", type=Path, nargs="+")
    d.add_argument("--precision", nargs="+", default=["fp32", "int8"])
    d.add_argument("--models-dir", type=Path, default=None)
    i = sub.add_parser("int8-anyway", help="build and check the int8 files into DIR")
    i.add_argument("dir", type=Path)
    c = sub.add_parser("compare", help="compare a dump with the reference dump")
    c.add_argument("ref", type=Path)
    c.add_argument("got", type=Path)
    args = ap.parse_args(argv)
    if args.cmd == "dump":
        old = json.loads(args.out.read_text()) if args.out.exists() else {}
        old.update({p: analyse(args.photos, p, args.models_dir) for p in args.precision})
        args.out.write_text(json.dumps(old))
        return 0
    if args.cmd == "int8-anyway":
        print("\n".join(int8_anyway(args.dir)))
        return 0
    ref, got = json.loads(args.ref.read_text()), json.loads(args.got.read_text())
    results = [compare(ref[p], got.get(p, {}), p) for p in ref]
    for r in results:
        print(r.line())
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
