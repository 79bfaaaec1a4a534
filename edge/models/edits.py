"""Graph edits applied to shipped models so onnxruntime runs them well.

Each edit is a pure function bytes -> bytes, named in the manifest's `edit` field.
"""
from __future__ import annotations

import tempfile
from pathlib import Path


def yunet_dynamic_input(data: bytes) -> bytes:
    """YuNet declares a fixed 1x3x640x640 input although it is fully convolutional.

    Make H, W and the per-stride anchor count symbolic and drop the baked-in
    intermediate shapes, so any input padded to a multiple of 32 runs.
    """
    import onnx

    model = onnx.load_from_string(data)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param, dims[3].dim_param = "H", "W"
    for out in model.graph.output:
        d = out.type.tensor_type.shape.dim
        stride = out.name.rsplit("_", 1)[-1]
        d[1].dim_param = f"anchors_{stride}"
    del model.graph.value_info[:]
    onnx.checker.check_model(model)
    return model.SerializeToString()


def drop_initializer_inputs(data: bytes) -> bytes:
    """SFace lists its weights also as graph inputs, which blocks constant folding
    (~20 % slower); remove every graph input that is an initializer."""
    import onnx

    model = onnx.load_from_string(data)
    inits = {i.name for i in model.graph.initializer}
    keep = [i for i in model.graph.input if i.name not in inits]
    del model.graph.input[:]
    model.graph.input.extend(keep)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def tflite_to_onnx(data: bytes) -> bytes:
    """MediaPipe's face mesh ships as tflite; tflite2onnx turns it into an NCHW ONNX graph."""
    import tflite2onnx

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "model.tflite", Path(tmp) / "model.onnx"
        src.write_bytes(data)
        tflite2onnx.convert(str(src), str(dst))
        return dst.read_bytes()


EDITS = {
    "yunet_dynamic_input": yunet_dynamic_input,
    "drop_initializer_inputs": drop_initializer_inputs,
    "tflite_to_onnx": tflite_to_onnx,
}
