"""The liveness test set as records: bona fide recordings and attacks made from real photos and video.

Every attack sequence carries its own seed (from the set's seed, its attack type and
index), so `frames()` renders the same frames on every call, lazily: a 75-frame
sequence is 69 MB of frames, never held as a whole.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from edge.analysis import liveness_eval as le
from edge.spoofset import render as rd
from edge.spoofset import replay
from edge.spoofset import screen as sc

ATTACKS = ("print_tilt", "print_bent", "print_cutout_eyes", "screen_photo", "screen_replay")
FPS = 25.0                      # the camera: frames at 25 fps, as a gate camera streams
SECONDS = (2.0, 3.0)            # per sequence (the brief: 2-3 s; a loop decides within 6 s)
FACE_PX = (80.0, 200.0)         # face box height in the camera: a person 0.5-1.3 m from a gate camera
REPLAY_FACE_PX = (80.0, 160.0)  # a replayed close-up: the device must still fit the frame
STAGES = frozenset({"landmarks"})


@dataclass(frozen=True)
class SpoofSequence:
    name: str        # unique and readable: "print_bent/lfw:Aaron_Peirsol/0"
    attack: str      # "live" (bona fide) or one of ATTACKS
    subject: str     # the person (for subject-disjoint splits when weights are fitted)
    source: str      # the real photo/video it was made from
    fps: float
    frames: Callable[[], Iterator[tuple[np.ndarray, float]]]  # (BGR frame, seconds), made lazily


# --- Bona fide -----------------------------------------------------------------------

def live_sequences(data: Path = rd.DATA) -> list[SpoofSequence]:
    """The walking video as it is (one sequence; each of its tracks is a presentation)
    and NUAA's ClientRaw recordings (grouped as liveness_eval.nuaa_sequences)."""
    clip = data / "video" / "walking_people.mp4"
    out = [SpoofSequence("live/walking_people", "live", "walking_people", str(clip), FPS,
                         functools.partial(le.video_frames, clip))]
    for name, live, items in le.nuaa_sequences(data / "spoof-dev" / "nuaa"):
        if live:
            out.append(SpoofSequence(f"live/nuaa:{name}", "live", f"nuaa:{name.split('_')[0]}",
                                     str(items[0][0].parent), le.NUAA_FPS, functools.partial(le.file_frames, items)))
    return out


# --- Attack sources ------------------------------------------------------------------

@dataclass(frozen=True)
class Photo:
    path: Path
    subject: str
    box: tuple[float, float, float, float]
    mesh: np.ndarray


@functools.lru_cache(maxsize=1)
def default_analyser():
    from edge.analysis.app import AnalyserConfig, FaceAnalyser
    return FaceAnalyser(AnalyserConfig(threads=2))


def _subject(path: Path) -> str:
    if "lfw" in str(path):
        return f"lfw:{path.parent.name}"
    if "ClientRaw" in str(path):
        return f"nuaa:{path.parent.name}"
    return f"silentface:{path.stem.rsplit('_', 1)[-1]}"


_FACES: dict[Path, tuple | None] = {}   # photo -> (box, mesh): kept in memory for the process only


def source_photos(analyser, data: Path, seed: int, n_lfw: int) -> list[Photo]:
    """LFW photos (150 px: a low-resolution print), one NUAA live frame per subject
    (640x480) and the silentface photos, each with its largest face (box, mesh); photos
    in which no face is found are left out."""
    out = []
    for path in rd.lfw_photos(n_lfw, seed, data) + rd.spoof_dev_photos(data):
        if path not in _FACES:
            faces = analyser.analyse(rd.load(path), 1, 1, STAGES)
            ok = faces and faces[0].mesh is not None
            _FACES[path] = (tuple(float(v) for v in faces[0].box), faces[0].mesh) if ok else None
        if _FACES[path] is not None:
            out.append(Photo(path, _subject(path), *_FACES[path]))
    return out


