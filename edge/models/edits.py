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


def _rewrite_prelus(data: bytes, edit: str, prefix: str, rewrite) -> bytes:
    """Each PRelu(x, s) of the graph replaced by the nodes (and initialisers)
    `rewrite(prefix, k, x, slope, s, y, shape)` returns; a graph without PRelu comes
    back unchanged. `s` is the slope's array, `shape` x's inferred dims (None when
    unknown); `prefix` is made unique in the graph and names the new nodes
    (`prefix/k/...`) and prelu_split's shared zero (`prefix`)."""
    import numpy as np
    import onnx
    from onnx import numpy_helper, shape_inference

    model = onnx.load_from_string(data)
    graph = model.graph
    if not any(n.op_type == "PRelu" for n in graph.node):
        return data
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < 7:   # PRelu's slope broadcast was not numpy-style before opset 7
        raise ValueError(f"{edit} needs opset >= 7, the graph has {opset}")
    floats = {i.name: i for i in graph.initializer if i.data_type == onnx.TensorProto.FLOAT}
    taken = ({i.name for i in graph.initializer} | {i.name for i in graph.input}
             | {o for n in graph.node for o in n.output})
    while any(t.startswith(prefix) for t in taken):
        prefix += "_"
    shapes = _inferred_shapes(shape_inference.infer_shapes(model).graph)
    nodes, added = [], []
    for k, n in enumerate(graph.node):
        if n.op_type != "PRelu":
            nodes.append(n)
            continue
        (x, slope), y = n.input, n.output[0]
        if slope not in floats:
            raise ValueError(f"PRelu {n.name or k}: slope {slope} is not a float initializer")
        new_nodes, inits = rewrite(prefix, k, x, slope, numpy_helper.to_array(floats[slope]), y,
                                   shapes.get(x))
        nodes += new_nodes
        added += inits
    if any(prefix in n.input for n in nodes):
        added.append(numpy_helper.from_array(np.zeros((), np.float32), prefix))
    used = {i for n in nodes for i in n.input} | {o.name for o in graph.output}
    slopes = {n.input[1] for n in graph.node if n.op_type == "PRelu"}
    kept = [i for i in graph.initializer if i.name in used or i.name not in slopes]
    del graph.initializer[:]
    graph.initializer.extend(kept + added)   # a slope the rewrite no longer reads goes
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _inferred_shapes(graph) -> dict[str, tuple]:
    """Tensor name -> its dims (an int, or None where symbolic) as shape inference gives them."""
    out = {}
    for v in list(graph.input) + list(graph.value_info) + list(graph.output):
        t = v.type.tensor_type
        if t.HasField("shape"):
            out[v.name] = tuple(d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim)
    return out


def _min_form(zero: str, k: int, x: str, slope: str, y: str) -> tuple[list, list]:
    """Relu(x) + slope * Min(x, 0), the shared zero named `zero`."""
    from onnx import helper

    pos, neg, sneg = (f"{zero}/{k}/{part}" for part in ("pos", "neg", "sneg"))
    return ([helper.make_node("Relu", [x], [pos], name=pos),
             helper.make_node("Min", [x, zero], [neg], name=neg),
             helper.make_node("Mul", [neg, slope], [sneg], name=sneg),
             helper.make_node("Add", [pos, sneg], [y], name=f"{zero}/{k}/add")], [])


def prelu_split(data: bytes) -> bytes:
    """Write each PRelu(x, s) as Relu(x) + s * Min(x, 0): onnxruntime's PRelu kernel is
    about half of SFace's run and of the face mesh's, the four simple kernels are not.

    The same values (a -0 may come out +0): for x > 0 it adds s * 0, for x < 0 s * x to 0,
    and Mul broadcasts the slope ([C,1,1], [1,C,1,1] or [C]) exactly as PRelu does,
    since a slope only ever broadcasts to x's shape (docs/speed.md). A graph without
    PRelu comes back unchanged.
    """
    return _rewrite_prelus(data, "prelu_split", "prelu_split_zero",
                           lambda zero, k, x, slope, s, y, shape: _min_form(zero, k, x, slope, y))


