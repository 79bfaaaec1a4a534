"""The embedding worker: embedding and search off the loop's frame path (docs/loop.md,
"The embedding worker"), with the real models, real LFW photos and the real library,
whose search is slowed down (a slow Pi, a large library) by a delay before the real one."""
from __future__ import annotations

import threading
import time

import cv2
import numpy as np

from edge.analysis.align import align_face
from edge.config import load_config
from edge.imaging import decode_image
from edge.loop.embed_worker import EmbedJob, EmbedWorker
from edge.loop.pipeline import Pipeline
from edge.loop.runner import Runner
from edge.models.manifest import REPO_ROOT
from edge.sqlite import StorageError
from test_aip_v2 import A, B, C, photo
from test_pipeline import RULES, library, walk  # noqa: F401 - the fixture

DELAY_S = 1.0   # each search waits this long, then searches the real library
FRAME_BOUND_S = 0.9   # generous for one frame on a loaded box; a frame waiting for a search takes more


class SlowLibrary:
    """The real library; every search first waits DELAY_S (or until `gate` opens) and is
    logged. `fail` makes the searches numbered in `fail_at` (1-based; None: every one
    from now on) raise it instead (a library damaged mid-run, a busy disk)."""

    def __init__(self, inner, delay: float = DELAY_S):
        self.inner, self.delay, self.searches, self.calls = inner, delay, [], 0
        self.gate: threading.Event | None = None
        self.fail: StorageError | None = None
        self.fail_at: set[int] | None = None

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def search(self, embedding, groups, k):
        if self.gate is not None:
            self.gate.wait(30)
        else:
            time.sleep(self.delay)
        self.calls += 1
        if self.fail is not None and (self.fail_at is None or self.calls in self.fail_at):
            raise self.fail
        self.searches.append(np.array(embedding))
        return self.inner.search(embedding, groups, k)


def timed_run(pipeline: Pipeline, frames) -> tuple[list, list[float]]:
    """Events of the frames and each process() call's wall time in seconds."""
    events, walls = [], []
    for frame, ts in frames:
        t0 = time.perf_counter()
        events += pipeline.process(frame, ts)
        walls.append(time.perf_counter() - t0)
    return events, walls


def held_run(pipeline: Pipeline, frames) -> tuple[list, list[float]]:
    """timed_run, the rest of the frames only once the worker holds the first one's first
    job (its search waits at the gate): which jobs wait then does not depend on when the
    worker thread got the CPU."""
    events, walls = timed_run(pipeline, frames[:1])
    deadline = time.monotonic() + 30
    while not pipeline.worker.stuck_for() and time.monotonic() < deadline:
        time.sleep(0.01)
    more, walls2 = timed_run(pipeline, frames[1:])
    return events + more, walls + walls2


def side_by_side(names, frames: int = 24, fps: float = 15.0):
    """People standing side by side (photos at 0.8x), drifting slowly, in 640x480."""
    imgs = [cv2.resize(decode_image(photo(n, 2 if n != C else 1)), (200, 200)) for n in names]
    for i in range(frames):
        frame = np.full((480, 640, 3), 70, np.uint8)
        for k, img in enumerate(imgs):
            x, y = 10 + 210 * k + (i % 4), 120 + i // 3
            frame[y:y + 200, x:x + 200] = img
        yield frame, i / fps


def empty(start: float, seconds: float, fps: float = 15.0):
    """Frames with nobody in them, from video time `start` on."""
    for i in range(int(seconds * fps)):
        yield np.full((480, 640, 3), 70, np.uint8), start + i / fps


def test_a_slow_search_does_not_stall_the_frames(analyser, library):
    slow = SlowLibrary(library)
    pipeline = Pipeline(analyser, slow, RULES, "gate", threaded=True)
    try:
        events, walls = timed_run(pipeline, walk(decode_image(photo(A, 2))))
        # every frame was detected and tracked on time: one track, seen on all 24 frames
        assert max(walls) < FRAME_BOUND_S, walls
        assert [t.hits for t in pipeline.tracker.tracks.values()] == [24]
        events += pipeline.flush()
    finally:
        pipeline.close()
    assert [(e.kind, e.user_id) for e in events] == [("recognised", "paul")]
    assert len(slow.searches) >= 2   # fused: two frames at least


