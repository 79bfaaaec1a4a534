"""The cameras' newest frames and overlays for the live view, the kiosk page and
capture enrolment, at no cost to the loop while nobody watches.

The processing thread asks `wants(camera)` after every frame: a dict lookup and a clock
read, nothing else, when no viewer is attached (no copy, no overlay, no encode). While
someone watches, at most LIVE_MAX_FPS frames a second per camera are kept: a reference
to the frame (camera frames are fresh arrays, never reused) and its overlay, built
there because the tracks live on that thread. One encoder thread, started with the
first viewer, scales each kept frame to LIVE_MAX_WIDTH and JPEG-encodes it once for
every viewer. Viewers only ever see the newest encoded frame: a slow one skips frames,
nothing queues (docs/console.md, "Live view").
"""
from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

# The cap of what a viewer gets (docs/console.md, "Live view"): 640 px wide shows a face
# at the door well on a laptop or a kiosk screen; 10 frames a second is smooth enough to
# watch a decision form while the encode (~3 ms a frame here) stays small beside the
# loop's own work; JPEG quality 70 is ~25-40 kB a frame, ~0.3 MB/s per viewer.
LIVE_MAX_WIDTH = 640
LIVE_MAX_FPS = 10.0
LIVE_JPEG_QUALITY = 70


@dataclass(frozen=True)
class LiveFrame:
    camera: str
    seq: int                 # 1, 2, ... per camera: what a viewer already has
    jpeg: bytes
    overlay: dict            # edge.loop.views.overlay: tracks (boxes in frame pixels), guidance
    captured: float          # wall-clock capture time (s since the epoch): the browser's latency
    encoded: float           # wall-clock time the JPEG was ready
    encode_ms: float


@dataclass
class _Kept:
    image: np.ndarray
    overlay: dict
    captured: float


@dataclass
class LiveStats:
    offered: int = 0         # frames kept for encoding (overlays built)
    encoded: int = 0
    encode_ms: float = 0.0
    bytes: int = 0


@dataclass(eq=False)
class Viewer:
    """One watcher of one camera on an asyncio loop (a WebSocket, an MJPEG reply)."""
    hub: "LiveHub"
    camera: str
    seq: int = 0
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.get_running_loop)
    event: asyncio.Event = field(default_factory=asyncio.Event)

    async def next(self, timeout: float) -> LiveFrame | None:
        """The newest frame newer than the last one returned, or None after `timeout`."""
        deadline = self.loop.time() + timeout
        while True:
            self.event.clear()
            frame = self.hub.latest(self.camera)
            if frame is not None and frame.seq > self.seq:
                self.seq = frame.seq
                return frame
            left = deadline - self.loop.time()
            if left <= 0:
                return None
            try:
                await asyncio.wait_for(self.event.wait(), left)
            except asyncio.TimeoutError:
                return None


