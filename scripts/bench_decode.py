"""What one image can cost: peak RSS and wall time of decoding, each in a fresh process.

Prints, for v2 (4096 px sides) and v3 (6000 px), the worst files the documented limits
still accept (largest sides, deepest pixels, most JPEG scans), then bombs that claim
20000 x 20000, with the code each gets.  Run: python scripts/bench_decode.py
"""
from __future__ import annotations

import struct
import sys
import tempfile
import zlib
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from edge.imaging.probe import probe  # noqa: E402


def png(side: int, depth: int, color_type: int, pixel: bytes) -> bytes:
    """A constant PNG streamed through zlib (never the whole image in memory)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    z, row = zlib.compressobj(9), b"\x00" + pixel * side
    idat = b"".join(z.compress(row * 100) for _ in range(side // 100)) + z.compress(row * (side % 100)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def jpeg(side: int, scans: int = 0) -> bytes:
    """A progressive JPEG of broad steps; `scans` > 0 repeats its last scan up to that many."""
    img = np.add.outer(np.arange(side) // 32 % 128, np.arange(side) // 32 % 128).astype(np.uint8)
    raw = cv2.imencode(".jpg", cv2.merge([img, img[::-1], img.T]), [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1].tobytes()
    if scans:
        last, eoi = raw.rindex(b"\xff\xda"), raw.rindex(b"\xff\xd9")
        raw = raw[:eoi] + raw[last:eoi] * (scans - raw.count(b"\xff\xda")) + raw[eoi:]
    return raw


def bmp_rle8(side: int, height: int | None = None, header: int = 40) -> bytes:
    rle = b"\x00\x01"  # end of bitmap: every pixel left at palette entry 0
    info = (struct.pack("<iiHHII", side, height or side, 1, 8, 1, len(rle)) + bytes(header))[:header - 4]
    offset = 14 + header + 1024
    return b"BM" + struct.pack("<IHHII", offset + len(rle), 0, 0, offset, header) + info + bytes(1024) + rle


def stray_byte_bomb() -> bytes:
    raw = bytearray(cv2.imencode(".jpg", np.full((16, 16, 3), 128, np.uint8))[1].tobytes())
    i = raw.index(b"\xff\xc0")
    raw[i + 5:i + 9] = struct.pack(">HH", 20000, 20000)
    return bytes(raw[:i]) + b"\x00" + bytes(raw[i:])


def cases(side: int) -> dict:
    return {
        "png 16-bit RGBA, alpha": png(side, 16, 6, b"\x80\x00\x40\x00\x20\x00\x80\x00"),
        "png 16-bit RGB": png(side, 16, 2, b"\x80\x00\x40\x00\x20\x00"),
        "png 8-bit gray": png(side, 8, 0, b"\x80"),
        "jpeg progressive": jpeg(side),
        "jpeg progressive, 64 scans": jpeg(side, 64),
        "bmp rle8": bmp_rle8(side),
    }


def main() -> None:
    bombs = {"bomb: jpeg stray byte, 20000^2": stray_byte_bomb(), "bomb: bmp rle8 header 36, 20000^2":
             bmp_rle8(20000, header=36), "bomb: png gray 20000^2": png(20000, 8, 0, b"\x00")}
    print(f"{'api':4s} {'file':36s} {'KB':>7s} {'code':>7s} {'peak MB':>8s} {'s':>6s}")
    with tempfile.TemporaryDirectory() as tmp:
        for api, side in (("v2", 4096), ("v3", 6000)):
            for name, data in {**cases(side), **bombs}.items():
                path = Path(tmp) / "image"
                path.write_bytes(data)
                r = probe(path, api)
                label = name if name.startswith("bomb") else f"{name}, {side}^2"
                print(f"{api:4s} {label:36s} {len(data) / 1024:7.0f} {r['code']:7d} {r['rss_mb']:8.0f} {r['seconds']:6.2f}")
        path.write_bytes(b"")
        baseline = probe(path, "v2")
        print(f"(a child that decodes nothing: {baseline['rss_mb']:.0f} MB, {baseline['seconds']:.2f} s)")


if __name__ == "__main__":
    main()
