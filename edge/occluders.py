"""Synthetic occluders drawn over real photos, placed with the 468-point mesh.

Measurement material, not runtime code: tests/test_occlusion.py and
scripts/occlusion_report.py draw masks (surgical, KN95, cloth; white, light blue, beige,
the face's own skin tone, black, printed), a hand over the mouth or an eye, a scarf over
chin and mouth and sunglasses over LFW faces at test/report time, and know from the
drawing which share of each occlusion region is covered (the ground truth). Shading,
pleats, seams, fabric grain and soft edges are drawn because the measure must not rely
on an occluder being a flat colour.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.analysis import meshmap as mm
from edge.analysis.occlusion import REGION_GROW, REGIONS
from edge.analysis.regions import poly_mask
from edge.imaging import decode_image
from edge.thresholds import OCCLUSION_REGIONS

MASK_SHAPES = ("surgical", "kn95", "cloth")
MASK_COLOURS = ("white", "blue", "beige", "skin", "black", "print")
OTHER_KINDS = ("hand_mouth", "hand_eye", "scarf", "sunglasses")

# BGR base colours; "skin" is the face's own (face_skin).
COLOURS = {"white": (236, 238, 240), "blue": (222, 200, 150), "beige": (170, 196, 222), "black": (38, 36, 36)}
SCARF_COLOURS = ((40, 40, 160), (120, 120, 120), (90, 50, 30), (200, 215, 230), (60, 110, 60))


@dataclass(frozen=True)
class Occluder:
    kind: str        # a MASK_SHAPES shape or an OTHER_KINDS kind
    colour: str = ""  # MASK_COLOURS for masks; "" otherwise

    @property
    def name(self) -> str:
        return f"{self.kind}/{self.colour}" if self.colour else self.kind


ALL = tuple(Occluder(s, c) for s in MASK_SHAPES for c in MASK_COLOURS) + tuple(Occluder(k) for k in OTHER_KINDS)


def _xy(mesh: np.ndarray, i: int) -> np.ndarray:
    return mesh[i, :2].astype(np.float64)


def _curve(p0, p1, p2, n: int = 24) -> np.ndarray:
    """Quadratic Bezier through p0 .. p2 with control p1."""
    t = np.linspace(0, 1, n)[:, None]
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t ** 2 * p2


def face_skin(img: np.ndarray, mesh: np.ndarray) -> np.ndarray:
    """Median BGR of the clean face's cheeks: the colour a skin-tone occluder is drawn in."""
    mask = np.zeros(img.shape[:2], np.uint8)
    for part in (mm.LEFT_CHEEK, mm.RIGHT_CHEEK):
        cv2.fillConvexPoly(mask, cv2.convexHull(mesh[part, :2].astype(np.int32)), 1)
    px = img[mask.astype(bool)]
    return np.median(px, axis=0) if len(px) else np.array([120.0, 140.0, 170.0])


def _fill(shape, poly: np.ndarray) -> np.ndarray:
    m = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(m, [np.round(poly).astype(np.int32)], 1)
    return m.astype(bool)


def _texture(shape, base, rng, grain: float, print_: bool = False) -> np.ndarray:
    """A fabric: base colour, fine grain noise, and for `print_` scattered motifs."""
    h, w = shape[:2]
    tex = np.empty((h, w, 3), np.float32)
    tex[:] = np.asarray(base, np.float32)
    noise = rng.normal(0, grain, (h, w)).astype(np.float32)
    tex += cv2.GaussianBlur(noise, (0, 0), 0.6)[..., None]
    if print_:
        for _ in range(int(h * w / 60)):
            c = tuple(int(v) for v in rng.integers(20, 240, 3))
            centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            cv2.circle(tex, centre, int(rng.integers(1, 4)), c, -1)
    return tex


def _shade(shape, poly: np.ndarray, rng, strength: float) -> np.ndarray:
    """Multiplicative light: a side-to-side gradient and darker borders (the cloth curves away)."""
    h, w = shape[:2]
    x0, y0 = poly.min(0)
    x1, y1 = poly.max(0)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    u = (xx - (x0 + x1) / 2) / max((x1 - x0) / 2, 1)
    v = (yy - (y0 + y1) / 2) / max((y1 - y0) / 2, 1)
    side = float(rng.uniform(-1, 1))
    light = 1.0 + strength * (0.5 * side * u - 0.6 * u ** 2 - 0.25 * v ** 2)
    return np.clip(light, 0.4, 1.3)[..., None]


def _composite(img: np.ndarray, layer: np.ndarray, cover: np.ndarray, soft: float = 0.7) -> np.ndarray:
    alpha = cv2.GaussianBlur(cover.astype(np.float32), (0, 0), soft)[..., None]
    out = img.astype(np.float32) * (1 - alpha) + layer * alpha
    return np.clip(out, 0, 255).astype(np.uint8)


