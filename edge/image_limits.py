"""Baidu's documented image limits, per API version and method, and the decoder's bound.

Why a table: each method's own doc sets its limit (v2 addUser takes 10 MB of base64,
match 20 MB per request, the other v2 calls 4 MB; every v3 call 2 MB and at most
6000 x 6000), and both the decoder and `edge serve`'s per-endpoint body cap read it, so
the two cannot disagree.  Methods are the AipFace method names of edge/server/endpoints.py.

This module must not import cv2: `edge/__init__.py` calls `bound_opencv_decoder()` before
anything imports OpenCV, because OpenCV reads `OPENCV_IO_MAX_IMAGE_*` once, when its
library is loaded (measured: setting them after `import cv2` has no effect).
"""
from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from typing import Optional

log = logging.getLogger(__name__)

MB = 1024 * 1024
MIN_SIDE = 15                 # v2's "最短边至少15px" (v3 keeps it: the models need pixels)
V2_MAX_SIDE = 4096            # v2's "最长边最大4096px"
V3_MAX_SIDE = 6000            # v3's 222304 "请确保图片尺寸不超过 6000 x 6000"
MAX_PIXELS = V3_MAX_SIDE * V3_MAX_SIDE
# Progressive JPEG: each scan is one pass over every coefficient block, so a small file
# with thousands of scans is a time bomb at legal dimensions.  Encoders write 6-18.
MAX_JPEG_SCANS = 64


@dataclass(frozen=True)
class ImageLimits:
    max_b64: int                       # one image, base64 characters (4 * ceil(bytes / 3))
    max_side: int                      # longest side, pixels
    min_side: int = MIN_SIDE
    max_pixels: int = MAX_PIXELS
    images: int = 1                    # images one request carries (body cap)
    request_b64: Optional[int] = None  # all images of one request together, if documented

    @property
    def request_total(self) -> int:
        """Base64 characters a whole request may carry: the documented total, else images x one."""
        return self.request_b64 if self.request_b64 is not None else self.images * self.max_b64


_V2 = ImageLimits(4 * MB, V2_MAX_SIDE)                  # "base64编码后大小不超过4M"
_V3 = ImageLimits(2 * MB, V3_MAX_SIDE)                  # "编码后图片大小不超过2M"
# v3 faceverify takes a list of images; the docs give no count, ours is 10 (docs/api.md).
V3_FACEVERIFY_MAX_IMAGES = 10

LIMITS: dict[tuple[str, str], ImageLimits] = {
    **{("v2", m): _V2 for m in ("detect", "identifyUser", "verifyUser", "multiIdentify", "updateUser",
                                "personVerify", "faceverify")},
    # match: "单次请求总共最大20M" is the only size its doc gives; it bounds each image too.
    ("v2", "match"): ImageLimits(20 * MB, V2_MAX_SIDE, request_b64=20 * MB),
    # addUser: "图片编码后大小不超过10M" (updateUser's row keeps 4M).
    ("v2", "addUser"): ImageLimits(10 * MB, V2_MAX_SIDE),
    **{("v3", m): _V3 for m in ("detect", "search", "multiSearch", "addUser", "updateUser", "personVerify")},
    ("v3", "match"): ImageLimits(2 * MB, V3_MAX_SIDE, images=2),
    ("v3", "faceverify"): ImageLimits(2 * MB, V3_MAX_SIDE, images=V3_FACEVERIFY_MAX_IMAGES),
}


def image_limits(api: str, method: Optional[str] = None) -> ImageLimits:
    """The limits of `api`'s `method`; a method with no image of its own gets detect's."""
    api = str(api).lower()
    if api not in ("v2", "v3"):
        raise ValueError(f"api must be 'v2' or 'v3', not {api!r}")
    return LIMITS.get((api, method or "detect")) or LIMITS[api, "detect"]


# ------------------------------------------------------------ the decoder's own bound

def decoder_bound() -> dict[str, int]:
    """OpenCV's limits: the largest image any method accepts, so no decode goes beyond it."""
    side = max(lim.max_side for lim in LIMITS.values())
    pixels = max(lim.max_pixels for lim in LIMITS.values())
    return {"OPENCV_IO_MAX_IMAGE_WIDTH": side, "OPENCV_IO_MAX_IMAGE_HEIGHT": side,
            "OPENCV_IO_MAX_IMAGE_PIXELS": pixels}


def bound_opencv_decoder(environ=os.environ) -> bool:
    """Put the bound into the environment (a lower value an operator set is kept).

    Child processes inherit it.  Returns False, and warns, when OpenCV was already
    loaded in this process: the bound then only holds for children, and the header
    checks of edge/imaging are the only guard here."""
    for name, value in decoder_bound().items():
        try:
            current = int(environ.get(name, ""))
        except ValueError:
            current = None
        if current is None or not 0 < current <= value:
            environ[name] = str(value)
    if "cv2" in sys.modules:
        log.info("OpenCV was imported before edge: its decoder is not bounded by OPENCV_IO_MAX_IMAGE_* "
                    "in this process (the header checks still refuse oversized images)")
        return False
    return True
