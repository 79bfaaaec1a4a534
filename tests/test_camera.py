"""The camera layer against real sources: a local MJPEG-over-HTTP camera that can stall,
drop and come back (read by OpenCV's FFmpeg backend), folders of LFW photos, an MJPG
.avi written by OpenCV, and the demo photo. No assertion is about speed: waits have
generous timeouts, and timing checks are lower bounds (pacing, back-off), which a slow
machine can only make larger."""
from __future__ import annotations

import importlib.util
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import lfw_people, load
from edge.camera import (Camera, CameraConfigError, CameraError, CameraSet, CameraState, DemoSource,
                         EndOfSource, FolderSource, OpenCVSource, PiCameraSource, SourceConfig)
from serving import wait_until

SIZE = (640, 480)
NOT_STREAMING = (CameraState.STALLED, CameraState.RECONNECTING)
# Small timings so stalls, drops and back-off play out in seconds.
FAST = dict(stall_timeout_s=0.5, open_timeout_s=1.0, reconnect_min_s=0.2, reconnect_max_s=1.6)


def photo(path: Path) -> np.ndarray:
    return cv2.resize(load(path), SIZE, interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    """Twelve LFW portraits (one per person) at 640x480."""
    return [photo(p) for p in lfw_people(12, seed=5)]


def closest(img: np.ndarray, originals: list[np.ndarray]) -> int:
    """Which original a decoded (lossy) frame shows."""
    small = cv2.resize(img, (80, 60)).astype(np.int16)
    diffs = [np.abs(small - cv2.resize(o, (80, 60)).astype(np.int16)).mean() for o in originals]
    assert min(diffs) < 12, f"frame matches no source photo (mean abs diff {min(diffs):.1f})"
    return int(np.argmin(diffs))


class MjpegServer:
    """A camera's MJPEG-over-HTTP endpoint (multipart/x-mixed-replace, as IP cameras and
    mjpg-streamer serve it). stall(): connections stay open but no frame is sent;
    drop(): every connection is closed and the port refuses; resume(): back to normal,
    on the same port."""

    FPS = 20.0

    def __init__(self, images: list[np.ndarray]):
        self.jpegs = [cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes() for img in images]
        self.mode = "ok"
        self.port = 0
        self.connections: set[socket.socket] = set()
        self.accepted = 0
        self._lock = threading.Lock()
        self._httpd = None
        self._listen()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream.mjpg"

    def _listen(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args):
                pass

            def do_GET(self):
                owner._serve(self)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                         name="mjpeg-server", daemon=True).start()

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        if handler.path != "/stream.mjpg":
            handler.send_error(404)
            return
        with self._lock:
            self.accepted += 1
            self.connections.add(handler.connection)
        try:
            handler.send_response(200)
            handler.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            handler.send_header("Cache-Control", "no-cache")
            handler.end_headers()
            i = 0
            while self.mode != "drop":
                if self.mode == "stall":
                    time.sleep(0.02)
                    continue
                jpg = self.jpegs[i % len(self.jpegs)]
                handler.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%s\r\n"
                                    % (len(jpg), jpg))
                handler.wfile.flush()
                i += 1
                time.sleep(1.0 / self.FPS)
        except OSError:
            pass                       # the client went away
        finally:
            with self._lock:
                self.connections.discard(handler.connection)

    def open_connections(self) -> int:
        with self._lock:
            return len(self.connections)

    def stall(self) -> None:
        self.mode = "stall"

    def drop(self) -> None:
        self.mode = "drop"
        self._httpd.shutdown()
        self._httpd.server_close()         # the port now refuses connections
        with self._lock:
            conns = list(self.connections)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def resume(self) -> None:
        if self.mode == "drop":
            self._listen()
        self.mode = "ok"

    def close(self) -> None:
        if self.mode != "drop":
            self.drop()


@pytest.fixture
def server(photos):
    srv = MjpegServer(photos)
    yield srv
    srv.close()


