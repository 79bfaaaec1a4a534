"""Graph edits applied to shipped models so onnxruntime runs them well.

Each edit is a pure function bytes -> bytes, named in the manifest's `edit` field (one
name, or a list applied in order).
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
    """MediaPipe's face mesh ships as tflite; tflite2onnx turns it into an NCHW ONNX graph.

    tflite2onnx lists initialisers and value infos in set order (it changes with Python's
    hash seed), so they are sorted by name: the same tflite gives the same bytes.
    """
    import onnx
    import tflite2onnx

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "model.tflite", Path(tmp) / "model.onnx"
        src.write_bytes(data)
        tflite2onnx.convert(str(src), str(dst))
        model = onnx.load(str(dst))
    for field in (model.graph.initializer, model.graph.value_info):
        items = [type(i).FromString(i.SerializeToString()) for i in sorted(field, key=lambda i: i.name)]
        del field[:]
        field.extend(items)
    return model.SerializeToString()


def prelu_split(data: bytes) -> bytes:
    """Write each PRelu(x, s) as Relu(x) + s * Min(x, 0): onnxruntime's PRelu kernel is
    about half of SFace's run and of the face mesh's, the four simple kernels are not.

    The same values (a -0 may come out +0): for x > 0 it adds s * 0, for x < 0 s * x to 0,
    and Mul broadcasts the slope ([C,1,1], [1,C,1,1] or [C]) exactly as PRelu does,
    since a slope only ever broadcasts to x's shape (docs/speed.md). A graph without
    PRelu comes back unchanged.
    """
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load_from_string(data)
    graph = model.graph
    if not any(n.op_type == "PRelu" for n in graph.node):
        return data
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < 7:   # PRelu's slope broadcast was not numpy-style before opset 7
        raise ValueError(f"prelu_split needs opset >= 7, the graph has {opset}")
    floats = {i.name for i in graph.initializer if i.data_type == onnx.TensorProto.FLOAT}
    taken = ({i.name for i in graph.initializer} | {i.name for i in graph.input}
             | {o for n in graph.node for o in n.output})
    zero = "prelu_split_zero"
    while zero in taken:
        zero += "_"
    nodes = []
    for k, n in enumerate(graph.node):
        if n.op_type != "PRelu":
            nodes.append(n)
            continue
        (x, slope), y = n.input, n.output[0]
        if slope not in floats:
            raise ValueError(f"PRelu {n.name or k}: slope {slope} is not a float initializer")
        pos, neg, sneg = (f"{zero}/{k}/{part}" for part in ("pos", "neg", "sneg"))
        nodes += [helper.make_node("Relu", [x], [pos], name=pos),
                  helper.make_node("Min", [x, zero], [neg], name=neg),
                  helper.make_node("Mul", [neg, slope], [sneg], name=sneg),
                  helper.make_node("Add", [pos, sneg], [y], name=f"{zero}/{k}/add")]
    graph.initializer.append(numpy_helper.from_array(np.zeros((), np.float32), zero))
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def apply_edits(data: bytes, names: tuple[str, ...]) -> bytes:
    """The manifest's edits, in order."""
    for name in names:
        data = EDITS[name](data)
    return data


EDITS = {
    "yunet_dynamic_input": yunet_dynamic_input,
    "drop_initializer_inputs": drop_initializer_inputs,
    "tflite_to_onnx": tflite_to_onnx,
    "prelu_split": prelu_split,
}
