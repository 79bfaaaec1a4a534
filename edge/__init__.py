"""edge: an offline face-recognition engine with Baidu Face API semantics."""
from edge.image_limits import bound_opencv_decoder

# Before any edge module imports cv2: OpenCV reads its decoder limits once, when loaded.
bound_opencv_decoder()

__version__ = "0.1.0"
