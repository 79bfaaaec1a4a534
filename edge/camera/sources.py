"""Frame sources: every kind of camera behind one small blocking interface.

A source is used by one thread at a time: `open()`, then `read()` in a loop, then
`close()`. `read()` returns one BGR uint8 frame, or None when it has none right now
(a failed read); finite sources raise EndOfSource. Recorded sources (file, folder,
demo) pace themselves to their frame rate so they behave like a live camera.
`interrupt()` is the one call another thread may make: it ends a paced wait early,
for a capture loop that is giving up on the source (it cannot unblock a read stuck
inside OpenCV; see capture.py).
"""
from __future__ import annotations

import logging
import math
import sys
import threading
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Optional, Union

import cv2
import numpy as np

from edge.camera.config import SourceConfig
from edge.camera.errors import CameraError, EndOfSource, SourceUnavailable

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
EMPTY_FPS = 25.0   # a video file that does not say its rate


class FrameSource(ABC):
    """Base of every source: a name for logs and an interruptible pacing clock."""

    def __init__(self, name: str):
        self.name = name
        self._interrupted = threading.Event()
        self._due: Optional[float] = None

    @abstractmethod
    def open(self) -> None:
        """Acquire the device or stream; raises CameraError or SourceUnavailable."""

    @abstractmethod
    def read(self) -> Optional[np.ndarray]:
        """The next frame (BGR uint8), or None when there is none right now."""

    @abstractmethod
    def close(self) -> None:
        """Release the device; safe to call twice and after a failed open()."""

    def interrupt(self) -> None:
        """Thread-safe: make paced reads return None at once; the source is being abandoned."""
        self._interrupted.set()

    def _pace(self, fps: float) -> bool:
        """Wait for the next frame slot at `fps`; False when interrupted. A late reader
        does not get a burst of catch-up frames: the schedule restarts from now."""
        period = 1.0 / fps
        now = time.monotonic()
        due = now if self._due is None or self._due < now - period else self._due
        self._due = due + period
        if due > now and self._interrupted.wait(due - now):
            return False
        return not self._interrupted.is_set()

    def __enter__(self) -> "FrameSource":
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


def _fit(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """The frame at the configured size (no-op, no copy, when it already is)."""
    if width and height and (img.shape[1] != width or img.shape[0] != height):
        return cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)
    return img


def _imread(path) -> Optional[np.ndarray]:
    """cv2.imread, or None for a file OpenCV refuses: over the decoder bound edge sets
    (OPENCV_IO_MAX_IMAGE_*, edge/image_limits.py) OpenCV raises instead of returning None."""
    try:
        return cv2.imread(str(path), cv2.IMREAD_COLOR)
    except cv2.error:
        return None


def _bgr(img: np.ndarray) -> np.ndarray:
    """Grey or BGRA frames (some USB cameras, PNG folders) as 3-channel BGR."""
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    return img


