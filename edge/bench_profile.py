"""`edge bench --compare opencv --profile`: where each millisecond of edge's path goes.

Three tables, every variant interleaved round by round so the box's load hits all alike:
the stages of detect + align + embed for one face (the functions the analyser calls, one
by one); the YuNet, SFace and mesh sessions alone with edge's options, onnxruntime's
defaults and single changes, the graph before edge's PRelu split and with its previous
(Min) form, and OpenCV's DNN on the graph before it; and SFace's and the mesh's runs
split by operator type (onnxruntime's own profiler), each graph.
"""
from __future__ import annotations

import collections
import json
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from edge.analysis.align import align_face
from edge.analysis.detector import decode, nms, pyramid_scales
from edge.analysis.embedder import l2_normalise, preprocess as embed_preprocess
from edge.analysis.landmarks import crop_transform, eye_angle, preprocess as mesh_preprocess
from edge.analysis.orientation import FOLLOW_ROLL_DEG, roll_gap
from edge.analysis.pose import head_pose
from edge.imaging import decode_image
from edge.models.edits import prelu_split
from edge.models.runtime import create_session, session_options

ROUNDS = 30


def timed_rounds(fns: dict, rounds: int = ROUNDS, block: int = 1, skip: int = 0) -> dict[str, list[float]]:
    """Round-robin over the variants, `block` calls each time, the first `skip` of a block
    untimed: a variant whose threads spin after its run slows whatever runs next."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for fn in fns.values():
        fn()
    for _ in range(max(1, rounds // (block - skip))):
        for name, fn in fns.items():
            for i in range(block):
                t0 = time.perf_counter()
                fn()
                if i >= skip:
                    times[name].append((time.perf_counter() - t0) * 1000)
    return times


def _p50(v: list[float]) -> float:
    return float(np.median(v))


def stage_functions(analyser, img: np.ndarray) -> dict:
    """Each stage of analyse(img, 1, 0, {"embedding"}) as a call of its own, on its real inputs."""
    det, mesh, emb = analyser.detector, analyser.mesh, analyser.sface
    scales = pyramid_scales(*img.shape[:2], det.max_side)
    blobs = [det._blob(img, s).copy() for s in scales]
    outs = [dict(zip(det.output_names, det.session.run(det.output_names, {det.input_name: b}))) for b in blobs]
    face = analyser.analyse(img, 1, 0, set())[0]
    points, rolled = face.kps5, False
    m, _ = mesh.get(img, face.box, face.kps5)
    roll = head_pose(m, 0)[2]
    if abs(roll_gap(face.kps5, roll)) > FOLLOW_ROLL_DEG:
        face.roll, rolled = roll, True
        points = analyser._level_points(img, face)
    chip = align_face(img, points)
    x = embed_preprocess([chip])
    raw = emb.session.run(None, {emb.input_name: x})[0]
    encoded = cv2.imencode(".jpg", img)[1].tobytes()

    def post():
        for b, o, s in zip(blobs, outs, scales):
            d = decode(o, b.shape[2], b.shape[3], det.score_threshold)
            nms(d.boxes / s, d.scores, det.nms_threshold)

    fns = {
        "decode (JPEG, Baidu checks)": lambda: decode_image(encoded),
        f"detector pre-processing ({len(scales)} pass(es))": lambda: [det._blob(img, s) for s in scales],
        "detector run": lambda: [det.session.run(det.output_names, {det.input_name: b}) for b in blobs],
        "detector post-processing": post,
        "face mesh (the roll; all its runs)": lambda: mesh.get(img, face.box, face.kps5),
    }
    if rolled:
        fns["5 points again on the levelled crop"] = lambda: analyser._level_points(img, face)
    fns.update({
        "alignment warp": lambda: align_face(img, points),
        "embedder pre-processing": lambda: embed_preprocess([chip]),
        "embedder run": lambda: emb.session.run(None, {emb.input_name: x}),
        "normalisation": lambda: l2_normalise(raw[None]),
        "= analyse(), the whole": lambda: analyser.analyse(img, 1, 0, {"embedding"}),
    })
    return fns


def embedding_stage(analyser, img: np.ndarray, rounds: int = ROUNDS) -> dict[str, list[float]]:
    """The embedding stage as analyse() times it (after detector and mesh ran) beside the
    same session run back to back: what running amid the other models costs."""
    emb = analyser.sface
    chip = align_face(img, analyser.analyse(img, 1, 0, set())[0].kps5)
    x = embed_preprocess([chip])
    out: dict[str, list[float]] = {"inside analyse() (timings['embedding'])": [], "the session, back to back": []}
    for _ in range(rounds):
        analyser.analyse(img, 1, 0, {"embedding"})
        out["inside analyse() (timings['embedding'])"].append(analyser.timings["embedding"])
        t0 = time.perf_counter()
        emb.session.run(None, {emb.input_name: x})
        out["the session, back to back"].append((time.perf_counter() - t0) * 1000)
    return out


ort.set_default_logger_severity(3)   # the spinning variant overrides edge's entry: no warning


def option_variants(threads: int) -> dict[str, ort.SessionOptions | None]:
    """edge's options, onnxruntime's defaults (None), and one change at a time."""
    def edge(**change) -> ort.SessionOptions:
        o = session_options(threads)
        for key, value in change.items():
            if key == "spinning":
                o.add_session_config_entry("session.intra_op.allow_spinning", value)
            elif key == "own_arena":
                o.add_session_config_entry("session.use_env_allocators", "0")
                o.enable_mem_pattern = True
            else:
                setattr(o, key, value)
        return o

    g = ort.GraphOptimizationLevel
    return {
        "edge": edge(),
        "onnxruntime defaults": None,
        "spinning on": edge(spinning="1"),
        "1 intra-op thread": edge(intra_op_num_threads=1),
        "parallel, 2 inter-op": edge(execution_mode=ort.ExecutionMode.ORT_PARALLEL, inter_op_num_threads=2),
        "graph opt EXTENDED (no NCHWc)": edge(graph_optimization_level=g.ORT_ENABLE_EXTENDED),
        "graph opt BASIC": edge(graph_optimization_level=g.ORT_ENABLE_BASIC),
        "arena off": edge(enable_cpu_mem_arena=False),
        "own arena + memory patterns (before)": edge(own_arena=True),
    }


def min_split(unsplit: Path) -> Path:
    """The graph before the split with edge's previous split (Relu + s * Min, prelu_split)
    beside it: what the conv form (prelu_split_conv) is measured against."""
    out = unsplit.with_name(unsplit.stem + ".min-split.onnx")
    if not out.exists():
        out.write_bytes(prelu_split(unsplit.read_bytes()))
    return out


def session_functions(path: Path, x: np.ndarray, threads: int, unsplit: Path | None = None) -> dict:
    """The runtime file under each option variant; the graph before the PRelu split (if
    the model has one) and its Min split with edge's options; OpenCV's DNN on the graph
    before the split."""
    fns = {}
    variants = {name: (path, opts) for name, opts in option_variants(threads).items()}
    if unsplit is not None:
        variants["edge, PRelu kept (before the split)"] = (unsplit, session_options(threads))
        variants["edge, the Min split (prelu_split)"] = (min_split(unsplit), session_options(threads))
    for name, (model, opts) in variants.items():
        if opts is None:
            opts = ort.SessionOptions()
            opts.log_severity_level = 3
        s = create_session(model, threads, opts)
        feed = {s.get_inputs()[0].name: x}
        fns[name] = lambda s=s, feed=feed: s.run(None, feed)
    net = cv2.dnn.readNet(str(unsplit or path))

    def dnn():
        net.setInput(x)
        return net.forward()
    fns["OpenCV DNN, same graph before the split" if unsplit else "OpenCV DNN, same file"] = dnn
    return fns


def op_breakdown(path: Path, x: np.ndarray, threads: int, runs: int = 20) -> list[tuple[str, float, int]]:
    """(operator type, ms per run, nodes) from onnxruntime's profiler, edge's options."""
    opts = session_options(threads)
    opts.enable_profiling = True
    with tempfile.TemporaryDirectory() as tmp:
        opts.profile_file_prefix = str(Path(tmp) / "ort")
        s = create_session(path, threads, opts)
        feed = {s.get_inputs()[0].name: x}
        for _ in range(runs):
            s.run(None, feed)
        events = json.loads(Path(s.end_profiling()).read_text())
    ms, nodes = collections.defaultdict(float), collections.Counter()
    profiled = sum(1 for e in events if e.get("cat") == "Session" and e["name"] == "model_run")
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            ms[e["args"]["op_name"]] += e["dur"] / 1000 / profiled
            nodes[e["args"]["op_name"]] += 1
    return [(op, t, nodes[op] // profiled) for op, t in sorted(ms.items(), key=lambda kv: -kv[1])]


def _print_table(title: str, times: dict[str, list[float]]) -> None:
    print(f"  {title}")
    for name, ts in times.items():
        print(f"    {name:44s} p50 {_p50(ts):6.2f}  p95 {float(np.percentile(ts, 95)):6.2f} ms")


def profile(analyser, files: dict, unsplit: dict, photo: np.ndarray, frame: np.ndarray, threads: int) -> None:
    for label, img in (("150x150 LFW photo", photo), ("the photo in a 640x480 frame", frame)):
        _print_table(f"edge, one face, {label}: stage by stage", timed_rounds(stage_functions(analyser, img)))
    _print_table("SFace amid the pipeline vs alone (150x150 photo)", embedding_stage(analyser, photo))
    det = analyser.detector
    blob = det._blob(frame, pyramid_scales(*frame.shape[:2], det.max_side)[0]).copy()
    face = analyser.analyse(photo, 1, 0, set())[0]
    chip = embed_preprocess([align_face(photo, face.kps5)])
    crop = mesh_preprocess(photo, crop_transform(face.box, eye_angle(face.kps5[0], face.kps5[1]))[0])
    models = (("YuNet on the 640x480 frame", "detector", blob),
              ("SFace on one chip", "embedder", chip),
              ("face mesh on one crop (one of its runs)", "landmarks", crop))
    for label, role, x in models:
        _print_table(f"{label}: the session alone, {threads} threads unless said",
                     timed_rounds(session_functions(files[role], x, threads, unsplit.get(role)),
                                   ROUNDS, block=12, skip=2))
    for label, role, x in models[1:]:
        before = unsplit.get(role)
        graphs = {"": files[role], ", the Min split": before and min_split(before),
                  ", before the PRelu split": before}
        for tag, path in graphs.items():
            if path is None:
                continue
            print(f"  {label.split(' on ')[0]}{tag} by operator type (onnxruntime profiler, edge's options):")
            print("    " + "  ".join(f"{op} {ms:.2f} ms ({n} nodes)"
                                     for op, ms, n in op_breakdown(path, x, threads) if ms >= 0.1))
