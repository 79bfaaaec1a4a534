"""int8 builds: onnxruntime's static quantizer applied to an fp32 runtime graph with
committed activation ranges.

A terminal has no data set, so the ranges are calibrated once in development
(scripts/calibrate_int8.py, faces of LFW view 1 pairsDevTrain people) and committed as
a small JSON file; `edge models fetch` turns the fp32 file into the int8 one with them.
Everything here is a pure function of its input bytes: the same fp32 file and ranges
give the same int8 bytes in every process (docs/speed.md, "int8").
"""
from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from edge.errors import ModelError

log = logging.getLogger(__name__)
RANGES_FORMAT = 1
CHUNK = 32     # calibration inputs run per collection pass
OPSET = 13   # per-channel DequantizeLinear needs opset 13; the shipped graphs are opset 11


@dataclass(frozen=True)
class Recipe:
    """How a model is quantized (the forms measured are in docs/speed.md, "int8").

    QDQ (onnxruntime's recommended form; its QOperator build of SFace gave wrong
    embeddings, cosine 0.13 to fp32), per-channel weights, uint8 activations with int8
    weights (the form onnxruntime's x86 and ARM kernels run fastest), weights on 7 bits
    (reduce_range) so x86 without VNNI cannot saturate its 16-bit sums and every CPU
    computes the same values. Only Conv and Gemm: the PRelu split's Relu/Min/Mul/Add stay
    float (quantizing them too was slower and no more exact). Percentile ranges clip the
    rare outliers that MinMax ranges stretch to (cosine to fp32 0.993 vs 0.988 on
    pairsDevTrain). The first two convolutions stay fp32: they are the most sensitive
    layers (full-resolution input, 3 and 64 channels) and cheap, and leaving them float
    raises the worst face's cosine to fp32 from 0.968 to 0.987."""
    per_channel: bool = True
    reduce_range: bool = True
    op_types: tuple[str, ...] = ("Conv", "Gemm")
    method: str = "percentile"            # onnxruntime's calibrator: minmax, percentile, entropy
    percentile: float = 99.999
    # nodes left float (onnxruntime's nodes_to_exclude); the sweep: scripts/sweep_int8.py
    fp32_nodes: tuple[str, ...] = ("conv_1_conv2d", "conv_2_dw_conv2d")

    def as_dict(self) -> dict:
        calibration = f"percentile {self.percentile}" if self.method == "percentile" else self.method
        doc = {"format": "QDQ", "activations": "uint8", "weights": "int8",
               "per_channel": self.per_channel, "reduce_range": self.reduce_range,
               "op_types": list(self.op_types), "calibration": calibration}
        if self.fp32_nodes:
            doc["fp32_nodes"] = list(self.fp32_nodes)
        return doc


RECIPE = Recipe()


def prepare(fp32: bytes) -> bytes:
    """The graph the ranges are taken on and the quantizer runs on: opset 13, then
    onnxruntime's own pre-processing (Conv+BatchNorm folded, shapes inferred), so each
    folded Conv gets one range instead of two."""
    import onnx
    from onnx import version_converter
    from onnxruntime.quantization.shape_inference import quant_pre_process

    model = onnx.load_from_string(fp32)
    if next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0) < OPSET:
        model = version_converter.convert_version(model, OPSET)
    with tempfile.TemporaryDirectory(prefix="edge-int8-") as tmp:
        src, dst = Path(tmp) / "in.onnx", Path(tmp) / "pre.onnx"
        onnx.save(model, str(src))
        quant_pre_process(str(src), str(dst), skip_symbolic_shape=True)
        return dst.read_bytes()


