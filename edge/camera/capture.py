"""Capture: keep each camera's newest frame ready, whatever the camera does.

Why it is built this way:

* Only the newest frame is kept (a one-frame slot with a sequence number). Face
  analysis is slower than most cameras; a queue would make the terminal answer for
  whoever stood there seconds ago. A slow consumer skips frames instead.
* Each connection is read by its own thread, and a per-camera supervisor thread is the
  watchdog. A read can block inside OpenCV (a USB device that hangs, a stream that goes
  quiet) and Python cannot interrupt it, so the supervisor never waits on a read: when
  no frame has come for `stall_timeout_s` it abandons that reader and starts a new
  connection. The abandoned reader closes its own source when its read finally
  returns: releasing a cv2.VideoCapture from another thread while it is inside read()
  crashes the process (OpenCV 5.0 / FFmpeg, a segfault).
* Reconnects back off exponentially (`reconnect_min_s` doubling up to
  `reconnect_max_s`, back to the minimum once frames flow), so a dead camera costs
  little and a flapping one does not hammer its device. Cameras are independent: one
  camera's stall never delays another's frames.
* Frames are handed to consumers without a copy and marked read-only, so a consumer
  that draws on a frame it shares with others fails loudly instead of corrupting them.
"""
from __future__ import annotations

import collections
import enum
import functools
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Union

import numpy as np

from edge.camera.config import SourceConfig
from edge.camera.errors import CameraError, EndOfSource, SourceUnavailable
from edge.camera.sources import FrameSource, build_source

log = logging.getLogger(__name__)

FPS_WINDOW_S = 2.0
MAX_EMPTY_READS = 3          # consecutive None reads that mean the connection is gone
EMPTY_READ_PAUSE_S = 0.02    # between them: no spinning on a dead capture
MAX_BLOCKED_READERS = 2      # abandoned readers still stuck in a read: wait, don't pile up


class CameraState(str, enum.Enum):
    STARTING = "starting"          # first connection, no frame yet
    STREAMING = "streaming"        # frames arriving
    STALLED = "stalled"            # no frame for stall_timeout_s: connection dropped, waiting to retry
    RECONNECTING = "reconnecting"  # connection lost or failed: backing off, or opening again
    STOPPED = "stopped"            # stop() was called, or a finite source ended
    FAILED = "failed"              # a CameraError retrying cannot fix (see last_error)


@dataclass(frozen=True)
class Frame:
    """One captured frame. `image` is BGR uint8, read-only and shared: copy before drawing."""
    image: np.ndarray
    seq: int              # 1, 2, ... per camera; a gap means the consumer skipped frames
    timestamp: float      # time.monotonic() when the frame was read
    camera: str

    def age(self) -> float:
        return time.monotonic() - self.timestamp


@dataclass(frozen=True)
class CameraStats:
    name: str
    state: CameraState
    frames: int                       # frames captured since start()
    fps: float                        # over the last ~2 s
    reconnects: int                   # connection attempts after the first
    stalls: int                       # connections dropped by the watchdog
    last_error: str
    last_frame_age_s: Optional[float]  # None before the first frame
    backoff_s: float                  # delay before the next retry
    blocked_readers: int              # abandoned connections still stuck in open()/read()


class _Connection:
    """One attempt to read a source: the source, its reader thread, what happened."""

    def __init__(self, number: int, source: FrameSource):
        self.number = number
        self.source = source
        self.started = time.monotonic()
        self.opened_at: Optional[float] = None
        self.last_frame_at: Optional[float] = None
        self.frames = 0
        self.outcome: Optional[str] = None   # "lost" | "ended" | "failed", set by the reader
        self.error = ""
        self.abandoned = threading.Event()
        self.released = threading.Event()
        self.thread: Optional[threading.Thread] = None

    def abandon(self) -> None:
        self.abandoned.set()
        self.source.interrupt()


