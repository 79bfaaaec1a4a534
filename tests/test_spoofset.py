"""The generated liveness test set (edge/spoofset): properties that make it a test of what it claims.

Real photos and the real walking video, the project's detector and mesh; rates are not
asserted here (the decision is being changed): only the set's physics and the
evaluation's structure.
"""
from __future__ import annotations

import dataclasses
import itertools

import cv2
import numpy as np
import pytest

from edge.analysis import motion_liveness as ml
from edge.spoofset import evaluate as ev
from edge.spoofset import render as rd
from edge.spoofset import screen as sc
from edge.spoofset import sequences as sq

DATA = rd.DATA
pytestmark = pytest.mark.skipif(not (DATA / "lfw-view1").is_dir(), reason="needs ../shared/data")


@pytest.fixture(scope="module")
def analyser():
    return sq.default_analyser()


@pytest.fixture(scope="module")
def attacks(analyser):
    """One sequence per attack type (seed 5)."""
    seqs = sq.attack_sequences(DATA, seed=5, per_attack=1, analyser=analyser)
    out = {}
    for s in seqs:
        out.setdefault(s.attack, s)
    return out


def _first_frames(seq, n):
    return list(itertools.islice(seq.frames(), n))


def test_every_attack_type_is_made(attacks):
    assert set(attacks) == set(sq.ATTACKS)
    for s in attacks.values():
        assert s.fps == sq.FPS and s.subject and s.source and s.name.startswith(s.attack)


def test_deterministic_for_a_seed(analyser, attacks):
    again = sq.attack_sequences(DATA, seed=5, per_attack=1, analyser=analyser, attacks=("print_bent", "screen_photo"))
    for s in again:
        a, b = _first_frames(s, 3), _first_frames(attacks[s.attack], 3)
        assert s.name == attacks[s.attack].name
        assert all(np.array_equal(x[0], y[0]) and x[1] == y[1] for x, y in zip(a, b))
    other = sq.attack_sequences(DATA, seed=6, per_attack=1, analyser=analyser, attacks=("print_bent",))
    assert not np.array_equal(_first_frames(other[0], 1)[0][0], _first_frames(attacks["print_bent"], 1)[0][0])


def test_frames_show_a_face_at_gate_size(analyser, attacks):
    for s in attacks.values():
        frames = _first_frames(s, 15)
        assert len(frames) == 15
        for img, ts in frames[::7]:
            assert img.shape == (480, 640, 3) and img.dtype == np.uint8
            heights = [f.height for f in analyser.analyse(img, 3, 1, frozenset())]
            # Intended 80-200 px (replays 80-160); tilt, bend and zoom move it by ~25 %.
            assert any(55 <= h <= 250 for h in heights), (s.name, ts, heights)


def _flat_screen(kind="tablet", grid=True, **kw):
    rng = np.random.default_rng(0)
    s = sc.draw_screen(rng, kind)
    return dataclasses.replace(s, grid=grid, glare=0.0, band_amp=0.0, display=(300, 400), face_px=150.0,
                               bezel=20, **kw)


def _row_spectrum(img, box):
    x0, y0, x1, y1 = box
    # One colour: the R, G, B stripes sit a third of a pixel apart, so in grey their
    # fundamental cancels (what is left is at 3x the pitch).
    g = img[y0:y1, x0:x1, 1].astype(np.float64)
    g = g - g.mean(axis=1, keepdims=True)
    return np.abs(np.fft.rfft(g * np.hanning(g.shape[1]), axis=1)).mean(axis=0), np.fft.rfftfreq(g.shape[1])


def test_screen_pixel_grid_aliases_into_moire():
    """Re-filming a display whose pixels are 0.23 camera px apart leaves energy at the
    alias of its grid (4.35 cycles/px -> 0.35) that the same content without the grid
    lacks. The face photo is smoothed (sigma 15 px) so its own texture does not fill the band."""
    photo = cv2.GaussianBlur(rd.load(sorted(DATA.joinpath("spoof-dev").glob("silentface_image_*.jpg"))[0]),
                             (0, 0), 15)
    cam = 0.23
    bg = np.full((480, 640, 3), 90, np.uint8)
    frames = {}
    for grid in (True, False):
        s = _flat_screen(grid=grid)
        content = sc.content_crop(photo, (150, 100, 350, 350), s)
        frames[grid] = sc.refilm(sc.display_emission(content, s), s, cam, sc.Pose(), bg, 0, None)
    box = (290, 200, 350, 280)            # inside the display area (286-354 x 194-286)
    with_grid, freqs = _row_spectrum(frames[True], box)
    without, _ = _row_spectrum(frames[False], box)
    alias = abs(1 / cam - round(1 / cam))
    band = (freqs > alias - 0.04) & (freqs < alias + 0.04)
    assert with_grid[band].max() > 3 * without[band].max(), (with_grid[band], without[band])


