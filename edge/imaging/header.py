"""Format and dimensions of an image file, read from its bytes without decoding it.

Why: a 700-byte JPEG can claim 20000 x 20000 and cost the decoder 2.3 GB.  The size
must be known before any decoder runs, and read the way the decoder reads it, not the
way a well-formed file would be read:

* JPEG: markers are found the way libjpeg's next_marker finds them - stray bytes, 0xFF
  fill and FF 00 pairs before a marker are skipped -, segments are skipped by their
  length (so bytes inside EXIF or ICC data are never taken for a marker), and the walk
  goes on through the scans to EOI.  Every frame header on the way (SOF0-3, 5-7, 9-11,
  13-15, DHP) counts and the largest wins; libjpeg decodes the first.  A frame header
  libjpeg would reject (length not matching its components, a zero side: DNL), a scan
  before any frame, or a file with no frame cannot be sized.
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

# The last 0xFF of a run, followed by a marker code: neither a stuffed 0x00, nor more
# fill, nor a restart marker.
_MARKER = re.compile(rb"\xff(?=[^\x00\xff\xd0-\xd7])")
_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC} | {0xDE}  # SOFn and DHP
_NO_LENGTH = frozenset(range(0xD0, 0xD8)) | {0x01}  # RST0-7, TEM
SOS, EOI, SOI = 0xDA, 0xD9, 0xD8


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
    return header_info(raw)[0]


def header_info(raw: bytes) -> Tuple[Optional[Tuple[int, int]], int]:
    """((height, width) or None, number of JPEG scans - 0 for other formats), one pass."""
    fmt = sniff_format(raw)
    if fmt == "jpeg":
        dims, scans = _walk_jpeg(raw)
    else:
        reader = {"png": _png_dimensions, "bmp": _bmp_dimensions}.get(fmt)
        dims, scans = (reader(raw) if reader else None), 0
    if dims is None or min(dims) <= 0:
        return None, scans
    return dims, scans


def jpeg_scans(raw: bytes) -> int:
    """How many scans (SOS segments) a JPEG holds, counted up to its EOI."""
    return _walk_jpeg(raw)[1]


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


def _next_marker(raw: bytes, pos: int) -> Tuple[Optional[int], int]:
    """(marker code, index after it) as libjpeg's next_marker finds it from ``pos``: stray
    bytes, 0xFF fill and FF 00 pairs (stuffed bytes of entropy-coded data) are skipped,
    and so are restart markers (no length, no size).  One regex search does it in C, in
    linear time: a 20 MB file of nothing but FF 00 or FF FF 00 is walked in ~0.3 s."""
    match = _MARKER.search(raw, pos)
    if match is None:
        return None, len(raw)
    return raw[match.end()], match.end() + 1


def _walk_jpeg(raw: bytes) -> Tuple[Optional[Tuple[int, int]], int]:
    """(largest frame's (height, width) or None if it cannot be sized, number of scans)."""
    best: Optional[Tuple[int, int]] = None
    scans, pos, n = 0, 2, len(raw)
    while True:
        code, i = _next_marker(raw, pos)
        if code is None:
            return best, scans
        if code == EOI or code == SOI:  # the end, or a second SOI libjpeg refuses
            return best, scans
        if code in _NO_LENGTH:
            pos = i
            continue
        if i + 2 > n:
            return best, scans
        (length,) = struct.unpack(">H", raw[i:i + 2])
        if length < 2:
            return None, scans
        if code in _FRAMES:
            if i + 8 > n:
                return None, scans
            _precision, height, width, components = struct.unpack(">BHHB", raw[i + 2:i + 8])
            if components == 0 or length != 8 + 3 * components or height == 0 or width == 0:
                return None, scans  # libjpeg refuses such a frame (height 0: DNL)
            best = (height, width) if best is None else (max(best[0], height), max(best[1], width))
        elif code == SOS:
            if best is None:
                return None, scans  # a scan before any frame
            scans += 1
        pos = i + length  # after a scan header, the entropy-coded data: FF 00 never matches
