"""A display re-filmed by the camera: photo and video replays, artefacts from a physical model.

The content is shown on a display with a pixel grid (R, G, B sub-pixel stripes side by
side, a black matrix between rows), a gamma, a white point and a black level; the
device (display + bezel) is a plane held in front of the camera. Each camera pixel
integrates the light that falls on it: the display's emission is box-integrated
exactly (per sub-pixel stripe, from cumulative sums) over cells of 1/SUPERSAMPLE camera
pixel, warped by the plane's homography onto a SUPERSAMPLE x camera grid and area-
averaged onto the camera pixels. The grid is never drawn at camera resolution:
moire is what is left of it after the integration. Glare (a light source's specular
reflection in the glass, moving as the device turns), refresh banding (the display's
PWM/refresh beating with the rolling shutter: a horizontal band drifting between
frames) and the bezel are added in the same physical frame; `camera_noise` ends it.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from edge.spoofset.render import SIZE, camera_noise, plane_homography

SUPERSAMPLE = 3          # camera sub-samples per pixel and axis (3: the warp's bilinear blur stays < 1/3 px)
CAMERA_GAMMA = 2.2       # the camera's encoding of linear light (sRGB-like)

# Device kinds: pixel pitch (mm) and the size of a face shown on it (mm, an attacker
# fills the screen with the face or plays a close-up). Display px per face = face / pitch.
DEVICES = {
    # phone: ~400-460 ppi OLED/LCD (0.055-0.065 mm); a face shown 25-45 mm tall
    "phone": dict(pitch=(0.055, 0.065), face_mm=(25, 45), extent=(1.6, 2.4), aspect=(0.5, 0.62)),
    # tablet: ~260-330 ppi (0.08-0.1 mm); a face 45-90 mm tall
    "tablet": dict(pitch=(0.08, 0.1), face_mm=(45, 90), extent=(1.8, 2.8), aspect=(0.7, 0.8)),
    # laptop: ~125-160 ppi (0.16-0.2 mm); a face 70-140 mm tall
    "laptop": dict(pitch=(0.16, 0.2), face_mm=(70, 140), extent=(2.0, 3.0), aspect=(1.5, 1.8)),
}


_TO_LINEAR = ((np.arange(256) / 255.0) ** CAMERA_GAMMA).astype(np.float32)
# Linear light -> 8 bit through a 16k-entry table: steps of 6e-5 in linear light are
# finer than one code value everywhere above code 1.
_TO_CODE = (np.linspace(0, 1, 16384) ** (1 / CAMERA_GAMMA) * 255 + 0.5).astype(np.uint8)


@dataclass(frozen=True)
class Screen:
    kind: str
    pitch_mm: float
    face_px: float            # display pixels across the shown face's height
    display: tuple[int, int]  # display area (w, h), display px
    bezel: int                # bezel width, display px
    fill: float               # lit share of each sub-pixel stripe's width
    fill_v: float             # lit share of each pixel row's height (the rest: black matrix)
    gamma: float
    black: float              # black level, share of white
    white: tuple[float, float, float]   # white point gains (B, G, R)
    brightness: float         # display white relative to the camera's exposure (1: just saturates)
    bezel_level: float        # the bezel's own (dark) reflectance, share of white
    glare: float              # peak of the specular reflection, share of white
    glare_sigma: float        # its size, share of the device height
    glare_at: tuple[float, float]   # its centre on the device when frontal (u, v in 0..1)
    band_amp: float           # refresh banding depth
    band_period: float        # camera rows per band
    band_speed: float         # band drift, rows per camera frame
    band_phase: float
    grid: bool = True         # False: the same display with no pixel structure (for comparison)


def draw_screen(rng: np.random.Generator, kind: str | None = None, content_aspect: float | None = None) -> Screen:
    """One device's parameters, drawn per sequence."""
    kind = kind or str(rng.choice(list(DEVICES)))
    d = DEVICES[kind]
    pitch = rng.uniform(*d["pitch"])
    face_px = rng.uniform(*d["face_mm"]) / pitch
    h = int(face_px * rng.uniform(*d["extent"]))          # display area: this many face heights tall
    w = int(h * (content_aspect if content_aspect else rng.uniform(*d["aspect"])))
    return Screen(
        kind=kind, pitch_mm=pitch, face_px=face_px, display=(w, h),
        bezel=int(h * rng.uniform(0.03, 0.08)),           # phones 2-5 mm, laptops 5-10 mm of a 70-200 mm height
        fill=rng.uniform(0.6, 0.9),                       # LCD stripe apertures are 60-90 % of the sub-pixel width
        fill_v=rng.uniform(0.7, 0.9),                     # and 70-90 % of the row (TFT + black matrix)
        gamma=rng.uniform(2.0, 2.5),                      # displays are set for ~2.2; cheap panels drift 2.0-2.5
        black=rng.uniform(0.01, 0.06),                    # LCD contrast 1000:1 is ~0.001, but ambient light on the glass lifts it
        white=tuple(rng.uniform(0.9, 1.1, 3)),            # white point 5500-8000 K vs the camera's white balance
        brightness=rng.uniform(0.7, 1.1),                 # auto-exposure rarely matches the screen exactly
        bezel_level=rng.uniform(0.02, 0.08),              # black plastic/glass
        glare=rng.uniform(0.05, 0.35),                    # a window or ceiling light in the glass: faint to strong
        glare_sigma=rng.uniform(0.15, 0.4),
        glare_at=(rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9)),
        band_amp=rng.uniform(0.03, 0.15),                 # PWM dimming at 200-500 Hz vs 1/25-1/100 s exposure: 3-15 % ripple
        band_period=rng.uniform(60, 300),                 # rows per beat period for 30-60 us row times
        band_speed=rng.uniform(5, 40) * rng.choice([-1, 1]),  # the beat frequency is not a multiple of 25 Hz
        band_phase=rng.uniform(0, 1),
    )


