"""The same photos through detect + embed on two machines, compared (x86 against arm64).

onnxruntime's kernels differ between CPUs, int8's more than fp32's, so a model checked on
x86 is not assumed to give the same faces on a Pi: scripts/arm64_check.sh runs `dump` with
the host's x86 venv and inside the emulated arm64 root, then `compare`. Agreement: the same
number of faces per photo, each x86 box matched by an arm64 box with IoU >= MIN_IOU, and
their embeddings' cosine >= MIN_COSINE.

    python -m edge.crosscheck dump OUT.json PHOTO... [--precision fp32 int8] [--models-dir DIR]
    python -m edge.crosscheck compare X86.json ARM.json [--precision fp32]   # exit 1 on disagreement
    python -m edge.crosscheck int8-anyway DIR               # build + check int8 into DIR
    python -m edge.crosscheck trace OUT.json PHOTO          # one photo's intermediate values
    python -m edge.crosscheck trace-diff X86.json ARM.json  # where the two paths part

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

from edge.analysis.detector import iou

MIN_IOU = 0.9
MIN_COSINE = 0.99
MAX_FACES = 20     # per photo: more than the group photos used hold
ROLL_NUDGES_DEG = (-0.05, -0.02, -0.01, -0.005, 0.005, 0.01, 0.02, 0.05)   # trace's sensitivity probe


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
    below: int = 0     # faces whose cosine is under MIN_COSINE (the bar is per face)

    @property
    def ok(self) -> bool:
        return not self.problems

    def line(self) -> str:
        return (f"{self.precision}: {self.photos} photos, {self.faces} faces, box IoU min {self.min_iou:.3f}, "
                f"cosine min {self.min_cosine:.5f} mean {self.mean_cosine:.5f}, {self.below} below {MIN_COSINE}: "
                + ("agree" if self.ok else "DISAGREE: " + "; ".join(self.problems)))


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


def trace(path: Path, models_dir: Path | None = None) -> list[dict]:
    """Per face of one photo (fp32), each value the embedding depends on: the detector's 5
    points, the mesh's eye corners and roll, the roll gap (over FOLLOW_ROLL_DEG the points
    are detected again on the levelled crop), the points aligned on, the chip, the embedding."""
    from edge.analysis.align import align_face
    from edge.analysis.app import AnalyserConfig, FaceAnalyser
    from edge.analysis.landmarks import EYE_CORNERS
    from edge.analysis.orientation import FOLLOW_ROLL_DEG, roll_gap
    from edge.imaging import decode_image
    analyser = FaceAnalyser(AnalyserConfig(models_dir=models_dir, threads=2))
    img = decode_image(Path(path).read_bytes())
    det = analyser.detector.detect(img)
    out = []
    for f in analyser.analyse(img, max_face_num=MAX_FACES, stages={"embedding"}):
        j = int(np.argmax([iou(f.box, b) for b in det.boxes])) if len(det) else None
        kps_det = det.kps[j] if j is not None else f.kps5
        gap = roll_gap(kps_det, f.roll)
        chip = align_face(img, f.kps5)
        out.append({"box": [float(v) for v in f.box], "kps5_detected": np.asarray(kps_det).tolist(),
                    "eye_corners": np.asarray(f.mesh[list(EYE_CORNERS), :2]).tolist(),
                    "roll": float(f.roll), "roll_gap": float(gap), "relevelled": bool(abs(gap) > FOLLOW_ROLL_DEG),
                    "kps5_aligned": np.asarray(f.kps5).tolist(), "chip": chip.tolist(),
                    "embedding": [float(v) for v in f.embedding],
                    "embedding_of_chip": [float(v) for v in analyser.sface.embed_chips([chip])[0]],
                    # this machine's own embedding with the roll nudged (re-levelled faces only)
                    "roll_nudged_cosine": {str(d): _nudged_cosine(analyser, img, f, d) for d in ROLL_NUDGES_DEG}
                    if abs(gap) > FOLLOW_ROLL_DEG else {}})
    return out


def _nudged_cosine(analyser, img, face, delta: float) -> float:
    """Cosine of the face's embedding to the one its points give when re-levelled by a roll
    `delta` degrees off: how much a tiny difference in the mesh's roll can move it."""
    import dataclasses
    from edge.analysis.align import align_face
    kps = analyser._level_points(img, dataclasses.replace(face, roll=face.roll + delta))
    return float(analyser.sface.embed_chips([align_face(img, kps)])[0] @ face.embedding)


