"""Turn whatever a Baidu client sends as "image" into one upright uint8 BGR array.

Why this module exists: every endpoint must accept the same inputs and refuse bad ones
with the same Baidu error codes, before any model sees a pixel.  Clients send base64
(sometimes as a ``data:image/...;base64,`` URI), tests and in-process callers pass raw
file bytes or numpy arrays.  The rules reproduced here are Baidu's documented ones:

* only JPEG, PNG and BMP, recognised by their magic bytes, not by a file name
  (anything else -> 216201 "image format error");
* nothing to decode -> 216200 "empty image"; a known format that fails to decode is
  also 216200, and no decoder exception ever escapes as a traceback;
* v2: base64 size <= 4 MB, shortest side >= 15 px, longest side <= 4096 px -> 216202;
  v3: base64 size <= 2 MB and shortest side >= 15 px -> 216202, a side above
  6000 px -> 222304 "image size is too large" (v3 has no 4096 limit).

The base64 size is the canonical encoded length, ``4 * ceil(n / 3)`` for ``n`` raw
bytes, whatever line breaks the client added.  Dimensions are read from the file
header (PNG IHDR, BMP info header, JPEG SOF) before decoding, so a decompression bomb
is refused without allocating its pixels; the decoded shape is checked again after.

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
from typing import NamedTuple, Optional, Tuple

import cv2
import numpy as np

from edge.errors import EdgeError

log = logging.getLogger(__name__)

EMPTY_IMAGE = 216200
FORMAT_ERROR = 216201
SIZE_ERROR = 216202
TOO_LARGE = 222304

MIN_SIDE = 15
MAX_PIXELS = 6000 * 6000

SUPPORTED = ("jpeg", "png", "bmp")


class _Limits(NamedTuple):
    max_b64: int  # largest allowed base64 length, in characters
    max_side: int  # largest allowed side, in pixels
    too_large: int  # error code for a side or pixel count above the limit


_LIMITS = {
    "v2": _Limits(4 * 1024 * 1024, 4096, SIZE_ERROR),
    "v3": _Limits(2 * 1024 * 1024, 6000, TOO_LARGE),
}

_DATA_URI = re.compile(rb"^data:[^,]*?;base64,", re.IGNORECASE)
_WHITESPACE = re.compile(rb"\s+")


def decode_image(data, *, api: str = "v2") -> np.ndarray:
    """Decode an image given as bytes, base64 (str/bytes, optional data URI) or array.

    Returns a C-contiguous uint8 HxWx3 BGR array, upright (EXIF orientation applied).
    Raises EdgeError 216200 / 216201 / 216202 / 222304 following Baidu's rules for
    ``api`` ("v2" or "v3"); arrays skip the byte-size check but not the side checks.
    """
    limits = _limits(api)
    if isinstance(data, np.ndarray):
        img = to_bgr_uint8(data)
        check_dimensions(img.shape[0], img.shape[1], api=api)
        return img
    raw = _payload(data, limits)
    fmt = sniff_format(raw)
    if fmt not in SUPPORTED:
        log.debug("refused image: format %s", fmt or "unknown")
        raise EdgeError(FORMAT_ERROR)
    dims = header_dimensions(raw)
    if dims is not None:
        check_dimensions(*dims, api=api)
    img = _decode(raw, fmt)
    check_dimensions(img.shape[0], img.shape[1], api=api)
    return img


def image_to_base64(img_bgr: np.ndarray, ext: str = ".jpg") -> str:
    """Encode a BGR (or gray/BGRA) array as base64 text of an ``ext`` file, as clients send."""
    ok, buf = cv2.imencode(ext, img_bgr)
    if not ok:
        raise ValueError(f"cannot encode image as {ext}")
    return base64.b64encode(buf.tobytes()).decode("ascii")


def check_dimensions(height: int, width: int, *, api: str = "v2") -> None:
    """Raise Baidu's size error if a ``height`` x ``width`` image is refused by ``api``.

    Too large is tested first: a huge image is refused as such even if it is also thin.
    """
    limits = _limits(api)
    if max(height, width) > limits.max_side or height * width > MAX_PIXELS:
        log.debug("refused image: %dx%d too large for %s", width, height, api)
        raise EdgeError(limits.too_large)
    if min(height, width) < MIN_SIDE:
        log.debug("refused image: %dx%d too small", width, height)
        raise EdgeError(SIZE_ERROR)


def base64_size(n_bytes: int) -> int:
    """Length of the padded base64 text of ``n_bytes`` raw bytes: 4 * ceil(n / 3)."""
    return 4 * ((n_bytes + 2) // 3)


# ----------------------------------------------------------------- input -> raw bytes

def _limits(api: str) -> _Limits:
    try:
        return _LIMITS[str(api).lower()]
    except KeyError:
        raise ValueError(f"api must be 'v2' or 'v3', not {api!r}") from None


def _payload(data, limits: _Limits) -> bytes:
    """Raw file bytes from raw bytes or base64; checks emptiness and the base64 size."""
    if isinstance(data, str):
        try:
            data = data.encode("ascii")
        except UnicodeEncodeError:
            raise EdgeError(EMPTY_IMAGE) from None
        return _from_base64(data, limits)
    if isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    if not isinstance(data, bytes) or not data:
        raise EdgeError(EMPTY_IMAGE)
    if sniff_format(data) is None and data.isascii():
        return _from_base64(data, limits)
    if base64_size(len(data)) > limits.max_b64:
        raise EdgeError(SIZE_ERROR)
    return data


def _from_base64(text: bytes, limits: _Limits) -> bytes:
    """Strictly decode base64 text (data-URI prefix, whitespace, url-safe alphabet ok)."""
    text = _WHITESPACE.sub(b"", text)
    text = _DATA_URI.sub(b"", text, count=1)
    text = text.rstrip(b"=").translate(bytes.maketrans(b"-_", b"+/"))
    if not text or len(text) % 4 == 1:
        raise EdgeError(EMPTY_IMAGE)
    text += b"=" * (-len(text) % 4)
    if len(text) > limits.max_b64:
        raise EdgeError(SIZE_ERROR)
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise EdgeError(EMPTY_IMAGE) from None
    if not raw:
        raise EdgeError(EMPTY_IMAGE)
    return raw


# --------------------------------------------------------------- format and header

def sniff_format(raw: bytes) -> Optional[str]:
    """Name of the image format announced by ``raw``'s magic bytes, or None if unknown.

    Only "jpeg", "png" and "bmp" are accepted; "gif", "webp", "tiff", "heif" are
    recognised so they can be refused with a format error.
    """
    if raw[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if raw[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if raw[:2] == b"BM":
        return "bmp"
    if raw[:4] == b"GIF8":
        return "gif"
    if raw[:4] == b"RIFF" and raw[8:12] == b"WEBP":
        return "webp"
    if raw[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if raw[4:8] == b"ftyp":
        return "heif"
    return None


def header_dimensions(raw: bytes) -> Optional[Tuple[int, int]]:
    """(height, width) read from a JPEG/PNG/BMP header without decoding, or None."""
    fmt = sniff_format(raw)
    if fmt == "png":
        dims = _png_dimensions(raw)
    elif fmt == "bmp":
        dims = _bmp_dimensions(raw)
    elif fmt == "jpeg":
        dims = _jpeg_dimensions(raw)
    else:
        dims = None
    if dims is None or min(dims) <= 0:
        return None
    return dims


def _png_dimensions(raw: bytes) -> Optional[Tuple[int, int]]:
    if len(raw) < 24 or raw[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", raw[16:24])
    return height, width


def _bmp_dimensions(raw: bytes) -> Optional[Tuple[int, int]]:
    if len(raw) < 26:
        return None
    (header_size,) = struct.unpack("<I", raw[14:18])
    if header_size == 12:  # BITMAPCOREHEADER: 16-bit unsigned sides
        width, height = struct.unpack("<HH", raw[18:22])
    elif header_size >= 40:  # BITMAPINFOHEADER and later: height < 0 means top-down
        width, height = struct.unpack("<ii", raw[18:26])
    else:
        return None
    return abs(height), abs(width)


def _jpeg_dimensions(raw: bytes) -> Optional[Tuple[int, int]]:
    """Scan the marker segments up to the first SOFn frame header."""
    i, n = 2, len(raw)
    while i + 4 <= n:
        if raw[i] != 0xFF:
            return None
        marker = raw[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # no length field
            i += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image / start of scan: no frame header
            return None
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if i + 9 > n:
                return None
            height, width = struct.unpack(">HH", raw[i + 5:i + 9])
            return height, width
        (length,) = struct.unpack(">H", raw[i + 2:i + 4])
        if length < 2:
            return None
        i += 2 + length
    return None


# ------------------------------------------------------------------------ decoding

def _decode(raw: bytes, fmt: str) -> np.ndarray:
    """Decode checked bytes; any failure of the decoder is Baidu's 216200."""
    # PNG: UNCHANGED keeps alpha and 16 bits, which to_bgr_uint8 handles.  JPEG: COLOR
    # applies EXIF orientation and converts gray/CMYK.  BMP: COLOR, because 32-bit BMPs
    # usually carry an alpha channel of zeros that would composite to a white image.
    flags = cv2.IMREAD_UNCHANGED if fmt == "png" else cv2.IMREAD_COLOR
    try:
        img = cv2.imdecode(np.frombuffer(raw, np.uint8), flags)
        if img is None or img.size == 0:
            raise ValueError("decoder returned no image")
        img = to_bgr_uint8(img)
        if fmt == "png":
            img = apply_orientation(img, _exif_orientation(_png_exif(raw)))
    except EdgeError:
        raise
    except Exception as exc:  # noqa: BLE001 - a broken file must never be a traceback
        log.debug("cannot decode %s image (%d bytes): %s", fmt, len(raw), exc)
        raise EdgeError(EMPTY_IMAGE) from None
    return img