@dataclass(frozen=True)
class Pose:
    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    tx: float = 0.0
    ty: float = 0.0
    scale: float = 1.0


def display_emission(content: np.ndarray, screen: Screen) -> np.ndarray:
    """Linear light (float32, display px, BGR) the display emits for 8-bit content."""
    w, h = screen.display
    img = cv2.resize(content, (w, h), interpolation=cv2.INTER_CUBIC if w > content.shape[1] else cv2.INTER_AREA)
    lut = (screen.black + (1 - screen.black) * (np.arange(256) / 255.0) ** screen.gamma) * screen.brightness
    return lut.astype(np.float32)[img] * np.asarray(screen.white, np.float32)


def _box_average(d: np.ndarray, edges: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Exact average over [edges[k], edges[k+1]) (axis 0, display px) of a piecewise
    constant signal lit only in [lo, hi) of each pixel, renormalised by the lit width so
    that a uniform display keeps its mean. Outside 0..N it is dark."""
    n = d.shape[0]
    lit = hi - lo
    c = np.zeros((n + 1,) + d.shape[1:], np.float64)
    np.cumsum(d * lit, axis=0, out=c[1:])

    def cum(u):
        u = np.clip(u, 0, n)
        j = np.minimum(np.floor(u).astype(np.int64), n - 1)
        part = np.clip(u - j - lo, 0, lit)
        return c[j] + d[j] * part.reshape((-1,) + (1,) * (d.ndim - 1))

    width = np.diff(edges).reshape((-1,) + (1,) * (d.ndim - 1))
    return ((cum(edges[1:]) - cum(edges[:-1])) / (width * lit)).astype(np.float32)


def _coverage(edges: np.ndarray, n: int) -> np.ndarray:
    return (np.clip(edges[1:], 0, n) - np.clip(edges[:-1], 0, n)) / np.diff(edges)


def _cells(screen: Screen, cam_per_px: float) -> tuple[np.ndarray, np.ndarray]:
    """Cell edges (x, y) over the device in display px: cells of 1/SUPERSAMPLE camera px."""
    w, h = screen.display
    b = screen.bezel
    step = 1.0 / (cam_per_px * SUPERSAMPLE)
    return np.arange(-b, w + b + step, step), np.arange(-b, h + b + step, step)


def _integrate(emission: np.ndarray, screen: Screen, ex: np.ndarray, ey: np.ndarray) -> np.ndarray:
    """The display's light averaged over each cell (dark outside the display area)."""
    h, w = emission.shape[:2]
    if screen.grid:
        f, fv = screen.fill, screen.fill_v
        rows = _box_average(emission.reshape(h, w * 3), ey, (1 - fv) / 2, (1 + fv) / 2).reshape(-1, w, 3)
        out = np.empty((len(ey) - 1, len(ex) - 1, 3), np.float32)
        # Stripes R, G, B left to right (BGR channels 2, 1, 0), each lit over `fill` of its
        # third. _box_average renormalises by the lit width: a uniform display keeps its
        # mean, so grid and grid=False renders of one content differ only in structure.
        for k, ch in enumerate((2, 1, 0)):
            lo = (k + (1 - f) / 2) / 3
            out[..., ch] = _box_average(np.ascontiguousarray(rows[..., ch].T), ex, lo, lo + f / 3).T
        return out
    rows = _box_average(emission.reshape(h, w * 3), ey, 0.0, 1.0).reshape(-1, w, 3)
    return np.stack([_box_average(np.ascontiguousarray(rows[..., ch].T), ex, 0.0, 1.0).T for ch in range(3)],
                    axis=-1)


def _bezel(screen: Screen, ex: np.ndarray, ey: np.ndarray) -> np.ndarray:
    w, h = screen.display
    cover = np.outer(_coverage(ey, h), _coverage(ex, w)).astype(np.float32)[..., None]
    return (1 - cover) * np.float32(screen.bezel_level)


def device_texture(emission: np.ndarray, screen: Screen, cam_per_px: float) -> np.ndarray:
    """The device (display + bezel) integrated exactly on cells of 1/SUPERSAMPLE camera
    pixel (at `cam_per_px` camera px per display px), linear light."""
    ex, ey = _cells(screen, cam_per_px)
    return _integrate(emission, screen, ex, ey) + _bezel(screen, ex, ey)


@dataclass(frozen=True)
class GridCells:
    """A display's pixel structure integrated once per sequence, for changing content."""
    pattern: np.ndarray    # cell average of a uniform white display (dark outside it)
    bezel: np.ndarray      # the bezel's light per cell
    offset: tuple[int, int]
    size: tuple[int, int]  # the display area in cells (w, h)


def grid_cells(screen: Screen, cam_per_px: float) -> GridCells:
    ex, ey = _cells(screen, cam_per_px)
    w, h = screen.display
    ones = np.ones((h, w, 3), np.float32)
    step = ex[1] - ex[0]
    return GridCells(_integrate(ones, screen, ex, ey), _bezel(screen, ex, ey),
                     (int(round(screen.bezel / step)), int(round(screen.bezel / step))),
                     (int(round(w / step)), int(round(h / step))))


def video_texture(cells_emission: np.ndarray, grid: GridCells) -> np.ndarray:
    """The device texture for content given directly at cell resolution (display_emission
    of a crop rendered at `grid.size`): cell average of content x grid ~ product of the
    cell averages, exact where the content is smooth over a cell (1-3 display px) - a
    replayed video zoomed onto a display is (it is upsampled several times)."""
    ny, nx = grid.pattern.shape[:2]
    ox, oy = grid.offset
    e = cv2.copyMakeBorder(cells_emission, oy, max(ny - oy - cells_emission.shape[0], 0), ox,
                           max(nx - ox - cells_emission.shape[1], 0), cv2.BORDER_REPLICATE)[:ny, :nx]
    return grid.pattern * e + grid.bezel


def cells_screen(screen: Screen, grid: GridCells) -> Screen:
    """The screen with its display area counted in cells (for display_emission/content_crop
    at cell resolution)."""
    k = grid.size[1] / screen.display[1]
    return replace(screen, display=grid.size, face_px=screen.face_px * k)


def device_homography(texture_shape, screen: Screen, cam_per_px: float, pose: Pose) -> np.ndarray:
    """Texture cells -> camera px (the device centred on the axis, posed)."""
    return plane_homography(texture_shape, pose.yaw, pose.pitch, pose.roll, pose.tx, pose.ty,
                            pose.scale / SUPERSAMPLE)


def device_outline(screen: Screen, cam_per_px: float, pose: Pose, display_only: bool = False) -> np.ndarray:
    """Camera coordinates (4 x 2) of the device's (or the display area's) corners."""
    w, h = screen.display
    b = screen.bezel
    n = SUPERSAMPLE * cam_per_px
    shape = (int(np.ceil((h + 2 * b) * n)), int(np.ceil((w + 2 * b) * n)))
    hom = device_homography(shape, screen, cam_per_px, pose)
    m = 0 if not display_only else b * n
    pts = np.array([[m, m], [shape[1] - m, m], [shape[1] - m, shape[0] - m], [m, shape[0] - m]], np.float64)
    q = np.column_stack([pts, np.ones(4)]) @ hom.T
    return q[:, :2] / q[:, 2:]


def glare_map(shape, screen: Screen, pose: Pose) -> np.ndarray:
    """The specular reflection on the device, share of white. A mirror turns a reflected
    ray by twice its own turn: tilting the device by a moves the highlight by
    ~2 tan(a) x (source distance / device size); taken as 1 device height per 2 tan(a)."""
    h, w = shape
    u0 = screen.glare_at[0] + 2 * np.tan(np.radians(pose.yaw)) * h / w
    v0 = screen.glare_at[1] + 2 * np.tan(np.radians(pose.pitch))
    s = screen.glare_sigma * h
    gx = np.exp(-(np.arange(w, dtype=np.float32) - u0 * w) ** 2 / (2 * s * s))
    gy = np.exp(-(np.arange(h, dtype=np.float32) - v0 * h) ** 2 / (2 * s * s))
    return (screen.glare * np.outer(gy, gx)).astype(np.float32)


def banding(rows: int, screen: Screen, frame: int) -> np.ndarray:
    """Per camera row: the emission's gain under the rolling band at this frame."""
    y = np.arange(rows, dtype=np.float32)
    phase = screen.band_phase + frame * screen.band_speed / screen.band_period
    return 1 - screen.band_amp * (0.5 + 0.5 * np.cos(2 * np.pi * (y / screen.band_period - phase)))


def refilm(emission: np.ndarray, screen: Screen, cam_per_px: float, pose: Pose, background: np.ndarray,
           frame: int, rng: np.random.Generator | None, texture: np.ndarray | None = None) -> np.ndarray:
    """One camera frame of the device showing `emission` (display_emission), posed, over
    `background` (BGR uint8). rng None: no camera noise (for measurements)."""
    tex = device_texture(emission, screen, cam_per_px) if texture is None else texture
    hom = device_homography(tex.shape[:2], screen, cam_per_px, pose)
    w, h = SIZE
    corners = np.column_stack([[0, tex.shape[1], tex.shape[1], 0], [0, 0, tex.shape[0], tex.shape[0]], np.ones(4)])
    q = corners @ hom.T
    q = q[:, :2] / q[:, 2:]
    x0, y0 = np.clip(np.floor(q.min(0)).astype(int) - 2, 0, [w, h])
    x1, y1 = np.clip(np.ceil(q.max(0)).astype(int) + 2, 0, [w, h])
    bg = _TO_LINEAR[background]
    out = bg.copy()
    if x1 > x0 and y1 > y0:
        s = SUPERSAMPLE
        roi = np.array([[s, 0, -x0 * s], [0, s, -y0 * s], [0, 0, 1.0]]) @ hom
        size = ((x1 - x0) * s, (y1 - y0) * s)
        light = cv2.warpPerspective(tex, roi, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        extra = np.dstack([np.ones(tex.shape[:2], np.float32), glare_map(tex.shape[:2], screen, pose)])
        extra = cv2.warpPerspective(extra, roi, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        small = (x1 - x0, y1 - y0)
        light = cv2.resize(light, small, interpolation=cv2.INTER_AREA)
        alpha, glare = (cv2.resize(extra[..., i], small, interpolation=cv2.INTER_AREA)[..., None] for i in (0, 1))
        light *= banding(h, screen, frame)[y0:y1, None, None]
        out[y0:y1, x0:x1] = bg[y0:y1, x0:x1] * (1 - alpha) + light + glare
    img = _TO_CODE[(np.clip(out, 0, 1) * (len(_TO_CODE) - 1) + 0.5).astype(np.int32)]
    return camera_noise(img, rng) if rng is not None else img


def fit_to_frame(screen: Screen, cam_per_px: float, limit: float = 0.95) -> Screen:
    """A display area shrunk (the content cropped tighter) until the device fits in
    `limit` of the frame height and width: an attacker keeps the device's edge in view
    only when it is small; large devices still overflow (laptops) - their bezel is then
    partly out of frame, as in reality."""
    w, h = screen.display
    b = screen.bezel
    k = min(1.0, limit * SIZE[1] / ((h + 2 * b) * cam_per_px), limit * SIZE[0] / ((w + 2 * b) * cam_per_px))
    k = max(k, 1.25 * screen.face_px / h)     # keep at least 1.25 face heights of content
    return replace(screen, display=(int(w * min(k, 1.0)), int(h * min(k, 1.0))))


def content_crop(image: np.ndarray, box: tuple[float, float, float, float], screen: Screen,
                 face_at: tuple[float, float] = (0.5, 0.42)) -> np.ndarray:
    """The part of `image` the display shows: scaled so the face box's height is
    screen.face_px display px, the face centre at `face_at` of the display area
    (replicated border where the crop leaves the image)."""
    w, h = screen.display
    x0, y0, x1, y1 = box
    k = screen.face_px / max(y1 - y0, 1.0)        # display px per image px
    cw, ch = w / k, h / k
    cx, cy = (x0 + x1) / 2 - face_at[0] * cw + cw / 2, (y0 + y1) / 2 - face_at[1] * ch + ch / 2
    m = np.array([[k, 0, -(cx - cw / 2) * k], [0, k, -(cy - ch / 2) * k]])
    return cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