def _pick(photos: list[Photo], rng: np.random.Generator, n: int) -> list[Photo]:
    """n photos: about two thirds LFW, the rest NUAA and silentface (the larger photos)."""
    lfw = [p for p in photos if p.subject.startswith("lfw")]
    other = [p for p in photos if not p.subject.startswith("lfw")]
    k_other = min(len(other), n // 3)
    picks = [other[i] for i in rng.choice(len(other), k_other, replace=False)] if k_other else []
    picks += [lfw[i] for i in rng.choice(len(lfw), min(n - k_other, len(lfw)), replace=False)]
    return picks


def _stamped(frames) -> Iterator[tuple[np.ndarray, float]]:
    for i, f in enumerate(frames):
        yield f, i / FPS


# --- Attack renderers (each: rng -> frames) ----------------------------------------

def _size(photo: Photo, rng: np.random.Generator, img: np.ndarray) -> tuple[np.ndarray, float, int]:
    """The photo as printed and the camera px per print px that makes the face FACE_PX tall."""
    printed = rd.print_photo(img)
    k = printed.shape[0] / img.shape[0]
    target = rng.uniform(*FACE_PX)
    n = int(rng.integers(int(SECONDS[0] * FPS), int(SECONDS[1] * FPS) + 1))
    return printed, target / ((photo.box[3] - photo.box[1]) * k), n


def _print_tilt(photo: Photo, seed) -> Iterator[tuple[np.ndarray, float]]:
    rng = np.random.default_rng(seed)
    printed, mag, n = _size(photo, rng, rd.load(photo.path))
    # The swing spans the whole sequence: one slow wave over 2-3 s, up to 25 deg.
    yield from _stamped(rd.tilted_print_sequence(printed, rng, n, mag))


def _print_bent(photo: Photo, seed) -> Iterator[tuple[np.ndarray, float]]:
    rng = np.random.default_rng(seed)
    printed, mag, n = _size(photo, rng, rd.load(photo.path))
    yield from _stamped(rd.bent_print_sequence(printed, rng, n, mag, FPS))


# The attackers behind cut-out prints: LFW people photographed with eyes closed and open
# (name, closed photo, open photo), the pairs tests/test_motion_liveness.py checks read
# an EAR 0.58-0.68 of open: a drawn lid does not (the mesh reads it open, measured).
ATTACKER_EYES = (("Chris_Byrd", 2, 1), ("Tim_Henman", 15, 19), ("Jason_Kidd", 10, 4), ("Debra_Brown", 2, 1),
                 ("Roseanne_Barr", 2, 3), ("Vince_Carter", 1, 2), ("Arnoldo_Aleman", 2, 1))


@functools.lru_cache(maxsize=32)
def _lfw_face(data: Path, name: str, idx: int):
    img = rd.load(data / "lfw-view1" / "images" / name / f"{name}_{idx:04d}.jpg")
    return img, default_analyser().analyse(img, 1, 1, STAGES)[0].mesh


def _cutout(photo: Photo, seed, moving: bool, attacker: tuple[str, int, int],
            data: Path) -> Iterator[tuple[np.ndarray, float]]:
    rng = np.random.default_rng(seed)
    img = rd.load(photo.path)
    printed, mag, n = _size(photo, rng, img)
    mesh = np.asarray(photo.mesh)[:, :2] * (printed.shape[0] / img.shape[0])
    name, closed, open_ = attacker
    eyes = tuple(rd.attacker_eyes(printed.shape, mesh, *_lfw_face(data, name, i)) for i in (open_, closed))
    yield from _stamped(rd.cutout_eyes_sequence(printed, mesh, eyes, rng, n, mag, moving, FPS))


def _poses(rng: np.random.Generator, n: int) -> list[sc.Pose]:
    """A device held up to the camera: 1-5 deg of slow tilt (the attacker aims it), a
    0.2-0.8 deg tremor, 3-15 px of drift, and a start offset within +-60 / 40 px."""
    ox, oy = rng.uniform(-60, 60), rng.uniform(-40, 40)
    return [sc.Pose(y, p, r, ox + tx, oy + ty, s) for y, p, r, tx, ty, s in
            rd.hand_motion(rng, n, FPS, tilt=rng.uniform(1, 5), shake=rng.uniform(0.2, 0.8),
                           drift=rng.uniform(3, 15))]


def _screen_photo(photo: Photo, seed) -> Iterator[tuple[np.ndarray, float]]:
    rng = np.random.default_rng(seed)
    img = rd.load(photo.path)
    screen = sc.draw_screen(rng)
    cam = rng.uniform(*FACE_PX) / screen.face_px
    screen = sc.fit_to_frame(screen, cam)
    n = int(rng.integers(int(SECONDS[0] * FPS), int(SECONDS[1] * FPS) + 1))
    tex = sc.device_texture(sc.display_emission(sc.content_crop(img, photo.box, screen), screen), screen, cam)
    bg = rd.background(rng)
    for i, pose in enumerate(_poses(rng, n)):
        yield sc.refilm(None, screen, cam, pose, bg, i, rng, texture=tex), i / FPS


def _screen_replay(clip: Path, track: replay.FaceTrack, seed) -> Iterator[tuple[np.ndarray, float]]:
    """The clip played on a device, zoomed so the tracked face is a close-up; the camera
    films it frame for frame (both 25 fps)."""
    rng = np.random.default_rng(seed)
    screen = sc.draw_screen(rng, content_aspect=None)
    cam = rng.uniform(*REPLAY_FACE_PX) / screen.face_px
    screen = sc.fit_to_frame(screen, cam)
    grid = sc.grid_cells(screen, cam)
    cells = sc.cells_screen(screen, grid)
    n = min(len(track.boxes), int(SECONDS[1] * FPS))
    poses = _poses(rng, n)
    bg = rd.background(rng)
    for i, (frame, _) in enumerate(le.video_frames(clip)):
        k = i - track.start
        if k < 0:
            continue
        if k >= n:
            break
        em = sc.display_emission(sc.content_crop(frame, tuple(track.boxes[k]), cells), cells)
        tex = sc.video_texture(em, grid)
        yield sc.refilm(None, screen, cam, poses[k], bg, k, rng, texture=tex), k / FPS


def _seed(seed: int, attack: str, k: int) -> np.random.SeedSequence:
    return np.random.SeedSequence([seed, ATTACKS.index(attack), k])


def attack_sequences(data: Path = rd.DATA, seed: int = 0, per_attack: int = 12, analyser=None,
                     attacks=ATTACKS) -> list[SpoofSequence]:
    """per_attack sequences of each print/screen-photo attack (cut-out eyes: alternately
    held still and moved) and one screen replay per person large enough in the walking
    video (the detector runs over the clip once). Deterministic for a seed."""
    analyser = analyser or default_analyser()
    photos = source_photos(analyser, data, seed, n_lfw=max(2 * per_attack, 12)) if set(attacks) - {
        "screen_replay"} else []
    out = []
    for attack in attacks:
        if attack == "screen_replay":
            continue
        rng = np.random.default_rng([seed, ATTACKS.index(attack)])   # picks independent of the other attacks
        for k, p in enumerate(_pick(photos, rng, per_attack)):
            s = _seed(seed, attack, k)
            if attack == "print_cutout_eyes":
                moving = bool(k % 2)
                attacker = ATTACKER_EYES[int(rng.integers(len(ATTACKER_EYES)))]
                make = functools.partial(_cutout, p, s, moving, attacker, data)
                label = f"{attack}{'_moving' if moving else '_still'}"
            else:
                make = functools.partial({"print_tilt": _print_tilt, "print_bent": _print_bent,
                                          "screen_photo": _screen_photo}[attack], p, s)
                label = attack
            out.append(SpoofSequence(f"{label}/{p.subject}/{k}", attack, p.subject, str(p.path), FPS, make))
    if "screen_replay" in attacks:
        clip = data / "video" / "walking_people.mp4"
        for t in replay.face_tracks(analyser, replay.clip_frames(clip)):
            out.append(SpoofSequence(f"screen_replay/walk:person{t.person}/{t.person}", "screen_replay",
                                     f"walk:person{t.person}", str(clip), FPS,
                                     functools.partial(_screen_replay, clip, t, _seed(seed, "screen_replay", t.person))))
    return out