class Camera:
    """One camera: a supervisor (watchdog) thread plus one reader thread per connection."""

    def __init__(self, config: SourceConfig, *, models_dir: Union[str, Path, None] = None,
                 source_factory: Optional[Callable[[], FrameSource]] = None):
        self.config = config
        self.name = config.name
        self._factory = source_factory or functools.partial(build_source, config, models_dir)
        self._cond = threading.Condition()
        self._wake = threading.Event()       # reader finished, or stop requested
        self._stopping = threading.Event()
        self._state = CameraState.STOPPED
        self._frame: Optional[Frame] = None
        self._times: collections.deque = collections.deque()
        self._frames = self._reconnects = self._stalls = 0
        self._error = ""
        self._backoff = config.reconnect_min_s
        self._started_at = 0.0
        self._current: Optional[_Connection] = None
        self._abandoned: List[_Connection] = []
        self._thread: Optional[threading.Thread] = None

    # -- consumer side ---------------------------------------------------------------

    def latest(self, after_seq: int = -1, timeout: Optional[float] = 1.0) -> Optional[Frame]:
        """The newest frame if its seq is above `after_seq`, waiting up to `timeout`
        seconds (None: until one comes) for one; None on timeout or once stopped/failed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                frame = self._frame
                if frame is not None and frame.seq > after_seq:
                    return frame
                if self._state in (CameraState.STOPPED, CameraState.FAILED) and self._thread is not None:
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)

    @property
    def state(self) -> CameraState:
        return self._state

    def wait_for(self, *states: CameraState, timeout: float = 10.0) -> bool:
        """Block until the camera is in one of `states`; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._state in states, timeout)

    def stats(self) -> CameraStats:
        with self._cond:
            now = time.monotonic()
            self._prune(now)
            window = min(FPS_WINDOW_S, now - self._started_at) if self._started_at else 0.0
            return CameraStats(
                name=self.name, state=self._state, frames=self._frames,
                fps=len(self._times) / window if window > 0 else 0.0,
                reconnects=self._reconnects, stalls=self._stalls, last_error=self._error,
                last_frame_age_s=None if self._frame is None else now - self._frame.timestamp,
                backoff_s=self._backoff,
                blocked_readers=sum(not c.released.is_set() for c in self._abandoned))

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> "Camera":
        if self._thread is not None:
            raise RuntimeError(f"camera {self.name!r} was already started; make a new Camera")
        self._started_at = time.monotonic()
        self._set_state(CameraState.STARTING)
        self._thread = threading.Thread(target=self._supervise, name=f"camera-{self.name}", daemon=True)
        self._thread.start()
        return self

    def request_stop(self) -> None:
        """Ask the camera to stop without waiting (CameraSet stops all cameras at once)."""
        self._stopping.set()
        self._wake.set()

    def join(self, timeout: float = 5.0) -> bool:
        """Wait for the threads to end; True if every source was released in time."""
        deadline = time.monotonic() + timeout
        if self._thread is not None:
            self._thread.join(max(0.0, deadline - time.monotonic()))
        readers = [c for c in [self._current, *self._abandoned] if c is not None]
        for conn in readers:
            conn.released.wait(max(0.0, deadline - time.monotonic()))
        done = (self._thread is None or not self._thread.is_alive()) and all(c.released.is_set() for c in readers)
        if not done:
            log.warning("camera %s: a read is still blocked after %.1f s; its source is released "
                        "when the read returns", self.name, timeout)
        return done

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop capturing and release the source; True if released within `timeout`."""
        self.request_stop()
        return self.join(timeout)

    def __enter__(self) -> "Camera":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"Camera({self.name!r}, {self.config.kind}, {self._state.value})"

    # -- supervisor thread -----------------------------------------------------------

    def _supervise(self) -> None:
        cfg = self.config
        delay, number, failures = cfg.reconnect_min_s, 0, 0
        try:
            while not self._stopping.is_set():
                self._abandoned = [c for c in self._abandoned if not c.released.is_set()]
                if len(self._abandoned) >= MAX_BLOCKED_READERS:
                    outcome = "blocked"
                    self._error = (f"{len(self._abandoned)} abandoned connections are still "
                                   "blocked in open() or read()")
                else:
                    if number:
                        self._reconnects += 1
                    number += 1
                    try:
                        conn = _Connection(number, self._factory())
                    except CameraError as exc:
                        self._fail(str(exc))
                        return
                    outcome = self._watch(conn)
                    if conn.frames:
                        delay, failures = cfg.reconnect_min_s, 0
                if outcome == "stopping":
                    return
                if outcome == "ended":
                    log.info("camera %s: source ended", self.name)
                    self._set_state(CameraState.STOPPED)
                    return
                if outcome == "failed":
                    self._fail(self._error)
                    return
                failures += 1
                self._backoff = delay
                level = logging.WARNING if failures == 1 or failures % 10 == 0 else logging.DEBUG
                log.log(level, "camera %s: %s; retrying in %.1f s (failure %d in a row)",
                        self.name, self._error, delay, failures)
                self._set_state(CameraState.STALLED if outcome == "stalled" else CameraState.RECONNECTING)
                if self._stopping.wait(delay):
                    return
                delay = min(2.0 * delay, cfg.reconnect_max_s)
                self._set_state(CameraState.RECONNECTING)
        except Exception:     # a bug here must not leave a camera silently frozen
            log.exception("camera %s: supervisor crashed", self.name)
            self._fail("internal error in the capture supervisor (see the log)")
        finally:
            conn = self._current
            if conn is not None and conn.outcome is None:
                conn.abandon()
            if self._state is not CameraState.FAILED:
                self._set_state(CameraState.STOPPED)

    def _watch(self, conn: _Connection) -> str:
        """Run one connection until it ends, stalls or the camera stops."""
        self._current = conn
        conn.thread = threading.Thread(target=self._read, args=(conn,), daemon=True,
                                       name=f"camera-{self.name}-read{conn.number}")
        conn.thread.start()
        cfg = self.config
        while True:
            if self._stopping.is_set():
                conn.abandon()
                return "stopping"
            if conn.outcome is not None:
                self._error = conn.error
                return conn.outcome
            now = time.monotonic()
            if conn.opened_at is None:
                deadline = conn.started + cfg.open_timeout_s + cfg.stall_timeout_s
            else:
                deadline = max(conn.opened_at, conn.last_frame_at or 0.0) + cfg.stall_timeout_s
            if now >= deadline:
                conn.abandon()
                self._abandoned.append(conn)
                self._stalls += 1
                self._error = (f"no frame for {cfg.stall_timeout_s:g} s" if conn.opened_at is not None
                               else f"open did not return within {cfg.open_timeout_s + cfg.stall_timeout_s:g} s")
                return "stalled"
            self._wake.wait(deadline - now)
            self._wake.clear()

    # -- reader thread ---------------------------------------------------------------

    def _read(self, conn: _Connection) -> None:
        source, outcome, error = conn.source, "lost", ""
        try:
            source.open()
            conn.opened_at = time.monotonic()
            self._wake.set()          # the watchdog swaps the open deadline for the stall one
            empty = 0
            while not conn.abandoned.is_set():
                img = source.read()
                if img is not None:
                    empty = 0
                    self._publish(conn, img)
                    continue
                empty += 1
                if empty >= MAX_EMPTY_READS:
                    raise SourceUnavailable("reads failing (stream closed or device gone)")
                conn.abandoned.wait(EMPTY_READ_PAUSE_S)
        except EndOfSource:
            outcome = "ended"
        except CameraError as exc:
            outcome, error = "failed", str(exc)
        except Exception as exc:      # OSError, cv2.error, a driver's RuntimeError: retry
            error = str(exc) if isinstance(exc, SourceUnavailable) else f"{type(exc).__name__}: {exc}"
        finally:
            try:
                source.close()
            except Exception:
                log.exception("camera %s: closing %r failed", self.name, source)
            conn.released.set()
            if not conn.abandoned.is_set():
                conn.error, conn.outcome = error, outcome
                self._wake.set()

    def _publish(self, conn: _Connection, img: np.ndarray) -> None:
        now = time.monotonic()
        img.flags.writeable = False
        with self._cond:
            if conn.abandoned.is_set():        # a reader the watchdog gave up on: drop
                return
            seq = self._frame.seq + 1 if self._frame is not None else 1
            self._frame = Frame(img, seq, now, self.name)
            conn.last_frame_at = now
            conn.frames += 1
            self._frames += 1
            self._times.append(now)
            self._prune(now)
            if self._state is not CameraState.STREAMING:
                self._set_state(CameraState.STREAMING)
            self._cond.notify_all()

    # -- helpers ---------------------------------------------------------------------

    def _prune(self, now: float) -> None:
        times = self._times
        while times and times[0] < now - FPS_WINDOW_S:
            times.popleft()

    def _fail(self, error: str) -> None:
        self._error = error
        log.error("camera %s: failed: %s", self.name, error)
        self._set_state(CameraState.FAILED)

    def _set_state(self, state: CameraState) -> None:
        with self._cond:
            if state is self._state:
                return
            previous, self._state = self._state, state
            if state is CameraState.STREAMING:
                self._backoff = self.config.reconnect_min_s
                if previous is not CameraState.STARTING:
                    log.info("camera %s: streaming again (reconnect %d)", self.name, self._reconnects)
                else:
                    log.info("camera %s: streaming", self.name)
            else:
                log.debug("camera %s: %s -> %s", self.name, previous.value, state.value)
            self._cond.notify_all()


class CameraSet:
    """Several cameras started, stopped and reported together; each runs on its own."""

    def __init__(self, cameras: Iterable[Union[Camera, SourceConfig]], *,
                 models_dir: Union[str, Path, None] = None):
        self._cameras: Dict[str, Camera] = {}
        for cam in cameras:
            cam = cam if isinstance(cam, Camera) else Camera(cam, models_dir=models_dir)
            if cam.name in self._cameras:
                raise CameraError(f"camera {cam.name!r}: name: used by two cameras")
            self._cameras[cam.name] = cam

    def start(self) -> "CameraSet":
        for cam in self._cameras.values():
            cam.start()
        return self

    def stop(self, timeout: float = 5.0) -> Dict[str, bool]:
        """Stop every camera at once; per camera, whether its source was released in time."""
        for cam in self._cameras.values():
            cam.request_stop()
        deadline = time.monotonic() + timeout
        return {name: cam.join(max(0.0, deadline - time.monotonic())) for name, cam in self._cameras.items()}

    def states(self) -> Dict[str, CameraState]:
        return {name: cam.state for name, cam in self._cameras.items()}

    def stats(self) -> Dict[str, CameraStats]:
        return {name: cam.stats() for name, cam in self._cameras.items()}

    def __getitem__(self, name: str) -> Camera:
        return self._cameras[name]

    def __iter__(self) -> Iterator[Camera]:
        return iter(self._cameras.values())

    def __len__(self) -> int:
        return len(self._cameras)

    def __enter__(self) -> "CameraSet":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