def test_screen_bezel_is_a_dark_edge_against_the_background():
    s = dataclasses.replace(_flat_screen(), bezel_level=0.03)
    content = np.full((400, 300, 3), 200, np.uint8)
    bg = np.full((480, 640, 3), 140, np.uint8)
    img = sc.refilm(sc.display_emission(content, s), s, 0.8, sc.Pose(), bg, 0, None).astype(float).mean(axis=2)
    outer, inner = sc.device_outline(s, 0.8, sc.Pose()), sc.device_outline(s, 0.8, sc.Pose(), display_only=True)
    y = 240
    x_out, x_in = int(outer[0, 0]), int(inner[0, 0])
    bezel = img[y, x_out + 3:x_in - 3].mean()
    assert x_in - x_out >= 10
    assert bezel < 0.5 * img[y, x_in + 10] and bezel < 0.6 * img[y, x_out - 10]


def test_screen_banding_rolls_between_frames():
    s = dataclasses.replace(_flat_screen(), band_amp=0.12, band_period=80.0, band_speed=20.0)
    content = np.full((400, 300, 3), 180, np.uint8)
    bg = np.full((480, 640, 3), 90, np.uint8)
    em = sc.display_emission(content, s)
    rows = [sc.refilm(em, s, 0.8, sc.Pose(), bg, i, None)[100:380, 300:340].astype(float).mean(axis=(1, 2))
            for i in (0, 1)]
    for r in rows:
        assert r.max() - r.min() > 8          # a band of 12 % is several code values deep
    assert np.argmin(rows[0][:80]) != np.argmin(rows[1][:80])
    assert np.abs(rows[0] - rows[1]).max() > 4


@pytest.mark.xfail(strict=True, reason="measured: through the holes the mesh reads the attacker's closed eyes "
                                         "at 0.86-0.96 of open (the detector needs < BLINK_CLOSE 0.73)")
def test_cutout_eye_blinks_dip_the_ear(analyser, attacks):
    ear = []
    for img, _ in _first_frames(attacks["print_cutout_eyes"], 40):
        f = analyser.analyse(img, 1, 1, frozenset({"landmarks"}))
        ear.append(np.mean(ml.eye_aspect_ratios(f[0].mesh)) if f else np.nan)
    ratio = np.asarray(ear) / ml.open_eye_baseline(ear)
    assert np.nanmin(ratio) < ml.BLINK_CLOSE


def test_evaluate_end_to_end_structure(analyser, attacks):
    """One short sequence per attack type (25 frames) through the Pipeline at every level."""
    short = [dataclasses.replace(s, frames=lambda s=s: itertools.islice(s.frames(), 25)) for s in attacks.values()]
    results = ev.evaluate(short, analyser)
    assert {r.attack for r in results} == set(sq.ATTACKS)
    for r in results:
        assert r.level in ev.LEVELS and r.final in ("live", "spoof", "undecided")
        assert r.frames >= 3 and r.duration <= 25 / sq.FPS
        for t in (r.first_live, r.first_spoof):
            assert t is None or 0 <= t <= r.duration
        assert (r.challenge is not None) == (r.level == "HIGH")
        assert (r.first_live is not None) == bool(r.live_reason)
    by_track = {(r.sequence, r.track_id) for r in results}
    assert len(results) == 3 * len(by_track)     # one result per level per track
    for level in ev.LEVELS:
        rows = ev.rate_rows(results, level)
        assert {x.group for x in rows} == set(sq.ATTACKS)
        for x in rows:
            assert 0 <= x.error <= 1 and abs(x.live + x.spoof + x.undecided - 1) < 1e-9


def test_no_print_or_photo_on_a_screen_passes_normal(analyser, attacks):
    """Issue 18's bar for prints: none passes the default level, also bent (the
    bent-sheet cosine holds them: agreement-only weights let one reach 4.5) and with
    cut-out eyes. Whole sequences; the full set's rates: scripts/liveness_attacks.py."""
    photo_attacks = [s for a, s in attacks.items() if a != "screen_replay"]
    results = ev.evaluate(photo_attacks, analyser, levels=("NORMAL",))
    assert {r.attack for r in results} == set(sq.ATTACKS) - {"screen_replay"}
    assert [(r.sequence, r.live_reason) for r in results if r.first_live is not None] == []