class LiveHub:
    def __init__(self, cameras=(), max_width: int = LIVE_MAX_WIDTH, max_fps: float = LIVE_MAX_FPS,
                 quality: int = LIVE_JPEG_QUALITY, redecide: dict[str, Callable[[], None]] | None = None):
        self.cameras = list(cameras)
        self.redecide = dict(redecide or {})      # camera -> its Pipeline.redecide (after an enrolment)
        self.max_width, self.interval, self.quality = max_width, 1.0 / max_fps, quality
        self._watchers: dict[str, int] = {}       # camera -> viewers attached (read lock-free)
        self._due: dict[str, float] = {}          # camera -> monotonic time the next frame is wanted
        self._pending: dict[str, _Kept] = {}      # kept, not yet encoded
        self._raw: dict[str, _Kept] = {}          # the newest kept frame, full size (one-click enrol)
        self._latest: dict[str, LiveFrame] = {}
        self._viewers: set[Viewer] = set()
        self._seq = itertools.count(1)
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.stats: dict[str, LiveStats] = {}

    # -- the processing thread's side ----------------------------------------------------
    def wants(self, camera: str) -> bool:
        """Whether the frame just processed should be offered: someone watches and the
        camera's next frame is due. The only call made per frame when nobody watches."""
        return bool(self._watchers.get(camera)) and time.monotonic() >= self._due.get(camera, 0.0)

    def offer(self, camera: str, image: np.ndarray, captured_monotonic: float,
              overlay: Callable[[], dict]) -> None:
        """Keep this frame for the viewers (when `wants`); `overlay` is called only then."""
        if not self.wants(camera):
            return
        now = time.monotonic()
        due = self._due.get(camera, 0.0) + self.interval
        self._due[camera] = due if due > now else now + self.interval   # steady pace, no catch-up burst
        kept = _Kept(image, overlay(), time.time() - (now - captured_monotonic))
        with self._cond:
            self.stats.setdefault(camera, LiveStats()).offered += 1
            self._pending[camera] = self._raw[camera] = kept
            self._cond.notify_all()

    # -- viewers ---------------------------------------------------------------------------
    def watching(self, camera: str) -> int:
        return self._watchers.get(camera, 0)

    @contextlib.contextmanager
    def watch(self, camera: str):
        """Frames of `camera` are kept and encoded while inside (a thread's viewer)."""
        self._attach(camera)
        try:
            yield self
        finally:
            self._detach(camera)

    @contextlib.asynccontextmanager
    async def viewer(self, camera: str):
        """An asyncio viewer of `camera` (Viewer.next), attached while inside."""
        v = Viewer(self, camera)
        with self._cond:
            self._viewers.add(v)
        self._attach(camera)
        try:
            yield v
        finally:
            self._detach(camera)
            with self._cond:
                self._viewers.discard(v)

    def latest(self, camera: str) -> LiveFrame | None:
        return self._latest.get(camera)

    def wait(self, camera: str, after_seq: int = 0, timeout: float = 1.0) -> LiveFrame | None:
        """A thread's wait for a frame newer than `after_seq` (inside `watch`)."""
        end = time.monotonic() + timeout
        with self._cond:
            while True:
                frame = self._latest.get(camera)
                if frame is not None and frame.seq > after_seq:
                    return frame
                left = end - time.monotonic()
                if left <= 0 or self._closed:
                    return None
                self._cond.wait(left)

    def newest_raw(self, camera: str) -> tuple[np.ndarray, dict] | None:
        """The newest kept frame at full size and its overlay (the face in view to enrol)."""
        kept = self._raw.get(camera)
        return (kept.image, kept.overlay) if kept is not None else None

    def grab(self, camera: str, after: int = 0, timeout: float = 3.0) -> tuple[int, np.ndarray, dict] | None:
        """(seq, image, overlay) of a frame newer than seq `after` (0: the newest held, if
        any), watching meanwhile, also when no viewer is open (the one-click enrol over
        HTTP); None after `timeout`. Blocks: run it off the event loop."""
        with self.watch(camera):
            held, seen = self.newest_raw(camera), self._latest.get(camera)
            if held is not None and seen is not None and seen.seq > after:
                return (seen.seq, *held)
            frame = self.wait(camera, max(after, seen.seq if seen is not None else 0), timeout)
            held = self.newest_raw(camera)
            return (frame.seq, *held) if frame is not None and held is not None else None

    def camera(self, camera: str) -> "HubCamera":
        """`camera`'s kept frames as a Camera's `latest` (capture enrolment; inside `watch`)."""
        return HubCamera(self, camera)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(5)

    def _attach(self, camera: str) -> None:
        with self._cond:
            self._watchers[camera] = self._watchers.get(camera, 0) + 1
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._encode_loop, name="edge-live-encode", daemon=True)
                self._thread.start()

    def _detach(self, camera: str) -> None:
        with self._cond:
            self._watchers[camera] -= 1
            if not self._watchers[camera]:   # nobody left: drop the frames held for them
                del self._watchers[camera]
                self._pending.pop(camera, None)
                self._raw.pop(camera, None)
                self._latest.pop(camera, None)   # the next viewer starts from a fresh frame

    # -- the encoder thread ----------------------------------------------------------------
    def _encode_loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                work, self._pending = self._pending, {}
            for camera, kept in work.items():
                frame = self._encode(camera, kept)
                with self._cond:
                    self._latest[camera] = frame
                    st = self.stats.setdefault(camera, LiveStats())
                    st.encoded += 1
                    st.encode_ms += frame.encode_ms
                    st.bytes += len(frame.jpeg)
                    viewers = [v for v in self._viewers if v.camera == camera]
                    self._cond.notify_all()
                for v in viewers:
                    try:
                        v.loop.call_soon_threadsafe(v.event.set)
                    except RuntimeError:   # its loop closed meanwhile
                        pass

    def _encode(self, camera: str, kept: _Kept) -> LiveFrame:
        import cv2
        t0 = time.perf_counter()
        image = kept.image
        if image.shape[1] > self.max_width:
            h = round(image.shape[0] * self.max_width / image.shape[1])
            image = cv2.resize(image, (self.max_width, h), interpolation=cv2.INTER_AREA)
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        ms = (time.perf_counter() - t0) * 1000
        return LiveFrame(camera, next(self._seq), jpeg.tobytes(), kept.overlay, kept.captured, time.time(), ms)


@dataclass(frozen=True)
class RawFrame:
    image: np.ndarray
    seq: int
    camera: str


@dataclass(frozen=True)
class HubCamera:
    """A camera's frames as the loop saw them, for Enroller.enroll_camera (the same
    guidance as `edge enroll --camera`) while `edge run` owns the device."""
    hub: LiveHub
    name: str

    def latest(self, after_seq: int = 0, timeout: float = 1.0) -> RawFrame | None:
        frame = self.hub.wait(self.name, after_seq, timeout)
        raw = self.hub.newest_raw(self.name)
        return RawFrame(raw[0], frame.seq, self.name) if frame is not None and raw is not None else None
