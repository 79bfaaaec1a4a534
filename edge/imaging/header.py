"""Format and dimensions of an image file, read from its bytes without decoding it.

Why: a 700-byte JPEG can claim 20000 x 20000 and cost the decoder 2.3 GB.  The size
must be known before any decoder runs, and read the way the decoder reads it, not the
way a well-formed file would be read:

* JPEG: libjpeg skips stray bytes and 0xFF fill before a marker, so a frame header may
  sit anywhere.  Every byte pair 0xFF + SOFn (SOF0-3, 5-7, 9-11, 13-15) or DHP whose
  length field matches its component count (libjpeg's own check) is taken as a frame,
  and the largest one counts.  A stray match inside an EXIF block can only make the
  answer larger, never hide a frame.
* PNG: libpng needs IHDR as the first chunk; its width and height are the image's
  (APNG frames must fit inside it).
* BMP: OpenCV reads signed 32-bit sides from any info header of 36 bytes or more
  (negative height = top-down), unsigned 16-bit ones from the 12-byte OS/2 header, and
  refuses other header sizes.

A file whose size cannot be read this way is refused by the caller, never decoded.
"""
from __future__ import annotations

import re
import struct
from typing import Optional, Tuple

# 0xFF followed by SOF0-3, SOF5-7, SOF9-11, SOF13-15 or DHP (0xDE).
_FRAME = re.compile(rb"\xff[\xc0-\xc3\xc5-\xc7\xc9-\xcb\xcd-\xcf\xde]")
_SOS = b"\xff\xda"


def sniff_format(raw: bytes) -> Optional[str]:
    """Name of the image format announced by ``raw``'s magic bytes, or None if unknown.

    Only "jpeg", "png" and "bmp" are accepted; "gif", "webp", "tiff", "heif" are
    recognised so they can be refused with a format error.  The magic bytes are the ones
    OpenCV's decoders check, so the decoder OpenCV picks is the one sized here.
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
    """(height, width) a JPEG/PNG/BMP file declares, or None if it cannot be sized."""
    reader = {"jpeg": _jpeg_dimensions, "png": _png_dimensions, "bmp": _bmp_dimensions}.get(sniff_format(raw))
    dims = reader(raw) if reader else None
    if dims is None or min(dims) <= 0:
        return None
    return dims


def jpeg_scans(raw: bytes) -> int:
    """How many scans (SOS markers) a JPEG holds; entropy-coded data never contains FF DA."""
    return raw.count(_SOS)


def _png_dimensions(raw: bytes) -> Optional[Tuple[int, int]]:
    if len(raw) < 24 or raw[8:16] != b"\x00\x00\x00\x0dIHDR":
        return None
    width, height = struct.unpack(">II", raw[16:24])
    return height, width


def _bmp_dimensions(raw: bytes) -> Optional[Tuple[int, int]]:
    if len(raw) < 26:
        return None
    (header_size,) = struct.unpack("<I", raw[14:18])
    if header_size == 12:  # OS/2 BITMAPCOREHEADER: 16-bit unsigned sides
        width, height = struct.unpack("<HH", raw[18:22])
    elif header_size >= 36:  # BITMAPINFOHEADER, OS/2 2.x and later
        width, height = struct.unpack("<ii", raw[18:26])
        height = abs(height)  # negative: top-down rows
    else:
        return None
    return height, width


def _jpeg_dimensions(raw: bytes) -> Optional[Tuple[int, int]]:
    """The largest (height, width) of any well-formed frame header in the file."""
    best: Optional[Tuple[int, int]] = None
    for match in _FRAME.finditer(raw):
        i = match.start()
        if i + 10 > len(raw):
            break
        length, _precision, height, width, components = struct.unpack(">HBHHB", raw[i + 2:i + 10])
        if components == 0 or length != 8 + 3 * components or height == 0 or width == 0:
            continue  # not a frame libjpeg would accept (height 0 = DNL, which it refuses)
        best = (height, width) if best is None else (max(best[0], height), max(best[1], width))
    return best
