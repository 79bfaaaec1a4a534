"""edge.imaging.decode: Baidu's image input rules on real photos and hand-made files."""
from __future__ import annotations

import base64
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.errors import EdgeError
from edge.imaging import decode_image, header_dimensions, image_to_base64, sniff_format

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
JPEG_PATH = DATA / "lfw-view1" / "images" / "Aaron_Sorkin" / "Aaron_Sorkin_0001.jpg"
RGBA_PNG_PATH = DATA / "peers" / "face_recognition" / "tests" / "test_images" / "32bit.png"
GRAY_PNG_PATH = DATA / "multiface" / "skimage_camera.png"

MB = 1024 * 1024


# ------------------------------------------------------------------------- helpers

def _code(data, **kwargs) -> int:
    with pytest.raises(EdgeError) as info:
        decode_image(data, **kwargs)
    return info.value.error_code


def _encode(img: np.ndarray, ext: str = ".png") -> bytes:
    ok, buf = cv2.imencode(ext, img)
    assert ok
    return buf.tobytes()


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def _png(width, height, color_type, rows: bytes, *, bit_depth=8, before_idat=()) -> bytes:
    """A PNG written by hand: ``rows`` are the unfiltered scanlines, concatenated."""
    stride = len(rows) // height
    filtered = b"".join(b"\x00" + rows[y * stride:(y + 1) * stride] for y in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
            + b"".join(_png_chunk(k, p) for k, p in before_idat)
            + _png_chunk(b"IDAT", zlib.compress(filtered)) + _png_chunk(b"IEND", b""))


def _exif_tiff(orientation: int, order: str = ">") -> bytes:
    """A minimal TIFF structure: IFD0 with one entry, Orientation (0x0112, SHORT)."""
    mark = b"MM" if order == ">" else b"II"
    return (mark + struct.pack(order + "HI", 42, 8) + struct.pack(order + "H", 1)
            + struct.pack(order + "HHIHH", 0x0112, 3, 1, orientation, 0)
            + struct.pack(order + "I", 0))


def _with_exif_app1(jpeg: bytes, orientation: int) -> bytes:
    """Insert an APP1 Exif segment right after SOI."""
    payload = b"Exif\x00\x00" + _exif_tiff(orientation)
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def _tiny_gif() -> bytes:
    """A 1x1 GIF89a, byte by byte."""
    return (b"GIF89a" + struct.pack("<HH", 1, 1) + b"\x80\x00\x00"  # screen, 2-colour table
            + b"\x00\x00\x00\xff\xff\xff"  # palette: black, white
            + b"\x2c" + struct.pack("<HHHH", 0, 0, 1, 1) + b"\x00"  # image descriptor
            + b"\x02\x02\x44\x01\x00"  # LZW min code 2, one sub-block, terminator
            + b"\x3b")


@pytest.fixture(scope="module")
def jpeg_bytes() -> bytes:
    return JPEG_PATH.read_bytes()


@pytest.fixture(scope="module")
def photo(jpeg_bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(jpeg_bytes, np.uint8), cv2.IMREAD_COLOR)


def _assert_bgr(img: np.ndarray, shape=None):
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    assert img.flags["C_CONTIGUOUS"]
    if shape is not None:
        assert img.shape == shape


# ------------------------------------------------------------------ accepted inputs

def test_raw_jpeg_bytes(jpeg_bytes, photo):
    img = decode_image(jpeg_bytes)
    _assert_bgr(img, photo.shape)
    assert np.array_equal(img, photo)


def test_base64_str_bytes_data_uri_and_line_breaks(jpeg_bytes, photo):
    text = base64.b64encode(jpeg_bytes).decode("ascii")
    wrapped = "\n".join(text[i:i + 76] for i in range(0, len(text), 76))
    urlsafe = base64.urlsafe_b64encode(jpeg_bytes).decode("ascii").rstrip("=")
    for data in (text, text.encode("ascii"), "data:image/jpeg;base64," + text,
                 b"data:image/jpeg;base64," + text.encode("ascii"), wrapped, urlsafe):
        assert np.array_equal(decode_image(data), photo)
        assert np.array_equal(decode_image(data, api="v3"), photo)