@pytest.fixture
def cameras():
    """Cameras made by a test; stopped even when the test fails."""
    made: list[Camera] = []

    def make(cfg: SourceConfig, **kw) -> Camera:
        cam = Camera(cfg, **kw)
        made.append(cam)
        return cam.start()

    yield make
    for cam in made:
        cam.stop()


def stream_config(server: MjpegServer, name: str = "door", **over) -> SourceConfig:
    return SourceConfig(name=name, kind="stream", uri=server.url, **{**FAST, **over})


def frames_after(cam: Camera, n: int, after_seq: int = -1) -> list:
    out = []
    for _ in range(n):
        frame = cam.latest(after_seq=after_seq, timeout=10)
        assert frame is not None, f"{cam.name}: no new frame ({cam.stats()})"
        out.append(frame)
        after_seq = frame.seq
    return out


# -- OpenCV and the MJPEG camera ---------------------------------------------------


def test_opencv_ffmpeg_reads_the_mjpeg_url(server, photos):
    """The premise of the stream tests: OpenCV's FFmpeg backend reads an MJPEG-over-HTTP
    URL here, and honours the read timeout given at open on a stalled stream."""
    params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, 5000, cv2.CAP_PROP_READ_TIMEOUT_MSEC, 1000]
    cap = cv2.VideoCapture(server.url, cv2.CAP_FFMPEG, params)
    try:
        assert cap.isOpened(), "FFmpeg backend cannot open the MJPEG URL"
        ok, img = cap.read()
        assert ok and img.shape == (480, 640, 3)
        closest(img, photos)
        server.stall()
        for _ in range(50):             # a frame or two may be in flight; then the read
            ok, _ = cap.read()          # fails after the 1 s read timeout, not FFmpeg's 30 s
            if not ok:
                break
        assert not ok
    finally:
        cap.release()


def test_stream_camera_streams_with_increasing_seq(server, photos, cameras):
    cam = cameras(stream_config(server))
    assert cam.wait_for(CameraState.STREAMING, timeout=15), cam.stats()
    frames = frames_after(cam, 6)
    seqs = [f.seq for f in frames]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert [f.timestamp for f in frames] == sorted(f.timestamp for f in frames)
    for f in frames:
        assert f.camera == "door" and f.image.shape == (480, 640, 3) and f.image.dtype == np.uint8
        assert not f.image.flags.writeable          # shared with other consumers
    shown = [closest(f.image, photos) for f in frames]
    assert len(set(shown)) > 1                      # the stream's frames, in motion
    stats = cam.stats()
    assert stats.state is CameraState.STREAMING and stats.frames >= 6 and stats.fps > 0
    assert stats.reconnects == 0 and stats.stalls == 0 and stats.last_frame_age_s is not None


def test_stall_is_detected_and_the_camera_recovers(server, cameras):
    cam = cameras(stream_config(server))
    before = frames_after(cam, 3)[-1]
    server.stall()
    assert cam.wait_for(*NOT_STREAMING, timeout=10), cam.stats()
    stats = cam.stats()
    assert stats.stalls >= 1 and "no frame" in stats.last_error
    time.sleep(1.5)                                 # stays stalled: retries find no frames
    assert cam.state is not CameraState.STREAMING
    server.resume()
    assert cam.wait_for(CameraState.STREAMING, timeout=20), cam.stats()
    after = cam.latest(after_seq=before.seq, timeout=10)
    assert after is not None and after.seq > before.seq
    assert cam.stats().reconnects >= 1


