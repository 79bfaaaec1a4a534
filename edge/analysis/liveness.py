"""Passive (single-image) liveness: is this a live face, or a photo / screen of one?

No anti-spoofing model ships (../shared/docs/MODELS.md, "Not available"), so the score
is built from three image-forensic cues the engine measures itself, combined by a
logistic regression with four constants fitted on NUAA frames (see FIT below):

- fine_detail: how much of the face's texture sits at the finest scales the camera
  resolves. A recaptured face has been through a print (ink spread, paper texture) or
  a screen plus a second camera's optics, both of which lose the finest detail; the
  NUAA paper (Tan et al., ECCV 2010) separates prints by DoG-filtered texture for the
  same reason. Measured as a spectral band ratio (a DoG-like band-pass), which does not
  depend on the face's brightness or contrast.
- chroma_spread: the spread of colour (Lab chroma) across the face. Skin, lips, eyes
  and brows of a live face span a wider gamut than a print or screen of them can
  reproduce after a second capture (reduced gamut, washed-out colour).
- frame_edges: straight edges just outside the face, parallel to its sides (the edge
  of a photo or of a tablet around the face).

Moire / periodic spectral peaks (screens) were tried too: at webcam resolution they did
not separate anything on the development data (docs/liveness.md), so they are not used.

The result is a probability-like score in [0, 1] (1 = live), calibrated on balanced
live/attack data, so Baidu's liveness_control levels (LOW 0.05, NORMAL 0.3, HIGH 0.9,
edge.thresholds.LIVENESS) mean increasingly strict. Measured rates and what the score
does *not* stop: docs/liveness.md. Everything here is a pure function of the pixels.
"""
from __future__ import annotations

import cv2
import numpy as np

from edge.analysis.crops import INNER, face_crop, warp
from edge.analysis.face_type import flat_share, human_probability

FINE_BAND = (0.30, 0.48)  # cycles/px: the finest detail the crop holds (Nyquist 0.5)
MID_BAND = (0.05, 0.15)   # cycles/px: facial features (eyes, lips, nostrils)
SHADING_SIGMA = 3.0       # px: slower shading is removed before the spectrum

CONTEXT = 2.6             # the frame search looks at a square of 2.6 x the face box...
CONTEXT_SIZE = 160        # ...resized to this side
FRAME_MAX_GAP = 0.8       # a frame edge lies at most this many face sides from the box
FRAME_INSIDE = 0.05       # ...and at most this far inside it
FRAME_TILT = 25.0         # deg: how far from parallel to the box side an edge may be
FRAME_MIN_LEN = 0.35      # shortest straight segment counted, in face sides

FEATURES = ("fine_detail", "chroma_spread", "frame_edges")
# The score is capped at HUMAN_CAP x P(human) (edge.analysis.face_type): only a face more
# likely drawn than photographed (P(human) < 0.5) is capped at all, so a photo near the
# type measure's edge (small faces in compressed video read P(human) down to ~0.64) is
# never refused for it, while a clear cartoon (P(human) ~1e-3) is capped near 0.
HUMAN_CAP = 2.0

# Logistic regression over FEATURES: logit = BIAS + sum(WEIGHTS * features).
# Obtained with `fit_logistic` (L2 = 1.0 on standardised features, classes weighted
# equally) on all 224 NUAA frames of ../shared/data/spoof-dev/nuaa (111 live, 113
# printed-photo attacks, 11 subjects); `python scripts/liveness_report.py` refits them
# and prints both, together with the leave-one-subject-out rates. Only these four
# numbers were fitted. The other constants were set by reasoning and a look at a few
# frames, not searched; but the three features were picked from ~20 candidates by
# their rates on these same frames, so even the leave-one-subject-out figures are
# somewhat optimistic (docs/liveness.md).
WEIGHTS = np.array([6.8125, 1.3081, -3.0727])
BIAS = 15.0507
FIT = {"l2": 1.0}


