"""Image input: Baidu's accepted formats, size limits and decoding to upright BGR."""
from edge.imaging.decode import (
    apply_orientation,
    base64_size,
    check_dimensions,
    check_request_size,
    decode_image,
    encoded_size,
    image_to_base64,
    to_bgr_uint8,
)
from edge.imaging.header import header_dimensions, sniff_format

__all__ = [
    "apply_orientation",
    "base64_size",
    "check_dimensions",
    "check_request_size",
    "decode_image",
    "encoded_size",
    "header_dimensions",
    "image_to_base64",
    "sniff_format",
    "to_bgr_uint8",
]