class OpenCVSource(FrameSource):
    """cv2.VideoCapture for USB/V4L2 devices, network streams and video files.

    Devices get a one-frame driver buffer so a read returns a fresh frame, not one
    queued seconds ago. Streams get FFmpeg open/read timeouts, which OpenCV honours only
    when given at construction (setting them later is refused), so a silent stream
    makes read() fail instead of blocking for FFmpeg's default 30 s. Files are paced at
    their own fps (or `fps`) and optionally looped.
    """

    def __init__(self, uri: Union[int, str], *, kind: Optional[str] = None, name: str = "opencv",
                 width: int = 0, height: int = 0, fps: float = 0.0, loop: bool = False, fourcc: str = "",
                 open_timeout_s: float = 10.0, read_timeout_s: float = 10.0):
        super().__init__(name)
        self.uri = uri
        self.kind = kind or _opencv_kind(uri)     # "usb" | "stream" | "file"
        self.width, self.height, self.fps, self.loop, self.fourcc = width, height, fps, loop, fourcc
        self.open_timeout_s, self.read_timeout_s = open_timeout_s, read_timeout_s
        self._cap: Optional[cv2.VideoCapture] = None
        self._file_fps = 0.0

    def open(self) -> None:
        if self.kind == "file" and not Path(str(self.uri)).is_file():
            raise CameraError(f"camera {self.name!r}: video file {self.uri} does not exist")
        cap = self._capture()
        if not cap.isOpened():
            cap.release()
            if self.kind == "file":
                raise CameraError(f"camera {self.name!r}: OpenCV cannot read video file {self.uri}")
            raise SourceUnavailable(f"cannot open {self.kind} {self.uri}")
        self._cap = cap
        if self.kind == "usb":
            self._configure_device(cap)
        elif self.kind == "file":
            own = cap.get(cv2.CAP_PROP_FPS)
            self._file_fps = self.fps or (own if math.isfinite(own) and 1 <= own <= 240 else EMPTY_FPS)
        log.info("camera %s: opened %s %s (%s backend)", self.name, self.kind, self.uri, cap.getBackendName())

    def _capture(self) -> cv2.VideoCapture:
        if self.kind == "usb":
            backend = cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY
            device = int(self.uri) if str(self.uri).isdigit() else str(self.uri)
            return cv2.VideoCapture(device, backend)
        if self.kind == "stream" and hasattr(cv2, "CAP_PROP_READ_TIMEOUT_MSEC"):
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(self.open_timeout_s * 1000),
                      cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(self.read_timeout_s * 1000)]
            return cv2.VideoCapture(str(self.uri), cv2.CAP_FFMPEG, params)
        return cv2.VideoCapture(str(self.uri))

    def _configure_device(self, cap: cv2.VideoCapture) -> None:
        # Order matters on V4L2: the pixel format decides which sizes and rates exist.
        if self.fourcc:
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*self.fourcc))
        if self.width and self.height:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        if self.fps:
            cap.set(cv2.CAP_PROP_FPS, self.fps)
        if not cap.set(cv2.CAP_PROP_BUFFERSIZE, 1):
            log.debug("camera %s: driver keeps its own buffer depth", self.name)

    def read(self) -> Optional[np.ndarray]:
        cap = self._cap
        if cap is None:
            return None
        if self.kind == "file" and not self._pace(self._file_fps):
            return None
        ok, img = cap.read()
        if not ok and self.kind == "file":
            img = self._restart()
        elif not ok:
            return None
        return _fit(_bgr(img), self.width, self.height)

    def _restart(self) -> np.ndarray:
        """End of file: rewind when looping (reopen if seeking fails), else finish."""
        if not self.loop:
            raise EndOfSource(f"{self.uri}: end of file")
        if self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0):
            ok, img = self._cap.read()
            if ok:
                return img
        self._cap.release()
        self._cap = cv2.VideoCapture(str(self.uri))
        ok, img = self._cap.read()
        if not ok:
            raise CameraError(f"camera {self.name!r}: video file {self.uri} has no readable frame")
        return img

    def close(self) -> None:
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()
            log.info("camera %s: released %s %s", self.name, self.kind, self.uri)


def _opencv_kind(uri: Union[int, str]) -> str:
    """Guess from the uri: a device number or /dev path, a URL, else a file."""
    text = str(uri)
    if isinstance(uri, int) or text.isdigit() or text.startswith("/dev/"):
        return "usb"
    return "stream" if "://" in text else "file"


class FolderSource(FrameSource):
    """The images of a folder in name order, paced at `fps`: replays a recorded
    sequence, or a drop folder (the folder is listed again at each pass)."""

    def __init__(self, folder: Union[str, Path], *, name: str = "folder", fps: float = 5.0,
                 loop: bool = True, width: int = 0, height: int = 0):
        super().__init__(name)
        self.folder = Path(folder)
        self.fps, self.loop, self.width, self.height = fps, loop, width, height
        self._files: list[Path] = []
        self._next = 0
        self._good_in_pass = 0

    def _list(self) -> list[Path]:
        if not self.folder.is_dir():
            raise CameraError(f"camera {self.name!r}: image folder {self.folder} does not exist")
        files = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise CameraError(f"camera {self.name!r}: no {'/'.join(IMAGE_SUFFIXES)} images in {self.folder}")
        return files

    def open(self) -> None:
        self._files, self._next, self._good_in_pass = self._list(), 0, 0
        log.info("camera %s: %d images in %s at %.1f fps", self.name, len(self._files), self.folder, self.fps)

    def read(self) -> Optional[np.ndarray]:
        if not self._pace(self.fps):
            return None
        for _ in range(len(self._files) + 1):     # skip unreadable files, at most one pass
            if self._next >= len(self._files):
                self._new_pass()
            path = self._files[self._next]
            self._next += 1
            img = _imread(path)
            if img is not None:
                self._good_in_pass += 1
                return _fit(img, self.width, self.height)
            log.warning("camera %s: skipping unreadable image %s", self.name, path)
        raise CameraError(f"camera {self.name!r}: no readable image in {self.folder}")

    def _new_pass(self) -> None:
        if not self.loop:
            raise EndOfSource(f"{self.folder}: last image")
        if not self._good_in_pass:
            raise CameraError(f"camera {self.name!r}: no readable image in {self.folder}")
        self._files, self._next, self._good_in_pass = self._list(), 0, 0

    def close(self) -> None:
        self._files = []