def fine_detail(face: np.ndarray) -> float:
    """log(mean spectral magnitude at 0.30-0.48 cycles/px / at 0.05-0.15 cycles/px).

    Why: a print or a screen re-imaged by the camera loses the finest texture (pores,
    eyelashes, sensor-level detail) while keeping the features; the ratio of fine to
    mid-scale energy falls (NUAA: live median -2.35, prints -3.00). A ratio, so lighting
    and contrast cancel; slow shading is removed first and a Hann window stops the crop
    border from adding energy. Caveat: it also falls for a defocused or heavily
    denoised live face, and for faces much smaller than the crop (upscaled)."""
    g = cv2.cvtColor(face, cv2.COLOR_BGR2GRAY).astype(np.float32)
    g -= cv2.GaussianBlur(g, (0, 0), SHADING_SIGMA)
    n = g.shape[0]
    win = np.outer(np.hanning(n), np.hanning(n)).astype(np.float32)
    mag = np.abs(np.fft.fft2(g * win))
    f = np.fft.fftfreq(n)
    r = np.hypot(f[:, None], f[None, :])
    fine = mag[(r >= FINE_BAND[0]) & (r < FINE_BAND[1])].mean()
    mid = mag[(r >= MID_BAND[0]) & (r < MID_BAND[1])].mean()
    return float(np.log((fine + 1e-6) / (mid + 1e-6)))


def chroma_spread(face: np.ndarray) -> float:
    """Standard deviation of Lab chroma sqrt(a^2 + b^2) over the inner face.

    Why: lips, skin, eye whites and brows of a live face span a range of saturations; a
    printed or displayed copy, re-captured, has a reduced gamut and its colours are
    pulled together (NUAA: live median 6.55, prints 4.01). Uses the spread, not the mean,
    so a white-balance cast moves it less. Caveat: grey-scale or very dim frames have
    little chroma whatever the face."""
    lab = cv2.cvtColor(face[INNER, INNER], cv2.COLOR_BGR2Lab).astype(np.float32)
    chroma = np.hypot(lab[..., 1] - 128.0, lab[..., 2] - 128.0)
    return float(chroma.std())


def frame_edges(img_bgr: np.ndarray, box: np.ndarray) -> float:
    """Sum over the box's four sides of the longest straight edge parallel to that side
    just outside it, as a share of the side it runs along (0 .. 4).

    Why: a photo or a tablet held up to the camera puts a straight border close around
    the face, parallel to the face's sides (NUAA: live median 1.11, prints 1.73). Caveat:
    straight background structure near the head (door and window frames, shelves,
    monitors) reads the same, so this cue alone would reject live users in front of it;
    it only counts in combination with the other two."""
    b = np.asarray(box, dtype=np.float64)
    w, h = max(b[2] - b[0], 1.0), max(b[3] - b[1], 1.0)
    cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
    s = CONTEXT_SIZE / (max(w, h) * CONTEXT)
    region = warp(img_bgr, (cx, cy), 0.0, s, CONTEXT_SIZE)
    # Pixels outside the image are reflected by warp; keep their edges out.
    valid = np.zeros((CONTEXT_SIZE, CONTEXT_SIZE), np.uint8)
    half = CONTEXT_SIZE / 2
    vx0, vy0 = int(np.ceil(half - cx * s)) + 3, int(np.ceil(half - cy * s)) + 3
    vx1 = int(np.floor(half + (img_bgr.shape[1] - cx) * s)) - 3
    vy1 = int(np.floor(half + (img_bgr.shape[0] - cy) * s)) - 3
    valid[max(vy0, 0):max(vy1, 0), max(vx0, 0):max(vx1, 0)] = 1
    edges = cv2.Canny(cv2.cvtColor(region, cv2.COLOR_BGR2GRAY), 30, 90) * valid
    fw, fh = w * s, h * s
    x0, y0, x1, y1 = half - fw / 2, half - fh / 2, half + fw / 2, half + fh / 2
    edges[int(y0 + 0.1 * fh):int(y1), int(x0 + 0.1 * fw):int(x1 - 0.1 * fw)] = 0  # the face itself
    lines = cv2.HoughLinesP(edges, 1, np.pi / 180, 20, minLineLength=max(int(FRAME_MIN_LEN * fw), 4),
                            maxLineGap=3)
    best = {"l": 0.0, "r": 0.0, "t": 0.0, "b": 0.0}
    if lines is None:
        return 0.0
    near, far = FRAME_INSIDE, FRAME_MAX_GAP
    for xa, ya, xb, yb in lines.reshape(-1, 4).astype(np.float64):
        ang = np.degrees(np.arctan2(yb - ya, xb - xa)) % 180.0
        mx, my = (xa + xb) / 2, (ya + yb) / 2
        if abs(ang - 90.0) < FRAME_TILT:  # vertical: a left or right border
            ov = max(0.0, min(max(ya, yb), y1) - max(min(ya, yb), y0)) / fh
            if x0 - far * fw < mx < x0 + near * fw:
                best["l"] = max(best["l"], ov)
            if x1 - near * fw < mx < x1 + far * fw:
                best["r"] = max(best["r"], ov)
        elif ang < FRAME_TILT or ang > 180.0 - FRAME_TILT:  # horizontal: top or bottom
            ov = max(0.0, min(max(xa, xb), x1) - max(min(xa, xb), x0)) / fw
            if y0 - far * fh < my < y0 + near * fh:
                best["t"] = max(best["t"], ov)
            if y1 - near * fh < my < y1 + far * fh:
                best["b"] = max(best["b"], ov)
    return float(sum(best.values()))


