#!/usr/bin/env python3
"""Compute the reference outputs of the shipped models (run once by a developer).

The ONNX models run as shipped; the face mesh runs in the tflite interpreter
(`pip install ai-edge-litert`), so the converted ONNX graph is checked against the
original, not against itself. Writes tests/reference/model_outputs.npz.

dlib's face descriptor net (embedder_dlib) runs in dlib itself (`pip install dlib-bin`, a
reference tool only), on the rounded reference input and, for tests/test_dlib_embedder.py,
on dlib's own 150x150 chips (get_face_chip with its 5-point predictor from the same sdist)
of a few LFW photos: tests/reference/dlib_chips.npz. `--only ROLE` recomputes one role.

The int8 builds' own outputs are stored too (`<role>.int8/...`): the graph each int8
build quantizes (the wheel's member through its int8 edits, else its edits) quantized
with the committed ranges. `--int8`
recomputes only those, keeping the rest of the file (after scripts/calibrate_int8.py).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from edge.accuracy.lfw import DEFAULT_DATA  # noqa: E402
from edge.models import reference  # noqa: E402
from edge.models.edits import apply_edits  # noqa: E402
from edge.models.fetch import build_int8, extract_member, find_or_download, read_member  # noqa: E402
from edge.models.manifest import REPO_ROOT, default_models_dir, load_manifest  # noqa: E402

LFW = DEFAULT_DATA / "images"
CHIPS_FILE = REPO_ROOT / "tests" / "reference" / "dlib_chips.npz"
CHIP_PEOPLE = ["Aaron_Peirsol", "Abdullah_Gul", "Alejandro_Toledo", "Ali_Naimi", "Amelie_Mauresmo",
               "Andre_Agassi", "Angela_Bassett", "Ari_Fleischer", "Bill_Gates", "Colin_Powell"]
PREDICTOR_5 = "face_recognition_models/models/shape_predictor_5_face_landmarks.dat"


def _dlib_models(data: bytes, archive: Path, spec, tmp: Path):
    import dlib

    (tmp / "net.dat").write_bytes(data)
    top = spec.member.split("/", 1)[0]
    (tmp / "sp5.dat").write_bytes(read_member(archive, f"{top}/{PREDICTOR_5}"))
    return dlib.face_recognition_model_v1(str(tmp / "net.dat")), dlib.shape_predictor(str(tmp / "sp5.dat"))


def run_dlib(net, role: str) -> dict[str, np.ndarray]:
    x = reference.reference_input(role)[0].transpose(1, 2, 0).astype(np.uint8)   # HWC RGB
    return {f"{role}/descriptor": np.asarray(net.compute_face_descriptor(np.ascontiguousarray(x)), np.float32)}


def dlib_chips(net, predictor) -> dict[str, np.ndarray]:
    """dlib's own chips and descriptors of one photo of each CHIP_PEOPLE."""
    import dlib

    detect = dlib.get_frontal_face_detector()
    chips, descs, names = [], [], []
    for person in CHIP_PEOPLE:
        path = sorted((LFW / person).glob("*.jpg"))[0]
        img = dlib.load_rgb_image(str(path))
        faces = sorted(detect(img, 1), key=lambda r: -r.area())
        if not faces:
            continue
        chip = dlib.get_face_chip(img, predictor(img, faces[0]), size=150, padding=0.25)
        chips.append(chip)
        descs.append(np.asarray(net.compute_face_descriptor(chip), np.float32))
        names.append(path.name)
    return {"chips": np.stack(chips), "descriptors": np.stack(descs), "names": np.array(names)}


def run_tflite(data: bytes, role: str) -> dict[str, np.ndarray]:
    from ai_edge_litert.interpreter import Interpreter

    with tempfile.NamedTemporaryFile(suffix=".tflite") as fh:
        fh.write(data)
        fh.flush()
        it = Interpreter(model_path=fh.name)
        it.allocate_tensors()
        x = reference.reference_input(role).transpose(0, 2, 3, 1)  # tflite is NHWC
        it.set_tensor(it.get_input_details()[0]["index"], x)
        it.invoke()
        return {f"{role}/{o['name']}": reference.subsample(it.get_tensor(o["index"]))
                for o in it.get_output_details()}


def run_onnx_bytes(data: bytes, role: str) -> dict[str, np.ndarray]:
    with tempfile.NamedTemporaryFile(suffix=".onnx") as fh:
        fh.write(data)
        fh.flush()
        return reference.run_onnx(Path(fh.name), role)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--int8", action="store_true", help="recompute only the int8 builds' outputs")
    ap.add_argument("--only", help="recompute only this role's outputs, keeping the rest")
    args = ap.parse_args()
    models_dir = default_models_dir()
    out: dict[str, np.ndarray] = {}
    if args.int8 or args.only:
        with np.load(reference.REFERENCE_FILE) as npz:
            out = {k: npz[k] for k in npz.files
                   if (".int8/" not in k if args.int8 else not k.startswith(args.only + "/"))}
    for name, spec in load_manifest(models_dir).items():
        if args.only and name != args.only:
            continue
        archive = find_or_download(spec, models_dir / "cache")
        data = extract_member(archive, spec)
        if spec.int8 is not None:
            int8 = build_int8(spec, apply_edits(data, spec.int8.edits or spec.edits))
            out.update(reference.as_int8(run_onnx_bytes(int8, name), name))
        if args.int8:
            continue
        if spec.member.endswith(".dat"):
            with tempfile.TemporaryDirectory() as tmp:
                net, predictor = _dlib_models(data, archive, spec, Path(tmp))
                out.update(run_dlib(net, name))
                np.savez_compressed(CHIPS_FILE, **dlib_chips(net, predictor))
            print("wrote", CHIPS_FILE)
        elif spec.member.endswith(".tflite"):
            out.update(run_tflite(data, name))
        else:
            out.update(run_onnx_bytes(data, name))
        print(name, "done")
    reference.REFERENCE_FILE.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(reference.REFERENCE_FILE, **out)
    print("wrote", reference.REFERENCE_FILE, sum(v.nbytes for v in out.values()), "bytes")


if __name__ == "__main__":
    main()