PICAMERA_MISSING = ("picamera2 is not installed: `pip install edge-face[pi]` on a Raspberry Pi, "
                    "or use a USB camera")


class PiCameraSource(FrameSource):
    """A Raspberry Pi CSI camera through picamera2 (libcamera). picamera2 exists only on
    Pi OS, so it is imported in open(), never at module import."""

    def __init__(self, camera_num: int = 0, *, name: str = "picamera", width: int = 640,
                 height: int = 480, fps: float = 0.0):
        super().__init__(name)
        self.camera_num, self.width, self.height, self.fps = camera_num, width, height, fps
        self._cam = None

    def open(self) -> None:
        try:
            from picamera2 import Picamera2
        except ImportError as exc:
            raise CameraError(f"camera {self.name!r}: {PICAMERA_MISSING}") from exc
        try:
            cam = Picamera2(self.camera_num)
        except (IndexError, RuntimeError, OSError) as exc:     # no such camera, or busy
            raise SourceUnavailable(f"picamera {self.camera_num}: {exc}") from exc
        try:
            # libcamera's "RGB888" is B,G,R in memory: OpenCV's order, no conversion.
            controls = {"FrameRate": float(self.fps)} if self.fps else {}
            cam.configure(cam.create_video_configuration(
                main={"size": (self.width, self.height), "format": "RGB888"},
                controls=controls, buffer_count=2))
            cam.start()
        except Exception as exc:
            cam.close()
            raise SourceUnavailable(f"picamera {self.camera_num}: {exc}") from exc
        self._cam = cam
        log.info("camera %s: picamera %d started at %dx%d", self.name, self.camera_num, self.width, self.height)

    def read(self) -> Optional[np.ndarray]:
        if self._cam is None:
            return None
        img = self._cam.capture_array("main")    # blocks until the next frame
        return _fit(_bgr(img), self.width, self.height) if img is not None else None

    def close(self) -> None:
        cam, self._cam = self._cam, None
        if cam is not None:
            try:
                cam.stop()
            finally:
                cam.close()


