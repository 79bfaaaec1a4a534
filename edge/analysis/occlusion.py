"""Occlusion per region, measured from pixels and the mesh (no occlusion model ships,
MODELS.md): per region the larger of

- the share of its pixels not of the face's own skin colour, beyond the share natural
  faces show there. The skin is voted by the skin-like regions; a pixel is far in
  colour, or as light and far less saturated (white masks), or far darker and
  desaturated (black cloth); a beard of the brows' colour is excepted;
- how far the features are gone (eye opening; lip line, redness, teeth; mouth with nose
  for the lower face): what a hand or a skin-tone mask leaves as the only trace.

docs/fields.md has the rule and the rates (scripts/occlusion_report.py).
"""
from __future__ import annotations

import cv2
import numpy as np

from edge.analysis import meshmap as mm
from edge.analysis.face import Occlusion
from edge.analysis.regions import poly_mask

REGIONS = {
    "left_eye": mm.LEFT_EYE, "right_eye": mm.RIGHT_EYE, "nose": mm.NOSE, "mouth": mm.LIPS_OUTER,
    "left_cheek": mm.LEFT_CHEEK, "right_cheek": mm.RIGHT_CHEEK, "chin": mm.CHIN,
}
# Regions are grown around their centre so an occluder's edge is inside them.
REGION_GROW = {"left_eye": 1.7, "right_eye": 1.7, "mouth": 1.2}
SKIN_DISTANCE = 6.0        # robust z-distance beyond which a pixel is "not this face's skin"
MIN_SCALE = (6.0, 3.0, 3.0)  # floors of the L, a, b spreads (grayscale photos have no chroma)
# Share of far-from-skin pixels an unoccluded face may show per region (set between the
# 75th and 95th percentiles of LFW faces, scripts/calibrate_measures.py); the occlusion
# score rescales what lies above it to 0..1.
NATURAL_SHARE = {"left_eye": 0.30, "right_eye": 0.30, "nose": 0.05, "mouth": 0.25,
                 "left_cheek": 0.05, "right_cheek": 0.05, "chin": 0.08}

# Regions whose colours vote for the face's skin colour. An occluder rarely covers
# most of them, so the median of their medians is this face's skin even under a mask.
SKIN_VOTERS = ("forehead", "left_cheek", "right_cheek", "nose", "chin")


# Human skin of every tone is reddish-yellow: its Lab hue (angle of a, b about neutral)
# lies within SKIN_HUE degrees (LFW voters: p1 0, p99 87), and it keeps a saturation
# relative to its lightness (chroma / (L + 30); LFW voters p5 0.07, median 0.14, p99
# 0.29). A voter that is not skin-hued (a blue mask), more saturated than skin (a red
# scarf), or far less saturated or chromatic than the most saturated skin-like voter (a
# white, grey or black mask: ~0.01) does not vote, unless none is (a grayscale photo):
# then every voter does.
SKIN_HUE = (10.0, 100.0)
MAX_SATURATION = 0.33
FOREHEAD_AGREES = 8.0      # Lab distance (luma halved) of a voter from the forehead's
DESATURATED = 0.4          # relative saturation below this share of the skin's: not skin
MIN_SATURATION = 0.05      # below this the photo is taken as grayscale: no saturation test
MAX_SCALE = (20.0, 6.0, 6.0)  # caps of the L, a, b spreads: a voter with hair in it is not skin's spread
BLACK = 0.45               # desaturated and below this share of the skin's luma: black cloth