def test_rgba_png_becomes_bgr():
    img = decode_image(RGBA_PNG_PATH.read_bytes())
    _assert_bgr(img, (1200, 626, 3))
    bgra = cv2.imread(str(RGBA_PNG_PATH), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(img, bgra[:, :, :3])  # this file is fully opaque


def test_gray_png_becomes_three_equal_channels():
    img = decode_image(GRAY_PNG_PATH.read_bytes())
    _assert_bgr(img, (512, 512, 3))
    gray = cv2.imread(str(GRAY_PNG_PATH), cv2.IMREAD_UNCHANGED)
    assert gray.ndim == 2
    for c in range(3):
        assert np.array_equal(img[:, :, c], gray)


def test_gray_jpeg_becomes_bgr(photo):
    gray = cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY)
    img = decode_image(_encode(gray, ".jpg"))
    _assert_bgr(img, photo.shape)
    assert np.array_equal(img[:, :, 0], img[:, :, 2])


def test_transparent_png_composited_over_white(photo):
    bgra = cv2.cvtColor(photo, cv2.COLOR_BGR2BGRA)
    bgra[:50, :, 3] = 0  # fully transparent band, colour under it kept
    bgra[50:100, :, 3] = 128  # half transparent band
    img = decode_image(_encode(bgra))
    assert (img[:50] == 255).all()
    half = (photo[50:100].astype(np.int32) * 128 + 255 * 127 + 127) // 255
    assert np.array_equal(img[50:100], half.astype(np.uint8))
    assert np.array_equal(img[100:], photo[100:])


def test_palette_and_gray_alpha_png_written_by_hand():
    width, height = 20, 16
    index = (np.arange(width * height) % 3).astype(np.uint8).reshape(height, width)
    plte = bytes([0, 0, 255, 0, 255, 0, 255, 0, 0])  # RGB: blue, green, red
    trns = bytes([255, 255, 0])  # the third entry (red) is transparent
    img = decode_image(_png(width, height, 3, index.tobytes(),
                            before_idat=[(b"PLTE", plte), (b"tRNS", trns)]))
    _assert_bgr(img, (height, width, 3))
    assert (img[index == 0] == [255, 0, 0]).all()  # blue in BGR
    assert (img[index == 1] == [0, 255, 0]).all()
    assert (img[index == 2] == [255, 255, 255]).all()  # transparent red -> white

    ga = np.zeros((height, width, 2), np.uint8)
    ga[..., 0], ga[..., 1] = 40, 255
    ga[:4, :, 1] = 0
    img = decode_image(_png(width, height, 4, ga.tobytes()))
    assert (img[:4] == 255).all() and (img[4:] == 40).all()


def test_16bit_png_is_shifted_not_clipped():
    rng = np.random.default_rng(0)
    gray16 = rng.integers(0, 65536, size=(32, 48), dtype=np.uint16)
    gray16[0, :4] = [0, 255, 256, 65535]
    img = decode_image(_encode(gray16))
    expected = (gray16 >> 8).astype(np.uint8)
    for c in range(3):
        assert np.array_equal(img[:, :, c], expected)
    assert list(img[0, :4, 0]) == [0, 0, 1, 255]

    bgr16 = rng.integers(0, 65536, size=(32, 48, 3), dtype=np.uint16)
    assert np.array_equal(decode_image(_encode(bgr16)), (bgr16 >> 8).astype(np.uint8))


def test_bmp_round_trip(photo):
    raw = _encode(photo, ".bmp")
    assert sniff_format(raw) == "bmp" and header_dimensions(raw) == photo.shape[:2]
    assert np.array_equal(decode_image(raw), photo)
    # 32-bit BMP whose alpha channel is all zero (as many writers leave it): colour kept.
    bgra = np.dstack([photo, np.zeros(photo.shape[:2], np.uint8)])
    assert np.array_equal(decode_image(_encode(bgra, ".bmp")), photo)


