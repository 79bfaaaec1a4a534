"""Turn whatever a Baidu client sends as "image" into one upright uint8 BGR array.

Why this module exists: every endpoint must accept the same inputs and refuse bad ones
with its version's Baidu error codes, before any model sees a pixel.  Clients send
base64 (sometimes as a ``data:image/...;base64,`` URI), tests and in-process callers pass
raw file bytes or numpy arrays.  The rules reproduced here are Baidu's documented ones:

* only JPEG, PNG and BMP, recognised by their magic bytes, not by a file name;
* the size limits of the calling method (edge/image_limits.py: v2 4 MB, addUser 10 MB,
  match 20 MB per request; v3 2 MB and 6000 x 6000), the shortest side >= 15 px;
* why an image is refused maps to a code per version in one table
  (edge/errors.py IMAGE_ERRORS): v2 216200/216201/216202, v3 222001/222013/222203/222304.

The base64 size is the canonical encoded length, ``4 * ceil(n / 3)`` for ``n`` raw
bytes, whatever line breaks the client added.  Dimensions are read from the file
header (edge/imaging/header.py) before decoding; a file that cannot be sized, or a JPEG
with more scans than any encoder writes, is refused without decoding, so a
decompression bomb never allocates its pixels.  OpenCV itself is bounded as well
(OPENCV_IO_MAX_IMAGE_*, set by edge/__init__.py), and the decoded shape is checked again.

EXIF orientation is honoured: OpenCV applies it for JPEG; PNGs are decoded with
IMREAD_UNCHANGED (to keep alpha and 16-bit depth), which ignores orientation, so the
PNG ``eXIf`` chunk is read here and applied by hand.  Transparent pixels are composited
over white, not dropped: phone apps and web pages send cut-out portraits with a
transparent background, and keeping the colour under alpha = 0 (usually black) would
put the face on black, which the detector and quality checks treat very differently
from the light background of an ID photo.
"""
from __future__ import annotations

import base64
import binascii
import logging
import re
import struct
from typing import Optional

import cv2
import numpy as np

from edge.errors import EdgeError, image_error
from edge.image_limits import MAX_JPEG_SCANS, ImageLimits, image_limits
from edge.imaging.header import header_info, sniff_format

log = logging.getLogger(__name__)

SUPPORTED = ("jpeg", "png", "bmp")

_MAX_TEXT_FACTOR = 2  # base64 text may carry line breaks, but not as much again
_DATA_URI = re.compile(rb"^data:[^,]*?;base64,", re.IGNORECASE)
_WHITESPACE = re.compile(rb"\s+")


def decode_image(data, *, api: str = "v2", method: Optional[str] = None) -> np.ndarray:
    """Decode an image given as bytes, base64 (str/bytes, optional data URI) or array.

    Returns a C-contiguous uint8 HxWx3 BGR array, upright (EXIF orientation applied).
    Raises the EdgeError ``api`` ("v2" or "v3") answers under the limits of its
    ``method`` (an AipFace method name; None: detect's).  Arrays skip the byte-size
    check but not the side checks.
    """
    limits, api = image_limits(api, method), str(api).lower()
    if isinstance(data, np.ndarray):
        if data.ndim >= 2 and data.size:  # checked before to_bgr_uint8 copies a huge array
            _check(data.shape[0], data.shape[1], limits, api)
        img = to_bgr_uint8(data, api=api)
        _check(img.shape[0], img.shape[1], limits, api)
        return img
    raw = _payload(data, limits, api)
    fmt = sniff_format(raw)
    if fmt not in SUPPORTED:
        raise image_error(api, "format", f"format {fmt or 'unknown'}")
    dims, scans = header_info(raw)
    if dims is None:
        raise image_error(api, "unreadable", f"{fmt} header gives no size")
    _check(*dims, limits, api)
    if scans > MAX_JPEG_SCANS:
        raise image_error(api, "unreadable", f"jpeg with {scans} scans")
    img = _decode(raw, fmt, api)
    _check(img.shape[0], img.shape[1], limits, api)
    return img


def image_to_base64(img_bgr: np.ndarray, ext: str = ".jpg") -> str:
    """Encode a BGR (or gray/BGRA) array as base64 text of an ``ext`` file, as clients send."""
    ok, buf = cv2.imencode(ext, img_bgr)
    if not ok:
        raise ValueError(f"cannot encode image as {ext}")
    return base64.b64encode(buf.tobytes()).decode("ascii")


def check_dimensions(height: int, width: int, *, api: str = "v2", method: Optional[str] = None) -> None:
    """Raise Baidu's size error if a ``height`` x ``width`` image is refused by ``api``'s ``method``."""
    _check(height, width, image_limits(api, method), str(api).lower())


def check_request_size(images, *, api: str = "v2", method: Optional[str] = None) -> None:
    """Refuse a request whose images together exceed the method's documented total
    (v2 match: "单次请求总共最大20M"), before any of them is decoded."""
    limits = image_limits(api, method)
    total = sum(encoded_size(image) for image in images)
    if total > limits.request_total:
        raise image_error(str(api).lower(), "request_too_big", f"{total} base64 characters in one request")


