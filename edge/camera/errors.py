"""The three ways a frame source can fail, kept apart because the capture loop
answers each differently: give up, retry later, or finish."""
from __future__ import annotations


class CameraError(ValueError):
    """A mistake retrying will not fix: a bad camera config, a missing file or folder,
    a missing optional package. The camera goes to `failed` and stays there."""


class SourceUnavailable(OSError):
    """The source cannot deliver now (device unplugged, stream down, open timed out);
    the capture loop retries with back-off."""


class EndOfSource(Exception):
    """A finite source (file or folder without `loop`) has delivered its last frame."""