def test_watchdog_acts_while_reads_and_opens_hang(server, cameras):
    """FFmpeg timeouts of 30 s (its default): a stalled stream then blocks read() and
    open() for 30 s. The watchdog abandons them without waiting, stops piling up
    connections once two are stuck, and recovers when the stream returns."""
    cfg = stream_config(server, name="hung", stall_timeout_s=0.3, open_timeout_s=0.3)
    cam = cameras(cfg, source_factory=lambda: OpenCVSource(server.url, kind="stream", name="hung",
                                                           open_timeout_s=30, read_timeout_s=30))
    first = frames_after(cam, 2)[-1]
    server.stall()
    assert cam.wait_for(*NOT_STREAMING, timeout=10), cam.stats()
    assert any(t.name == "camera-hung-read1" for t in threading.enumerate())   # still inside read()
    assert wait_until(lambda: "still blocked" in cam.stats().last_error, timeout=15), cam.stats()
    assert cam.stats().stalls >= 2 and cam.stats().blocked_readers == 2   # the stuck read and open
    server.resume()                                   # the stuck calls return; their readers close
    assert cam.wait_for(CameraState.STREAMING, timeout=20), cam.stats()
    assert cam.latest(after_seq=first.seq, timeout=10) is not None
    assert wait_until(lambda: server.open_connections() == 1, timeout=15), server.open_connections()
    assert cam.stats().blocked_readers == 0


def test_drop_reconnects_with_growing_back_off(server, cameras):
    cam = cameras(stream_config(server, stall_timeout_s=1.0))
    frames_after(cam, 3)
    server.drop()
    assert cam.wait_for(*NOT_STREAMING, timeout=10), cam.stats()
    # Time each reconnect attempt while the port refuses (a connection refused fails at once).
    attempts, seen, end = [], cam.stats().reconnects, time.monotonic() + 4.5
    while time.monotonic() < end:
        n = cam.stats().reconnects
        if n != seen:
            attempts.append(time.monotonic())
            seen = n
        time.sleep(0.01)
    assert cam.state is not CameraState.STREAMING
    assert len(attempts) >= 3, attempts
    gaps = np.diff(attempts)
    # The n-th wait is reconnect_min_s * 2**n (capped); sleeps only ever run long.
    for k, gap in enumerate(gaps):
        expected = min(0.2 * 2 ** (k + 1), 1.6)
        assert gap >= 0.8 * expected, f"attempts {k} and {k + 1} only {gap:.2f} s apart (back-off {expected})"
    assert cam.stats().backoff_s >= 0.8                 # doubled at each failure
    server.resume()
    assert cam.wait_for(CameraState.STREAMING, timeout=20), cam.stats()
    assert cam.stats().backoff_s == 0.2               # reset once frames flow


def test_a_stalled_camera_does_not_hold_up_another(server, photos, tmp_path):
    for i, img in enumerate(photos[:5]):
        cv2.imwrite(str(tmp_path / f"{i:03d}.jpg"), img)
    cams = CameraSet([stream_config(server), SourceConfig(name="lobby", kind="folder", uri=str(tmp_path),
                                                          fps=10, **FAST)])
    with cams:
        door, lobby = cams["door"], cams["lobby"]
        assert door.wait_for(CameraState.STREAMING, timeout=15) and lobby.wait_for(CameraState.STREAMING)
        server.stall()
        assert door.wait_for(*NOT_STREAMING, timeout=10), door.stats()
        last = lobby.latest(timeout=10)
        for _ in range(5):                          # the lobby keeps streaming meanwhile
            frame = lobby.latest(after_seq=last.seq, timeout=10)
            assert frame is not None and frame.seq > last.seq
            assert door.state is not CameraState.STREAMING
            last = frame
        states = cams.states()
        assert states["lobby"] is CameraState.STREAMING and states["door"] in NOT_STREAMING
        assert set(cams.stats()) == {"door", "lobby"}
        # Stopping while the door's reader is stuck in a stalled read still releases it:
        # the read times out (FFmpeg read timeout) and the reader closes its capture.
        released = cams.stop(timeout=10)
    assert released == {"door": True, "lobby": True}
    assert cams.states() == {"door": CameraState.STOPPED, "lobby": CameraState.STOPPED}


def test_latest_gives_only_the_newest_frame(tmp_path, photos, cameras):
    for i, img in enumerate(photos):
        cv2.imwrite(str(tmp_path / f"{i:03d}.jpg"), img)
    cam = cameras(SourceConfig(name="fast", kind="folder", uri=str(tmp_path), fps=30, **FAST))
    prev = cam.latest(timeout=10)
    assert prev is not None
    jumps = []
    for _ in range(4):
        time.sleep(0.3)                             # a slow consumer
        frame = cam.latest(after_seq=prev.seq, timeout=10)
        assert frame.seq > prev.seq
        jumps.append(frame.seq - prev.seq)
        prev = frame
    assert max(jumps) > 1, jumps                    # frames in between were skipped, not queued
    # Nothing newer than the newest: latest() waits, then gives up.
    newest = cam.latest(timeout=1)
    assert cam.latest(after_seq=newest.seq + 1000, timeout=0.2) is None


