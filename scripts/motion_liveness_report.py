#!/usr/bin/env python3
"""Motion liveness (edge/analysis/motion_liveness.py) on recorded sequences: error rates per level.

Sequences, each fed frame by frame (detect + mesh, then MotionLiveness.update):

- planar (attack, synthetic): "a moving printed photo". Real photos - LFW, the
  spoof-dev silentface photos and one NUAA live frame per subject - on a flat sheet
  rotated in 3-D (yaw and pitch up to +-25 deg, roll, translation, scale) and projected
  with a 600 px focal length into 640x480 frames over a plain background, then blurred,
  noised and JPEG-compressed. 24 frames at 10 frames/s.
- head (live proxy, synthetic): the same kind of photos rendered as a 3-D surface - the
  mesh net's own depth, with the hair/ears ring behind it and a static background -
  turned by up to +-25 deg yaw and +-15 deg pitch. NOT real heads: it shows what the
  parallax test does with texture that does move in depth; real moving heads were not
  available (NUAA's live people hardly move).
- nuaa (real): ImposterRaw (printed photos held, rotated and bent in front of a
  webcam) and ClientRaw (live people), frames grouped per recording
  (ID_glasses_pose_session) and ordered by picNo; timestamps picNo / 20 s. Also per
  subject (all of a subject's recordings, one after the other).

APCER = share of attack sequences judged "live"; BPCER = share of live sequences not
judged "live"; "spoof" and "undecided" shares are printed too. HIGH needs a challenge:
attack sequences are run against each of the four kinds, the live proxies against turn
challenges rendered as asked (blinks and mouths cannot be rendered; tests use LFW
photos for those).

    python scripts/motion_liveness_report.py [--photos 40] [--heads 24] [--data ../shared/data]

Figures only; exits 0. tests/test_motion_liveness.py uses the same functions.
"""
from __future__ import annotations

import argparse
import collections
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from edge.analysis import liveness_eval as le  # noqa: E402
from edge.analysis import meshmap as mm  # noqa: E402
from edge.analysis.app import AnalyserConfig, FaceAnalyser  # noqa: E402
from edge.analysis.motion_liveness import (  # noqa: E402
    CHALLENGES, LEVELS, Challenge, MotionLiveness, MotionVerdict, inter_ocular,
)
from edge.spoofset.render import (  # noqa: E402  (tests/test_motion_liveness.py uses them from here)
    SIZE, background, camera_noise, lfw_photos, load, planar_sequence, print_photo, rotation, spoof_dev_photos,
)

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
FPS = 10.0           # synthetic sequences
HEAD_MAX_YAW = 20.0  # deg: photos rendered as heads start about frontal, as at a kiosk
STAGES = frozenset({"landmarks"})


# --- Rendered heads ----------------------------------------------------------------

def _delaunay(pts: np.ndarray, w: int, h: int) -> np.ndarray:
    sub = cv2.Subdiv2D((-w, -h, 3 * w, 3 * h))
    for p in pts:
        sub.insert((float(p[0]), float(p[1])))
    tris = []
    for t in sub.getTriangleList().reshape(-1, 3, 2):
        idx = [int(np.argmin(np.linalg.norm(pts - v, axis=1))) for v in t]
        if len(set(idx)) == 3:
            tris.append(idx)
    return np.array(tris)


@dataclass
class HeadModel:
    """A photo as a 3-D surface: the mesh (x, y, depth), two rings behind the face
    outline (hair, ears), a static image border; Delaunay triangles over all of them."""
    image: np.ndarray
    moving: np.ndarray     # N x 3 points that turn with the head
    border: np.ndarray     # M x 2 static points
    triangles: np.ndarray  # K x 3 indices into moving + border
    pivot: np.ndarray      # 3: the turning centre, 1.2 IOD behind the face


