"""One camera's configuration, validated when it is built.

A typo in a camera's config must stop the service at start with a message naming the
camera and the field, not surface hours later as a camera that never streams. This
module imports nothing from the rest of `edge`, so `edge/config.py` can embed it.
"""
from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any, Mapping, Union

from edge.camera.errors import CameraError

KINDS = ("usb", "picamera", "stream", "file", "folder", "demo")
STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp", "srt")
_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")   # logs and metric labels carry it


class CameraConfigError(CameraError):
    """A camera's config is wrong; the message names the camera and the field."""


@dataclass(frozen=True)
class SourceConfig:
    """Where one camera's frames come from and how hard to try to keep them coming.

    `uri` by kind: usb: device index or /dev/videoN (default 0); stream: rtsp/http(s)/... URL;
    file: video path; folder: image directory; picamera: camera number (default 0);
    demo: optional photo path (default: the demo photo `edge models fetch` installs).
    """
    name: str = "camera"
    kind: str = "demo"
    uri: Union[str, int] = ""
    width: int = 0                 # 0: the source's own size (demo: 640x480)
    height: int = 0
    fps: float = 0.0               # 0: the source's own rate (file: its fps; folder 5, demo 15)
    loop: bool = True              # file/folder: start over at the end instead of stopping
    fourcc: str = ""               # usb: pixel format to ask for, e.g. MJPG for 720p at 30 fps
    stall_timeout_s: float = 5.0   # no new frame for this long: disconnect and reconnect
    open_timeout_s: float = 10.0   # longest a connection attempt may take
    reconnect_min_s: float = 0.5   # first retry delay, doubled per failed attempt ...
    reconnect_max_s: float = 30.0  # ... up to this; reset once frames flow again

    def __post_init__(self) -> None:
        _validate(self)
        for field in ("fps", "stall_timeout_s", "open_timeout_s", "reconnect_min_s", "reconnect_max_s"):
            object.__setattr__(self, field, float(getattr(self, field)))   # YAML gives 15, not 15.0

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], name: str | None = None) -> "SourceConfig":
        """A SourceConfig from a YAML mapping; unknown keys are refused by name."""
        label = name or (raw.get("name") if isinstance(raw, Mapping) else None) or "camera"
        if not isinstance(raw, Mapping):
            raise CameraConfigError(f"camera {label!r}: expected a mapping, got {type(raw).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise CameraConfigError(f"camera {label!r}: unknown key(s) {', '.join(map(str, unknown))}")
        values = dict(raw)
        if name is not None:
            values.setdefault("name", name)
        return cls(**values)


def _fail(cfg: SourceConfig, field: str, why: str) -> None:
    raise CameraConfigError(f"camera {cfg.name!r}: {field}: {why}")


def _number(cfg: SourceConfig, field: str, *, integer: bool = False) -> float:
    value = getattr(cfg, field)
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or not math.isfinite(value):
        _fail(cfg, field, f"expected {'an integer' if integer else 'a number'}, got {value!r}")
    return value


def _validate(cfg: SourceConfig) -> None:
    if not isinstance(cfg.name, str) or not _NAME_RE.match(cfg.name):
        raise CameraConfigError(f"camera {cfg.name!r}: name: expected 1-64 letters, digits, '_', '.' or '-'")
    if cfg.kind not in KINDS:
        _fail(cfg, "kind", f"expected one of {', '.join(KINDS)}, got {cfg.kind!r}")
    for field in ("width", "height"):
        if _number(cfg, field, integer=True) < 0:
            _fail(cfg, field, "must be >= 0")
    if (cfg.width == 0) != (cfg.height == 0):
        _fail(cfg, "width/height", "set both, or neither")
    if _number(cfg, "fps") < 0:
        _fail(cfg, "fps", "must be >= 0 (0: the source's own rate)")
    if not isinstance(cfg.loop, bool):
        _fail(cfg, "loop", f"expected true or false, got {cfg.loop!r}")
    if not isinstance(cfg.fourcc, str) or len(cfg.fourcc) not in (0, 4):
        _fail(cfg, "fourcc", f"expected a 4-character code such as MJPG, got {cfg.fourcc!r}")
    for field in ("stall_timeout_s", "open_timeout_s", "reconnect_min_s", "reconnect_max_s"):
        if _number(cfg, field) <= 0:
            _fail(cfg, field, "must be > 0")
    if cfg.reconnect_min_s > cfg.reconnect_max_s:
        _fail(cfg, "reconnect_min_s", "must not exceed reconnect_max_s")
    if cfg.fps and 1.0 / cfg.fps >= cfg.stall_timeout_s:
        _fail(cfg, "fps", f"one frame every {1.0 / cfg.fps:g} s would count as a stall "
                          f"(stall_timeout_s is {cfg.stall_timeout_s:g})")
    _validate_uri(cfg)


def _validate_uri(cfg: SourceConfig) -> None:
    uri = cfg.uri
    if isinstance(uri, bool) or not isinstance(uri, (str, int)):
        _fail(cfg, "uri", f"expected a string or a device number, got {uri!r}")
    text = str(uri).strip()
    if cfg.kind == "usb":
        if text and not (text.isdigit() or text.startswith("/dev/")):
            _fail(cfg, "uri", f"expected a device index (0, 1, ...) or /dev/videoN, got {uri!r}")
    elif cfg.kind == "picamera":
        if text and not text.isdigit():
            _fail(cfg, "uri", f"expected a camera number (0, 1, ...), got {uri!r}")
    elif cfg.kind == "stream":
        scheme = text.split("://", 1)[0].lower() if "://" in text else ""
        if scheme not in STREAM_SCHEMES:
            _fail(cfg, "uri", f"expected a URL ({', '.join(STREAM_SCHEMES)}://...), got {uri!r}")
    elif cfg.kind in ("file", "folder"):
        if not isinstance(uri, str) or not text:
            _fail(cfg, "uri", f"expected a {cfg.kind} path")