def _hue_sat(lab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(hue in degrees, chroma / (L + 30)) of Lab colours (..., 3), OpenCV's 8-bit scale."""
    a, b = lab[..., 1] - 128.0, lab[..., 2] - 128.0
    return np.degrees(np.arctan2(b, a)), np.hypot(a, b) / (lab[..., 0] + 30.0)


def skin_reference(lab: np.ndarray, masks: dict[str, np.ndarray],
                   lower_covered: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(median colour, robust spread) of the face's skin, voted by SKIN_VOTERS.

    `lower_covered` (mouth and nose hidden): a mask covers every voter but the forehead,
    and a skin-coloured one would outvote it, so a skin-like forehead keeps only the
    voters that agree with it."""
    votes, names = [], []
    for name in SKIN_VOTERS:
        px = lab[masks[name]]
        if len(px) < 10:
            continue
        names.append(name)
        med = np.median(px, axis=0)
        votes.append((med, 1.4826 * np.median(np.abs(px - med), axis=0)))
    if not votes:
        px = lab.reshape(-1, 3)
        return np.median(px, axis=0), np.full(3, 10.0)
    colours = np.array([v[0] for v in votes])
    hue, sat = _hue_sat(colours)
    chroma = np.hypot(colours[:, 1] - 128.0, colours[:, 2] - 128.0)
    hued = (hue >= SKIN_HUE[0]) & (hue <= SKIN_HUE[1]) & (sat <= MAX_SATURATION)
    top = int(np.argmax(np.where(hued, sat, -1.0)))
    skin_like = hued & (sat >= DESATURATED * sat[top]) & (chroma >= DESATURATED * chroma[top])
    if not hued.any() or sat[top] < MIN_SATURATION:
        skin_like[:] = False
    if lower_covered and names[0] == "forehead" and skin_like[0]:
        d = (colours - colours[0]) * [0.5, 1.0, 1.0]
        skin_like &= np.sqrt((d ** 2).sum(1)) <= FOREHEAD_AGREES
    chosen = [v for v, keep in zip(votes, skin_like) if keep] or votes
    meds, mads = [v[0] for v in chosen], [v[1] for v in chosen]
    # A voter half covered by an occluder has an inflated spread; the cleanest skin
    # region (the smallest spread) tells how much this face's skin really varies.
    return np.median(meds, axis=0), np.clip(np.min(mads, axis=0), MIN_SCALE, MAX_SCALE)


def skin_distance(lab: np.ndarray, ref: np.ndarray, spread: np.ndarray) -> np.ndarray:
    """Per-pixel robust distance (in spreads) from the face's skin colour."""
    # float32 throughout, in place: this runs on every gated face of every frame
    z = lab - ref.astype(np.float32)
    z /= spread.astype(np.float32)
    z[..., 0] *= 0.5  # light varies across a face more than hue: weigh luma less
    np.square(z, out=z)
    return np.sqrt(z.sum(-1))


def not_skin(lab: np.ndarray, ref: np.ndarray, spread: np.ndarray) -> np.ndarray:
    """Pixels far from the face's skin colour, or as light as it and far less saturated
    or far darker and desaturated (white, grey and black are close to pale skin in each
    channel's spread, never in saturation). Desaturated pixels between are left to the
    distance: a beard is one."""
    far = skin_distance(lab, ref, spread) > SKIN_DISTANCE
    ref_sat = float(_hue_sat(ref.astype(np.float64))[1])
    if ref_sat >= MIN_SATURATION:
        a = lab[..., 1] - 128.0
        b = lab[..., 2] - 128.0
        sat = np.sqrt(a * a + b * b) / (lab[..., 0] + 30.0)
        lum = lab[..., 0]
        far |= (sat < DESATURATED * ref_sat) & ((lum >= ref[0] - spread[0]) | (lum <= BLACK * ref[0]))
    return far


# Features an occluder hides whatever its colour (a hand, a skin-tone mask): each is a
# contrast over the face's own (p95 - p5 of luma in the oval), read where the mesh puts
# the part; between the "visible" and "hidden" values the score rises from 0 to 1.
# Figures are LFW DevTrain faces, clean and under the drawn occluders (edge/occluders.py).
# - eye: spread (p90 - p10) of luma in the eye opening (sclera, iris, lashes). Clean
#   p1 0.22, p5 0.34; under a hand median 0.26, sunglasses 0.03.
# - mouth: the largest of the lip line's darkness (lip_line, over LIP_LINE_SCALE), lip
#   redness (lips' Lab a - the ring's, over LIP_RED_SCALE) and teeth (share of the
#   opening, over TEETH_SCALE). Clean p0.5 0.39, p1 0.50, p5 0.75; skin-tone and beige
#   masks p75 <= 0.38, a hand median 0.25.
EYE_VISIBLE, EYE_HIDDEN = 0.20, 0.08
MOUTH_VISIBLE, MOUTH_HIDDEN = 0.4, 0.15
LIP_LINE_SCALE, LIP_RED_SCALE = 0.4, 4.0
# teeth: share of the opening (over TEETH_SCALE) brighter than the skin by TEETH_BRIGHTER
# of the contrast and at most TEETH_SATURATION of its saturation (teeth are yellowish)
TEETH_SCALE, TEETH_BRIGHTER, TEETH_SATURATION = 0.25, 0.1, 0.7
# - lower face (a mask hides mouth and nose together): mouth visibility over its clean
#   median (MOUTH_NORM) plus the nose's over its (NOSE_NORM); the nose's is the larger of
#   nostril darkness (over NOSTRIL_SCALE) and nose shading (luma spread, over
#   NOSE_SHADE_SCALE). Clean p0.5 0.88, p1 0.92; masks median 0.28-0.48, a hand 0.55.
NOSE_BASE = [64, 98, 97, 2, 326, 327, 294, 240, 460, 75, 305, 20, 250]
NOSTRIL_SCALE, NOSE_SHADE_SCALE = 0.3, 0.16
MOUTH_NORM, NOSE_NORM = 1.5, 2.37
LOWER_VISIBLE, LOWER_HIDDEN = 1.0, 0.5
BEARD_REGIONS = ("chin", "left_cheek", "right_cheek")
# Blur scores between which the hidden-feature readings fade out (masked LFW faces read
# blur <= 0.13 at p90; a 2 px Gaussian blur of them ~0.66).
FEATURE_BLUR = (0.2, 0.5)


def _hidden(visibility: float, visible: float, hidden: float) -> float:
    return float(np.clip((visible - visibility) / (visible - hidden), 0.0, 1.0))


def eye_visibility(lum: np.ndarray, opening: np.ndarray, contrast: float) -> float:
    if opening.sum() < 5:
        return EYE_VISIBLE  # too small to judge: no evidence either way
    p10, p90 = np.percentile(lum[opening], (10, 90))
    return float(p90 - p10) / contrast


# The inner lips' midline, corner to corner: upper inner lip and lower inner lip paired.
LIP_UPPER = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308]
LIP_LOWER = [78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308]


def _line_minima(lum: np.ndarray, line: np.ndarray, half: float) -> np.ndarray:
    """Darkest luma across a polyline: at each of its points, the minimum over a segment
    of +-half px perpendicular to it (the mesh places the lips to within a few px)."""
    d = np.gradient(line, axis=0)
    normal = np.stack([-d[:, 1], d[:, 0]], 1) / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-6)
    steps = np.linspace(-half, half, max(3, int(2 * half) + 1))
    xy = line[:, None, :] + steps[None, :, None] * normal[:, None, :]
    x = np.clip(np.round(xy[..., 0]).astype(int), 0, lum.shape[1] - 1)
    y = np.clip(np.round(xy[..., 1]).astype(int), 0, lum.shape[0] - 1)
    return lum[y, x].min(axis=1)


