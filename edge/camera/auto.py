"""The camera `edge run` films when none is configured (`auto`): the Pi camera when
picamera2 sees one, else the built-in demo. A Pi set up with the README's first command
and no config should film its own camera; a box without one still shows the loop working.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from edge.camera.config import SourceConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AutoChoice:
    """The camera chosen and why (logged at start)."""
    source: SourceConfig
    reason: str


def picamera_count() -> tuple[int, str]:
    """(cameras picamera2 lists, why): 0 when picamera2 is missing or broken."""
    try:
        from picamera2 import Picamera2
    except ModuleNotFoundError:
        return 0, "picamera2 is not installed"
    except Exception as exc:   # e.g. apt's simplejpeg under a numpy 2 (scripts/pi-constraints.txt)
        log.warning("picamera2 is installed but does not import: %s: %s", type(exc).__name__, exc)
        return 0, f"picamera2 does not import ({type(exc).__name__})"
    try:
        cams = Picamera2.global_camera_info()
    except Exception as exc:   # libcamera without its daemon or devices
        return 0, f"picamera2 cannot list cameras ({exc})"
    return len(cams), f"picamera2 sees {len(cams)} camera(s)"


def auto_camera() -> AutoChoice:
    """The picamera at number 0 when picamera2 lists any camera, else the demo."""
    n, why = picamera_count()
    if n:
        return AutoChoice(SourceConfig(name="picamera", kind="picamera", uri=0), why)
    return AutoChoice(SourceConfig(name="demo", kind="demo"), why)