class DemoSource(FrameSource):
    """The camera of a machine with no camera: the demo photo seen through a slowly
    panning and zooming virtual camera, so a fresh install runs the real capture loop.

    Deterministic: frame i depends only on i. Every CYCLE_S seconds the view pans off
    the person onto the wall and back, so a face track ends and a new one starts.
    """

    CYCLE_S = 24.0

    def __init__(self, photo: Union[str, Path, None] = None, *, models_dir: Union[str, Path, None] = None,
                 name: str = "demo", width: int = 640, height: int = 480, fps: float = 15.0):
        super().__init__(name)
        self.photo = Path(photo) if photo else None
        self.models_dir = models_dir
        self.width, self.height, self.fps = width, height, fps
        self._img: Optional[np.ndarray] = None
        self._index = 0

    def open(self) -> None:
        path = self.photo
        if path is None:
            from edge.models.manifest import sample_path
            path = sample_path("demo", self.models_dir)
        img = _imread(path)
        if img is None:
            raise CameraError(f"camera {self.name!r}: demo photo {path} is missing or unreadable "
                              "(run `edge models fetch`)")
        self._img, self._index = img, 0

    def read(self) -> Optional[np.ndarray]:
        if self._img is None or not self._pace(self.fps):
            return None
        frame = self.render(self._index)
        self._index += 1
        return frame

    def view(self, index: int) -> tuple[float, float, float]:
        """Centre (x, y) and width, in photo pixels, of the virtual camera at frame `index`."""
        h, w = self._img.shape[:2]
        t = (index / self.fps) % self.CYCLE_S
        # On the person: the face of the bundled photo sits at ~28 % x, ~46 % y.
        face_x, face_y, view_w = 0.30 * w, 0.50 * h, 0.58 * w
        wall_x = w - 0.5 * view_w * 0.85              # the right edge: no person in view
        # 0-14 s: drift around the person; 14-17 s: pan off; 17-20 s: wall; 20-24 s: back.
        away = _ease(t, 14.0, 17.0) - _ease(t, 20.0, 24.0)
        cx = face_x + 0.05 * w * math.sin(2 * math.pi * t / 7.0) + away * (wall_x - face_x)
        cy = face_y + 0.03 * h * math.sin(2 * math.pi * t / 5.0)
        zoom = 1.0 + 0.12 * math.sin(2 * math.pi * t / 9.0) + 0.15 * away
        view_w /= zoom
        half_w, half_h = 0.5 * view_w, 0.5 * view_w * self.height / self.width
        return (min(max(cx, half_w), w - half_w), min(max(cy, half_h), h - half_h), view_w)

    def render(self, index: int) -> np.ndarray:
        """Frame `index` of the demo stream (a new array: frames are handed to consumers)."""
        if self._img is None:
            raise CameraError(f"camera {self.name!r}: open() the demo source first")
        cx, cy, view_w = self.view(index)
        scale = view_w / self.width                   # photo pixels per output pixel
        x0 = cx - 0.5 * view_w
        y0 = cy - 0.5 * self.height * scale
        # Output pixel (u, v) shows photo pixel (x0 + u*scale, y0 + v*scale).
        m = np.array([[scale, 0.0, x0], [0.0, scale, y0]])
        return cv2.warpAffine(self._img, m, (self.width, self.height),
                              flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT)

    def close(self) -> None:
        self._img = None


def _ease(t: float, start: float, end: float) -> float:
    """0 before start, 1 after end, a smooth cosine ramp between."""
    if t <= start:
        return 0.0
    if t >= end:
        return 1.0
    return 0.5 - 0.5 * math.cos(math.pi * (t - start) / (end - start))


def read_timeout_s(cfg: SourceConfig) -> float:
    """FFmpeg's read timeout: past the stall timeout, so the capture watchdog decides
    first and the timeout only frees the reader it abandoned."""
    return max(2.0 * cfg.stall_timeout_s, cfg.stall_timeout_s + 1.0)


def build_source(cfg: SourceConfig, models_dir: Union[str, Path, None] = None) -> FrameSource:
    """The (unopened) source for a camera config; the capture thread opens it."""
    size = {"width": cfg.width, "height": cfg.height}
    if cfg.kind in ("usb", "stream", "file"):
        uri = cfg.uri
        if cfg.kind == "usb" and not str(uri).startswith("/dev/"):
            uri = int(uri or 0)
        return OpenCVSource(uri, kind=cfg.kind, name=cfg.name, fps=cfg.fps, loop=cfg.loop, fourcc=cfg.fourcc,
                            open_timeout_s=cfg.open_timeout_s, read_timeout_s=read_timeout_s(cfg), **size)
    if cfg.kind == "folder":
        return FolderSource(cfg.uri, name=cfg.name, fps=cfg.fps or 5.0, loop=cfg.loop, **size)
    if cfg.kind == "picamera":
        return PiCameraSource(int(cfg.uri or 0), name=cfg.name, width=cfg.width or 640,
                              height=cfg.height or 480, fps=cfg.fps)
    if cfg.kind == "demo":
        return DemoSource(cfg.uri or None, models_dir=models_dir, name=cfg.name,
                          width=cfg.width or 640, height=cfg.height or 480, fps=cfg.fps or 15.0)
    raise CameraError(f"camera {cfg.name!r}: kind: unknown {cfg.kind!r}")


def open_source(cfg: SourceConfig, models_dir: Union[str, Path, None] = None) -> FrameSource:
    """build_source() and open() in one call, for one-off use outside a Camera."""
    source = build_source(cfg, models_dir)
    source.open()
    return source