def encoded_size(data) -> int:
    """Base64 length of one image as a client sends it (raw file bytes: as encoded)."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        data = bytes(data)
        return base64_size(len(data)) if sniff_format(data) is not None or not data.isascii() else len(data)
    return len(data) if isinstance(data, str) else 0


def base64_size(n_bytes: int) -> int:
    """Length of the padded base64 text of ``n_bytes`` raw bytes: 4 * ceil(n / 3)."""
    return 4 * ((n_bytes + 2) // 3)


def _check(height: int, width: int, limits: ImageLimits, api: str) -> None:
    """Too large is tested first: a huge image is refused as such even if it is also thin."""
    if max(height, width) > limits.max_side or height * width > limits.max_pixels:
        raise image_error(api, "too_large", f"{width}x{height} over {limits.max_side} px")
    if min(height, width) < limits.min_side:
        raise image_error(api, "too_small", f"{width}x{height} under {limits.min_side} px")


# ----------------------------------------------------------------- input -> raw bytes

def _payload(data, limits: ImageLimits, api: str) -> bytes:
    """Raw file bytes from raw bytes or base64; checks emptiness and the base64 size."""
    if data is None:
        raise image_error(api, "missing")
    if isinstance(data, (str, bytes, bytearray, memoryview)) and len(data) > _MAX_TEXT_FACTOR * limits.max_b64:
        # refused before any copy or regex pass: no client's line breaks double its text
        raise image_error(api, "too_big", f"{len(data)} characters")
    if isinstance(data, str):
        try:
            data = data.encode("ascii")
        except UnicodeEncodeError:
            raise image_error(api, "not_base64", "non-ASCII text") from None
        return _from_base64(data, limits, api)
    if isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    if not isinstance(data, bytes):
        raise image_error(api, "not_base64", f"image of type {type(data).__name__}")
    if not data:
        raise image_error(api, "missing")
    if sniff_format(data) is None and data.isascii():
        return _from_base64(data, limits, api)
    if base64_size(len(data)) > limits.max_b64:
        raise image_error(api, "too_big", f"{len(data)} bytes")
    return data


def _from_base64(text: bytes, limits: ImageLimits, api: str) -> bytes:
    """Strictly decode base64 text (data-URI prefix, whitespace, url-safe alphabet ok)."""
    text = _WHITESPACE.sub(b"", text)
    text = _DATA_URI.sub(b"", text, count=1)
    text = text.rstrip(b"=").translate(bytes.maketrans(b"-_", b"+/"))
    if not text:
        raise image_error(api, "missing")
    if len(text) % 4 == 1:
        raise image_error(api, "not_base64", "base64 of impossible length")
    text += b"=" * (-len(text) % 4)
    if len(text) > limits.max_b64:
        raise image_error(api, "too_big", f"{len(text)} base64 characters")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise image_error(api, "not_base64") from None
    if not raw:
        raise image_error(api, "missing")
    return raw


# ------------------------------------------------------------------------ decoding

def _decode(raw: bytes, fmt: str, api: str) -> np.ndarray:
    """Decode checked bytes; any failure of the decoder is the version's "unreadable"."""
    # COLOR decodes straight to 8-bit BGR (3 bytes a pixel, whatever the depth) and
    # applies EXIF orientation; it converts gray/CMYK JPEGs, gray/palette/16-bit PNGs.
    # A PNG with alpha needs UNCHANGED (to composite it; up to 8 bytes a pixel), which
    # ignores orientation.  BMP: COLOR, because 32-bit BMPs usually carry an alpha
    # channel of zeros that would composite to a white image.
    unchanged = fmt == "png" and _png_has_alpha(raw)
    try:
        img = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_UNCHANGED if unchanged else cv2.IMREAD_COLOR)
        if img is None or img.size == 0:
            raise ValueError("decoder returned no image")
        if not (img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3 and img.flags["C_CONTIGUOUS"]):
            img = to_bgr_uint8(img, api=api)  # the decoder's own BGR array needs no copy
        if unchanged:
            img = apply_orientation(img, _exif_orientation(_png_exif(raw)))
    except EdgeError:
        raise
    except Exception as exc:  # noqa: BLE001 - a broken file must never be a traceback
        log.debug("cannot decode %s image (%d bytes): %s", fmt, len(raw), exc)
        raise image_error(api, "unreadable", f"cannot decode {fmt}") from None
    return img


_STRIPE_ROWS = 256


