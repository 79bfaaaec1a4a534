"""Motion liveness (blinks, 3-D parallax, challenges) on real photos with the real models.

Sequences come from scripts/motion_liveness_report.py's own generators: tilted-print
attacks (planar warps of real photos), rendered 3-D heads (live proxy) and the NUAA
recordings. The documented rates (docs/motion_liveness.md) come from the full report;
these tests run smaller sets of the same kinds and assert the behaviour.
"""
from __future__ import annotations

import importlib.util
import random
import re
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import lfw_image
from edge.analysis import motion_liveness as ml
from edge.analysis.face import Face
from edge.analysis.motion_liveness import Challenge, MotionLiveness, find_blinks

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "motion_liveness.md"


def _report_module():
    spec = importlib.util.spec_from_file_location("motion_liveness_report",
                                                  REPO / "scripts" / "motion_liveness_report.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look themselves up there
    spec.loader.exec_module(mod)
    return mod


report = _report_module()
STAMPS = [i / report.FPS for i in range(64)]


def face_of(analyser, img) -> Face:
    faces = analyser.analyse(img, 1, 1, report.STAGES)
    assert faces, "no face found"
    return faces[0]


def posed(yaw: float) -> Face:
    """A Face record with only a pose and a mesh: enough for the turn challenge."""
    return Face(box=np.array([0, 0, 100, 100.0]), score=1.0, kps5=np.zeros((5, 2)),
                mesh=np.zeros((468, 3)), yaw=yaw)


# --- Blink detection on EAR series -------------------------------------------------

def test_blink_detector_finds_a_dip_and_ignores_noise():
    rng = np.random.default_rng(0)
    # Open eyes at EAR 0.26 with 3 % frame-to-frame jitter (live NUAA frames stay
    # within 0.87-1.1 of their median), 300 frames: no blink.
    noise = 0.26 * (1 + 0.03 * rng.standard_normal(300))
    assert find_blinks(noise) == []
    # The same with a 3-frame dip to 0.62 of the open level (closed-eye photos read
    # 0.58-0.68 on this mesh): exactly one blink, where it was put.
    ear = noise.copy()
    ear[150:153] = 0.26 * np.array([0.8, 0.62, 0.78])
    blinks = find_blinks(ear)
    assert [(b.start, b.end) for b in blinks] == [(150, 152)]
    assert blinks[0].depth < ml.BLINK_CLOSE
    # A single closed frame is a blink (a fast blink at a low frame rate).
    ear = noise.copy()
    ear[80] = 0.26 * 0.6
    assert len(find_blinks(ear)) == 1


def test_blink_detector_rejects_what_is_not_a_blink():
    open_ = np.full(60, 0.26)
    # Eyes closed for 8 frames: longer than a blink.
    long_ = open_.copy()
    long_[30:38] = 0.15
    assert find_blinks(long_) == []
    # A dip that never reaches the closing threshold (0.8 of open).
    shallow = open_.copy()
    shallow[30:32] = 0.26 * 0.8
    assert find_blinks(shallow) == []
    # A dip with no open frame after it (the track ends closed).
    end = open_.copy()
    end[-2:] = 0.15
    assert find_blinks(end) == []
    # A dip next to a lost frame (NaN: no face or an unsteady face).
    lost = open_.copy()
    lost[30], lost[31] = np.nan, 0.15
    assert find_blinks(lost) == []
    # One eye only (a wink or a glitch on one side): the more-open eye stays open.
    wink = open_.copy()
    wink[30] = 0.17  # mean of 0.08 and 0.26
    assert len(find_blinks(wink)) == 1
    assert find_blinks(wink, both=np.full(60, 0.26)) == []


def test_blink_baseline_follows_a_slow_drift():
    # The user walks up to the camera and tilts their head: the EAR drifts from 0.30 to
    # 0.22 over 200 frames. Not a blink; a blink at the low end is still found.
    ear = np.linspace(0.30, 0.22, 200)
    assert find_blinks(ear) == []
    ear[180:182] = 0.14
    assert [(b.start, b.end) for b in find_blinks(ear)] == [(180, 181)]


# --- EAR and MAR on real photos ----------------------------------------------------

# Same person, eyes (nearly) closed vs open, picked by eye from the lowest-EAR LFW photos.
CLOSED_OPEN = [("Chris_Byrd", 2, 1), ("Tim_Henman", 15, 19), ("Jason_Kidd", 10, 4), ("Debra_Brown", 2, 1),
               ("Roseanne_Barr", 2, 3), ("Vince_Carter", 1, 2), ("Arnoldo_Aleman", 2, 1)]
# Same person, mouth closed vs wide open.
MOUTH_CLOSED_OPEN = [("Tommy_Robredo", 1, 2), ("Nathan_Lane", 2, 1), ("Rubens_Barrichello", 6, 9)]


@pytest.fixture(scope="module")
def eye_faces(analyser):
    return {(n, i): face_of(analyser, lfw_image(n, i)) for n, c, o in CLOSED_OPEN for i in (c, o)}


@pytest.fixture(scope="module")
def mouth_faces(analyser):
    return {(n, i): face_of(analyser, lfw_image(n, i)) for n, c, o in MOUTH_CLOSED_OPEN for i in (c, o)}


def test_ear_drops_on_closed_eyes(eye_faces):
    for name, closed, open_ in CLOSED_OPEN:
        c = ml.eye_aspect_ratio(eye_faces[(name, closed)].mesh)
        o = ml.eye_aspect_ratio(eye_faces[(name, open_)].mesh)
        assert 0.2 < o < 0.35, name
        # Measured 0.58-0.68: the mesh never closes the contour fully, hence BLINK_CLOSE.
        assert c / o < ml.BLINK_CLOSE, (name, c, o)


def test_mar_rises_on_an_open_mouth(mouth_faces):
    for name, closed, open_ in MOUTH_CLOSED_OPEN:
        assert ml.mouth_aspect_ratio(mouth_faces[(name, closed)].mesh) < 0.15, name
        assert ml.mouth_aspect_ratio(mouth_faces[(name, open_)].mesh) > ml.MOUTH_OPEN + 0.05, name


def _pair(name: str):
    return next(p for p in CLOSED_OPEN if p[0] == name)


def test_a_blink_made_of_real_photos_is_found_and_makes_the_track_live(eye_faces):
    # Eight open frames, one closed, five open: two photos of one person standing in for
    # a stream. Arnoldo_Aleman's two faces have the same size and nearly the same place
    # (0.24 IOD apart), so the face holds steady across the swap.
    name, closed, open_ = _pair("Arnoldo_Aleman")
    seq = [eye_faces[(name, open_)]] * 8 + [eye_faces[(name, closed)]] + [eye_faces[(name, open_)]] * 5
    acc = MotionLiveness("NORMAL")
    for i, f in enumerate(seq):
        acc.update(f, i / 10)
    v = acc.verdict()
    assert v.blink_count == 1 and v.state == "live", v
    # The same frames with the eyes open throughout: nothing to go on.
    acc = MotionLiveness("NORMAL")
    for i in range(14):
        acc.update(eye_faces[(name, open_)], i / 10)
    v = acc.verdict()
    assert v.blink_count == 0 and v.state == "undecided", v
    # Roseanne_Barr's closed-eye face is 46 % larger than her open-eye one: swapped in
    # for one frame it is a jump, not a blink (fast motion distorts the eye contour).
    name, closed, open_ = _pair("Roseanne_Barr")
    acc = MotionLiveness("NORMAL")
    seq = [eye_faces[(name, open_)]] * 8 + [eye_faces[(name, closed)]] + [eye_faces[(name, open_)]] * 5
    for i, f in enumerate(seq):
        acc.update(f, i / 10)
    assert acc.verdict().blink_count == 0


def test_a_long_blink_at_25_fps_counts(eye_faces):
    """Issue 18: at 25 fps a full blink is 3-10 frames; the frame limit follows the
    track's rate (BLINK_MAX_S), so a 6-frame (240 ms) closure is a blink there, while
    the same 6 frames at 10 fps (600 ms: eyes closed, not a blink) are not."""
    name, closed, open_ = _pair("Arnoldo_Aleman")
    seq = [eye_faces[(name, open_)]] * 12 + [eye_faces[(name, closed)]] * 6 + [eye_faces[(name, open_)]] * 12
    for fps, blinks in ((25.0, 1), (10.0, 0)):
        acc = MotionLiveness("NORMAL")
        ch = Challenge("blink", timeout=10.0)
        for i, f in enumerate(seq):
            acc.update(f, i / fps)
            ch.update(f, i / fps)
        assert acc.verdict().blink_count == blinks, fps
        assert ch.state == ("passed" if blinks else "pending"), fps   # HIGH's blink prompt alike


def _pair_evidence(gain, agreement, bent, iod_px=40.0):
    return ml.Parallax(predicted=0.05, observed=0.05 * gain, gain=gain, agreement=agreement, tracked=300,
                       iod_px=iod_px, agreement_bent=bent)


def test_pair_scores_and_the_spoof_verdict_need_strong_evidence():
    head = _pair_evidence(0.8, 0.6, 0.4)       # about a NUAA live person's medians
    flat = _pair_evidence(0.0, 0.0, 0.0)       # a tilted print
    bent = _pair_evidence(0.3, 0.3, 0.0)       # a bent print: non-planar, but a sheet
    assert ml.pair_score(head) >= ml.LIVE_SCORE["NORMAL"] > ml.pair_score(bent) > ml.SPOOF_SCORE >= ml.pair_score(flat)
    assert ml.parallax_state([head] * 3, ml.MIN_PAIRS["NORMAL"])[0] == "3d"
    assert ml.parallax_state([head] * 2, ml.MIN_PAIRS["NORMAL"])[0] == "none"
    assert ml.parallax_state([flat] * ml.MIN_PAIRS_PLANAR, 3)[0] == "planar"
    # Flat readings on too few pairs, or on a small face, are no verdict: a small real
    # face reads flat because its texture cannot show the depth.
    assert ml.parallax_state([flat] * (ml.MIN_PAIRS_PLANAR - 1), 3)[0] == "none"
    small = _pair_evidence(0.0, 0.0, 0.0, iod_px=ml.SPOOF_MIN_IOD_PX - 5)
    assert ml.parallax_state([small] * 20, 3)[0] == "none"


# --- Challenges --------------------------------------------------------------------

def test_turn_challenge_state_machine():
    ch = Challenge("turn_left")
    assert ch.prompt == ml.PROMPTS["turn_left"] and ch.state == "pending"
    # Start at yaw 2, turn: one frame past TURN_DEG is not enough, two are.
    for t, yaw in enumerate([2, 3, 8, 14, 18]):
        assert ch.update(posed(yaw), t * 0.1) == "pending"
    assert ch.update(posed(20), 0.5) == "passed"
    assert ch.update(posed(0), 0.6) == "passed"  # final
    # The opposite turn fails (a replay of the wrong recorded move).
    ch = Challenge("turn_left")
    states = [ch.update(posed(y), t * 0.1) for t, y in enumerate([0, -10, -16, -18])]
    assert states[-1] == "failed"
    # Mirrored frames flip the sign.
    ch = Challenge("turn_left", mirrored=True)
    states = [ch.update(posed(y), t * 0.1) for t, y in enumerate([0, -10, -16, -18])]
    assert states[-1] == "passed"
    # Nothing within the timeout: expired; a lost face in between resets the hold.
    ch = Challenge("turn_right", timeout=2.0)
    for t in range(20):  # 0, then -16 (one frame past the limit), then no face, ...
        ch.update([posed(0), posed(-16), None][t % 3], t * 0.1)
    assert ch.state == "pending"
    assert ch.update(posed(0), 2.5) == "expired"


def test_random_challenges_cover_all_kinds():
    rng = random.Random(1)
    kinds = {Challenge.random(rng).kind for _ in range(40)}
    assert kinds == set(ml.CHALLENGES)
    with pytest.raises(ValueError):
        Challenge("smile")
    acc = MotionLiveness("HIGH", rng=random.Random(2))
    assert acc.challenge is not None and acc.verdict().prompt == acc.challenge.prompt


def test_blink_and_mouth_challenges_on_real_photos(eye_faces, mouth_faces):
    name, closed, open_ = _pair("Tim_Henman")
    seq = [eye_faces[(name, open_)]] * 6 + [eye_faces[(name, closed)]] * 2 + [eye_faces[(name, open_)]] * 2
    acc = MotionLiveness("HIGH", challenge=Challenge("blink"))
    for i, f in enumerate(seq):
        acc.update(f, i / 10)
    v = acc.verdict()
    assert v.challenge_state == "passed" and v.state == "live", v
    name, closed, open_ = MOUTH_CLOSED_OPEN[0]
    ch = Challenge("open_mouth")
    states = [ch.update(f, i / 10) for i, f in enumerate(
        [mouth_faces[(name, closed)]] * 3 + [mouth_faces[(name, open_)]] * 2)]
    assert states == ["pending"] * 4 + ["passed"]
    # A photo of an open mouth never opens it further: expires.
    acc = MotionLiveness("HIGH", challenge=Challenge("open_mouth", timeout=1.0))
    for i in range(15):
        acc.update(mouth_faces[(name, open_)], i / 10)
    v = acc.verdict()
    assert v.challenge_state == "expired" and v.state == "undecided", v


# --- Parallax on image sequences ---------------------------------------------------

# 12 LFW photos + the 4 silentface photos + 1 NUAA live frame per subject: 21 prints.
PLANAR_PHOTOS = report.lfw_photos(12, seed=7) + report.spoof_dev_photos()


@pytest.fixture(scope="module")
def planar_verdicts(analyser):
    rng = np.random.default_rng(7)
    out = {}
    for path in PLANAR_PHOTOS:
        frames = report.planar_sequence(report.print_photo(report.load(path)), rng)
        trial = report.run_sequence(analyser, frames, STAMPS, path.name, "planar", False, challenges=("turn_left",))
        out[path.name] = trial
    return out


def test_tilted_prints_are_never_judged_live(planar_verdicts):
    """Full report: 0 of 49 planar sequences live at LOW/NORMAL (docs/motion_liveness.md).
    Here 21: all must be rejected, most of them positively as a flat surface."""
    states = {n: t.verdicts["NORMAL"].state for n, t in planar_verdicts.items()}
    assert all(t.faces >= 20 for t in planar_verdicts.values())
    assert [n for n, s in states.items() if s == "live"] == []
    assert [n for n, t in planar_verdicts.items() if t.verdicts["LOW"].state == "live"] == []
    assert [n for n, t in planar_verdicts.items() if t.high["turn_left"].state == "live"] == []
    assert sum(s == "spoof" for s in states.values()) >= 0.5 * len(states), states
    for t in planar_verdicts.values():
        v = t.verdicts["NORMAL"]
        if v.parallax_pairs:
            assert v.gain < 0.4 and v.parallax_score < ml.LIVE_SCORE["LOW"], (t.name, v)  # gain measured <= 0.12


@pytest.fixture(scope="module")
def head_models(analyser):
    rng = np.random.default_rng(3)
    models = []
    for path in report.lfw_photos(12, seed=9)[:4]:
        m = report.head_base(analyser, report.print_photo(report.load(path)), rng)
        assert m is not None
        models.append((path.name, m))
    return models


def test_rendered_3d_heads_looking_around_are_live(analyser, head_models):
    rng = np.random.default_rng(4)
    for name, model in head_models:
        trial = report.run_sequence(analyser, report.head_sequence(model, rng), STAMPS, name, "head", True,
                                    challenges=())
        v = trial.verdicts["NORMAL"]
        assert v.state == "live" and v.gain > 0.5 and v.parallax_score >= ml.LIVE_SCORE["NORMAL"], (name, v)


def test_turn_challenge_passes_on_a_rendered_turn_and_fails_the_other_way(analyser, head_models):
    rng = np.random.default_rng(5)
    name, model = head_models[1]
    frames = report.turn_sequence(model, rng, "turn_left")
    trial = report.run_sequence(analyser, frames, STAMPS, name, "turn", True,
                                challenges=("turn_left", "turn_right"), levels=())
    assert trial.high["turn_left"].state == "live", trial.high["turn_left"]
    assert trial.high["turn_left"].challenge_state == "passed"
    assert trial.high["turn_right"].challenge_state == "failed"
    assert trial.high["turn_right"].state == "spoof"


def test_a_still_face_is_undecided(analyser):
    """No viewpoint change, no blink: no evidence either way (a live user holding still
    or a print held still look the same)."""
    rng = np.random.default_rng(6)
    img = lfw_image("Aaron_Sorkin", 1)
    img = cv2.resize(img, (300, 300))
    base = report.background(rng)
    base[90:390, 170:470] = img
    frames = [report.camera_noise(base, rng) for _ in range(20)]
    trial = report.run_sequence(analyser, frames, STAMPS, "still", "still", True, challenges=())
    for level in ("LOW", "NORMAL"):
        v = trial.verdicts[level]
        assert v.state == "undecided" and v.parallax_pairs == 0 and np.isnan(v.planarity), v


# --- NUAA --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def nuaa(analyser):
    return report.nuaa_trials(analyser, challenges=())


def test_nuaa_print_attacks_are_never_live_and_live_people_never_spoof(nuaa):
    attacks = [t for t in nuaa if not t.live]
    live = [t for t in nuaa if t.live and t.kind == "nuaa"]
    assert len([t for t in attacks if t.kind == "nuaa"]) == 40 and len(live) == 5
    for level in ("LOW", "NORMAL"):
        assert [t.name for t in attacks if t.verdicts[level].state == "live"] == []
        assert [t.name for t in live if t.verdicts[level].state == "spoof"] == []
    # Documented: 3 of the 5 live recordings show enough head movement and parallax to
    # be accepted; the others are undecided (they sit still).
    assert sum(t.verdicts["NORMAL"].state == "live" for t in live) >= 2


# --- Documentation -----------------------------------------------------------------

def test_documented_constants_match_the_code():
    text = DOC.read_text(encoding="utf-8")
    for name in ("BLINK_CLOSE", "BLINK_OPEN", "BLINK_MAX_FRAMES", "BLINK_BOTH", "PREDICTED_MIN", "PARALLAX_MIN_PX",
                 "PAIR_BIAS", "SPOOF_SCORE", "SPOOF_MIN_IOD_PX", "MIN_PAIRS_PLANAR", "TRACK_DT", "TURN_DEG", "MOUTH_OPEN", "MOUTH_RISE", "CHALLENGE_TIMEOUT"):
        m = re.search(rf"`{name}`\s*\|\s*(-?[0-9.]+)", text)
        assert m, f"{name} not in the constants table of {DOC.name}"
        assert float(m.group(1)) == pytest.approx(float(getattr(ml, name))), name
