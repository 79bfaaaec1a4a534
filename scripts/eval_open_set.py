"""Open-set identification on LFW view 1: FNIR and FPIR per decision rule and library size.

Every 10th person (sorted by name) is a stranger, never enrolled: all their photos are
stranger probes. The others are the pool; a library of N people (a fixed shuffle of the
pool, 100 / 1,000 / all) enrols each person's first photo, through the real FaceLibrary
(SQLite store + HNSW index), and is probed with the enrolled people's other photos
(genuine) and the strangers' photos. "all, every photo" enrols every photo of the pool
but each multi-photo person's last one, which is their probe (several faces a person).

FPIR: stranger probes named as someone. FNIR: genuine probes not named as themselves
(no one, or someone else). "predicted" is the calibrated FAR(score) x faces searched,
the rule the loop's derived threshold rests on (edge/loop/open_set.py); the rules "set
for 5,000 faces" show what a 5,000-face site's threshold costs genuine users (view 1 holds
fewer people; there, by construction, ~1 % and ~0.1 %).

--loop N also runs the capture loop (the real Pipeline: detection, tracking, quality
gating, embedding of the best frames, search; liveness off) on recorded sequences, each
photo drifting through a 640x480 frame with sensor noise, against the whole pool with one
photo each: N strangers' first photos and N enrolled people's second photos. The searched
frames' hits are recorded once and every rule is replayed on them. "any frame": tracks
with at least one frame above the score (what treating frames as independent would face).

    python scripts/eval_open_set.py [--loop 150]   # embeddings cached in var/calibration/
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import calibrate_scores as cal  # noqa: E402  (its cached LFW embeddings and identity fixes)

from edge.aip.runtime import score  # noqa: E402
from edge.analysis.app import AnalyserConfig, FaceAnalyser  # noqa: E402
from edge.imaging import decode_image  # noqa: E402
from edge.loop.decision import DecisionRules, decide  # noqa: E402
from edge.loop.pipeline import LoopRules, Pipeline  # noqa: E402
from edge.library.library import FaceLibrary  # noqa: E402
from edge.library.scores import score_to_far  # noqa: E402
from edge.library.store import FaceRecord  # noqa: E402
from edge.loop.open_set import OpenSetTarget, expected_false_id, threshold  # noqa: E402
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


def top_two(library: FaceLibrary, emb: np.ndarray) -> tuple[str | None, float, float]:
    """(best person, its score, the second person's score) from the library search."""
    hits = library.search(emb, None, 2)
    if not hits:
        return None, 0.0, 0.0
    second = score(hits[1].similarity) if len(hits) > 1 else 0.0
    return hits[0].user_id, score(hits[0].similarity), second


def rules(faces: int, at_faces: int) -> list[tuple[str, float, float, float | None]]:
    """(name, score, margin, predicted FPIR or None) of each decision rule at this size;
    the derived rules also as they would be set at `at_faces` faces (a bigger site)."""
    out = [("score > 80", 80.0, 0.0, faces), ("score > 80, margin 5", 80.0, MARGIN, faces),
           ("score > 90", 90.0, 0.0, faces)]
    for n, where in ((faces, ""), (at_faces, f" set for {at_faces:,} faces")):
        for target in (1e-2, 1e-3):
            s = threshold(OpenSetTarget(false_id_per_track=target), n).score
            name = f"derived 1e-{round(-np.log10(target))}{where} (>{s:.2f})"
            out += [(name, s, 0.0, faces)] + [(f"{name}, margin {m:g}", s, m, faces) for m in (2.0, MARGIN)]
    return [(n, s, m, expected_false_id(score_to_far(s), f) if not m else None) for n, s, m, f in out]


def evaluate(name: str, enrol: dict[str, list[int]], genuine: list[tuple[str, int]], strangers: list[int],
             emb: np.ndarray, model: str, at_faces: int) -> None:
    with tempfile.TemporaryDirectory(prefix="eval-open-set-") as tmp:
        library = FaceLibrary(Path(tmp) / "lib")
        items = [(["g"], person, "", FaceRecord(f"t{i}", emb[i], model), "append")
                 for person, rows in enrol.items() for i in rows]
        library.register_many(items)
        faces = library.store.searched_face_count(None)
        gen = [(person, *top_two(library, emb[i])) for person, i in genuine]
        imp = [top_two(library, emb[i]) for i in strangers]
        library.close()
    print(f"\n{name}: {len(enrol)} people, {faces} faces; {len(gen)} genuine probes, {len(imp)} stranger probes")
    print(f"  {'rule':52s} {'FPIR':>7s} {'predicted':>9s} {'FNIR':>7s} {'wrong person':>12s}")
    for rule, s, m, predicted in rules(faces, at_faces):
        def named(best, second):
            return best > s and best - second >= m
        fpir = np.mean([named(b, sec) for _, b, sec in imp])
        miss = np.mean([not (named(b, sec) and who == person) for person, who, b, sec in gen])
        wrong = np.mean([named(b, sec) and who != person for person, who, b, sec in gen])
        pred = f"{predicted:9.2%}" if predicted is not None else " " * 9
        print(f"  {rule:52s} {fpir:7.2%} {pred} {miss:7.2%} {wrong:12.2%}")


# -- the loop on recorded sequences ----------------------------------------------------

def drift(img: np.ndarray, seed: int, frames: int = 24, fps: float = 15.0):
    """A 640x480 sequence of the photo drifting into the frame, with sensor noise."""
    rng = np.random.default_rng(seed)
    h, w = img.shape[:2]
    for i in range(frames):
        frame = np.full((480, 640, 3), 70, np.uint8)
        x, y = 120 + 4 * i, 100 + i
        frame[y:y + h, x:x + w] = img
        noise = rng.normal(0, 3, frame.shape)
        yield np.clip(frame + noise, 0, 255).astype(np.uint8), i / fps


class Recorder(Pipeline):
    """The loop as it runs, its searched frames' hits kept (it never decides before
    max_frames, so every rule below is replayed on the same frames)."""
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.tracks: dict[int, list] = {}
        self._track = None

    def _frame(self, track, face, image, ts):
        self._track = track.track_id
        return super()._frame(track, face, image, ts)

    def _search(self, embedding):
        hits = super()._search(embedding)
        self.tracks.setdefault(self._track, []).append(hits)
        return hits

    @property
    def frames(self) -> list:
        """The searched frames of the clip's main track (the most searched one; a
        background face in an LFW photo is a track of its own)."""
        return max(self.tracks.values(), key=len, default=[])


def replay(frames: list, rules: DecisionRules):
    """The decision the loop would take with `rules`: decided at the first searched
    frame where decide() says so, else unknown when the track leaves."""
    for k in range(1, len(frames) + 1):
        d = decide(frames[:k], rules)
        if d is not None:
            return d
    return None


def loop_sequences(library: FaceLibrary, analyser, tracks: list[tuple[str | None, Path]]) -> list[tuple]:
    """(who it is or None for a stranger, the searched frames' hits) per recorded track."""
    record = DecisionRules(match_score=100.0, margin=0.0, min_votes=6, max_frames=6)
    out = []
    for n, (who, path) in enumerate(tracks):
        pipe = Recorder(analyser, library, LoopRules(liveness_control="NONE", decision=record), "bench")
        for frame, ts in drift(decode_image(path.read_bytes()), seed=n):
            pipe.process(frame, ts)
        pipe.flush()
        out.append((who, pipe.frames))
    return out


def print_loop(recorded: list[tuple], faces: int) -> None:
    strangers = [f for who, f in recorded if who is None]
    genuine = [(who, f) for who, f in recorded if who is not None]
    print(f"\nthe loop on recorded sequences (640x480, 24 frames at 15 fps, liveness off): {faces} faces; "
          f"{len(genuine)} enrolled people's tracks, {len(strangers)} stranger tracks")
    print(f"  {'rule (max_frames 6)':52s} {'FPIR':>7s} {'predicted':>9s} {'FNIR':>7s} "
          f"{'any frame':>9s} {'FNIR any':>8s}")
    cases: list = [("score 80, margin 5, 2 votes (the old loop)", 80.0, MARGIN, 2)]
    for target in (1e-2, 1e-3):
        s = threshold(OpenSetTarget(false_id_per_track=target), faces).score
        cases += [(f"derived 1e-{round(-np.log10(target))} (>{s:.2f}), margin {m:g}, {v} vote(s)", s, m, v)
                  for m, v in ((2.0, 2), (MARGIN, 2), (2.0, 1))]
    for name, s, m, v in cases:
        rules = DecisionRules(match_score=s, margin=m, min_votes=v)
        named = [replay(f, rules) for f in strangers]
        fpir = np.mean([d is not None and d.kind == "recognised" for d in named])
        # a stranger track with ANY frame above the score: what independent frames would add
        anyf = np.mean([any(h and h[0].score >= s for h in f) for f in strangers])
        got = [replay(f, rules) for _, f in genuine]
        fnir = np.mean([not (d is not None and d.kind == "recognised" and d.hit.user_id == who)
                        for (who, _), d in zip(genuine, got)])
        # an enrolled person's track whose own best frame never reaches the score
        miss_any = np.mean([not any(h and h[0].user_id == who and h[0].score >= s for h in f) for who, f in genuine])
        print(f"  {name:52s} {fpir:7.2%} {expected_false_id(score_to_far(s), faces):9.2%} {fnir:7.2%} "
              f"{anyf:9.2%} {miss_any:8.2%}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=cal.DEFAULT_DATA)
    ap.add_argument("--sizes", default="100,1000,all", help="library sizes in people (all: the whole pool)")
    ap.add_argument("--loop", type=int, default=0, metavar="N",
                    help="also run the loop on N recorded stranger and N enrolled-person sequences")
    ap.add_argument("--at-faces", type=int, default=5000,
                    help="also apply the derived rules as set for a library this size")
    args = ap.parse_args()
    model = load_manifest(default_models_dir())["embedder"].file
    images = args.data / "images"
    photos, emb, found = cal.load_embeddings(images, model, refresh=False, threads=2)
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
    multi = {p: rows[p][:-1] if len(rows[p]) > 1 else rows[p] for p in pool}
    evaluate("all, every photo but the probe", multi, [(p, rows[p][-1]) for p in pool if len(rows[p]) > 1],
             stranger_rows, emb, model, args.at_faces)
    if args.loop:
        tracks = [(None, photos[rows[p][0]][1]) for p in strangers[:args.loop]]
        tracks += [(p, photos[rows[p][1]][1]) for p in [p for p in pool if len(rows[p]) > 1][:args.loop]]
        with tempfile.TemporaryDirectory(prefix="eval-open-set-") as tmp:
            library = FaceLibrary(Path(tmp) / "lib")
            library.register_many([(["g"], p, "", FaceRecord(f"t{rows[p][0]}", emb[rows[p][0]], model), "append")
                                   for p in pool])
            recorded = loop_sequences(library, FaceAnalyser(AnalyserConfig(threads=2)), tracks)
            faces = library.store.searched_face_count(None)
            library.close()
        print_loop(recorded, faces)


if __name__ == "__main__":
    main()