def test_newest_best_frame_replaces_the_waiting_job(analyser, library):
    """While the worker searches track 1's first frame, its next frames wait one at a
    time: a newer frame at least as good replaces the waiting one, a worse one is refused.
    The track's results come back in order, and the second search is of the first frame
    fused with the newest best one."""
    img = decode_image(photo(A, 2))
    face = analyser.analyse(img, 1, 0, {"landmarks", "quality"})[0]
    chip = align_face(img, face.kps5)
    slow = SlowLibrary(library)
    slow.gate = threading.Event()
    searched = []

    def search(job, embedding, query):
        searched.append((job.ts, query))
        return slow.search(query, None, 2)

    worker = EmbedWorker(analyser.embedder, search, fused=True, threaded=True)
    try:
        first = EmbedJob(1, 0.0, (chip,), 0.5)
        assert worker.submit(first) == "queued"
        deadline = time.monotonic() + 30
        while worker.pending_goodness(1) is not None and time.monotonic() < deadline:
            time.sleep(0.01)                       # the worker took it and waits at the gate
        assert worker.busy(1) and worker.depth() == 1 and worker.stuck_for() > 0  # (the watchdog reads it)
        flipped = np.ascontiguousarray(chip[:, ::-1])  # another frame of the same face
        assert worker.submit(EmbedJob(1, 0.1, (chip,), 0.5)) == "queued"
        assert worker.submit(EmbedJob(1, 0.2, (flipped,), 0.6)) == "replaced"
        assert worker.submit(EmbedJob(1, 0.3, (chip,), 0.4)) == "worse"
        assert worker.submit(EmbedJob(2, 0.3, (chip,), 0.4)) == "queued"   # another track waits beside it
        assert worker.depth() == 3
        slow.gate.set()
        assert worker.drain(30) and worker.stuck_for() == 0
        results = worker.take()
    finally:
        worker.close()
    assert [(r.job.track_id, r.job.ts) for r in results] == [(1, 0.0), (1, 0.2), (2, 0.3)]
    assert all(r.error is None and r.hits[0].user_id == "paul" for r in results)
    e0, e2 = results[0].embedding, results[1].embedding
    expected = (e0 + e2) / np.linalg.norm(e0 + e2)
    assert np.allclose(searched[1][1], expected, atol=1e-6)          # fused with the first frame
    assert np.allclose(searched[2][1], results[2].embedding)         # track 2: its own frame only
    assert worker.stats["replaced"] == 1 and worker.stats["refused_worse"] == 1


def test_three_people_one_event_each_and_ended_tracks_still_get_theirs(analyser, library):
    """Three people side by side (two enrolled), then nobody, while the worker's searches
    are held back: their tracks end with their frames still waiting or being searched.
    Once the searches go on, every track still gets exactly one event (the same tracks as
    inline), decided on what it searched: the frames a track gave before it left, the
    newest best one replacing the one waiting."""
    names = (A, B, C)
    frames = [*side_by_side(names), *empty(1.6, 1.5)]
    inline = Pipeline(analyser, library, RULES, "gate")
    expected = [*timed_run(inline, frames)[0], *inline.flush()]
    assert {("recognised", "jlo"), ("recognised", "paul"), ("unknown", "")} <= {(e.kind, e.user_id) for e in expected}
    # (and a face in the background of Ricardo Lagos's photo, refused for occlusion)

    slow = SlowLibrary(library)
    slow.gate = threading.Event()     # the searches wait until the people have left
    pipeline = Pipeline(analyser, slow, RULES, "gate", threaded=True)
    try:
        events, walls = held_run(pipeline, frames)
        assert max(walls) < FRAME_BOUND_S, walls
        assert pipeline.tracker.tracks == {} and pipeline.worker.depth() == 4  # ended, their frames waiting
        assert pipeline.worker.stats["replaced"] >= 1                           # newer best frames replaced them
        slow.gate.set()
        deadline = time.monotonic() + 60
        while pipeline.worker.depth() and time.monotonic() < deadline:
            events += pipeline.poll()
            time.sleep(0.05)
        events += pipeline.poll() + pipeline.flush()
    finally:
        pipeline.close()
    assert sorted(e.track_id for e in events) == sorted(e.track_id for e in expected)   # none lost or doubled
    searched = {e.track_id: e for e in events if e.kind in ("recognised", "unknown")}
    assert len(searched) == 3 and len(slow.searches) == 4   # one waiting frame a track, 2 for the first
    assert all(e.user_id in ("", "paul", "jlo") for e in searched.values())


def test_flush_at_camera_stop_waits_for_the_searches_in_flight(analyser, library):
    slow = SlowLibrary(library)
    slow.gate = threading.Event()
    pipeline = Pipeline(analyser, slow, RULES, "gate", threaded=True)
    try:
        frames = list(walk(decode_image(photo(A, 2)), frames=12))
        events, walls = held_run(pipeline, frames)
        assert max(walls) < FRAME_BOUND_S and pipeline.worker.depth() == 2 and events == []
        threading.Timer(0.5, slow.gate.set).start()   # the searches go on while flush() waits
        events += pipeline.flush()      # the camera stopped with searches in flight
    finally:
        pipeline.close()
    assert [(e.kind, e.user_id) for e in events] == [("recognised", "paul")]


