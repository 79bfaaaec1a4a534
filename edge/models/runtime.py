"""onnxruntime sessions: created once per model, CPU only, thread count from the config.

Memory (docs/speed.md, "Memory and the rest of the path"): every session allocates its
activations from one CPU arena shared by the whole process, so the arena holds the
largest single run (the detector on a 1280 px photo) instead of the sum of five;
memory patterns are off (onnxruntime plans and keeps one per model and input shape,
and the detector sees a new shape with every photo size: +37 MB over photos of 11
sizes); the heap the model loading left free goes back to the system after each
session is created, and glibc maps big blocks of their own so a big photo's
temporaries go back too.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading
from pathlib import Path

import onnxruntime as ort

from edge.errors import ModelError

log = logging.getLogger(__name__)


def _glibc():
    """glibc's malloc_trim and mallopt, or (None, None) elsewhere (musl, macOS)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim, opt = libc.malloc_trim, libc.mallopt
    except (OSError, AttributeError):
        return None, None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    opt.argtypes, opt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return trim, opt


_TRIM, _MALLOPT = _glibc()
M_MMAP_THRESHOLD = -3            # glibc's mallopt parameter
# C allocations this large get pages of their own, returned to the system when freed.
# glibc's default threshold rises to the largest block freed (up to 32 MB), after which
# a big photo's temporaries (a decoded 2280x1588 photo is 11 MB, its detector blob 14 MB)
# stay in the heap for good. A video frame (0.9 MB) stays in the heap; 4 MB cost 11 MB
# more in `edge bench` and ~30 MB more in a serving process (its 1-4 MB request bodies
# and decoded photos), 16 MB 40 MB more with two workers. What pays the page faults
# instead: blocks of 1 MB or more allocated per call (an exact library scan over more
# than 262k faces allocates its 1 MB+ score vector, beside reading 128 MB+ of vectors).
MMAP_THRESHOLD_BYTES = 1 << 20

_arena_lock = threading.Lock()
_arena_registered = False


def _shared_arena() -> None:
    """Register the process's one CPU arena with onnxruntime's environment and fix
    glibc's mmap threshold (once, before the first model loads)."""
    global _arena_registered
    with _arena_lock:
        if _arena_registered:
            return
        info = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
        ort.create_and_register_allocator(info, ort.OrtArenaCfg({}))
        if _MALLOPT is not None:
            _MALLOPT(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
        _arena_registered = True


def release_free_heap() -> None:
    """Return the C heap's free pages to the system: the heap a model's protobuf was
    parsed into (~30 MB for SFace) stays otherwise. No-op without glibc."""
    if _TRIM is not None:
        _TRIM(0)


def session_options(threads: int = 2) -> ort.SessionOptions:
    """edge's options for every model (the benchmarks start from these too)."""
    _shared_arena()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, int(threads))
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    # Spinning worker threads burn the cores the capture threads and the other models
    # need; on a 2-core terminal they slow everything down when more than one runs.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.use_env_allocators", "1")
    opts.enable_mem_pattern = False
    return opts


def create_session(path: Path | str, threads: int = 2, opts: ort.SessionOptions | None = None) -> ort.InferenceSession:
    path = Path(path)
    if not path.exists():
        raise ModelError(f"model file {path} is missing: run `edge models fetch`")
    log.debug("loading %s with %d threads", path.name, threads)
    session = ort.InferenceSession(str(path), sess_options=opts or session_options(threads),
                                   providers=["CPUExecutionProvider"])
    release_free_heap()
    return session
