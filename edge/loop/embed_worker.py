"""A track's best frames embedded and searched off the frame path (docs/loop.md, "The
embedding worker").

The frame thread detects, tracks, gates and checks liveness on every frame; a frame worth
searching is handed over as the chips its embedder reads (one aligned 112x112 chip, 37 KB,
for SFace: no frame is kept) and one worker thread embeds them (the costliest stage:
SFace ~20 ms here, ~70 ms on a Pi 4; edge/analysis/embedders.py) and
searches the library. So no frame waits for an embedding and none is skipped for one.

- At most one job per track waits: a newer frame at least as good replaces it (newest
  best frame wins), a worse one is refused; at most `capacity` tracks wait.
- One worker and one waiting job per track: a track's results come back in the order its
  frames were taken. The worker keeps each track's embeddings so far (the fused search
  needs them, and a job may start while the track's previous one is still running).
- `cancel` forgets a track (decided, announced or ended): its waiting job is dropped and
  a running one's result discarded.
- A failed job (a storage error in the search) comes back as a result with `error`; the
  pipeline raises it on the frame thread, where the Runner handles it as before.
- `threaded=False` runs each job at once in the caller's thread: the replay and tests
  where the frame a decision falls on must not depend on timing.
"""
from __future__ import annotations

import threading
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import Callable

import numpy as np

from edge.loop.decision import Hit, fuse

DEFAULT_CAPACITY = 8   # tracks waiting for the worker; max_face_num (5) faces at once fit


@dataclass(frozen=True, eq=False)
class EmbedJob:
    track_id: int
    ts: float             # capture time of the frame
    chips: tuple          # what the embedder reads of the face (Embedder.cut): no frame is kept
    goodness: float       # decision.frame_goodness of the frame


@dataclass(eq=False)
class EmbedResult:
    job: EmbedJob
    embedding: np.ndarray | None = None
    hits: list[Hit] | None = None
    error: Exception | None = None


# search(job, its embedding, the query searched: the fused embedding or the same) -> hits
Search = Callable[[EmbedJob, np.ndarray, np.ndarray], list[Hit]]


class EmbedWorker:
    def __init__(self, embedder, search: Search, fused: bool, threaded: bool = True,
                 capacity: int = DEFAULT_CAPACITY, name: str = "edge-embed"):
        self.embedder, self.search, self.fused = embedder, search, fused
        self.threaded, self.capacity = threaded, max(1, int(capacity))
        self.stats: Counter = Counter()      # submitted, replaced, refused_worse, refused_full, done, ...
        self.ms: Counter = Counter()          # embed / search milliseconds since take_ms()
        self._cv = threading.Condition()
        self._pending: OrderedDict[int, EmbedJob] = OrderedDict()
        self._running: int | None = None
        self._running_since = 0.0
        self._cancelled: set[int] = set()
        self._history: dict[int, list[np.ndarray]] = {}
        self._results: list[EmbedResult] = []
        self._closed = False
        self._thread = None
        if threaded:
            self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
            self._thread.start()

    # -- the frame thread's side ------------------------------------------------------
    def pending_goodness(self, track_id: int) -> float | None:
        """The goodness of the track's waiting job, None when none waits."""
        with self._cv:
            job = self._pending.get(track_id)
            return None if job is None else job.goodness

    def submit(self, job: EmbedJob) -> str:
        """'queued', 'replaced' (the track's waiting job), 'worse' (refused: the waiting one
        is better) or 'full' (refused: `capacity` other tracks wait)."""
        if not self.threaded:
            self.stats["submitted"] += 1
            self._finish(job, self._do(job))
            return "queued"
        with self._cv:
            old = self._pending.get(job.track_id)
            if old is not None:
                if job.goodness < old.goodness:
                    self.stats["refused_worse"] += 1
                    return "worse"
                self._pending[job.track_id] = job   # keeps its place in the queue
                self.stats["replaced"] += 1
                return "replaced"
            if len(self._pending) >= self.capacity:
                self.stats["refused_full"] += 1
                return "full"
            self._pending[job.track_id] = job
            self.stats["submitted"] += 1
            self.stats["max_depth"] = max(self.stats["max_depth"], len(self._pending))
            self._cv.notify_all()
            return "queued"

    def busy(self, track_id: int) -> bool:
        """A job of this track waits or runs."""
        with self._cv:
            return track_id in self._pending or self._running == track_id

    def take(self) -> list[EmbedResult]:
        """The results finished since the last call, in the order they finished."""
        with self._cv:
            out, self._results = self._results, []
            return out

    def cancel(self, track_id: int) -> None:
        with self._cv:
            if self._pending.pop(track_id, None) is not None:
                self.stats["dropped"] += 1
            self._history.pop(track_id, None)
            if self._running == track_id:
                self._cancelled.add(track_id)
            self._results = [r for r in self._results if r.job.track_id != track_id]

    def stuck_for(self) -> float:
        """Seconds the running job has run (0 when idle): the Runner stops feeding systemd's
        watchdog when a search hangs, as it does for a stuck frame thread."""
        with self._cv:
            return 0.0 if self._running is None else time.monotonic() - self._running_since

    def depth(self) -> int:
        with self._cv:
            return len(self._pending) + (self._running is not None)

    def drain(self, timeout: float) -> bool:
        """Wait until no job waits or runs (the camera stopped); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while self._pending or self._running is not None:
                left = deadline - time.monotonic()
                if left <= 0 or not self.threaded or self._thread is None or not self._thread.is_alive():
                    return False
                self._cv.wait(left)
        return True

    def take_ms(self) -> dict[str, float]:
        with self._cv:
            out = dict(self.ms)
            self.ms.clear()
            return out

    def snapshot(self) -> dict:
        """For the status file: queue depth now, counters since start."""
        with self._cv:
            return {"mode": "thread" if self.threaded else "inline", "depth": len(self._pending)
                    + (self._running is not None), **{k: int(v) for k, v in self.stats.items()}}

    def close(self, timeout: float = 5.0) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    # -- the worker's side ------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._cv:
                while not self._pending and not self._closed:
                    self._cv.wait()
                if self._closed:
                    return
                track_id, job = self._pending.popitem(last=False)
                self._running, self._running_since = track_id, time.monotonic()
            result = self._do(job)
            self._finish(job, result)

    def _do(self, job: EmbedJob) -> EmbedResult:
        result = EmbedResult(job)
        try:
            t0 = time.perf_counter()
            result.embedding = self.embedder.embed(job.chips)
            t1 = time.perf_counter()
            with self._cv:
                before = list(self._history.get(job.track_id, ()))
            query = fuse(before + [result.embedding]) if self.fused else result.embedding
            result.hits = self.search(job, result.embedding, query)
            t2 = time.perf_counter()
            with self._cv:
                self.ms["embed"] += (t1 - t0) * 1000
                self.ms["search"] += (t2 - t1) * 1000
        except Exception as exc:  # noqa: BLE001 - handed to the frame thread, which raises it
            result.error = exc
        return result

    def _finish(self, job: EmbedJob, result: EmbedResult) -> None:
        with self._cv:
            self._running = None
            if job.track_id in self._cancelled:
                self._cancelled.discard(job.track_id)
                self.stats["discarded"] += 1
            else:
                if result.error is None:  # a failed search leaves the track's embeddings as they were
                    self._history.setdefault(job.track_id, []).append(result.embedding)
                    self.stats["done"] += 1
                else:
                    self.stats["failed"] += 1
                self._results.append(result)
            self._cv.notify_all()
