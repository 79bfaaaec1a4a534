"""edge: an offline face-recognition engine with Baidu Face API semantics."""
import os

from edge.image_limits import bound_opencv_decoder

# Before any edge module loads onnxruntime: its official wheels (1.2x on, Linux too) keep
# a telemetry store in ~/.cache/Microsoft/DeveloperTools/.onnxruntime/ (an SQLite file
# written at every session start, for upload): an offline terminal sends nothing and
# writes nothing to its card for it. Read once, when onnxruntime initialises.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

# Before any edge module imports cv2: OpenCV reads its decoder limits once, when loaded.
bound_opencv_decoder()

__version__ = "0.1.0"