def _mask_outline(mesh: np.ndarray, shape: str, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(polygon, top-centre point, bottom-centre point, points on the top edge) of a face mask."""
    left, right = _xy(mesh, 93), _xy(mesh, 323)          # face sides a little below the eyes
    chin = _xy(mesh, 152)
    down = chin - _xy(mesh, 168)
    down /= max(np.linalg.norm(down), 1)
    size = np.linalg.norm(right - left)
    jaw = mesh[[132, 58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397, 288, 361], :2]
    centre = jaw.mean(0)
    bottom = centre + (jaw - centre) * (1.08 + 0.04 * rng.random()) + down * size * 0.04
    if shape == "kn95":
        top_c = _xy(mesh, 6) + (_xy(mesh, 197) - _xy(mesh, 6)) * rng.uniform(0, 0.6)
        top = np.vstack([_curve(left, (left + top_c) / 2 - down * size * 0.05, top_c, 12),
                         _curve(top_c, (right + top_c) / 2 - down * size * 0.05, right, 12)])
    else:
        top_c = _xy(mesh, 197) + (_xy(mesh, 195) - _xy(mesh, 197)) * rng.uniform(0, 1)
        sag = 0.02 if shape == "surgical" else -0.04
        top = _curve(left, 2 * top_c - (left + right) / 2 + down * size * sag, right)
    poly = np.vstack([top, bottom[::-1]])
    return poly, top_c, bottom[len(bottom) // 2], len(top)


def draw_mask(img: np.ndarray, mesh: np.ndarray, shape: str, colour: str, rng) -> tuple[np.ndarray, np.ndarray]:
    poly, top_c, bot_c, n_top = _mask_outline(mesh, shape, rng)
    cover = _fill(img.shape, poly)
    if colour == "skin":
        base = face_skin(img, mesh) * rng.uniform(0.95, 1.08)
    elif colour == "print":
        base = rng.integers(60, 230, 3)
    else:
        base = np.asarray(COLOURS[colour], np.float64) + rng.normal(0, 4, 3)
    grain = {"surgical": 3.0, "kn95": 2.0, "cloth": 6.0}[shape]
    layer = _texture(img.shape, base, rng, grain, print_=colour == "print")
    layer *= _shade(img.shape, poly, rng, 0.35 if colour != "black" else 0.6)
    size = float(np.ptp(poly[:, 0]))
    lw = max(1, int(round(size / 60)))
    if shape == "surgical":                     # three pleats: a shadow line with a lit fold below
        x0, x1 = poly[:, 0].min(), poly[:, 0].max()
        for f in (0.28, 0.48, 0.68):
            y = top_c[1] + (bot_c[1] - top_c[1]) * f
            sag = size * 0.05
            pts = _curve(np.array([x0, y - sag]), np.array([(x0 + x1) / 2, y + sag]), np.array([x1, y - sag]))
            pts = np.round(pts).astype(np.int32)
            cv2.polylines(layer, [pts], False, tuple(float(v) * 0.72 for v in base), lw, cv2.LINE_AA)
            cv2.polylines(layer, [pts + [0, lw + 1]], False, tuple(min(255.0, float(v) * 1.08) for v in base), lw,
                          cv2.LINE_AA)
    elif shape == "kn95":                       # the centre seam and a welded border
        seam = np.round(np.vstack([top_c, bot_c])).astype(np.int32)
        cv2.polylines(layer, [seam], False, tuple(float(v) * 0.75 for v in base), lw, cv2.LINE_AA)
        centre = poly.mean(0)
        inset = np.round(centre + (poly - centre) * 0.9).astype(np.int32)
        cv2.polylines(layer, [inset], True, tuple(float(v) * 0.85 for v in base), lw, cv2.LINE_AA)
        top, bottom = poly[:n_top], poly[n_top:]
        half = _fill(img.shape, np.vstack([top[top[:, 0] <= top_c[0]], [top_c], [bot_c],
                                           bottom[bottom[:, 0] <= bot_c[0]]]))
        layer[half] *= rng.uniform(0.85, 0.95)
    out = _composite(img, layer, cover)
    centre = poly.mean(0)
    for end in (poly[0], poly[n_top - 1], poly[n_top], poly[-1]):     # ear loops
        tip = end + (end - centre) * np.array([0.35, 0.1])
        cv2.line(out, tuple(np.round(end).astype(int)), tuple(np.round(tip).astype(int)),
                 tuple(int(v) for v in np.clip(base * 0.9, 0, 255)), 1, cv2.LINE_AA)
    return out, cover


def _hand_layer(img, mesh, cover, rng) -> tuple[np.ndarray, np.ndarray]:
    """(the hand's pixels, its base colour): the face's own skin, shaded."""
    skin = face_skin(img, mesh) * rng.uniform(0.9, 1.1)
    layer = _texture(img.shape, skin, rng, 2.5)
    ys, xs = np.nonzero(cover)
    layer *= _shade(img.shape, np.stack([xs, ys], 1).astype(np.float64), rng, 0.3)
    return layer, skin


def draw_hand(img: np.ndarray, mesh: np.ndarray, over: str, rng) -> tuple[np.ndarray, np.ndarray]:
    """A skin-coloured hand: a palm and four fingers with dark creases between them."""
    if over == "mouth":
        centre = mesh[mm.LIPS_OUTER, :2].mean(0)
        span = np.linalg.norm(_xy(mesh, 291) - _xy(mesh, 61)) * 1.9
    else:
        eye = mm.LEFT_EYE if rng.random() < 0.5 else mm.RIGHT_EYE
        centre = mesh[eye, :2].mean(0)
        span = np.ptp(mesh[eye, 0]) * 2.6
    ang = float(rng.uniform(-25, 25))
    cover = np.zeros(img.shape[:2], np.uint8)
    rot = np.array([[np.cos(np.radians(ang)), -np.sin(np.radians(ang))],
                    [np.sin(np.radians(ang)), np.cos(np.radians(ang))]])
    fw = span * 0.24
    for k in range(4):                      # fingers lie across the part, stacked vertically
        off = rot @ np.array([0.0, (k - 1.5) * fw])
        a = centre + off + rot @ np.array([-span * 0.55, 0])
        b = centre + off + rot @ np.array([span * (0.5 + 0.05 * (k % 2)), 0])
        cv2.line(cover, tuple(np.round(a).astype(int)), tuple(np.round(b).astype(int)), 1,
                 max(2, int(round(fw))), cv2.LINE_AA)
    palm = centre + rot @ np.array([-span * 0.75, 0])
    cv2.ellipse(cover, tuple(np.round(palm).astype(int)), (int(span * 0.45), int(span * 0.5)), ang, 0, 360, 1, -1)
    cover = cover.astype(bool)
    layer, skin = _hand_layer(img, mesh, cover, rng)
    for k in range(3):                      # creases between fingers
        off = rot @ np.array([0.0, (k - 1.0) * fw])
        a = centre + off + rot @ np.array([-span * 0.3, 0])
        b = centre + off + rot @ np.array([span * 0.5, 0])
        cv2.line(layer, tuple(np.round(a).astype(int)), tuple(np.round(b).astype(int)),
                 tuple(float(v) * 0.7 for v in skin), 1, cv2.LINE_AA)
    return _composite(img, layer, cover, 0.9), cover


def draw_scarf(img: np.ndarray, mesh: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
    """A knitted scarf pulled up over chin and mouth, from below the nose down off the image."""
    h, w = img.shape[:2]
    left, right = _xy(mesh, 132), _xy(mesh, 361)
    top_c = _xy(mesh, 2) + (_xy(mesh, 0) - _xy(mesh, 2)) * rng.uniform(0.3, 0.9)
    size = np.linalg.norm(right - left)
    left, right = left - [size * 0.12, 0], right + [size * 0.12, 0]
    top = _curve(left, 2 * top_c - (left + right) / 2, right)
    poly = np.vstack([top, [[right[0] + size * 0.1, h + 5], [left[0] - size * 0.1, h + 5]]])
    cover = _fill(img.shape, poly)
    base = np.asarray(SCARF_COLOURS[int(rng.integers(len(SCARF_COLOURS)))], np.float64) + rng.normal(0, 6, 3)
    layer = _texture(img.shape, base, rng, 5.0)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    period = max(size / 14, 2.5)
    rib = 1 + 0.12 * np.sin(2 * np.pi * (xx + 0.5 * yy) / period) * np.sin(2 * np.pi * (xx - 0.5 * yy) / period)
    layer *= rib[..., None] * _shade(img.shape, poly, rng, 0.4)
    for f in (0.25, 0.55):                  # folds
        y0 = top_c[1] + size * f
        pts = np.round(_curve(np.array([left[0], y0]), np.array([top_c[0], y0 + size * 0.1]),
                              np.array([right[0], y0 - size * 0.05]))).astype(np.int32)
        cv2.polylines(layer, [pts], False, tuple(float(v) * 0.65 for v in base), 2, cv2.LINE_AA)
    return _composite(img, layer, cover), cover


def draw_sunglasses(img: np.ndarray, mesh: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
    """Two dark lenses with a frame, a bridge and a reflection."""
    cover = np.zeros(img.shape[:2], np.uint8)
    tint = np.asarray(((25, 25, 25), (30, 45, 60), (35, 50, 35))[int(rng.integers(3))], np.float64)
    lenses = []
    for eye in (mm.LEFT_EYE, mm.RIGHT_EYE):
        p = mesh[eye, :2]
        c = p.mean(0)
        ew = float(np.ptp(p[:, 0]))
        axes = (int(ew * rng.uniform(0.8, 0.95)), int(ew * rng.uniform(0.55, 0.7)))
        ang = float(np.degrees(np.arctan2(*(mesh[eye[8], :2] - mesh[eye[0], :2])[::-1])))
        cv2.ellipse(cover, tuple(np.round(c).astype(int)), axes, ang, 0, 360, 1, -1)
        lenses.append((c, axes, ang))
    cover = cover.astype(bool)
    layer = _texture(img.shape, tint, rng, 2.0)
    for c, axes, ang in lenses:             # a diagonal highlight and the frame
        cv2.ellipse(layer, tuple(np.round(c + [-axes[0] * 0.3, -axes[1] * 0.3]).astype(int)),
                    (max(1, axes[0] // 3), max(1, axes[1] // 6)), ang - 30, 0, 360, tuple(tint + 50), -1, cv2.LINE_AA)
    out = _composite(img, layer, cover)
    for c, axes, ang in lenses:
        cv2.ellipse(out, tuple(np.round(c).astype(int)), axes, ang, 0, 360, (15, 15, 15), 1, cv2.LINE_AA)
    (c0, a0, _), (c1, a1, _) = lenses
    cv2.line(out, tuple(np.round(c0 + [a0[0], 0]).astype(int)), tuple(np.round(c1 - [a1[0], 0]).astype(int)),
             (15, 15, 15), 1, cv2.LINE_AA)
    return out, cover


def draw(img: np.ndarray, mesh: np.ndarray, occ: Occluder, rng) -> tuple[np.ndarray, np.ndarray]:
    """(occluded image, boolean map of covered pixels)."""
    if occ.kind in MASK_SHAPES:
        return draw_mask(img, mesh, occ.kind, occ.colour, rng)
    if occ.kind == "hand_mouth":
        return draw_hand(img, mesh, "mouth", rng)
    if occ.kind == "hand_eye":
        return draw_hand(img, mesh, "eye", rng)
    if occ.kind == "scarf":
        return draw_scarf(img, mesh, rng)
    if occ.kind == "sunglasses":
        return draw_sunglasses(img, mesh, rng)
    raise ValueError(f"unknown occluder {occ.kind!r}")


def coverage(cover: np.ndarray, mesh: np.ndarray) -> dict[str, float]:
    """Share of each occlusion region (occlusion.REGIONS, as grown there) that is covered."""
    out = {}
    for name, idx in REGIONS.items():
        m = poly_mask(cover.shape, mesh[idx, :2], REGION_GROW.get(name, 1.0))
        out[name] = float(cover[m].mean()) if m.any() else 0.0
    return out


# --- measuring occlusion on a generated set ------------------------------------------

COVERED, CLEAR = 0.6, 0.1   # a region this covered must fail NORMAL; this little must not


@dataclass
class Trial:
    person: str
    occluder: str                 # Occluder.name, or "clean"
    cover: dict[str, float]       # true covered share per region (all 0 for "clean")
    score: dict[str, float] | None  # measured occlusion per region; None: no face found


def lfw_split(data_dir, part: str, n: int, seed: int = 0) -> list:
    """One photo each of n people of LFW view 1's peopleDev{Train,Test} (disjoint people)."""
    root = Path(data_dir) / "lfw-view1"
    names = [ln.split("\t")[0] for ln in (root / f"people{part}.txt").read_text().splitlines()[1:] if ln.strip()]
    names = [name for name in names if (root / "images" / name).is_dir()]
    rng = np.random.default_rng(seed)
    picks = sorted(rng.choice(len(names), size=min(n, len(names)), replace=False))
    return [sorted((root / "images" / names[i]).glob("*.jpg"))[0] for i in picks]


def run_trials(analyser, photos, occluders=ALL, seed: int = 0) -> list[Trial]:
    """Each photo clean and under each occluder (drawn with the clean photo's mesh)."""
    rng = np.random.default_rng(seed)
    zero = {k: 0.0 for k in OCCLUSION_REGIONS}
    trials = []
    for path in photos:
        img = decode_image(path.read_bytes())
        faces = analyser.analyse(img, 1, 1, {"landmarks", "quality"})
        if not faces:
            continue
        face = faces[0]
        trials.append(Trial(path.parent.name, "clean", zero, dataclasses.asdict(face.quality.occlusion)))
        for occ in occluders:
            out, cover = draw(img, face.mesh, occ, rng)
            found = analyser.analyse(out, 1, 1, {"landmarks", "quality"})
            score = dataclasses.asdict(found[0].quality.occlusion) if found else None
            trials.append(Trial(path.parent.name, occ.name, coverage(cover, face.mesh), score))
    return trials
