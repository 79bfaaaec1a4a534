"""dlib's face descriptor ResNet (dlib_face_recognition_resnet_model_v1.dat) -> ONNX.

The .dat file is dlib's own serialisation of its `anet_type` network
(loss_metric<fc_no_bias<128, avg_pool_everything<residual levels<max_pool<relu<affine<
con<32,7,7,2,2, input_rgb_image_sized<150>>>>>>>>). Written from a reading of dlib's
serialize.h / dnn/core.h / dnn/layers.h / dnn/input.h (no dlib code copied):

- an integer is one control byte (low nibble: how many value bytes follow, bit 7: the
  sign) and then its magnitude, least significant byte first;
- a string is its length (an integer) and its bytes; a bool is the character '0' / '1';
- a scalar float is a (mantissa, exponent) pair of integers, value = m * 2**e;
- a tensor is version 2, (num_samples, k, nr, nc) and its values as raw little-endian
  float32; an alias_tensor is version 1 and its four dimensions (a view into params);
- a network serialises outermost first: each wrapper writes its version and then its
  subnetwork, so all versions come first and the layers' own fields follow from the
  input outwards. add_layer (version 2; 3 for the one holding the input layer) writes
  after its subnetwork the layer's details (a tagged record), three bools and three
  (empty) tensors, the innermost one also its sample expansion factor. tag and skip
  layers (version 1) write nothing else, so which is which comes from the residual
  block's known shape: tag1 before a block, then for a downsampling block tag2 and
  skip1 before the avg_pool that the add_prev adds to.

build_onnx() makes an NCHW float32 graph: input `chip` (N, 3, 150, 150) RGB 0..255,
dlib's input normalisation ((x - mean) / 256) inside, output `descriptor` (N, 128),
not normalised (dlib compares descriptors by euclidean distance, 0.6).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

CHIP_SIZE = 150
DESCRIPTOR_DIM = 128


class DlibFormatError(ValueError):
    """The bytes are not the dlib network this reader knows."""


@dataclass
class Layer:
    kind: str                    # con, affine, relu, max_pool, avg_pool, add_prev, fc, tag
    params: dict = field(default_factory=dict)


@dataclass
class DlibNet:
    mean_rgb: tuple[float, float, float]
    input_size: tuple[int, int]
    layers: list[Layer]          # from the input outwards
    margin: float = 0.0          # loss_metric's training margin and distance threshold
    distance_threshold: float = 0.0


class Reader:
    """A cursor over dlib's serialised bytes."""

    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def _take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise DlibFormatError(f"truncated at byte {self.pos} (wanted {n} more)")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def int(self) -> int:
        ctrl = self._take(1)[0]
        size = ctrl & 0x0F
        if size > 8 or ctrl & 0x70:
            raise DlibFormatError(f"bad integer control byte {ctrl:#x} at {self.pos - 1}")
        value = int.from_bytes(self._take(size), "little")
        return -value if ctrl & 0x80 else value

    def string(self) -> str:
        n = self.int()
        if not 0 <= n < 1 << 16:
            raise DlibFormatError(f"implausible string length {n} at {self.pos}")
        return self._take(n).decode("latin-1")

    def scalar(self) -> float:
        mantissa, exponent = self.int(), self.int()
        special = {32000: np.inf, 32001: -np.inf, 32002: np.nan}
        return float(special[exponent]) if exponent in special else float(mantissa) * 2.0 ** exponent

    def flag(self) -> bool:
        c = self._take(1)
        if c not in (b"0", b"1"):
            raise DlibFormatError(f"bad bool {c!r} at {self.pos - 1}")
        return c == b"1"

    def tensor(self) -> np.ndarray:
        version = self.int()
        if version != 2:
            raise DlibFormatError(f"tensor version {version} at {self.pos}, expected 2")
        shape = tuple(self.int() for _ in range(4))
        count = int(np.prod(shape))
        return np.frombuffer(self._take(4 * count), "<f4").reshape(shape).astype(np.float32)

    def alias(self) -> tuple[int, int, int, int]:
        version = self.int()
        if version != 1:
            raise DlibFormatError(f"alias_tensor version {version} at {self.pos}, expected 1")
        return tuple(self.int() for _ in range(4))

    def expect(self, *names: str) -> str:
        at, name = self.pos, self.string()
        if name not in names:
            raise DlibFormatError(f"found {name!r} at byte {at}, expected one of {names}")
        return name


