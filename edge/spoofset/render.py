"""Camera frames made from real photos: the physical pieces the attack set is built of.

Pure functions of their inputs and a seeded numpy Generator. The camera is a pinhole
with FOCAL px focal length making SIZE frames; surfaces (a flat print, a bent print, a
screen) are placed in 3-D in front of it and projected, then `camera_noise` adds blur,
sensor noise and JPEG. The screen model is in edge/spoofset/screen.py.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from edge.imaging import decode_image

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
SIZE = (640, 480)
FOCAL = 600.0        # px: ~56 deg horizontal field of view, a typical webcam


# --- Photos ------------------------------------------------------------------------

def load(path: Path) -> np.ndarray:
    return decode_image(Path(path).read_bytes())


def lfw_photos(n: int, seed: int = 0, data: Path = DATA) -> list[Path]:
    """n LFW photos, one per person, drawn reproducibly."""
    people = sorted(p for p in (data / "lfw-view1" / "images").iterdir() if p.is_dir())
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(people), size=min(n, len(people)), replace=False)
    return [sorted(people[i].glob("*.jpg"))[0] for i in sorted(picks)]


def spoof_dev_photos(data: Path = DATA) -> list[Path]:
    """The four silentface photos and the first live NUAA frame of each subject."""
    root = data / "spoof-dev"
    out = sorted(root.glob("silentface_image_*.jpg"))
    for sub in sorted((root / "nuaa" / "ClientRaw").iterdir()):
        out.append(sorted(sub.glob("*.jpg"))[0])
    return out


def print_photo(img: np.ndarray, max_side: int = 500) -> np.ndarray:
    """The photo as printed: large photos are shrunk (area) to max_side."""
    s = max_side / max(img.shape[:2])
    if s < 1.0:
        img = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    return img


# --- Synthetic sequences -----------------------------------------------------------

def background(rng: np.random.Generator, size=SIZE) -> np.ndarray:
    """A smooth, mildly coloured, slightly noisy backdrop (no faces)."""
    w, h = size
    grey = rng.uniform(50, 200, (6, 8, 1))
    small = (grey + rng.uniform(-15, 15, (6, 8, 3))).astype(np.float32)
    bg = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC) + rng.normal(0, 6, (h, w, 3)).astype(np.float32)
    return np.clip(bg, 0, 255).astype(np.uint8)


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """R = Rz(roll) Ry(yaw) Rx(pitch), degrees; x right, y down, z away from the camera."""
    y, p, r = np.radians([yaw, pitch, roll])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rz @ ry @ rx


def plane_homography(photo_shape, yaw: float, pitch: float, roll: float, tx: float, ty: float,
                     mag: float, focal: float = FOCAL, size=SIZE) -> np.ndarray:
    """Photo pixels -> image pixels for the photo as a flat sheet, centred on the optical
    axis at the distance where it appears `mag` times its pixel size, turned by
    (yaw, pitch, roll) about its centre and shifted by (tx, ty) image pixels."""
    h, w = photo_shape[:2]
    k = np.array([[focal, 0, size[0] / 2], [0, focal, size[1] / 2], [0, 0, 1.0]])
    centre = np.array([[1, 0, -w / 2], [0, 1, -h / 2], [0, 0, 1.0]])
    r = rotation(yaw, pitch, roll)
    tz = focal / mag
    m = np.column_stack([r[:, 0], r[:, 1], [tx * tz / focal, ty * tz / focal, tz]])
    hom = k @ m @ centre
    return hom / hom[2, 2]


def camera_noise(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Mild defocus (sigma 0.3-1 px), sensor noise (sigma 3) and JPEG (quality 70-91)."""
    img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 1.0))
    img = np.clip(img + rng.normal(0, 3, img.shape), 0, 255).astype(np.uint8)
    ok, enc = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(70, 92))])
    return cv2.imdecode(enc, cv2.IMREAD_COLOR)


