"""Image input: Baidu's accepted formats, size limits and decoding to upright BGR."""
from edge.imaging.decode import (
    apply_orientation,
    base64_size,
    check_dimensions,
    decode_image,
    header_dimensions,
    image_to_base64,
    sniff_format,
    to_bgr_uint8,
)

__all__ = [
    "apply_orientation",
    "base64_size",
    "check_dimensions",
    "decode_image",
    "header_dimensions",
    "image_to_base64",
    "sniff_format",
    "to_bgr_uint8",
]