def _con(r: Reader) -> Layer:
    params = r.tensor().ravel()
    n, nr, nc, sy, sx, py, px = (r.int() for _ in range(7))
    fshape, bshape = r.alias(), r.alias()
    for _ in range(4):
        r.scalar()                               # learning-rate / weight-decay multipliers
    size = int(np.prod(fshape))
    if fshape[0] != n or (fshape[2], fshape[3]) != (nr, nc) or params.size != size + n:
        raise DlibFormatError(f"con_ sizes disagree: {fshape}, {bshape}, {params.size} params")
    return Layer("con", {"w": params[:size].reshape(fshape), "b": params[size:],
                         "stride": (sy, sx), "pad": (py, px)})


def _affine(r: Reader) -> Layer:
    params = r.tensor().ravel()
    g, b = r.alias(), r.alias()
    mode = r.int()
    if mode != 0 or int(np.prod(g)) + int(np.prod(b)) != params.size:
        raise DlibFormatError(f"affine_ mode {mode} / sizes {g} {b} not the per-channel form")
    c = int(np.prod(g))
    return Layer("affine", {"gamma": params[:c], "beta": params[c:]})


def _pool(kind: str):
    def read(r: Reader) -> Layer:
        nr, nc, sy, sx, py, px = (r.int() for _ in range(6))
        return Layer(kind, {"window": (nr, nc), "stride": (sy, sx), "pad": (py, px)})
    return read


def _fc(r: Reader) -> Layer:
    outputs, inputs = r.int(), r.int()
    params = r.tensor().ravel()
    r.alias()
    r.alias()
    bias_mode = r.int()
    for _ in range(4):
        r.scalar()
    if bias_mode != 1 or params.size != outputs * inputs:      # FC_NO_BIAS
        raise DlibFormatError(f"fc_ bias mode {bias_mode} / {params.size} params: not fc_no_bias")
    return Layer("fc", {"w": params.reshape(inputs, outputs)})


DETAILS = {"con_4": _con, "affine_": _affine, "relu_": lambda r: Layer("relu"),
           "add_prev_": lambda r: Layer("add_prev"), "max_pool_2": _pool("max_pool"),
           "avg_pool_2": _pool("avg_pool"), "fc_2": _fc}


def _trailer(r: Reader, innermost: bool) -> None:
    """add_layer's state after its details: flags and empty work tensors (ignored)."""
    for _ in range(3):
        r.flag()
    for _ in range(3):
        r.tensor()
    if innermost:
        r.int()                                  # sample expansion factor


def read_network(data: bytes) -> DlibNet:
    """Parse the .dat bytes; raises DlibFormatError on anything unexpected."""
    r = Reader(data)
    if r.int() != 1:
        raise DlibFormatError("not a dlib add_loss_layer (version 1)")
    r.expect("loss_metric_2")
    margin, threshold = r.scalar(), r.scalar()
    versions = []
    while True:                                  # the wrappers' versions, outermost first
        v = r.int()
        versions.append(v)
        if v == 3:
            break
        if v not in (1, 2) or len(versions) > 10_000:
            raise DlibFormatError(f"unexpected layer version {v} at byte {r.pos}")
    r.expect("input_rgb_image_sized")
    mean = (r.scalar(), r.scalar(), r.scalar())
    size = (r.int(), r.int())
    layers = []
    for i, v in enumerate(reversed(versions)):
        if v == 1:
            layers.append(Layer("tag"))          # tag or skip: resolved in build_onnx
            continue
        at, name = r.pos, r.string()
        if name not in DETAILS:
            raise DlibFormatError(f"unknown layer {name!r} at byte {at}")
        layers.append(DETAILS[name](r))
        _trailer(r, innermost=(i == 0))
    if r.pos != len(data):
        raise DlibFormatError(f"{len(data) - r.pos} bytes left after the network")
    return DlibNet(mean, size, layers, margin, threshold)


def _size_after(h: int, window: int, stride: int, pad: int) -> int:
    return (h + 2 * pad - window) // stride + 1


class _Graph:
    """Accumulates onnx nodes and initializers with unique names."""

    def __init__(self):
        self.nodes, self.inits, self.n = [], [], 0

    def const(self, arr: np.ndarray, tag: str) -> str:
        from onnx import numpy_helper
        name = f"{tag}_{len(self.inits)}"
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def op(self, op: str, inputs: list[str], tag: str, **attrs) -> str:
        from onnx import helper
        self.n += 1
        out = f"{tag}_{self.n}"
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out