def head_model(image: np.ndarray, mesh: np.ndarray) -> HeadModel:
    m = np.asarray(mesh, dtype=np.float64)
    h, w = image.shape[:2]
    c = m[:, :2].mean(0)
    iod = inter_ocular(m)
    oval = m[mm.FACE_OVAL]
    ring1 = np.column_stack([c + (oval[:, :2] - c) * 1.25, oval[:, 2] + 0.3 * iod])
    ring2 = np.column_stack([c + (oval[:, :2] - c) * 1.6, oval[:, 2] + 0.7 * iod])
    moving = np.vstack([m, ring1, ring2])
    xs, ys = np.linspace(0, w - 1, 9), np.linspace(0, h - 1, 7)
    border = np.array([(x, y) for x in xs for y in ys if x in (xs[0], xs[-1]) or y in (ys[0], ys[-1])])
    tris = _delaunay(np.vstack([moving[:, :2], border]), w, h)
    pivot = np.array([c[0], c[1], m[:, 2].mean() + 1.2 * iod])
    return HeadModel(image, moving, border, tris, pivot)


def render_head(model: HeadModel, yaw: float, pitch: float, roll: float = 0.0, shift=(0.0, 0.0)) -> np.ndarray:
    """The surface turned about its pivot, orthographic, nearer triangles drawn last
    (one index raster + one remap)."""
    img = model.image
    h, w = img.shape[:2]
    q = (model.moving - model.pivot) @ rotation(yaw, pitch, roll).T + model.pivot
    q[:, :2] += shift
    dst = np.vstack([q[:, :2], model.border])
    src = np.vstack([model.moving[:, :2], model.border])
    depth = np.concatenate([q[:, 2], np.full(len(model.border), 1e9)])
    tris = model.triangles
    index = np.full((h, w), -1, np.int32)
    inverse = np.zeros((len(tris), 2, 3))
    for k in np.argsort(-depth[tris].mean(1)):
        d, s = dst[tris[k]].astype(np.float32), src[tris[k]].astype(np.float32)
        u, v = d[1] - d[0], d[2] - d[0]
        if abs(float(u[0] * v[1] - u[1] * v[0])) < 1e-3:
            continue
        inverse[k] = cv2.getAffineTransform(d, s)
        cv2.fillConvexPoly(index, np.round(d * 16).astype(np.int32), int(k), cv2.LINE_8, 4)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    a = inverse[np.maximum(index, 0)]
    mx = a[..., 0, 0] * xx + a[..., 0, 1] * yy + a[..., 0, 2]
    my = a[..., 1, 0] * xx + a[..., 1, 1] * yy + a[..., 1, 2]
    mx[index < 0], my[index < 0] = xx[index < 0], yy[index < 0]
    return cv2.remap(img, mx.astype(np.float32), my.astype(np.float32), cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REFLECT)


def head_base(analyser: FaceAnalyser, photo: np.ndarray, rng: np.random.Generator):
    """The photo (300-420 px square) on a backdrop, and its head model. None unless the
    photo holds exactly one face, turned at most HEAD_MAX_YAW: a second face would be
    dragged along by the surface, and the hidden side of a turned face cannot be shown."""
    base = background(rng)
    side = int(rng.uniform(300, 420))
    big = cv2.resize(photo, (side, side), interpolation=cv2.INTER_CUBIC)
    y0, x0 = (SIZE[1] - side) // 2, (SIZE[0] - side) // 2
    base[y0:y0 + side, x0:x0 + side] = big
    faces = analyser.analyse(base, 3, 1, STAGES)
    if len(faces) != 1 or abs(faces[0].yaw) > HEAD_MAX_YAW:
        return None
    return head_model(base, faces[0].mesh)


def head_sequence(model: HeadModel, rng: np.random.Generator, n: int = 24) -> list[np.ndarray]:
    """A head looking around: yaw +-10..25 deg, pitch +-5..15 deg, small drift."""
    ay, ap = rng.uniform(10, 25), rng.uniform(5, 15)
    ph = rng.uniform(0, 2 * np.pi, 2)
    frames = []
    for i in range(n):
        t = i / (n - 1)
        frames.append(camera_noise(render_head(
            model, ay * np.sin(2 * np.pi * t + ph[0]), ap * np.sin(2 * np.pi * t * 0.7 + ph[1]),
            shift=(20 * np.sin(2 * np.pi * t), 10 * np.cos(2 * np.pi * t))), rng))
    return frames


