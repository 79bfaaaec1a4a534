"""Open-set identification on LFW view 1: FNIR and FPIR per decision rule and library size.

Single photos, one a person, through the real FaceLibrary (SQLite store + HNSW index):
every 10th person (by name) is a stranger, never enrolled; libraries of 100 / 1,000 /
all 2,780 other people (a fixed shuffle) enrol each person's first photo and are probed
with the enrolled people's other photos (genuine) and the strangers' photos.

Single photos at ~5,000 faces, leave-one-out by exact search: the gallery is every photo
of view 1 (4,991 faces of 3,094 people); every photo is a stranger probe against
everyone else's photos (~4,990 faces) and, when its person has another photo, a genuine
probe against every photo but itself. A 5,000-face site measured directly, with several
photos for some people (1.6 a person on average).

--loop N: the capture loop (the real Pipeline: detection, tracking, quality gating,
embedding of the best frames; liveness off) on recorded sequences, each photo walking
into a 640x480 frame (edge/loop/replay.py): N enrolled people's second photos and N
held-out strangers' photos, recorded once. Every rule is replayed on the frames the loop
would have searched, against (a) the pool with one photo each and (b) every photo of view
1, leave-one-out as above; every track is a stranger too, its own person left out.

FPIR: stranger probes (tracks) named as someone. FNIR: genuine probes not named as
themselves (no one, or someone else: "wrong"). "predicted": the calibrated FAR(score)
x faces searched, the rule the loop's derived threshold rests on (edge/loop/open_set.py).

    python scripts/eval_open_set.py [--loop 487]   # embeddings and tracks cached in var/calibration/
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import calibrate_scores as cal  # noqa: E402  (its cached LFW embeddings and identity fixes)

from edge.analysis.app import AnalyserConfig, FaceAnalyser  # noqa: E402
from edge.loop.decision import DecisionRules  # noqa: E402
from edge.library.library import FaceLibrary  # noqa: E402
from edge.library.scores import scale_for, score_to_far  # noqa: E402
from edge.library.store import FaceRecord  # noqa: E402
from edge.loop.open_set import OpenSetTarget, expected_false_id, threshold, track_draws  # noqa: E402
from edge.loop.replay import (  # noqa: E402
    Gallery, TrackRecord, fused_embeddings, record, record_tracks, replay, top_hits, usable,
)
from edge.thresholds import LOOP_MAX_POSE_DEG  # noqa: E402
from edge.models.manifest import default_models_dir, load_manifest  # noqa: E402

STRANGER_EVERY = 10
MARGIN = 5.0


def split(people: list[str]) -> tuple[list[str], list[str]]:
    """(pool, strangers): every STRANGER_EVERY-th person by name is a stranger; the pool
    is shuffled with a fixed seed so a 100-person library is a random subset."""
    names = sorted(set(people))
    strangers = names[::STRANGER_EVERY]
    pool = [n for i, n in enumerate(names) if i % STRANGER_EVERY]
    np.random.default_rng(0).shuffle(pool)
    return pool, strangers


@contextmanager
def scratch_library():
    """A real FaceLibrary in a temporary folder (left empty, the recorder searches nobody:
    it keeps embeddings, its hits do not matter)."""
    with tempfile.TemporaryDirectory(prefix="eval-open-set-") as tmp:
        library = FaceLibrary(Path(tmp) / "lib")
        try:
            yield library
        finally:
            library.close()


def top_two(library: FaceLibrary, emb: np.ndarray) -> tuple[str | None, float, float]:
    """(best person, its score, the second person's score) from the library search."""
    hits = library.search(emb, None, 2)
    if not hits:
        return None, 0.0, 0.0
    score = scale_for("sface").score
    second = score(hits[1].similarity) if len(hits) > 1 else 0.0
    return hits[0].user_id, score(hits[0].similarity), second


def sizes(faces: int, at_faces: int) -> list[tuple[int, str]]:
    """(faces, label) the derived rules are set for: this library's size, and a bigger
    site's when this library is well below it."""
    return [(faces, "")] + ([(at_faces, f" for {at_faces:,} faces")] if faces < 0.8 * at_faces else [])


def rules(faces: int, at_faces: int) -> list[tuple[str, float, float, float | None]]:
    """(name, score, margin, predicted FPIR or None) of each decision rule at this size;
    the derived rules also as they would be set at `at_faces` faces (a bigger site)."""
    out = [("score > 80", 80.0, 0.0, faces), ("score > 80, margin 5", 80.0, MARGIN, faces),
           ("score > 90", 90.0, 0.0, faces)]
    for n, where in sizes(faces, at_faces):
        for target in (1e-2, 1e-3):
            s = threshold(OpenSetTarget(false_id_per_track=target), n).score
            name = f"derived 1e-{round(-np.log10(target))}{where} (>{s:.2f})"
            out += [(name, s, 0.0, faces)] + [(f"{name}, margin {m:g}", s, m, faces) for m in (2.0, MARGIN)]
    return [(n, s, m, expected_false_id(score_to_far(s), f) if not m else None) for n, s, m, f in out]


def evaluate(name: str, enrol: dict[str, list[int]], genuine: list[tuple[str, int]], strangers: list[int],
             emb: np.ndarray, model: str, at_faces: int) -> None:
    with scratch_library() as library:
        library.register_many([(["g"], person, "", FaceRecord(f"t{i}", emb[i], model), "append")
                               for person, rows in enrol.items() for i in rows])
        faces = library.store.searched_face_count(None)
        gen = [(person, *top_two(library, emb[i])) for person, i in genuine]
        imp = [top_two(library, emb[i]) for i in strangers]
    print_single(name, len(enrol), faces, gen, imp, at_faces)


def photos_header(others: np.ndarray) -> str:
    """The FNIR-by-enrolled-photos columns, when some people have several photos."""
    return f" {'1 other':>8s} {'2+ other':>8s}" if (others > 1).any() else ""


def by_photos(missed: np.ndarray, others: np.ndarray) -> str:
    """FNIR of probes whose person has 1, and 2 or more, other photos enrolled."""
    return f" {missed[others == 1].mean():8.2%} {missed[others > 1].mean():8.2%}" if (others > 1).any() else ""


def print_single(name: str, people: int, faces: int, gen: list[tuple], imp: list[tuple], at_faces: int) -> None:
    """gen: (person, best person, best score, second score[, their other photos enrolled]);
    imp: (best person, best score, second score)."""
    others = np.array([g[4] if len(g) > 4 else 1 for g in gen])
    print(f"\n{name}: {people} people, {faces} faces; {len(gen)} genuine probes, {len(imp)} stranger probes")
    print(f"  {'rule':52s} {'FPIR':>7s} {'predicted':>9s} {'FNIR':>7s} {'wrong person':>12s}" + photos_header(others))
    for rule, s, m, predicted in rules(faces, at_faces):
        def named(best, second):
            return best > s and best - second >= m
        fpir = np.mean([named(b, sec) for _, b, sec in imp])
        missed = np.array([not (named(g[2], g[3]) and g[1] == g[0]) for g in gen])
        wrong = np.mean([named(g[2], g[3]) and g[1] != g[0] for g in gen])
        pred = f"{predicted:9.2%}" if predicted is not None else " " * 9
        print(f"  {rule:52s} {fpir:7.2%} {pred} {missed.mean():7.2%} {wrong:12.2%}{by_photos(missed, others)}")


def leave_one_out(rows: dict[str, list[int]], emb: np.ndarray, at_faces: int) -> None:
    """Every photo against every other person's photos (stranger) and every other photo (genuine)."""
    gallery = Gallery.of(rows, emb)
    person = {i: p for p, r in rows.items() for i in r}
    gen, imp = [], []
    for lo in range(0, gallery.faces, 500):
        probes = [int(i) for i in gallery.rows[lo:lo + 500]]
        strangers = gallery.person_scores(emb[probes], gallery.leave_out([rows[person[i]] for i in probes]))
        imp += [(h[0].user_id, h[0].score, h[1].score) for h in top_hits(strangers, gallery.people)]
        genuine = gallery.person_scores(emb[probes], gallery.leave_out([[i] for i in probes]))
        gen += [(person[i], h[0].user_id, h[0].score, h[1].score, len(rows[person[i]]) - 1)
                for i, h in zip(probes, top_hits(genuine, gallery.people)) if len(rows[person[i]]) > 1]
    print_single("every photo, leave-one-out", len(rows), gallery.faces - 1, gen, imp, at_faces)


# -- the loop on recorded sequences ----------------------------------------------------

def loop_rules(faces: int, at_faces: int) -> list[tuple[str, DecisionRules]]:
    """(name, rules) of the loop rules compared."""
    out = [("score 80, margin 5, 2 votes (the old loop)", DecisionRules(80.0, MARGIN, 2, fused=False))]
    for n, where in sizes(faces, at_faces):
        for target in (1e-2, 1e-3):
            for how, fused in (("2 votes", False), ("2+ fused", True)):
                s = threshold(OpenSetTarget(false_id_per_track=target), n, draws=track_draws(fused)).score
                out += [(f"1e-{round(-np.log10(target))}{where} (>{s:.2f}), {how}, margin {m:g}",
                         DecisionRules(s, m, 2, fused=fused)) for m in (2.0, MARGIN)]
    return out


def track_scores(tracks: list[TrackRecord], gallery: Gallery, leave: list[list[int]], max_pose: float,
                 min_goodness: float) -> list[tuple[np.ndarray | None, np.ndarray | None]]:
    """Per track (frames, running fused) x people scores over the frames the loop would search."""
    out = []
    for t, rows in zip(tracks, leave):
        keep = usable(t, max_pose, min_goodness)
        if not keep:
            out.append((None, None))
            continue
        e = np.stack(t.embeddings)[keep]
        mask = gallery.leave_out([rows] * len(e))
        out.append((gallery.person_scores(e, mask), gallery.person_scores(fused_embeddings(e), mask)))
    return out


def print_loop(tracks: list[TrackRecord], gallery: Gallery, genuine: list[int], rows: dict[str, list[int]],
               title: str, at_faces: int, max_pose: float, min_goodness: float) -> None:
    """FPIR / FNIR of every loop rule: `genuine` indexes the tracks whose person is
    enrolled; every track is also a stranger probe with its own person left out."""
    gen = track_scores([tracks[k] for k in genuine], gallery, [[tracks[k].row] for k in genuine], max_pose,
                       min_goodness)
    imp = track_scores(tracks, gallery, [rows[t.who] for t in tracks], max_pose, min_goodness)
    no_frame = np.mean([s is None for s, _ in gen])
    faces = gallery.faces - 1
    print(f"\nthe loop, {title}: ~{faces} faces of {len(gallery.people)} people; {len(gen)} enrolled people's "
          f"tracks, {len(imp)} stranger tracks; pose <= {max_pose:g} deg, goodness >= {min_goodness:g}: "
          f"{no_frame:.1%} of enrolled tracks have no frame to search")
    # FNIR by the enrolled person's photos in the gallery (other than the track's own)
    others = np.array([sum(r in gallery.position and r != tracks[k].row for r in rows[tracks[k].who])
                       for k in genuine])
    print(f"  {'rule (max_frames 6)':50s} {'FPIR':>13s} {'predicted':>9s} {'FNIR':>7s} {'wrong':>6s}"
          + photos_header(others))
    for name, rules in loop_rules(faces, at_faces):
        def decide_on(scores):
            s = scores[1] if rules.fused else scores[0]
            return None if s is None else replay(top_hits(s, gallery.people), rules)
        named = sum((d := decide_on(s)) is not None and d.kind == "recognised" for s in imp)
        got = [decide_on(s) for s in gen]
        who = [tracks[k].who for k in genuine]
        missed = np.array([not (d is not None and d.kind == "recognised" and d.hit.user_id == w)
                           for w, d in zip(who, got)])
        wrong = np.mean([d is not None and d.kind == "recognised" and d.hit.user_id != w for w, d in zip(who, got)])
        predicted = expected_false_id(score_to_far(rules.match_score), faces, track_draws(rules.fused))
        print(f"  {name:50s} {named / len(imp):6.2%} ({named:4d}) {predicted:9.2%} {missed.mean():7.2%} "
              f"{wrong:6.2%}{by_photos(missed, others)}")


TRACKS = cal.CACHE.parent / "open_set_tracks.npz"   # recorded once; delete to record again


def recorded(todo: list[tuple[str, int]], photos, model: str) -> list[TrackRecord]:
    """The tracks of these (person, photo row) sequences, from the cache when it holds them."""
    key = np.array([f"{p}:{i}" for p, i in todo] + [model])
    if TRACKS.exists():
        z = np.load(TRACKS, allow_pickle=False)
        if np.array_equal(z["key"], key):
            cut = np.cumsum(z["frames"])[:-1]
            return [TrackRecord(p, i, list(e), list(g), list(q)) for (p, i), e, g, q in
                    zip(todo, np.split(z["emb"], cut), np.split(z["goodness"], cut), np.split(z["pose"], cut))]
    with scratch_library() as library:
        tracks = record_tracks(FaceAnalyser(AnalyserConfig(threads=2)), library,
                               [(p, i, photos[i][1].read_bytes()) for p, i in todo])
    TRACKS.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(TRACKS, key=key, frames=[len(t.embeddings) for t in tracks],
                        emb=np.concatenate([np.reshape(t.embeddings, (-1, 128)) for t in tracks]),
                        goodness=np.concatenate([t.goodness for t in tracks]),
                        pose=np.concatenate([t.pose for t in tracks]))
    return tracks


def run_loop(n: int, rows: dict[str, list[int]], pool: list[str], strangers: list[str], photos, emb: np.ndarray,
             model: str, at_faces: int) -> None:
    """Record N enrolled people's and N strangers' tracks once; replay them against libraries
    of 100, 1,000 and all people of the pool (one photo each) and every photo of view 1."""
    enrolled = [p for p in pool if len(rows[p]) > 1][:n]
    todo = [(p, rows[p][1]) for p in enrolled] + [(p, i) for p in strangers for i in rows[p]][:n]
    tracks = recorded(todo, photos, model)
    genuine = list(range(len(enrolled)))
    for size in (100, 1000):   # the genuine tracks of the people these libraries hold
        small = Gallery.of({p: rows[p][:1] for p in pool[:size]}, emb)
        inside = [k for k in genuine if tracks[k].who in set(pool[:size])]
        print_loop(tracks, small, inside, rows, f"{size} people, one photo each", at_faces, 30.0, 0.2)
    one = Gallery.of({p: rows[p][:1] for p in pool}, emb)
    every = Gallery.of(rows, emb)
    for pose in (20.0, 30.0):
        print_loop(tracks, one, genuine, rows, "the pool, one photo each", at_faces, pose, 0.2)
    print_loop(tracks, one, genuine, rows, "the pool, one photo each, a stricter goodness floor", at_faces, 30.0, 0.4)
    print_loop(tracks, every, genuine, rows, "every photo, leave-one-out", at_faces, 30.0, 0.2)


def video_strangers(path: Path, rows: dict[str, list[int]], emb: np.ndarray, min_face_px: int) -> None:
    """Real video: every track of people walking toward a camera, none of them enrolled,
    against every photo of view 1 (the loop as configured but for min_face_px)."""
    cap, frames = cv2.VideoCapture(str(path)), []
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    while (got := cap.read())[0]:
        frames.append((got[1], len(frames) / fps))
    with scratch_library() as library:
        tracks = record(FaceAnalyser(AnalyserConfig(threads=2)), library, frames, min_face_px)
    gallery = Gallery.of(rows, emb)
    scores = track_scores(tracks, gallery, [[] for _ in tracks], LOOP_MAX_POSE_DEG, 0.2)
    searched = sum(s is not None for s, _ in scores)
    print(f"\nreal video {path.name} (min_face_px {min_face_px}): {len(tracks)} stranger tracks, {searched} with a "
          f"frame to search, against {gallery.faces} faces")
    for name, rules in loop_rules(gallery.faces, gallery.faces):
        named = sum((d := None if s[0] is None else replay(top_hits(s[1] if rules.fused else s[0], gallery.people),
                                                           rules)) is not None and d.kind == "recognised"
                    for s in scores)
        print(f"  {name:50s} named {named} of {len(tracks)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=cal.DEFAULT_DATA)
    ap.add_argument("--sizes", default="100,1000,all", help="library sizes in people (all: the whole pool)")
    ap.add_argument("--loop", type=int, default=0, metavar="N",
                    help="also run the loop on N recorded stranger and N enrolled-person sequences")
    ap.add_argument("--video", type=Path, nargs="?", const=cal.DEFAULT_DATA.parent / "video" / "walking_people.mp4",
                    default=None, help="also run the loop on a real video of strangers (default: the shared clip)")
    ap.add_argument("--video-min-face-px", type=int, default=28,
                    help="the clip's faces are 32-35 px: below the loop's default min_face_px 40")
    ap.add_argument("--at-faces", type=int, default=5000,
                    help="also apply the derived rules as set for a library this size")
    args = ap.parse_args()
    model = load_manifest(default_models_dir())["embedder"].file
    images = args.data / "images"
    photos, emb, found = cal.load_embeddings(images, "sface", model, refresh=False, threads=2)
    person = [cal.identity(images, folder, path) for folder, path in photos]
    rows: dict[str, list[int]] = {}
    for i, p in enumerate(person):
        if found[i]:
            rows.setdefault(p, []).append(i)
    pool, strangers = split(list(rows))
    stranger_rows = [i for p in strangers for i in rows[p]]
    for size in args.sizes.split(","):
        people = pool if size == "all" else pool[:int(size)]
        evaluate(f"one photo each, {size}", {p: rows[p][:1] for p in people},
                 [(p, i) for p in people for i in rows[p][1:]], stranger_rows, emb, model, args.at_faces)
    leave_one_out(rows, emb, args.at_faces)
    if args.loop:
        run_loop(args.loop, rows, pool, strangers, photos, emb, model, args.at_faces)
    if args.video:
        video_strangers(args.video, rows, emb, args.video_min_face_px)


if __name__ == "__main__":
    main()