# -- recorded sources -----------------------------------------------------------------


@pytest.fixture(scope="module")
def video(photos, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("video") / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, SIZE)
    assert writer.isOpened()
    for img in photos:
        writer.write(img)
    writer.release()
    return path


def test_file_source_paces_and_loops(video, photos):
    src = OpenCVSource(str(video), name="clip", loop=True)
    assert src.kind == "file"
    with src:
        t0 = time.monotonic()
        shown = [closest(src.read(), photos) for _ in range(18)]
        elapsed = time.monotonic() - t0
    assert shown == list(range(12)) + list(range(6))     # in order, then from the start again
    assert elapsed >= 0.9 * 17 / 10.0                     # paced at the file's 10 fps


def test_file_source_ends_without_loop(video, photos, cameras):
    src = OpenCVSource(str(video), name="clip", loop=False, fps=50)
    with src:
        assert [closest(src.read(), photos) for _ in range(12)] == list(range(12))
        with pytest.raises(EndOfSource):
            src.read()
    cam = cameras(SourceConfig(name="clip", kind="file", uri=str(video), loop=False, fps=50))
    assert cam.wait_for(CameraState.STOPPED, timeout=20), cam.stats()
    assert cam.stats().frames == 12 and cam.stats().last_error == ""


def test_folder_source_in_name_order(tmp_path, photos):
    for i, img in enumerate(photos[:4]):
        cv2.imwrite(str(tmp_path / f"{i:03d}.png"), img)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "zzz.jpg").write_bytes(b"not a jpeg either")   # unreadable: skipped
    with FolderSource(tmp_path, name="f", fps=50, loop=True) as src:
        assert [closest(src.read(), photos) for _ in range(6)] == [0, 1, 2, 3, 0, 1]


def test_missing_files_fail_the_camera(tmp_path, cameras):
    cam = cameras(SourceConfig(name="gone", kind="folder", uri=str(tmp_path / "nothing")))
    assert cam.wait_for(CameraState.FAILED, timeout=10)
    assert "does not exist" in cam.stats().last_error
    assert cam.latest(timeout=5) is None


def test_demo_source_shows_a_face_that_comes_and_goes(analyser):
    src = DemoSource(name="demo")
    with src:
        first = src.read()
        assert first.shape == (480, 640, 3) and first.dtype == np.uint8
        assert np.array_equal(first, src.render(0))              # deterministic
        faces = analyser.analyse(first, 1)
        assert faces and faces[0].score > 0.9 and faces[0].box[2] - faces[0].box[0] > 80
        moved = src.render(int(4 * src.fps))
        assert not np.array_equal(moved, first) and analyser.analyse(moved, 1)
        away = src.render(int(18.5 * src.fps))                    # panned onto the wall
        assert all(f.box[2] - f.box[0] < 60 for f in analyser.analyse(away, 5))
        frame_100 = src.render(100)
    with DemoSource(name="again") as again:                      # same frames on every run
        assert np.array_equal(again.render(100), frame_100)


def test_demo_camera_runs_the_loop(cameras, analyser):
    cam = cameras(SourceConfig(name="demo", kind="demo"))
    frame = cam.latest(timeout=10)
    assert frame is not None and frame.image.shape == (480, 640, 3)
    assert analyser.analyse(frame.image, 1)                        # read-only frames are fine for analysis


# -- failure modes and lifecycle --------------------------------------------------------