def lip_line(lum: np.ndarray, pts: np.ndarray) -> tuple[float, float]:
    """(darkness between the lips, darkness of the same line continued past the corners).

    The line between the lips is dark along the mouth's width and ends at its corners; a
    mask's pleat or seam is dark in one place or runs on across the cheeks."""
    mid = (pts[LIP_UPPER] + pts[LIP_LOWER]) / 2
    width = float(np.linalg.norm(mid[-1] - mid[0]))
    if width < 4:
        return 0.0, 0.0
    inside = np.linspace(0, 1, 16)
    line = np.array([np.interp(inside, np.linspace(0, 1, len(mid)), mid[:, k]) for k in (0, 1)]).T
    u = (mid[-1] - mid[0]) / width
    # past the smile's creases, and on both sides (a shadow darkens one)
    beyond = np.linspace(0.4, 0.9, 8)[:, None] * width
    left, right = mid[0] - beyond * u, mid[-1] + beyond * u
    half = max(2.0, 0.08 * width)
    outside = max(float(np.median(_line_minima(lum, left[::-1], half))),
                  float(np.median(_line_minima(lum, right, half))))
    return float(np.median(_line_minima(lum, line, half))), outside


def mouth_visibility(lab: np.ndarray, pts: np.ndarray, contrast: float) -> float:
    shape = lab.shape[:2]
    lips = poly_mask(shape, pts[mm.LIPS_OUTER])
    ring = poly_mask(shape, pts[mm.LIPS_OUTER], 1.6) & ~poly_mask(shape, pts[mm.LIPS_OUTER], 1.15)
    if lips.sum() < 5 or ring.sum() < 5:
        return MOUTH_VISIBLE
    lum, red = lab[..., 0], lab[..., 1]
    skin = float(np.median(lum[ring]))
    inside, outside = lip_line(lum, pts)
    # a line that runs on past the corners as dark as between the lips is a pleat, one
    # half as dark or less is the lips' own shading
    dark_in, dark_out = skin - inside, max(skin - outside, 0.0)
    dark = (dark_in - 2.0 * max(dark_out - 0.5 * dark_in, 0.0)) / contrast
    redder = float(np.median(red[lips]) - np.median(red[ring]))
    return max(dark / LIP_LINE_SCALE, redder / LIP_RED_SCALE, teeth(lab, pts, ring, contrast) / TEETH_SCALE)