# The renderer's yaw turns the face the other way from pose.py's yaw (its +yaw moves
# the nose towards the image's left); a user's turn to their left raises pose yaw.
RENDER_YAW_FOR_USER_LEFT = -1.0


def turn_sequence(model: HeadModel, rng: np.random.Generator, direction: str, angle: float = 30.0,
                  n: int = 16) -> list[np.ndarray]:
    """A user answering "turn left/right": still for 3 frames, a turn to `angle` deg over
    8 frames, held, with a little pitch wobble."""
    sign = RENDER_YAW_FOR_USER_LEFT * (1.0 if direction == "turn_left" else -1.0)
    frames = []
    for i in range(n):
        k = min(max(i - 3, 0) / 8.0, 1.0)
        yaw = sign * angle * (0.5 - 0.5 * np.cos(np.pi * k))
        frames.append(camera_noise(render_head(model, yaw, 3.0 * np.sin(i / 3.0)), rng))
    return frames


# --- NUAA --------------------------------------------------------------------------

@dataclass
class Recording:
    name: str
    live: bool
    frames: list[Path]
    timestamps: list[float]


def nuaa_recordings(data: Path = DATA, by: str = "recording") -> list[Recording]:
    """NUAA frames grouped per recording (ID_glasses_pose_session, by="recording") or per
    subject (by="subject": its recordings in pose order, each after the previous ends),
    ordered by picNo (edge.analysis.liveness_eval.nuaa_sequences)."""
    return [Recording(name, live, [p for p, _ in items], [ts for _, ts in items])
            for name, live, items in le.nuaa_sequences(data / "spoof-dev" / "nuaa", by)]


# --- Running -----------------------------------------------------------------------

@dataclass
class Trial:
    """One sequence through the analyser, with the verdicts of every level."""
    name: str
    kind: str                       # planar | head | nuaa | nuaa-subject | turn
    live: bool
    verdicts: dict[str, MotionVerdict] = field(default_factory=dict)
    high: dict[str, MotionVerdict] = field(default_factory=dict)  # challenge kind -> HIGH verdict
    faces: int = 0
    frames: int = 0
    pairs: list = field(default_factory=list)  # the NORMAL accumulator's Parallax records


def follow(faces, previous):
    """The track's face in this frame: the largest at first, then the one nearest the
    previous frame's (a minimal tracker, so a second person in the photo does not take
    over the track)."""
    if not faces:
        return None
    if previous is None:
        return faces[0]
    return min(faces, key=lambda f: np.hypot(*np.subtract(f.center, previous.center)))


def run_sequence(analyser: FaceAnalyser, frames, timestamps, name: str, kind: str, live: bool,
                 challenges=CHALLENGES, levels=("LOW", "NORMAL")) -> Trial:
    """Feed the frames (arrays or paths) to one accumulator per level and one HIGH
    accumulator per challenge kind; the largest face of each frame is the track."""
    trackers = {lv: MotionLiveness(lv) for lv in levels}
    high = {c: MotionLiveness("HIGH", challenge=Challenge(c)) for c in challenges}
    trial = Trial(name, kind, live)
    last = None
    for frame, t in zip(frames, timestamps):
        img = load(frame) if isinstance(frame, (str, Path)) else frame
        face = follow(analyser.analyse(img, 3, 0, STAGES), last)
        last = face or last
        trial.frames += 1
        trial.faces += face is not None
        for acc in list(trackers.values()) + list(high.values()):
            acc.update(face, t, img)
    trial.verdicts = {lv: acc.verdict() for lv, acc in trackers.items()}
    if "NORMAL" in trackers:
        trial.pairs = trackers["NORMAL"].evidence()
    trial.high = {c: acc.verdict() for c, acc in high.items()}
    return trial