@pytest.mark.skipif(importlib.util.find_spec("picamera2") is not None, reason="picamera2 is installed")
def test_picamera_without_picamera2_is_a_clear_error(cameras):
    with pytest.raises(CameraError, match=r"picamera2 is not installed: `pip install edge-face\[pi\]`"):
        PiCameraSource(0, name="pi").open()
    cam = cameras(SourceConfig(name="pi", kind="picamera"))
    assert cam.wait_for(CameraState.FAILED, timeout=10)
    assert "use a USB camera" in cam.stats().last_error
    assert cam.stats().reconnects == 0                              # not worth retrying


def test_stop_ends_the_thread_and_releases_the_stream(server, cameras):
    cam = cameras(stream_config(server, name="exit"))
    frames_after(cam, 2)
    assert server.open_connections() == 1
    assert cam.stop(timeout=10)
    assert cam.state is CameraState.STOPPED
    assert not any(t.name.startswith("camera-exit") for t in threading.enumerate())
    assert wait_until(lambda: server.open_connections() == 0), "the HTTP connection was not closed"
    assert cam.latest(after_seq=10 ** 9, timeout=5) is None         # no waiting on a stopped camera


def test_unreachable_usb_device_keeps_retrying(cameras):
    cam = cameras(SourceConfig(name="usb", kind="usb", uri="/dev/video99", **FAST))
    assert wait_until(lambda: cam.stats().reconnects >= 2)
    assert cam.state in NOT_STREAMING and "cannot open usb" in cam.stats().last_error
    assert cam.stop(timeout=10)


@pytest.mark.parametrize("raw, message", [
    ({"kind": "webcam"}, "camera 'cam1': kind: expected one of usb"),
    ({"kind": "stream", "uri": "/dev/video0"}, "camera 'cam1': uri: expected a URL"),
    ({"kind": "usb", "uri": "front"}, "camera 'cam1': uri: expected a device index"),
    ({"kind": "demo", "width": 640}, "camera 'cam1': width/height: set both"),
    ({"kind": "demo", "stall_timeout_s": 0}, "camera 'cam1': stall_timeout_s: must be > 0"),
    ({"kind": "demo", "reconnect_min_s": 5, "reconnect_max_s": 1}, "camera 'cam1': reconnect_min_s"),
    ({"kind": "demo", "fps": "fast"}, "camera 'cam1': fps: expected a number"),
    ({"kind": "folder", "uri": "x", "fps": 0.1}, "camera 'cam1': fps: one frame every 10 s would count as a stall"),
    ({"kind": "demo", "exposure": 3}, "camera 'cam1': unknown key(s) exposure"),
])
def test_config_errors_name_the_camera_and_field(raw, message):
    with pytest.raises(CameraConfigError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        SourceConfig.from_dict(raw, name="cam1")
    assert isinstance(err.value, ValueError)


def test_config_from_yaml_values():
    cfg = SourceConfig.from_dict({"kind": "usb", "uri": 0, "width": 1280, "height": 720, "fourcc": "MJPG"},
                                 name="front")
    assert cfg.name == "front" and cfg.uri == 0 and SourceConfig(kind="demo", fps=15).fps == 15.0
    assert SourceConfig.from_dict({"name": "a", "kind": "usb"}).uri == ""    # device 0
    with pytest.raises(CameraError, match="name: used by two cameras"):
        CameraSet([SourceConfig(name="a"), SourceConfig(name="a")])


# -- no camera configured: auto ---------------------------------------------------------

def test_no_camera_configured_films_the_pi_camera_or_else_the_demo(caplog):
    """`cameras:` empty means auto: the Pi camera when picamera2 lists one, else the demo.
    This box has no picamera2 (a Pi with apt's python3-picamera2 and a camera takes the
    other branch), so the choice must be the demo, said so at start."""
    from edge.camera.auto import auto_camera
    from edge.loop.runner import Runner
    assert importlib.util.find_spec("picamera2") is None, "this test is for a box without picamera2"
    choice = auto_camera()
    assert choice.source == SourceConfig(name="demo", kind="demo")
    assert choice.reason == "picamera2 is not installed"
    with caplog.at_level(logging.INFO, logger="edge.loop"):
        assert Runner._auto_camera() == choice.source
    assert "no camera configured: demo camera (picamera2 is not installed)" in caplog.text