def to_bgr_uint8(img: np.ndarray, *, api: str = "v2") -> np.ndarray:
    """A new C-contiguous uint8 HxWx3 BGR copy of a gray/BGR/BGRA(/gray+alpha) array.

    uint16 is scaled to 8 bits by ``>> 8``; float is taken as [0, 1] (clipped, NaN -> 0);
    other integer types are accepted only when every value is already in 0..255.
    Alpha is composited over white.  Anything else is a format error; an array with no
    pixels is unreadable (codes of ``api``).  Converted in stripes of rows: a 16-bit
    RGBA PNG of the largest allowed size costs its decoded array plus the 8-bit result,
    not several full-size temporaries.
    """
    if img.size == 0:
        raise image_error(api, "unreadable", "no pixels")
    if img.ndim == 2:
        img = img[:, :, None]
    if img.ndim != 3 or img.shape[2] not in (1, 2, 3, 4):
        raise image_error(api, "format", f"array of shape {img.shape}")
    if img.dtype != np.uint8 and img.dtype != np.uint16 and not np.issubdtype(img.dtype, np.floating):
        if not (np.issubdtype(img.dtype, np.integer) and img.min() >= 0 and img.max() <= 255):
            raise image_error(api, "format", f"array of {img.dtype}")
    out = np.empty(img.shape[:2] + (3,), np.uint8)
    for row in range(0, img.shape[0], _STRIPE_ROWS):
        stripe = _to_uint8(img[row:row + _STRIPE_ROWS])
        if stripe.shape[2] in (2, 4):
            stripe = _composite_over_white(stripe[:, :, :-1], stripe[:, :, -1:])
        out[row:row + _STRIPE_ROWS] = stripe  # one channel broadcasts to three
    return out


def _to_uint8(img: np.ndarray) -> np.ndarray:
    if img.dtype == np.uint8:
        return img
    if img.dtype == np.uint16:
        return (img >> 8).astype(np.uint8)
    if np.issubdtype(img.dtype, np.floating):
        scaled = np.nan_to_num(img.astype(np.float32), nan=0.0) * 255.0
        return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    return img.astype(np.uint8)  # an integer array already checked to be in 0..255


def _composite_over_white(color: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """color * a + white * (1 - a), rounded, in integers (a = alpha / 255; fits uint16)."""
    if alpha.min() == 255:
        return color
    a = alpha.astype(np.uint16)
    out = color.astype(np.uint16) * a
    out += 255 * (255 - a) + 127
    out //= 255
    return out.astype(np.uint8)


# ------------------------------------------------------------------ EXIF orientation

def apply_orientation(img: np.ndarray, orientation: int) -> np.ndarray:
    """Return ``img`` turned upright for an EXIF Orientation value (1..8; others: as is)."""
    turned = {
        2: lambda a: a[:, ::-1],  # mirrored
        3: lambda a: a[::-1, ::-1],  # rotated 180
        4: lambda a: a[::-1],  # flipped vertically
        5: lambda a: a.swapaxes(0, 1),  # transposed
        6: lambda a: a.swapaxes(0, 1)[:, ::-1],  # needs 90 deg clockwise
        7: lambda a: a.swapaxes(0, 1)[::-1, ::-1],  # transversed
        8: lambda a: a.swapaxes(0, 1)[::-1],  # needs 90 deg counter-clockwise
    }.get(orientation)
    return img if turned is None else np.ascontiguousarray(turned(img))


def _png_chunk(raw: bytes, wanted: bytes, stop: bytes = b"IEND") -> Optional[bytes]:
    """The payload of a PNG's first ``wanted`` chunk before a ``stop`` chunk, or None."""
    i = 8
    while i + 8 <= len(raw):
        length, kind = struct.unpack(">I4s", raw[i:i + 8])
        if kind == wanted:
            return raw[i + 8:i + 8 + length]
        if kind in (stop, b"IEND"):
            break
        i += 12 + length
    return None


def _png_exif(raw: bytes) -> Optional[bytes]:
    """The payload of a PNG's eXIf chunk (a TIFF structure), or None."""
    return _png_chunk(raw, b"eXIf")


def _png_has_alpha(raw: bytes) -> bool:
    """Gray+alpha or RGBA colour type, or a tRNS chunk (which must come before IDAT)."""
    return len(raw) > 25 and raw[25] in (4, 6) or _png_chunk(raw, b"tRNS", stop=b"IDAT") is not None


def _exif_orientation(tiff: Optional[bytes]) -> int:
    """Orientation tag (0x0112) of IFD0 of an EXIF/TIFF block; 1 if absent or unreadable."""
    if not tiff:
        return 1
    if tiff.startswith(b"Exif\x00\x00"):
        tiff = tiff[6:]
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None or len(tiff) < 8:
        return 1
    (ifd,) = struct.unpack_from(order + "I", tiff, 4)
    if ifd + 2 > len(tiff):
        return 1
    (count,) = struct.unpack_from(order + "H", tiff, ifd)
    for k in range(count):
        entry = ifd + 2 + 12 * k
        if entry + 12 > len(tiff):
            break
        tag, kind = struct.unpack_from(order + "HH", tiff, entry)
        if tag != 0x0112:
            continue
        if kind == 3:  # SHORT
            (value,) = struct.unpack_from(order + "H", tiff, entry + 8)
        elif kind == 4:  # LONG
            (value,) = struct.unpack_from(order + "I", tiff, entry + 8)
        else:
            return 1
        return value if 1 <= value <= 8 else 1
    return 1