def calibrate(fp32: bytes, inputs: Iterable[np.ndarray], recipe: Recipe = RECIPE,
              chunk: int = CHUNK) -> dict[str, list[float]]:
    """Activation ranges {tensor: [low, high]} of the prepared graph over `inputs`
    (each one batch for the graph's single input); `chunk` inputs per pass (big
    inputs, e.g. camera frames: fewer)."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, create_calibrator

    prepared = prepare(fp32)
    name = onnx.load_from_string(prepared).graph.input[0].name
    with tempfile.TemporaryDirectory(prefix="edge-int8-") as tmp:
        path = Path(tmp) / "pre.onnx"
        path.write_bytes(prepared)
        method = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
                  "entropy": CalibrationMethod.Entropy}[recipe.method]
        extra = {"percentile": recipe.percentile} if recipe.method == "percentile" else {}
        cal = create_calibrator(path, None, augmented_model_path=str(Path(tmp) / "aug.onnx"),
                                calibrate_method=method, extra_options=extra)
        batch: list[np.ndarray] = []
        for x in inputs:   # in chunks: the calibrator holds every activation of a chunk
            batch.append(x)
            if len(batch) == chunk:
                cal.collect_data(_Reader(name, batch))
                batch = []
        if batch:
            cal.collect_data(_Reader(name, batch))
        data = cal.compute_data()
    return {k: [float(np.float32(np.ravel(v.range_value[0])[0])), float(np.float32(np.ravel(v.range_value[1])[0]))]
            for k, v in sorted(data.data.items())}


class _Reader:
    def __init__(self, name: str, inputs: Iterable[np.ndarray]):
        self._it = ({name: np.ascontiguousarray(x, np.float32)} for x in inputs)

    def get_next(self):
        return next(self._it, None)


def ranges_document(role: str, fp32_sha256: str, ranges: dict, calibrated_on: str,
                    recipe: Recipe = RECIPE) -> str:
    """The committed file: the ranges with what they were taken on, sorted, one per line."""
    head = {"format": RANGES_FORMAT, "role": role, "fp32_sha256": fp32_sha256,
            "recipe": recipe.as_dict(), "calibrated_on": calibrated_on}
    lines = [json.dumps(head, sort_keys=True)[:-1] + ', "ranges": {']
    lines += [f"  {json.dumps(k)}: [{lo!r}, {hi!r}]," for k, (lo, hi) in sorted(ranges.items())]
    lines[-1] = lines[-1].rstrip(",")
    return "\n".join(lines) + "\n}}\n"


def load_ranges(path: Path, fp32_sha256: str, recipe: Recipe = RECIPE) -> dict[str, tuple[float, float]]:
    """The committed ranges, refused (ModelError) unless they were taken on this very
    fp32 graph with this recipe: ranges of another graph would quantize it wrongly."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
        ranges = {str(k): (float(lo), float(hi)) for k, (lo, hi) in doc["ranges"].items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"cannot read the int8 ranges {path}: {exc}") from exc
    if doc.get("format") != RANGES_FORMAT or doc.get("recipe") != recipe.as_dict():
        raise ModelError(f"{path} was made by another quantization recipe: "
                         "run scripts/calibrate_int8.py")
    if doc.get("fp32_sha256") != fp32_sha256:
        raise ModelError(f"{path} was calibrated on another fp32 graph (sha256 "
                         f"{str(doc.get('fp32_sha256'))[:12]}, the runtime file is {fp32_sha256[:12]}): "
                         "run scripts/calibrate_int8.py")
    return ranges


def quantize(fp32: bytes, ranges: dict[str, tuple[float, float]], recipe: Recipe = RECIPE) -> bytes:
    """The int8 graph of `fp32` with the given activation ranges."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.calibrate import TensorsData, save_tensors_data

    prepared = prepare(fp32)
    table = TensorsData(CalibrationMethod.MinMax,
                        {k: (np.float32(lo), np.float32(hi)) for k, (lo, hi) in ranges.items()})
    with tempfile.TemporaryDirectory(prefix="edge-int8-") as tmp:
        src, dst, cache = Path(tmp) / "pre.onnx", Path(tmp) / "int8.onnx", Path(tmp) / "ranges.json"
        src.write_bytes(prepared)
        save_tensors_data(table, cache)
        try:
            quantize_static(str(src), str(dst), None, quant_format=QuantFormat.QDQ,
                            op_types_to_quantize=list(recipe.op_types), per_channel=recipe.per_channel,
                            nodes_to_exclude=list(recipe.fp32_nodes),
                            reduce_range=recipe.reduce_range, activation_type=QuantType.QUInt8,
                            weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
                            calibration_cache_path=str(cache))
        except ValueError as exc:   # a tensor without a range: the ranges are not this graph's
            raise ModelError(f"the int8 ranges do not fit the graph ({exc}): "
                             "run scripts/calibrate_int8.py") from exc
        return dst.read_bytes()