def test_image_to_base64_round_trip(photo):
    text = image_to_base64(photo, ".png")
    assert isinstance(text, str) and text.startswith("iVBORw0KGgo")
    assert np.array_equal(decode_image(text), photo)
    assert decode_image(image_to_base64(photo)).shape == photo.shape  # default .jpg


# --------------------------------------------------------------------- array input

def test_array_inputs(photo):
    out = decode_image(photo)
    assert np.array_equal(out, photo) and out is not photo  # a copy, caller's array safe

    gray = cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY)
    assert np.array_equal(decode_image(gray), cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))
    assert np.array_equal(decode_image(gray[:, :, None])[:, :, 1], gray)

    bgra = cv2.cvtColor(photo, cv2.COLOR_BGR2BGRA)
    bgra[:10, :, 3] = 0
    out = decode_image(bgra)
    assert (out[:10] == 255).all() and np.array_equal(out[10:], photo[10:])

    u16 = photo.astype(np.uint16) * 256 + 200  # low byte dropped, not rounded
    assert np.array_equal(decode_image(u16), photo)

    as_float = photo.astype(np.float32) / 255.0
    assert np.array_equal(decode_image(as_float), photo)

    view = photo[:, ::-1]  # not contiguous
    out = decode_image(view)
    assert out.flags["C_CONTIGUOUS"] and np.array_equal(out, view)


def test_bad_arrays():
    assert _code(np.zeros((0, 0, 3), np.uint8)) == 216200
    assert _code(np.zeros((20, 20, 5), np.uint8)) == 216201
    assert _code(np.zeros((20,), np.uint8)) == 216201
    assert _code(np.full((20, 20, 3), 300, np.int32)) == 216201
    assert _code(np.zeros((10, 10, 3), np.uint8)) == 216202
    assert _code(np.zeros((16, 6001, 3), np.uint8), api="v3") == 222304


# ------------------------------------------------------------------- refused inputs

@pytest.mark.parametrize("data", [None, b"", "", "   \n", bytearray(), "data:image/png;base64,", 42, [1, 2]])
def test_empty_input_is_216200(data):
    assert _code(data) == 216200


def test_empty_message_is_baidus():
    with pytest.raises(EdgeError) as info:
        decode_image(b"")
    assert info.value.to_dict() == {"error_code": 216200, "error_msg": "empty image"}


@pytest.mark.parametrize("data", ["this is not base64!!!", "abcde", "Zm9v=YmFy", "/9j/4AAQ\u00e9", b"@@@@"])
def test_undecodable_base64_is_216200(data):
    assert _code(data) == 216200