def synthetic_trials(analyser: FaceAnalyser, photos: list[Path], heads: int, seed: int = 0,
                     log=print) -> list[Trial]:
    """A planar-warp attack per photo, a looking-around head and two turn answers for
    the first `heads` photos whose face is found."""
    rng = np.random.default_rng(seed)
    stamps = [i / FPS for i in range(64)]
    trials = []
    made = 0
    for k, path in enumerate(photos):
        photo = print_photo(load(path))
        frames = planar_sequence(photo, rng)
        trials.append(run_sequence(analyser, frames, stamps, path.name, "planar", False))
        if made < heads and path.parent.name != "ClientRaw" and "silentface" not in path.name:
            model = head_base(analyser, photo, rng)
            if model is not None:
                made += 1
                trials.append(run_sequence(analyser, head_sequence(model, rng), stamps, path.name, "head", True,
                                           challenges=()))
                for d in ("turn_left", "turn_right"):
                    trials.append(run_sequence(analyser, turn_sequence(model, rng, d), stamps, path.name,
                                               "turn-" + d, True, challenges=(d,), levels=()))
        if log and (k + 1) % 10 == 0:
            log(f"  ... {k + 1}/{len(photos)} photos")
    return trials


def nuaa_trials(analyser: FaceAnalyser, data: Path = DATA, challenges=CHALLENGES) -> list[Trial]:
    """Every NUAA recording, and each attack subject's recordings run as one sequence
    (live subjects have one recording each)."""
    out = []
    for by, kind in (("recording", "nuaa"), ("subject", "nuaa-subject")):
        for rec in nuaa_recordings(data, by):
            if kind == "nuaa" or not rec.live:
                out.append(run_sequence(analyser, rec.frames, rec.timestamps, rec.name, kind, rec.live,
                                        challenges=challenges))
    return out


def shares(verdicts: list[MotionVerdict]) -> dict[str, float]:
    n = max(len(verdicts), 1)
    return {s: sum(v.state == s for v in verdicts) / n for s in ("live", "spoof", "undecided")}


def rate_table(trials: list[Trial], title: str) -> list[str]:
    """Per level: share judged live / spoof / undecided. For attacks the live share is
    APCER; for live sequences 1 - live share is BPCER."""
    if not trials:
        return [f"{title}: none"]
    live = trials[0].live
    lines = [f"{title}: {len(trials)} sequences, {sum(t.frames for t in trials)} frames, "
             f"{sum(t.faces for t in trials)} with a face",
             f"  {'level':16s} {'APCER' if not live else 'BPCER':>6s} {'live':>6s} {'spoof':>6s} {'undec.':>6s}"]
    rows = [(lv, [t.verdicts[lv] for t in trials if lv in t.verdicts]) for lv in LEVELS if lv != "HIGH"]
    kinds = sorted({c for t in trials for c in t.high})
    rows += [(f"HIGH {c}", [t.high[c] for t in trials if c in t.high]) for c in kinds]
    for name, vs in rows:
        if not vs:
            continue
        s = shares(vs)
        err = s["live"] if not live else 1.0 - s["live"]
        lines.append(f"  {name:16s} {err:6.3f} {s['live']:6.3f} {s['spoof']:6.3f} {s['undecided']:6.3f}")
    return lines


def evidence_lines(trials: list[Trial], title: str) -> list[str]:
    """Medians of the parallax evidence at NORMAL, and how many sequences had any."""
    vs = [t.verdicts["NORMAL"] for t in trials if "NORMAL" in t.verdicts]
    with_pairs = [v for v in vs if v.parallax_pairs]
    if not with_pairs:
        return [f"  {title}: no sequence had a view change large enough to judge"]
    g = np.array([v.gain for v in with_pairs])
    a = np.array([v.agreement for v in with_pairs])
    return [f"  {title}: {len(with_pairs)}/{len(vs)} sequences with parallax evidence "
            f"(pairs per sequence median {np.median([v.parallax_pairs for v in with_pairs]):.0f}); "
            f"median gain {np.median(g):.2f} [{g.min():.2f}..{g.max():.2f}], "
            f"agreement {np.median(a):.2f} [{a.min():.2f}..{a.max():.2f}]; "
            f"blinks seen in {sum(v.blink_count > 0 for v in vs)}"]