def planar_sequence(photo: np.ndarray, rng: np.random.Generator, n: int = 24,
                    max_angle: float = 25.0, mag: float | None = None) -> list[np.ndarray]:
    """A printed photo waved in front of the camera: n frames of a rotating plane.

    Yaw and pitch swing through sinusoids of random amplitude (yaw 10..max_angle,
    pitch 5..max_angle), with roll up to 10 deg, +-40/+-25 px drift and +-12 % scale.
    `mag` (camera px per photo px) overrides the drawn size (the draw still happens, so
    a seed gives the same motion either way)."""
    bg = background(rng)
    ay, ap, ar = rng.uniform(10, max_angle), rng.uniform(5, max_angle), rng.uniform(0, 10)
    ph = rng.uniform(0, 2 * np.pi, 3)
    mag0 = rng.uniform(1.4, 2.8) * 250 / max(photo.shape[:2])
    mag0 = mag0 if mag is None else mag
    frames = []
    for i in range(n):
        t = i / (n - 1)
        hom = plane_homography(photo.shape,
                               ay * np.sin(2 * np.pi * t + ph[0]),
                               ap * np.sin(2 * np.pi * t * 0.7 + ph[1]),
                               ar * np.sin(2 * np.pi * t * 0.5 + ph[2]),
                               40 * np.sin(2 * np.pi * t * 0.6 + ph[2]),
                               25 * np.sin(2 * np.pi * t * 0.4 + ph[0]),
                               mag0 * (1 + 0.12 * np.sin(2 * np.pi * t * 0.8)))
        img = bg.copy()
        cv2.warpPerspective(photo, hom, SIZE, dst=img, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_TRANSPARENT)
        frames.append(camera_noise(img, rng))
    return frames


# --- Camera geometry ---------------------------------------------------------------

def intrinsics(focal: float = FOCAL, size=SIZE) -> np.ndarray:
    return np.array([[focal, 0, size[0] / 2], [0, focal, size[1] / 2], [0, 0, 1.0]])


def camera_rays(size=SIZE, focal: float = FOCAL) -> np.ndarray:
    """Unit-depth ray directions (h, w, 3) through every pixel centre."""
    w, h = size
    xx, yy = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    return np.dstack([(xx - w / 2) / focal, (yy - h / 2) / focal, np.ones_like(xx)])