def to_bgr_uint8(img: np.ndarray) -> np.ndarray:
    """A new C-contiguous uint8 HxWx3 BGR copy of a gray/BGR/BGRA(/gray+alpha) array.

    uint16 is scaled to 8 bits by ``>> 8``; float is taken as [0, 1] (clipped, NaN -> 0);
    other integer types are accepted only when every value is already in 0..255.
    Alpha is composited over white.  Anything else is a format error (216201); an
    array with no pixels is an empty image (216200).
    """
    if img.size == 0:
        raise EdgeError(EMPTY_IMAGE)
    if img.ndim == 2:
        img = img[:, :, None]
    if img.ndim != 3 or img.shape[2] not in (1, 2, 3, 4):
        raise EdgeError(FORMAT_ERROR)
    img = _to_uint8(img)
    channels = img.shape[2]
    if channels in (2, 4):
        img = _composite_over_white(img[:, :, :-1], img[:, :, -1:])
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    return np.array(img, dtype=np.uint8, order="C", copy=True)


def _to_uint8(img: np.ndarray) -> np.ndarray:
    if img.dtype == np.uint8:
        return img
    if img.dtype == np.uint16:
        return (img >> 8).astype(np.uint8)
    if np.issubdtype(img.dtype, np.floating):
        scaled = np.nan_to_num(img.astype(np.float32), nan=0.0) * 255.0
        return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    if np.issubdtype(img.dtype, np.integer) and img.min() >= 0 and img.max() <= 255:
        return img.astype(np.uint8)
    raise EdgeError(FORMAT_ERROR)


def _composite_over_white(color: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """color * a + white * (1 - a), rounded, in integers (a = alpha / 255)."""
    if alpha.min() == 255:
        return color
    a = alpha.astype(np.uint32)
    out = (color.astype(np.uint32) * a + 255 * (255 - a) + 127) // 255
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


def _png_exif(raw: bytes) -> Optional[bytes]:
    """The payload of a PNG's eXIf chunk (a TIFF structure), or None."""
    i = 8
    while i + 8 <= len(raw):
        length, kind = struct.unpack(">I4s", raw[i:i + 8])
        if kind == b"eXIf":
            return raw[i + 8:i + 8 + length]
        if kind == b"IEND":
            break
        i += 12 + length
    return None


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