def test_truncated_jpeg_is_216200(jpeg_bytes):
    assert _code(jpeg_bytes[:100]) == 216200
    # Cut inside the entropy-coded data: OpenCV 5 refuses it as well (no partial image).
    assert _code(jpeg_bytes[: len(jpeg_bytes) // 2]) == 216200
    assert _code(base64.b64encode(jpeg_bytes[:100])) == 216200


def test_corrupt_png_is_216200(photo):
    png = bytearray(_encode(photo))
    idat = png.index(b"IDAT")
    png[idat + 20:idat + 400] = bytes(380)
    assert _code(bytes(png)) == 216200
    assert _code(bytes(png[:60])) == 216200


def test_unsupported_formats_are_216201(jpeg_bytes):
    gif = _tiny_gif()
    assert sniff_format(gif) == "gif"
    assert _code(gif) == 216201
    assert _code(base64.b64encode(gif).decode()) == 216201
    assert _code(b"RIFF\x24\x00\x00\x00WEBPVP8 " + bytes(20)) == 216201
    assert _code(b"II*\x00\x08\x00\x00\x00" + bytes(30)) == 216201
    random_bytes = np.random.default_rng(1).integers(128, 256, 300, dtype=np.uint8).tobytes()
    assert _code(random_bytes) == 216201
    assert _code(base64.b64encode(random_bytes).decode()) == 216201  # decodes, not an image
    assert _code(jpeg_bytes[1:]) == 216201  # magic broken


def test_too_small_is_216202():
    small = _encode(np.zeros((10, 10, 3), np.uint8))
    assert _code(small) == 216202
    assert _code(small, api="v3") == 222203  # v3: "image check fail" (docs/api.md)
    assert _code(_encode(np.zeros((14, 200), np.uint8))) == 216202
    assert decode_image(_encode(np.zeros((15, 15), np.uint8))).shape == (15, 15, 3)


def test_longest_side_limits_differ_between_v2_and_v3():
    wide = _encode(np.zeros((20, 5000, 3), np.uint8))
    assert header_dimensions(wide) == (20, 5000)
    assert _code(wide) == 216202
    assert decode_image(wide, api="v3").shape == (20, 5000, 3)  # v3 has no 4096 limit
    assert decode_image(_encode(np.zeros((20, 4096), np.uint8))).shape == (20, 4096, 3)

    wider = _encode(np.zeros((16, 6001, 3), np.uint8))
    assert _code(wider, api="v3") == 222304
    assert _code(wider) == 216202
    assert decode_image(_encode(np.zeros((16, 6000), np.uint8)), api="v3").shape == (16, 6000, 3)


def test_size_is_read_from_header_before_decoding(jpeg_bytes, photo):
    # PNG IHDR claiming 7000 x 7000 with no pixel data: refused for size, not decoded.
    bomb = _png(7000, 7000, 0, b"\x00" * 7000)[:33] + _png_chunk(b"IEND", b"")
    assert header_dimensions(bomb) == (7000, 7000)
    assert _code(bomb, api="v3") == 222304
    assert _code(bomb) == 216202

    # A real JPEG whose SOF0 is patched to 5000 x 300.
    patched = bytearray(jpeg_bytes)
    sof = patched.index(b"\xff\xc0")
    assert struct.unpack(">HH", patched[sof + 5:sof + 9]) == photo.shape[:2]
    patched[sof + 5:sof + 9] = struct.pack(">HH", 300, 5000)
    assert header_dimensions(bytes(patched)) == (300, 5000)
    assert _code(bytes(patched)) == 216202

    # A BMP info header claiming 70000 x 20.
    bmp = bytearray(_encode(np.zeros((20, 20, 3), np.uint8), ".bmp"))
    bmp[18:22] = struct.pack("<i", 70000)
    assert _code(bytes(bmp), api="v3") == 222304


def test_base64_size_limits(jpeg_bytes, photo):
    # JPEG decoders ignore bytes after EOI, so padding makes a valid but heavy file.
    def padded(n_raw):
        return jpeg_bytes + bytes(n_raw - len(jpeg_bytes))

    at_v2_limit = padded(3 * MB)  # base64 length exactly 4 MB
    assert decode_image(at_v2_limit).shape == photo.shape
    over = padded(3 * MB + 1)  # base64 length 4 MB + 4
    assert _code(over) == 216202
    assert _code(base64.b64encode(over)) == 216202
    assert _code("data:image/jpeg;base64," + base64.b64encode(over).decode()) == 216202

    v3_over = padded(1536 * 1024 + 1)  # base64 just above 2 MB
    assert _code(v3_over, api="v3") == 222304
    assert decode_image(v3_over).shape == photo.shape  # fine for v2
    assert decode_image(padded(1536 * 1024), api="v3").shape == photo.shape


# -------------------------------------------------------------------- orientation

@pytest.mark.parametrize("orientation", [6, 8])
def test_jpeg_exif_orientation_is_applied(photo, orientation):
    stored = np.ascontiguousarray(photo[:, :110])  # real photo, 150 rows x 110 columns
    jpeg = _with_exif_app1(_encode(stored, ".jpg"), orientation)
    assert header_dimensions(jpeg) == (150, 110)
    img = decode_image(jpeg)
    _assert_bgr(img, (110, 150, 3))
    plain = decode_image(_encode(stored, ".jpg"))
    turned = np.rot90(plain, -1 if orientation == 6 else 1)  # 6: 90 deg clockwise
    assert np.abs(img.astype(int) - turned.astype(int)).mean() < 1.0


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("order", [">", "<"])
def test_png_exif_orientation_matches_opencv(photo, orientation, order):
    stored = np.ascontiguousarray(photo[:40, :90])
    png = bytearray(_encode(stored))
    png[33:33] = _png_chunk(b"eXIf", _exif_tiff(orientation, order))  # after IHDR
    png = bytes(png)
    # IMREAD_COLOR applies the eXIf orientation itself: the reference for opaque PNGs.
    reference = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    img = decode_image(png)
    assert img.shape == ((90, 40, 3) if orientation >= 5 else (40, 90, 3))
    assert np.array_equal(img, reference)


# ---------------------------------------------------------------- never a traceback

def test_mutated_files_never_raise_anything_else(photo):
    rng = np.random.default_rng(7)
    small = np.ascontiguousarray(photo[:64, :64])
    for ext in (".jpg", ".png", ".bmp"):
        original = np.frombuffer(_encode(small, ext), np.uint8)
        for _ in range(40):
            mutated = original.copy()
            at = rng.integers(2, len(mutated), size=8)
            mutated[at] = rng.integers(0, 256, size=8, dtype=np.uint8)
            cut = int(rng.integers(8, len(mutated) + 1))
            for api, codes in (("v2", (216200, 216201, 216202)), ("v3", (222203, 222304))):
                try:
                    img = decode_image(mutated[:cut].tobytes(), api=api)
                except EdgeError as exc:
                    assert exc.error_code in codes
                else:
                    _assert_bgr(img)


def test_unknown_api_is_a_programming_error(jpeg_bytes):
    with pytest.raises(ValueError):
        decode_image(jpeg_bytes, api="v4")


# ------------------------------------------------------- sizing as the decoder does

def _app_segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def test_jpeg_frame_behind_stray_and_fill_bytes_is_sized(jpeg_bytes, photo):
    # libjpeg skips stray bytes, 0xFF fill and FF 00 before a marker (warning only), so
    # such a file decodes; it must be sized too (it was not: decoded blindly).
    sof = jpeg_bytes.index(b"\xff\xc0")
    for junk in (b"\x00", b"\xff\xff", b"ab\xff\x00cd"):
        odd = jpeg_bytes[:sof] + junk + jpeg_bytes[sof:]
        assert header_dimensions(odd) == photo.shape[:2]
        _assert_bgr(decode_image(odd), photo.shape)


def test_metadata_is_never_taken_for_a_frame(jpeg_bytes, photo):
    # A frame header for 20000 x 20000 hidden inside APP segments (EXIF, ICC, maker
    # notes are binary): segments are skipped by their length, as libjpeg does.
    fake = b"\xff\xc0\x00\x11\x08" + struct.pack(">HH", 20000, 20000) + b"\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    noise = np.random.default_rng(3).integers(0, 256, 65000, dtype=np.uint8).tobytes()
    segments = [_app_segment(0xE1 + k % 3, noise[:30000] + fake + noise[30000:65000]) for k in range(40)]
    heavy = jpeg_bytes[:2] + b"".join(segments) + jpeg_bytes[2:]  # 2.6 MB of metadata
    assert header_dimensions(heavy) == photo.shape[:2]
    _assert_bgr(decode_image(heavy), photo.shape)          # 3.5 MB of base64: v2 takes it
    assert _code(heavy, api="v3") == 222304                  # over v3's 2 MB
    oriented = _with_exif_app1(_encode(photo[:, :110], ".jpg"), 6)
    oriented = oriented[:2] + b"".join(segments[:3]) + oriented[2:]
    assert decode_image(oriented).shape == (110, 150, 3)     # the EXIF orientation still holds


def test_bmp_headers_are_sized_as_opencv_reads_them(photo):
    small = np.ascontiguousarray(photo[:40, :50])
    bmp = bytearray(_encode(small, ".bmp"))
    top_down = bytearray(bmp)
    top_down[22:26] = struct.pack("<i", -40)                 # negative height: rows top-down
    assert header_dimensions(bytes(top_down)) == (40, 50)
    assert np.array_equal(decode_image(bytes(top_down)), small[::-1])
    for size in (36, 39):                                    # OpenCV reads any header >= 36 bytes
        odd = bytearray(bmp)
        odd[14:18] = struct.pack("<I", size)
        assert header_dimensions(bytes(odd)) == (40, 50)     # was None: decoded unsized
    odd[14:18] = struct.pack("<I", 16)                       # OS/2 2.x short header: OpenCV refuses it
    assert header_dimensions(bytes(odd)) is None
    assert _code(bytes(odd)) == 216200 and _code(bytes(odd), api="v3") == 222203


@pytest.mark.parametrize("array", [
    np.arange(40 * 50, dtype=np.uint16).reshape(40, 50) * 31,              # 16-bit gray
    np.random.default_rng(1).integers(0, 65536, (40, 50, 3), dtype=np.uint16),  # 16-bit RGB
    np.random.default_rng(2).integers(0, 256, (40, 50), dtype=np.uint8),       # 8-bit gray
])
def test_opaque_pngs_decode_straight_to_bgr(array):
    png = _encode(array)
    reference = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    expected = (reference >> 8).astype(np.uint8) if reference.dtype == np.uint16 else reference
    if expected.ndim == 2:
        expected = np.repeat(expected[:, :, None], 3, axis=2)
    assert np.array_equal(decode_image(png), expected)


def _cmyk_jpeg(gray: np.ndarray) -> bytes:
    """A 4-component (Adobe CMYK) JPEG: the gray JPEG's scan repeated for C, M, Y and K,
    one non-interleaved scan per component, behind an Adobe APP14 (transform 0)."""
    raw = cv2.imencode(".jpg", gray)[1].tobytes()
    i, tables = 2, b""
    while raw[i + 1] != 0xDA:
        (length,) = struct.unpack(">H", raw[i + 2:i + 4])
        if raw[i + 1] in (0xDB, 0xC4):
            tables += raw[i:i + 2 + length]
        i += 2 + length
    entropy = raw[i + 2 + struct.unpack(">H", raw[i + 2:i + 4])[0]:raw.rindex(b"\xff\xd9")]
    h, w = gray.shape
    frame = b"\xff\xc0" + struct.pack(">HBHHB", 20, 8, h, w, 4) + b"".join(bytes([k, 0x11, 0]) for k in range(1, 5))
    adobe = b"Adobe" + struct.pack(">HHHB", 100, 0, 0, 0)
    scans = b"".join(b"\xff\xda" + struct.pack(">HB", 8, 1) + bytes([k, 0, 0, 63, 0]) + entropy for k in range(1, 5))
    return b"\xff\xd8" + _app_segment(0xEE, adobe) + tables + frame + scans + b"\xff\xd9"


def test_cmyk_jpeg_becomes_bgr():
    gray = (np.add.outer(np.arange(48), np.arange(64)) * 2).astype(np.uint8)
    cmyk = _cmyk_jpeg(gray)
    assert header_dimensions(cmyk) == (48, 64)
    for api in ("v2", "v3"):
        img = decode_image(cmyk, api=api)
        _assert_bgr(img, (48, 64, 3))
        assert np.array_equal(img[..., 0], img[..., 2])    # C = M = Y: a neutral image
        assert img[-1, -1, 0] > img[0, 0, 0]
    assert _code(cmyk[: len(cmyk) // 2]) == 216200 and _code(cmyk[: len(cmyk) // 2], api="v3") == 222203


def test_oversized_input_is_refused_before_any_pass_over_it():
    huge = "A" * (8 * MB + 1)  # more than twice v2's 4 MB: no regex pass, no ASCII copy
    assert _code(huge) == 216202 and _code(huge.encode()) == 216202 and _code(huge, api="v3") == 222304