def bent_sheet_map(photo_shape, yaw: float, pitch: float, roll: float, tx: float, ty: float, mag: float,
                   bend: float, focal: float = FOCAL, size=SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Camera pixel -> photo pixel maps (for cv2.remap) of the photo on a sheet curved
    like a cylinder about its vertical axis, posed as `plane_homography` poses a flat one.

    `bend` is the angle (deg) the sheet's left and right edges turn away from its centre
    plane: the sheet is an arc of a circle of radius (w/2) / bend (rad), keeping its
    length; > 0 bows the centre toward the camera (edges back), < 0 the edges forward.
    Exact ray-cylinder intersection: depth varies across the face, so this is not a
    homography. Pixels that miss the sheet map to -1."""
    h, w = photo_shape[:2]
    tz = focal / mag                          # the sheet centre's distance in photo-px units
    r = rotation(yaw, pitch, roll)
    t = np.array([tx * tz / focal, ty * tz / focal, tz])
    d = camera_rays(size, focal) @ r          # ray directions in the sheet frame (R^T d)
    o = -(r.T @ t)                            # camera centre in the sheet frame
    theta = np.radians(bend)
    if abs(theta) < 1e-4:                     # flat: intersect z = 0
        lam = -o[2] / d[..., 2]
        x = o[0] + lam * d[..., 0]
        y = o[1] + lam * d[..., 1]
    else:
        # The arc bulging toward the camera (-z) for bend > 0: the axis sits behind (+z).
        rad = (w / 2) / abs(theta)
        cz = rad * np.sign(theta)             # axis at (0, y, cz); centre of the sheet at z = 0
        ox, oz = o[0], o[2] - cz
        a = d[..., 0] ** 2 + d[..., 2] ** 2
        b = 2 * (ox * d[..., 0] + oz * d[..., 2])
        c = ox ** 2 + oz ** 2 - rad ** 2
        disc = np.maximum(b * b - 4 * a * c, 0)
        # The camera is on the convex side for bend > 0 (nearer root), concave side else (farther root).
        lam = (-b - np.sign(theta) * np.sqrt(disc)) / (2 * a)
        px = ox + lam * d[..., 0]
        pz = oz + lam * d[..., 2]
        x = rad * np.arctan2(px, -np.sign(theta) * pz)   # arc length from the sheet centre
        y = o[1] + lam * d[..., 1]
    mx = (x + w / 2).astype(np.float32)
    my = (y + h / 2).astype(np.float32)
    out = (mx < 0) | (mx > w - 1) | (my < 0) | (my > h - 1)
    mx[out], my[out] = -1, -1
    return mx, my


def paste_remap(dst: np.ndarray, src: np.ndarray, mx: np.ndarray, my: np.ndarray) -> np.ndarray:
    """src sampled at (mx, my) where they are >= 0, dst elsewhere."""
    warped = cv2.remap(src, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    inside = (mx >= 0)[..., None]
    return np.where(inside, warped, dst)


def hand_motion(rng: np.random.Generator, n: int, fps: float, tilt: float, shake: float, drift: float):
    """Per-frame (yaw, pitch, roll, tx, ty, scale) of a hand-held sheet or device: a slow
    swing of amplitude `tilt` deg (0.3-0.8 Hz: a deliberate wave), a tremor of `shake`
    deg (physiological hand tremor is 8-12 Hz but small; at 25 fps it reads as 2-5 Hz
    jitter) and `drift` px of translation, +-5 % scale. Offsets are random per call."""
    ts = np.arange(n) / fps
    f = rng.uniform(0.3, 0.8, 3)
    fs = rng.uniform(2.0, 5.0, 3)
    ph = rng.uniform(0, 2 * np.pi, 8)
    base = rng.uniform(-1, 1, 3) * np.array([0.5, 0.5, 0.3]) * tilt
    out = []
    for t in ts:
        yaw = base[0] + tilt * np.sin(2 * np.pi * f[0] * t + ph[0]) + shake * np.sin(2 * np.pi * fs[0] * t + ph[3])
        pitch = base[1] + 0.7 * tilt * np.sin(2 * np.pi * f[1] * t + ph[1]) + shake * np.sin(2 * np.pi * fs[1] * t + ph[4])
        roll = base[2] + 0.3 * tilt * np.sin(2 * np.pi * f[2] * t + ph[2]) + 0.5 * shake * np.sin(2 * np.pi * fs[2] * t)
        tx = drift * np.sin(2 * np.pi * f[1] * t + ph[5]) + 0.5 * shake * np.sin(2 * np.pi * fs[0] * t + ph[6])
        ty = 0.6 * drift * np.sin(2 * np.pi * f[0] * t + ph[7])
        scale = 1 + 0.05 * np.sin(2 * np.pi * f[2] * t + ph[6]) * (tilt > 2)
        out.append((yaw, pitch, roll, tx, ty, scale))
    return out


# --- Bent print --------------------------------------------------------------------

def bent_print_sequence(photo: np.ndarray, rng: np.random.Generator, n: int, mag: float,
                        fps: float = 25.0) -> Iterator[np.ndarray]:
    """A print flexed by hand while it is tilted and moved: the bend angle of its edges
    swings between two values drawn from 10-45 deg (a sheet held at its sides and
    flexed; beyond ~45 deg the far side of the face turns out of view) at 0.4-1.2 Hz,
    bowing toward the camera or away (drawn per sequence); tilt +-5-20 deg."""
    bg = background(rng)
    b0, b1 = np.sort(rng.uniform(10, 45, 2))
    sign = rng.choice([-1.0, 1.0])
    fb, phb = rng.uniform(0.4, 1.2), rng.uniform(0, 2 * np.pi)
    motion = hand_motion(rng, n, fps, tilt=rng.uniform(5, 20), shake=rng.uniform(0.2, 1.0), drift=rng.uniform(10, 40))
    for i, (yaw, pitch, roll, tx, ty, s) in enumerate(motion):
        bend = sign * (b0 + (b1 - b0) * (0.5 + 0.5 * np.sin(2 * np.pi * fb * i / fps + phb)))
        mx, my = bent_sheet_map(photo.shape, yaw, pitch, roll, tx, ty, mag * s, bend)
        yield camera_noise(paste_remap(bg, photo, mx, my), rng)


def tilted_print_sequence(photo: np.ndarray, rng: np.random.Generator, n: int, mag: float) -> list[np.ndarray]:
    """A flat print waved in front of the camera (planar_sequence, sized by `mag`)."""
    return planar_sequence(photo, rng, n, mag=mag)


# --- Cut-out eyes ------------------------------------------------------------------

def eye_polygons(mesh: np.ndarray) -> list[np.ndarray]:
    """The two eye contours (mesh points, photo px) as float32 polygons."""
    from edge.analysis import meshmap as mm
    m = np.asarray(mesh)[:, :2]
    return [m[mm.LEFT_EYE].astype(np.float32), m[mm.RIGHT_EYE].astype(np.float32)]


def _dilate(poly: np.ndarray, grow: float) -> np.ndarray:
    c = poly.mean(0)
    return c + (poly - c) * grow


def blink_schedule(rng: np.random.Generator, n: int, fps: float, blinks: int) -> np.ndarray:
    """Per-frame eye closure 0..1: `blinks` blinks, each one half-closed frame, 2-4 fully
    closed frames at 25 fps (a blink's closed phase lasts 80-160 ms; 100-400 ms in all)
    and one half-open frame; at least 0.5 s apart and away from the ends."""
    closure = np.zeros(n)
    if n < 12:
        return closure
    starts = np.sort(rng.choice(np.arange(4, n - 8), size=min(blinks, max((n - 12) // 12, 1)), replace=False))
    last = -100
    for s in starts:
        if s - last < 0.5 * fps:
            continue
        closed = int(rng.integers(2, 5))
        closure[s] = 0.5
        closure[s + 1:s + 1 + closed] = 1.0
        closure[s + 1 + closed] = 0.5
        last = s
    return closure


EYE_CORNERS = (33, 133, 362, 263, 159, 145, 386, 374)   # mesh: eye corners and lid mid-points


def attacker_eyes(print_shape, print_mesh: np.ndarray, photo: np.ndarray, mesh: np.ndarray) -> np.ndarray:
    """Another person's photo (the attacker) moved by a similarity transform so that its
    eyes lie on the print's eyes (fitted on the eye corners and lid mid-points)."""
    m, _ = cv2.estimateAffinePartial2D(np.asarray(mesh)[list(EYE_CORNERS), :2].astype(np.float32),
                                       np.asarray(print_mesh)[list(EYE_CORNERS), :2].astype(np.float32))
    return cv2.warpAffine(photo, m, (print_shape[1], print_shape[0]), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def over(dst: np.ndarray, bgra: np.ndarray) -> np.ndarray:
    """A BGRA layer composited over a BGR image."""
    a = bgra[..., 3:4].astype(np.float32) / 255
    return (dst * (1 - a) + bgra[..., :3] * a).astype(np.uint8)


def cutout_eyes_sequence(photo: np.ndarray, mesh: np.ndarray, eyes: tuple[np.ndarray, np.ndarray],
                         rng: np.random.Generator, n: int, mag: float, moving: bool,
                         fps: float = 25.0) -> Iterator[np.ndarray]:
    """A print with its eyes cut out, held in front of the attacker's face: through the
    holes (the eye contours grown by 50-90 %: a hand-cut hole with the lids in it) the camera sees the
    attacker's eyes, which blink 2-3 times. `eyes` = (open, closed): real photos of the
    attacker with eyes open and closed, aligned to the print (attacker_eyes); frames
    between are blends (a lid half way). The sheet is held against the face (or the
    holes leave the eyes), the eyes 2-5 cm behind it (at a 40-70 cm gate distance: 3-10 %
    farther), so both share the head's motion: almost still (0.3-1 deg sway, 2-5 px
    drift) or, with `moving`, tilted and moved (5-15 deg, 15-35 px); the hand adds a
    0.3-1 deg shake to the sheet alone.
    The eye layer is the same photo, so the eyes line up with the print's own."""
    bg = background(rng)
    grow = rng.uniform(1.5, 1.9)
    depth = rng.uniform(1.03, 1.10)
    closure = blink_schedule(rng, n, fps, int(rng.integers(2, 4)))
    hole = np.zeros(photo.shape[:2], np.uint8)
    for poly in eye_polygons(mesh):
        cv2.fillPoly(hole, [np.round(_dilate(poly, grow)).astype(np.int32)], 255)
    sheet = np.dstack([photo, 255 - hole])     # alpha 0 in the holes
    # Only the eyes and their surroundings are seen behind the sheet (the rest of the
    # attacker's head is hidden by it): the eye layer is cut to twice the hole.
    near = np.zeros(photo.shape[:2], np.uint8)
    for poly in eye_polygons(mesh):
        cv2.fillPoly(near, [np.round(_dilate(poly, 2.0 * grow)).astype(np.int32)], 255)
    # Head and sheet move together (the sheet is held against the face, or the holes
    # would leave the eyes); the hand adds its own small shake to the sheet only.
    if moving:
        head = hand_motion(rng, n, fps, tilt=rng.uniform(5, 15), shake=rng.uniform(0.3, 1.0), drift=rng.uniform(15, 35))
    else:
        head = hand_motion(rng, n, fps, tilt=rng.uniform(0.3, 1.0), shake=rng.uniform(0.2, 0.5), drift=rng.uniform(2, 5))
    shake = hand_motion(rng, n, fps, tilt=0.0, shake=rng.uniform(0.3, 1.0), drift=rng.uniform(0.5, 2))
    hand = [tuple(a + b for a, b in zip(h_, s_[:5])) + (h_[5],) for h_, s_ in zip(head, shake)]
    for i in range(n):
        c = closure[i]
        eye = eyes[0] if c <= 0 else cv2.addWeighted(eyes[0], 1 - c, eyes[1], c, 0)
        eye = np.dstack([eye, near])
        y, p, r, tx, ty, s = head[i]
        img = over(bg, cv2.warpPerspective(eye, plane_homography(photo.shape, y, p, r, tx, ty, mag * s / depth), SIZE,
                                           flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                                           borderValue=(0, 0, 0, 0)))
        y, p, r, tx, ty, s = hand[i]
        warped = cv2.warpPerspective(sheet, plane_homography(photo.shape, y, p, r, tx, ty, mag * s), SIZE,
                                     flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0))
        yield camera_noise(over(img, warped), rng)
