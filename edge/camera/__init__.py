"""The camera layer: frame sources and the capture threads that keep their newest frame."""
from edge.camera.capture import Camera, CameraSet, CameraState, CameraStats, Frame
from edge.camera.config import CameraConfigError, SourceConfig
from edge.camera.errors import CameraError, EndOfSource, SourceUnavailable
from edge.camera.sources import (DemoSource, FolderSource, FrameSource, OpenCVSource, PiCameraSource,
                                 build_source, open_source)

__all__ = ["Camera", "CameraSet", "CameraState", "CameraStats", "Frame", "CameraConfigError",
           "SourceConfig", "CameraError", "EndOfSource", "SourceUnavailable", "DemoSource",
           "FolderSource", "FrameSource", "OpenCVSource", "PiCameraSource", "build_source", "open_source"]