def _channel_slopes(s, shape: tuple | None):
    """The slope as one value per channel of an NCHW x, or None when it is not one (a
    slope along W, x not 4-D, or x's channels unknown)."""
    import numpy as np

    if shape is None or len(shape) != 4 or not shape[1]:
        return None
    c = shape[1]
    dims = s.shape[-3:] if s.ndim >= 3 else (1,) * (3 - s.ndim) + s.shape
    if s.ndim > 4 or any(d != 1 for d in s.shape[:-3]) or dims[1:] != (1, 1) or dims[0] not in (1, c):
        return None
    return np.broadcast_to(s.reshape(-1).astype(np.float32), (c,))


def prelu_split_conv(data: bytes) -> bytes:
    """Write each per-channel PRelu(x, s) as Relu(x) + DWConv(Relu(DWConv(x, -1)), -s),
    two 1x1 depthwise convolutions: onnxruntime's blocked (NCHWc) layout runs Conv and
    Relu, so the model stays in it where Min and Mul (prelu_split) sent every PRelu's
    tensor back to NCHW and forth (docs/speed.md, "The split in the blocked layout").

    Each term is PRelu's own single rounding: -1 * x and Relu are exact, for x < 0 the
    sum is 0 + (-s)(-x) = s * x, for x > 0 it is x + (-s) * 0. +-inf come out as PRelu
    gives them; a NaN comes out NaN (tested). The convolutions around it may then
    sum in another order (embeddings ~1 ulp from prelu_split's). A PRelu whose slope is
    not per channel of a 4-D x gets prelu_split's form.
    """
    import numpy as np
    from onnx import helper, numpy_helper

    def rewrite(prefix, k, x, slope, s, y, shape):
        per_channel = _channel_slopes(s, shape)
        if per_channel is None:
            return _min_form(prefix, k, x, slope, y)
        c, tag = per_channel.size, f"{prefix}/{k}"
        flip, neg_s = f"{tag}/flip_w", f"{tag}/neg_slope_w"
        negx, negpart, pos, sneg = (f"{tag}/{p}" for p in ("negx", "relu_negx", "pos", "sneg"))
        conv = dict(kernel_shape=[1, 1], group=c)
        return ([helper.make_node("Relu", [x], [pos], name=pos),
                 helper.make_node("Conv", [x, flip], [negx], name=negx, **conv),
                 helper.make_node("Relu", [negx], [negpart], name=negpart),
                 helper.make_node("Conv", [negpart, neg_s], [sneg], name=sneg, **conv),
                 helper.make_node("Add", [pos, sneg], [y], name=f"{tag}/add")],
                [numpy_helper.from_array(np.full((c, 1, 1, 1), -1.0, np.float32), flip),
                 numpy_helper.from_array((-per_channel).reshape(c, 1, 1, 1), neg_s)])

    return _rewrite_prelus(data, "prelu_split_conv", "prelu_split_conv", rewrite)


def apply_edits(data: bytes, names: tuple[str, ...]) -> bytes:
    """The manifest's edits, in order."""
    for name in names:
        data = EDITS[name](data)
    return data


def dlib_to_onnx(data: bytes) -> bytes:
    """dlib's face descriptor ResNet (.dat, dlib's own serialisation) as an ONNX graph
    (edge/models/dlib_net.py)."""
    from edge.models.dlib_net import dlib_to_onnx as convert
    return convert(data)


EDITS = {
    "yunet_dynamic_input": yunet_dynamic_input,
    "drop_initializer_inputs": drop_initializer_inputs,
    "tflite_to_onnx": tflite_to_onnx,
    "prelu_split": prelu_split,
    "prelu_split_conv": prelu_split_conv,
    "dlib_to_onnx": dlib_to_onnx,
}
CONVERTERS = ("tflite_to_onnx", "dlib_to_onnx")   # edits whose input onnxruntime cannot run
PRELU_SPLITS = ("prelu_split", "prelu_split_conv")   # the edits that remove PRelu
