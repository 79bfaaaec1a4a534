"""onnxruntime sessions: created once per model, CPU only, thread count from the config."""
from __future__ import annotations

import logging
from pathlib import Path

import onnxruntime as ort

from edge.errors import ModelError

log = logging.getLogger(__name__)


def session_options(threads: int = 2) -> ort.SessionOptions:
    """edge's options for every model (the benchmarks start from these too)."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, int(threads))
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    # Spinning worker threads burn the cores the capture threads and the other models
    # need; on a 2-core terminal they slow everything down when more than one runs.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts


def create_session(path: Path | str, threads: int = 2, opts: ort.SessionOptions | None = None) -> ort.InferenceSession:
    path = Path(path)
    if not path.exists():
        raise ModelError(f"model file {path} is missing: run `edge models fetch`")
    log.debug("loading %s with %d threads", path.name, threads)
    return ort.InferenceSession(str(path), sess_options=opts or session_options(threads),
                                providers=["CPUExecutionProvider"])