def test_a_library_damaged_mid_run_stops_the_loop(tmp_path, edge_config):
    """The worker's search meets a damaged library: the Runner stops (exit 1, the fault
    kept), as when the search ran on the frame thread."""
    frames = tmp_path / "frames"
    frames.mkdir()
    for i, (frame, _) in enumerate(walk(decode_image(photo(A, 2)), frames=40)):
        cv2.imwrite(str(frames / f"{i:03d}.jpg"), frame)
    (tmp_path / "edge.yaml").write_text(
        f"data_dir: {tmp_path / 'data'}\nmodels: {{dir: {REPO_ROOT / 'models'}}}\n"
        f"run: {{liveness_control: NONE, duration_s: 60, status_interval_s: 0.5}}\n"
        f"events: {{log_file: {tmp_path / 'events.jsonl'}, attendance: false}}\n"
        f"cameras:\n  - {{name: gate, kind: folder, uri: {frames}, fps: 10, loop: true}}\n")
    cfg = load_config(tmp_path / "edge.yaml")
    assert cfg.run.embed_worker == "thread"   # the service default
    runner = Runner(cfg)
    pipeline = runner.pipelines["gate"]
    assert pipeline.worker.threaded
    slow = pipeline.library = SlowLibrary(pipeline.library, delay=0.05)
    slow.fail = StorageError("corrupt", tmp_path / "data" / "library.db", "database disk image is malformed")
    t0 = time.monotonic()
    assert runner.run() == 1
    assert time.monotonic() - t0 < 30
    assert runner.fault is slow.fail and runner.stop_event.is_set()
    assert any("malformed" in e for e in runner.status["gate"].errors)


def test_a_failed_search_loses_no_event_of_the_same_frame(analyser, library):
    """Paul and Jennifer are decided on the same frame (their second searches) as the
    stranger beside them is searched; that last search of the frame fails (a busy disk).
    process() raises it, as the Runner expects, and the two events decided with it come
    with the next call: none lost, none doubled. (The old loop raised from inside the
    frame, after announcing Paul and Jennifer, and their events were never given.)"""
    frames = [*side_by_side((A, B, C)), *empty(1.6, 1.5)]
    inline = Pipeline(analyser, library, RULES, "gate")
    want = sorted((e.kind, e.user_id) for e in [*timed_run(inline, frames)[0], *inline.flush()])
    busy = SlowLibrary(library, delay=0.0)
    busy.fail, busy.fail_at = StorageError("busy", "library.db", "database is locked"), {6}
    pipeline = Pipeline(analyser, busy, RULES, "gate")
    events, raised = [], 0
    for frame, ts in frames:
        try:
            events += pipeline.process(frame, ts)
        except StorageError:   # the Runner logs it and goes on with the next frame
            raised += 1
    events += pipeline.flush()
    assert raised == 1 and busy.calls > 6
    assert sorted((e.kind, e.user_id) for e in events) == want
    assert ("recognised", "paul") in want and ("recognised", "jlo") in want


def test_a_worker_session_of_its_own_runs_the_configured_precision(tmp_path, analyser):
    # run.embed_threads > 0 gives the worker its own SFace session: of the int8 file when
    # models.precision is int8 (it loaded the fp32 file, embedding beside an int8 model id).
    from edge.analysis.app import AnalyserConfig, FaceAnalyser
    from edge.loop.runner import worker_embedder
    (tmp_path / "edge.yaml").write_text(f"models: {{dir: {REPO_ROOT / 'models'}, precision: int8}}\n"
                                        f"run: {{embed_threads: 1}}\n")
    cfg = load_config(tmp_path / "edge.yaml")
    img = decode_image(photo(A, 1))
    chip = align_face(img, analyser.analyse(img, 1, 0, set())[0].kps5)
    int8 = FaceAnalyser(AnalyserConfig(models_dir=cfg.models_dir, threads=1, precision="int8")).sface
    got = worker_embedder(cfg, analyser).embed((chip,))
    assert np.abs(got - int8.embed_chips([chip])[0]).max() < 1e-5
    assert np.abs(got - analyser.sface.embed_chips([chip])[0]).max() > 1e-3   # not the fp32 model


def test_the_warm_up_runs_the_models_and_touches_no_track_search_or_event(analyser, library):
    # edge run warms every model on the demo photo before its cameras start (the first runs
    # grow onnxruntime's arena: the frames captured meanwhile were skipped).
    from edge.imaging.frame import in_frame
    from edge.models.manifest import sample_path
    pipe = Pipeline(analyser, SlowLibrary(library, delay=0), RULES, "gate", threaded=True)
    frame = in_frame(decode_image(sample_path("demo", REPO_ROOT / "models").read_bytes()))
    assert frame.shape == (480, 640, 3)
    assert pipe.warm_up(frame) is True
    assert pipe.warm_up(np.zeros((480, 640, 3), np.uint8)) is False   # no face: the detector only
    assert pipe.tracker.tracks == {} and pipe.library.searches == [] and pipe.worker.stats["submitted"] == 0
    assert pipe.flush() == []
    pipe.close()