def teeth(lab: np.ndarray, pts: np.ndarray, ring: np.ndarray, contrast: float) -> float:
    """Share of the open mouth that is teeth: brighter than the skin around the mouth and
    far less saturated (a smile shows teeth where a closed mouth shows the lip line)."""
    opening = poly_mask(lab.shape[:2], pts[mm.LIPS_INNER])
    if opening.sum() < 5:
        return 0.0
    _, sat = _hue_sat(lab[opening])
    _, ring_sat = _hue_sat(lab[ring])
    bright = lab[opening][:, 0] >= float(np.median(lab[ring][:, 0])) + TEETH_BRIGHTER * contrast
    return float((bright & (sat <= TEETH_SATURATION * float(np.median(ring_sat)))).mean())


def nose_visibility(lum: np.ndarray, pts: np.ndarray, contrast: float) -> float:
    """The larger of the nostrils' darkness (nose median - p5 of the nose base, over
    NOSTRIL_SCALE) and the nose's shading (luma spread, over NOSE_SHADE_SCALE)."""
    shape = lum.shape[:2]
    nose, base = poly_mask(shape, pts[mm.NOSE]), poly_mask(shape, pts[NOSE_BASE], 1.1)
    if nose.sum() < 5 or base.sum() < 5:
        return NOSE_NORM
    dark = (float(np.median(lum[nose])) - float(np.percentile(lum[base], 5))) / contrast
    shade = float(np.std(lum[nose])) / contrast
    return max(dark / NOSTRIL_SCALE, shade / NOSE_SHADE_SCALE)


def lower_face_visibility(lab: np.ndarray, pts: np.ndarray, contrast: float) -> tuple[float, float]:
    """(mouth visibility, mouth and nose visibilities summed, each over its clean median)."""
    mouth = mouth_visibility(lab, pts, contrast)
    return mouth, mouth / MOUTH_NORM + nose_visibility(lab[..., 0], pts, contrast) / NOSE_NORM


def hair_like(lab: np.ndarray, pts: np.ndarray, ref: np.ndarray, spread: np.ndarray,
              where: np.ndarray) -> np.ndarray | None:
    """Pixels (within `where`) of this face's hair colour: the brows' pixels darker than the skin."""
    shape = lab.shape[:2]
    brows = poly_mask(shape, pts[mm.LEFT_BROW]) | poly_mask(shape, pts[mm.RIGHT_BROW])
    px = lab[brows]
    px = px[px[:, 0] < ref[0] - spread[0]]
    if len(px) < 10:
        return None
    hair = np.median(px, axis=0)
    hair_spread = np.clip(1.4826 * np.median(np.abs(px - hair), axis=0), MIN_SCALE, MAX_SCALE)
    out = np.zeros(shape, bool)
    out[where] = skin_distance(lab[where], hair, hair_spread) <= SKIN_DISTANCE
    return out