def trace_diff(a: list[dict], b: list[dict], models_dir: Path | None = None) -> list[str]:
    """One line per face: how far each traced value moved from a to b, and the cosine of
    b's chip embedded here against a's embedding (chip input vs the embedder's kernels)."""
    from edge.analysis.embedder import SFaceEmbedder
    from edge.models.manifest import runtime_files
    embedder = SFaceEmbedder(runtime_files(models_dir)["embedder"], 2)
    lines = []
    for fa in a:
        fb = max(b, key=lambda f: iou(fa["box"], f["box"]))
        d = {k: float(np.abs(np.subtract(fa[k], fb[k])).max())
             for k in ("box", "kps5_detected", "eye_corners", "kps5_aligned", "chip")}
        here = embedder.embed_chips([np.asarray(fb["chip"], np.uint8)])[0]
        lines.append(
            f"face at {[round(v) for v in fa['box']]}: max |diff| box {d['box']:.4f} kps5 {d['kps5_detected']:.4f} "
            f"eyes {d['eye_corners']:.4f} aligned {d['kps5_aligned']:.4f} chip {d['chip']:.0f}/255 "
            f"({int(np.sum(np.asarray(fa['chip']) != np.asarray(fb['chip'])))} values); roll {fa['roll']:.3f}/{fb['roll']:.3f} "
            f"gap {fa['roll_gap']:.3f}/{fb['roll_gap']:.3f} relevelled {fa['relevelled']}/{fb['relevelled']}; "
            f"cosine {np.dot(fa['embedding'], fb['embedding']):.5f}, second's chip embedded here {np.dot(fa['embedding'], here):.5f}"
            + ("; first's own cosine with its roll nudged " + " ".join(f"{d}:{c:.4f}" for d, c in fa["roll_nudged_cosine"].items())
               if fa.get("roll_nudged_cosine") else ""))
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
            overlaps = [iou(box, b) for b in have["boxes"]]
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
                     float(np.mean(cosines)) if cosines else 0.0, min(ious, default=0.0), problems,
                     sum(c < MIN_COSINE for c in cosines))


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
    c.add_argument("--precision", nargs="+", default=None, help="those only (default: every one in REF)")
    t = sub.add_parser("trace", help="one photo's intermediate values per face (fp32), JSON")
    t.add_argument("out", type=Path)
    t.add_argument("photo", type=Path)
    td = sub.add_parser("trace-diff", help="where two traces of a photo part")
    td.add_argument("a", type=Path)
    td.add_argument("b", type=Path)
    args = ap.parse_args(argv)
    if args.cmd == "trace":
        args.out.write_text(json.dumps(trace(args.photo)))
        return 0
    if args.cmd == "trace-diff":
        print("\n".join(trace_diff(json.loads(args.a.read_text()), json.loads(args.b.read_text()))))
        return 0
    if args.cmd == "dump":
        old = json.loads(args.out.read_text()) if args.out.exists() else {}
        old.update({p: analyse(args.photos, p, args.models_dir) for p in args.precision})
        args.out.write_text(json.dumps(old))
        return 0
    if args.cmd == "int8-anyway":
        print("\n".join(int8_anyway(args.dir)))
        return 0
    ref, got = json.loads(args.ref.read_text()), json.loads(args.got.read_text())
    results = [compare(ref[p], got.get(p, {}), p) for p in (args.precision or ref)]
    for r in results:
        print(r.line())
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