def residual_lines(trials: list[Trial], title: str) -> list[str]:
    """Mesh-only vs texture departure from a homography over the evidence pairs: the
    mesh alone shows "parallax" on prints too; the texture does not."""
    pairs = [p for t in trials for p in t.pairs]
    if not pairs:
        return [f"  {title}: no evidence pairs"]
    pred = np.array([p.predicted for p in pairs])
    obs = np.array([p.observed for p in pairs])
    return [f"  {title}: {len(pairs)} pairs; mesh-only residual median {np.median(pred):.3f} "
            f"[p10 {np.percentile(pred, 10):.3f}, p90 {np.percentile(pred, 90):.3f}] IOD; "
            f"texture residual median {np.median(obs):.3f} [p10 {np.percentile(obs, 10):.3f}, "
            f"p90 {np.percentile(obs, 90):.3f}] IOD"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--photos", type=int, default=40, help="LFW photos for the synthetic sequences")
    ap.add_argument("--heads", type=int, default=24, help="of which rendered as moving 3-D heads")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    analyser = FaceAnalyser(AnalyserConfig(threads=2))
    photos = lfw_photos(args.photos, args.seed, args.data) + spoof_dev_photos(args.data)
    syn = synthetic_trials(analyser, photos, args.heads, args.seed)
    nuaa = nuaa_trials(analyser, args.data)
    by_kind = collections.defaultdict(list)
    for t in syn + nuaa:
        by_kind[(t.kind, t.live)].append(t)
    sections = [
        (("planar", False), "Synthetic planar warps of real photos (attack: tilted, moving print)"),
        (("head", True), "Rendered 3-D heads looking around (live proxy, synthetic)"),
        (("nuaa", False), "NUAA ImposterRaw per recording (real printed-photo attacks)"),
        (("nuaa", True), "NUAA ClientRaw per recording (real live people)"),
        (("nuaa-subject", False), "NUAA ImposterRaw per subject (its recordings one after the other)"),
    ]
    for key, title in sections:
        print("\n".join(rate_table(by_kind[key], title)))
        print("\n".join(evidence_lines(by_kind[key], "NORMAL evidence")))
        print("\n".join(residual_lines(by_kind[key], "residuals")))
    turns = by_kind[("turn-turn_left", True)] + by_kind[("turn-turn_right", True)]
    print("\n".join(rate_table(turns, "Rendered 3-D heads answering a turn challenge (HIGH live proxy)")))
    planar = by_kind[("planar", False)]
    spoofed = [t.name for t in planar if t.verdicts["NORMAL"].state == "live"]
    print(f"Planar sequences judged live at NORMAL: {spoofed or 'none'}")
    missed = [t.name + ":" + t.verdicts["NORMAL"].reason for t in by_kind[("head", True)]
              if t.verdicts["NORMAL"].state != "live"]
    print(f"Rendered heads not judged live at NORMAL: {missed or 'none'}")
    for t in turns:
        v = next(iter(t.high.values()))
        if v.state != "live":
            print(f"  turn {t.kind[5:]} {t.name}: {v.state} - {v.reason}")
    for t in by_kind[("nuaa", False)] + by_kind[("nuaa", True)]:
        v = t.verdicts["NORMAL"]
        if v.state != "undecided" or v.parallax_pairs:
            print(f"  NUAA {t.name} ({'live' if t.live else 'attack'}, {t.frames} frames): {v.state} - {v.reason}")
    print(f"Total time {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