def occlusion(crop_bgr: np.ndarray, pts: np.ndarray, blur: float = 0.0) -> tuple[Occlusion, dict[str, float]]:
    """Per region the larger of two readings: the share of pixels not of this face's skin
    colour beyond what natural faces show, and how hidden the features are (eyes: their
    opening; mouth: its own and, with the nose, the lower face's; nose, cheeks, chin:
    the lower face's) - what a skin-coloured occluder leaves as the only trace. Blur
    also wipes the features' contrast, so those readings fade out as `blur` (the face's
    blur score) rises from FEATURE_BLUR[0] to [1]: a blurred face fails for blur."""
    lab = cv2.cvtColor(crop_bgr, cv2.COLOR_BGR2LAB).astype(np.float32)
    shape = crop_bgr.shape[:2]
    masks = {name: poly_mask(shape, pts[idx], REGION_GROW.get(name, 1.0)) for name, idx in REGIONS.items()}
    openings = {}
    # An eye's own opening (sclera, iris, lashes) is never skin-coloured; judge the eye
    # by the lids and the skin around it, which an occluder covers and an eye does not.
    for eye, brow in (("left_eye", mm.LEFT_BROW), ("right_eye", mm.RIGHT_BROW)):
        openings[eye] = poly_mask(shape, pts[REGIONS[eye]])
        masks[eye] &= ~poly_mask(shape, pts[REGIONS[eye]], 1.15) & ~poly_mask(shape, pts[brow], 1.2)
    masks["forehead"] = poly_mask(shape, pts[mm.FOREHEAD])
    lum = lab[..., 0]
    oval = poly_mask(shape, pts[mm.FACE_OVAL], 0.9)
    lo, hi = np.percentile(lum[oval], (5, 95)) if oval.any() else (0.0, 255.0)
    contrast = max(float(hi - lo), 10.0)
    mouth_vis, lower_vis = lower_face_visibility(lab, pts, contrast)
    lower = _hidden(lower_vis, LOWER_VISIBLE, LOWER_HIDDEN)
    ref, spread = skin_reference(lab, masks, lower_covered=lower >= 0.5)
    far = not_skin(lab, ref, spread)
    hidden = {eye: _hidden(eye_visibility(lum, openings[eye], contrast), EYE_VISIBLE, EYE_HIDDEN)
              for eye in openings}
    hidden["mouth"] = max(_hidden(mouth_vis, MOUTH_VISIBLE, MOUTH_HIDDEN), lower)
    # What hides mouth and nose covers as much of a part as is of its colour (the mouth
    # region's): a mask reaches the cheeks and chin, a patch over the mouth does not.
    mouth_px = lab[masks["mouth"]]
    for part in ("nose", "left_cheek", "right_cheek", "chin"):
        hidden[part] = 0.0
        if lower > 0 and len(mouth_px) >= 10 and masks[part].any():
            med = np.median(mouth_px, axis=0)
            cover_spread = np.clip(1.4826 * np.median(np.abs(mouth_px - med), axis=0), MIN_SCALE, MAX_SCALE)
            like = skin_distance(lab[masks[part]], med, cover_spread) <= SKIN_DISTANCE
            hidden[part] = lower * float(like.mean())
    trust = float(np.clip((FEATURE_BLUR[1] - blur) / (FEATURE_BLUR[1] - FEATURE_BLUR[0]), 0.0, 1.0))
    hidden = {part: value * trust for part, value in hidden.items()}
    # A beard is of the brows' (hair) colour and leaves the mouth seen; a scarf or mask
    # of that colour hides the mouth, so hair-coloured pixels are excused only then.
    beard = None
    if hidden["mouth"] == 0.0:
        beard = hair_like(lab, pts, ref, spread, np.logical_or.reduce([masks[r] for r in BEARD_REGIONS]))
    raw, scores = {}, {}
    for name in REGIONS:
        mask = masks[name]
        if beard is not None and name in BEARD_REGIONS:
            mask_far = far[mask] & ~beard[mask]
        else:
            mask_far = far[mask]
        share = float(mask_far.mean()) if mask.any() else 0.0
        raw[name] = share
        base = NATURAL_SHARE[name]
        colour = float(np.clip((share - base) / (1.0 - base), 0.0, 1.0))
        scores[name] = max(colour, hidden.get(name, 0.0))
    return Occlusion(**scores), raw
