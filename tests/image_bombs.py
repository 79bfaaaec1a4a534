"""Hand-made hostile image files for the decoder tests: small files that claim huge sizes.

Each builder returns the file's bytes.  Most claim 20000 x 20000 (2.3 GB decoded as
BGR) in a way the header check of edge/imaging once missed; the rest cannot be sized
at all, or are time bombs at legal dimensions.
"""
from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np

HUGE = 20000


def _jpeg(progressive: bool = False, size: int = 16) -> bytes:
    img = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    params = [cv2.IMWRITE_JPEG_PROGRESSIVE, 1] if progressive else []
    ok, buf = cv2.imencode(".jpg", img, params)
    assert ok
    return buf.tobytes()


def _sof_at(raw: bytes) -> int:
    for code in (0xC0, 0xC2):
        i = raw.find(bytes([0xFF, code]))
        if i >= 0:
            return i
    raise ValueError("no SOF")


def jpeg_claiming(marker: int = 0xC0, *, stray: bytes = b"\x00", height: int = HUGE, width: int = HUGE,
                  progressive: bool = False) -> bytes:
    """A real small JPEG whose frame header says height x width, `stray` bytes before it."""
    raw = bytearray(_jpeg(progressive))
    i = _sof_at(bytes(raw))
    raw[i + 1] = marker
    raw[i + 5:i + 9] = struct.pack(">HH", height, width)
    return bytes(raw[:i]) + stray + bytes(raw[i:])


def jpeg_second_frame() -> bytes:
    """A valid 16 x 16 JPEG with a second, huge frame header after its first scan."""
    raw = _jpeg()
    i = _sof_at(raw)
    frame = bytearray(raw[i:i + 19])
    frame[5:9] = struct.pack(">HH", HUGE, HUGE)
    eoi = raw.rindex(b"\xff\xd9")
    return raw[:eoi] + b"\x00\x00" + bytes(frame) + raw[eoi:]


def jpeg_without_frame() -> bytes:
    raw = _jpeg()
    i = _sof_at(raw)
    (length,) = struct.unpack(">H", raw[i + 2:i + 4])
    return raw[:i] + raw[i + 2 + length:]


def jpeg_many_scans(scans: int = 200) -> bytes:
    """A progressive JPEG with its last scan repeated: a time bomb at any size."""
    raw = _jpeg(progressive=True, size=64)
    last = raw.rindex(b"\xff\xda")
    eoi = raw.rindex(b"\xff\xd9")
    return raw[:eoi] + raw[last:eoi] * scans + raw[eoi:]


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def png_claiming(width: int = HUGE, height: int = HUGE) -> bytes:
    """An 8-bit gray PNG of zeros: ~0.4 MB of zlib for 400 MB of pixels."""
    row = b"\x00" * (1 + width)
    z = zlib.compressobj(9)
    data = b"".join(z.compress(row * 500) for _ in range(height // 500)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", data)
            + _png_chunk(b"IEND", b""))


def png_ihdr_not_first() -> bytes:
    ihdr = struct.pack(">IIBBBBB", HUGE, HUGE, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"tEXt", b"a\x00b") + _png_chunk(b"IHDR", ihdr)
            + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 100)) + _png_chunk(b"IEND", b""))


def bmp_rle8(header_size: int = 40, width: int = HUGE, height: int = HUGE) -> bytes:
    """An RLE8 BMP: a few bytes of run-length data stand for width x height pixels."""
    palette = b"\x00\x00\x00\x00" * 256
    rle = (b"\xff\x01" * 64 + b"\x00\x00") + b"\x00\x01"  # runs, end of line, end of bitmap
    info = struct.pack("<iiHHII", width, height, 1, 8, 1, len(rle))  # biCompression 1: RLE8
    info = (info + b"\x00" * header_size)[:header_size - 4]
    offset = 14 + header_size + len(palette)
    head = b"BM" + struct.pack("<IHHI", offset + len(rle), 0, 0, offset) + struct.pack("<I", header_size)
    return head + info + palette + rle


def bmp_os2(width: int = 65535, height: int = 65535) -> bytes:
    """OS/2 1.x BMP (12-byte header, 16-bit sides), 24 bits, pixel data cut short."""
    core = struct.pack("<HHHH", width, height, 1, 24)
    offset = 14 + 12
    return b"BM" + struct.pack("<IHHI", offset + 64, 0, 0, offset) + struct.pack("<I", 12) + core + bytes(64)


# name -> (bytes builder, cause): "too_large" for bombs that claim a size, "unreadable"
# for files that cannot be sized or are time bombs.
BOMBS = {
    "jpeg_stray_byte": (lambda: jpeg_claiming(0xC0), "too_large"),  # issue 11's 690-byte file
    "jpeg_fill_bytes": (lambda: jpeg_claiming(0xC0, stray=b"\xff\xff\xff"), "too_large"),
    "jpeg_garbage_ff00": (lambda: jpeg_claiming(0xC0, stray=b"\xff\x00junk"), "too_large"),
    **{f"jpeg_sof{m - 0xC0}": ((lambda m=m: jpeg_claiming(m)), "too_large")
       for m in (0xC1, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF)},
    "jpeg_progressive": (lambda: jpeg_claiming(0xC2, progressive=True), "too_large"),
    "jpeg_tall_thin": (lambda: jpeg_claiming(0xC0, height=60000, width=16), "too_large"),
    "jpeg_second_frame": (jpeg_second_frame, "too_large"),
    "jpeg_dnl_height_0": (lambda: jpeg_claiming(0xC0, height=0), "unreadable"),
    "jpeg_no_frame": (jpeg_without_frame, "unreadable"),
    "jpeg_200_scans": (jpeg_many_scans, "unreadable"),
    "png_ihdr_bomb": (png_claiming, "too_large"),
    "png_ihdr_not_first": (png_ihdr_not_first, "unreadable"),
    "bmp_rle8_info40": (bmp_rle8, "too_large"),
    "bmp_rle8_top_down": (lambda: bmp_rle8(height=-HUGE), "too_large"),
    "bmp_rle8_header36": (lambda: bmp_rle8(36), "too_large"),
    "bmp_rle8_header64_os2v2": (lambda: bmp_rle8(64), "too_large"),
    "bmp_rle8_header16": (lambda: bmp_rle8(16), "unreadable"),
    "bmp_negative_width": (lambda: bmp_rle8(width=-HUGE), "unreadable"),
    "bmp_os2_core": (bmp_os2, "too_large"),
}