def _pad_to(g: _Graph, x: str, have: tuple[int, int, int], want: tuple[int, int, int]) -> str:
    """Zero-pad x (C, H, W) at the end up to `want`: dlib's add_prev adds tensors of
    different sizes as if the smaller were zero outside its extent."""
    if have == want:
        return x
    pads = [0, 0, 0, 0, 0] + [w - h for h, w in zip(have, want)]   # begins N C H W, ends N C H W
    return g.op("Pad", [x, g.const(np.array(pads, np.int64), "pads")], "pad")


def build_onnx(net: DlibNet, opset: int = 17) -> bytes:
    """The ONNX graph of the parsed network (see the module docstring for its I/O)."""
    import onnx
    from onnx import TensorProto, helper

    g = _Graph()
    mean = np.asarray(net.mean_rgb, np.float32).reshape(1, 3, 1, 1)
    x = g.op("Sub", ["chip", g.const(mean, "mean")], "sub")
    x = g.op("Mul", [x, g.const(np.array(1 / 256, np.float32), "scale")], "norm")
    shape = (3, *net.input_size)                                 # (C, H, W) as dlib computes
    tag1 = tag2 = None
    for layer in net.layers:
        p = layer.params
        if layer.kind == "tag":
            if tag1 is None:
                tag1 = (x, shape)
            elif tag2 is None:
                tag2 = (x, shape)
            else:                                                # skip1: back to tag1's output
                x, shape = tag1
        elif layer.kind == "con":
            w = p["w"]
            (sy, sx), (py, px) = p["stride"], p["pad"]
            x = g.op("Conv", [x, g.const(w, "w"), g.const(p["b"], "b")], "conv",
                     kernel_shape=list(w.shape[2:]), strides=[sy, sx], pads=[py, px, py, px])
            shape = (w.shape[0], _size_after(shape[1], w.shape[2], sy, py),
                     _size_after(shape[2], w.shape[3], sx, px))
        elif layer.kind == "affine":
            c = p["gamma"].size
            x = g.op("Mul", [x, g.const(p["gamma"].reshape(1, c, 1, 1), "gamma")], "scale")
            x = g.op("Add", [x, g.const(p["beta"].reshape(1, c, 1, 1), "beta")], "shift")
        elif layer.kind == "relu":
            x = g.op("Relu", [x], "relu")
        elif layer.kind in ("max_pool", "avg_pool"):
            (wy, wx), (sy, sx), (py, px) = p["window"], p["stride"], p["pad"]
            if wy == 0 and wx == 0:                              # avg_pool_everything
                x = g.op("GlobalAveragePool", [x], "gap")
                shape = (shape[0], 1, 1)
                continue
            if py or px:
                raise DlibFormatError("padded pooling is not converted (dlib excludes the padding)")
            op = "MaxPool" if layer.kind == "max_pool" else "AveragePool"
            x = g.op(op, [x], layer.kind, kernel_shape=[wy, wx], strides=[sy, sx])
            shape = (shape[0], _size_after(shape[1], wy, sy, 0), _size_after(shape[2], wx, sx, 0))
        elif layer.kind == "add_prev":
            other, oshape = tag2 if tag2 is not None else tag1
            want = tuple(max(a, b) for a, b in zip(shape, oshape))
            x = g.op("Add", [_pad_to(g, x, shape, want), _pad_to(g, other, oshape, want)], "add")
            shape, tag1, tag2 = want, None, None
        elif layer.kind == "fc":
            flat = g.op("Flatten", [x], "flatten", axis=1)
            x = g.op("MatMul", [flat, g.const(p["w"], "fc")], "fc")
        else:
            raise DlibFormatError(f"no conversion for {layer.kind}")
    g.nodes[-1].output[0] = "descriptor"
    graph = helper.make_graph(
        g.nodes, "dlib_face_recognition_resnet_model_v1",
        [helper.make_tensor_value_info("chip", TensorProto.FLOAT, ["N", 3, *net.input_size])],
        [helper.make_tensor_value_info("descriptor", TensorProto.FLOAT, ["N", DESCRIPTOR_DIM])],
        g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="edge.models.dlib_net")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def dlib_to_onnx(data: bytes) -> bytes:
    """The manifest edit: dlib .dat bytes -> ONNX bytes."""
    return build_onnx(read_network(data))