def liveness_features(img_bgr: np.ndarray, box: np.ndarray, kps5: np.ndarray,
                      face: np.ndarray | None = None) -> np.ndarray:
    """The FEATURES of one face, in order (`face`: its face_crop, when already cut)."""
    face = face_crop(img_bgr, kps5) if face is None else face
    return np.array([fine_detail(face), chroma_spread(face), frame_edges(img_bgr, box)])


def score_from_features(x: np.ndarray, weights: np.ndarray = WEIGHTS, bias: float = BIAS) -> np.ndarray:
    """Logistic score(s) in [0, 1] from feature row(s)."""
    z = np.asarray(x, dtype=np.float64) @ np.asarray(weights, dtype=np.float64) + bias
    return 1.0 / (1.0 + np.exp(-np.clip(z, -50.0, 50.0)))


def liveness_score(img_bgr: np.ndarray, box: np.ndarray, kps5: np.ndarray, human: float | None = None,
                   face: np.ndarray | None = None) -> float:
    """Single-image liveness in [0, 1] (1 = live) for the face at `box` / `kps5`.

    The logistic score, capped at HUMAN_CAP x the face's P(human) (edge.analysis.
    face_type): the texture and colour cues read a drawn face's flat fills and
    saturated colours as very live (a toon rendering scores ~1.0), so a clear cartoon
    must not pass. The cap only ever lowers the score, so no attack the cues stop can
    pass because of it.
    Compare with edge.thresholds.LIVENESS (v3 liveness_control) or V2_FACELIVENESS.
    The cues need only the box and the 5 points, not the mesh. ~4 ms per face on a
    640x480 frame; the first call in a process takes ~0.1 s more while OpenCV builds
    its Lab conversion tables. `human`: the face's P(human) when the face_type stage
    already measured it (the same crop), else measured here; `face`: that crop
    (crops.face_crop of `kps5`) when the face_type stage already cut it."""
    face = face_crop(img_bgr, kps5) if face is None else face
    live = float(score_from_features(liveness_features(img_bgr, box, kps5, face)))
    if human is None:
        human = human_probability(flat_share(face))
    return min(live, HUMAN_CAP * human)


def fit_logistic(x: np.ndarray, live: np.ndarray, l2: float = FIT["l2"],
                 sample_weight: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """(weights, bias) of an L2-regularised logistic regression, live = 1.

    Features are standardised for the fit (so `l2` treats them alike) and the weights
    mapped back to raw units; live and attack samples count equally in total whatever
    their numbers, so a score of 0.5 means "as likely live as attack". `sample_weight`
    reweights samples within their class (the class totals stay equal). Newton steps."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(live, dtype=np.float64)
    mu, sd = x.mean(0), x.std(0) + 1e-12
    z = np.hstack([(x - mu) / sd, np.ones((len(x), 1))])
    sw = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    live_w, attack_w = float(sw[y > 0.5].sum()), float(sw[y <= 0.5].sum())
    cw = sw * np.where(y > 0.5, 0.5 / max(live_w, 1e-12), 0.5 / max(attack_w, 1e-12))
    reg = np.eye(z.shape[1]) * l2 / len(y)
    reg[-1, -1] = 0.0
    w = np.zeros(z.shape[1])
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ w, -50.0, 50.0)))
        grad = z.T @ (cw * (p - y)) + reg @ w
        hess = (z * (cw * p * (1 - p))[:, None]).T @ z + reg
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    weights = w[:-1] / sd
    return weights, float(w[-1] - np.sum(weights * mu))
