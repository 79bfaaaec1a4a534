#!/usr/bin/env python3
"""Embedders compared on LFW view 1: TAR at FAR 1e-3 / 1e-4 / 1e-5, LFW dev accuracy, ms a face.

Every photo of view 1 is analysed once (detector + mesh, the face nearest the centre)
and embedded by each variant (edge/accuracy/variants.py). The people are split in two
halves (edge/accuracy/rates.py): fusion weights and FAR maps are fitted on the tuning
half's pairs, every TAR printed is measured on the other half's pairs (all genuine pairs
and all impostor pairs within it). LFW dev accuracy: threshold (and a fusion's weight)
chosen on pairsDevTrain, accuracy on pairsDevTest (person-disjoint). Rows are cached
per variant in var/calibration/variants/.

    python scripts/eval_embedders.py [--fuse sface_flip+dlib ...] [--refresh]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from edge.accuracy import lfw, rates, variants as vs  # noqa: E402
from edge.analysis.app import AnalyserConfig, FaceAnalyser  # noqa: E402
from edge.imaging import decode_image  # noqa: E402

CACHE = lfw.REPO / "var" / "calibration" / "variants"


def embed_all(photos, images: Path, todo: list[vs.Variant], threads: int) -> tuple[dict, np.ndarray, float]:
    analyser = FaceAnalyser(AnalyserConfig(threads=threads))
    rows = {}
    found, detect_s, t0 = np.zeros(len(photos), bool), 0.0, time.perf_counter()
    out: dict[str, list] = {v.name: [] for v in todo}
    for k, (_, path) in enumerate(photos):
        img = decode_image(path.read_bytes())
        t = time.perf_counter()
        faces = analyser.analyse(img, max_face_num=1, face_sort_type=1, stages={"landmarks"})
        detect_s += time.perf_counter() - t
        found[k] = bool(faces)
        for v in todo:
            out[v.name].append(v(analyser, img, faces[0]) if faces else None)
        if (k + 1) % 500 == 0:
            print(f"  embedded {k + 1}/{len(photos)} ({time.perf_counter() - t0:.0f} s)", flush=True)
    for v in todo:
        dim = next(len(r) for r in out[v.name] if r is not None)
        rows[v.name] = np.stack([r if r is not None else np.zeros(dim, np.float32) for r in out[v.name]])
    return rows, found, 1000 * detect_s / len(photos)


def load_rows(photos, images: Path, wanted: list[vs.Variant], refresh: bool, threads: int):
    """{variant: rows}, found, {variant: ms a face}: cached rows where the photo list matches."""
    rel = np.array([str(p.relative_to(images)) for _, p in photos])
    rows, ms, found, todo = {}, {}, None, []
    for v in wanted:
        f = CACHE / f"{v.name}.npz"
        z = np.load(f) if f.exists() and not refresh else None
        if z is not None and np.array_equal(z["paths"], rel):
            rows[v.name], found, ms[v.name] = z["rows"], z["found"], float(z["ms"])
        else:
            todo.append(v)
    if todo:
        print(f"embedding {len(photos)} photos for {', '.join(v.name for v in todo)} ...")
        new, found, detect_ms = embed_all(photos, images, todo, threads)
        CACHE.mkdir(parents=True, exist_ok=True)
        for v in todo:
            rows[v.name], ms[v.name] = new[v.name], v.ms
            np.savez_compressed(CACHE / f"{v.name}.npz", paths=rel, rows=new[v.name], found=found, ms=v.ms)
        print(f"  detector + mesh: {detect_ms:.1f} ms a photo (shared by every variant)")
    return rows, found, ms


def dev_scores(rows: np.ndarray, index: dict, pairs) -> tuple[np.ndarray, np.ndarray]:
    """Cosines and labels of an LFW pairs file's pairs (a missing photo's pair left out)."""
    keep = [(index[(a, ia)], index[(b, ib)], same) for a, ia, b, ib, same in pairs
            if (a, ia) in index and (b, ib) in index]
    i, j, same = (np.array(x) for x in zip(*keep))
    return np.einsum("ij,ij->i", rows[i], rows[j]), same.astype(bool)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=lfw.DEFAULT_DATA)
    ap.add_argument("--fuse", nargs="*", default=[], help="A+B: fuse two variants")
    ap.add_argument("--refresh", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--splits", type=int, default=0, help="also TAR at 1e-4 over N reshuffled halves")
    args = ap.parse_args()
    images = args.data / "images"
    photos = lfw.list_photos(images)
    names = [lfw.identity(images, n, p) for n, p in photos]
    person = np.unique(names, return_inverse=True)[1]
    catalogue = {v.name: v for v in vs.all_variants()}
    wanted = list(catalogue.values())
    rows, found, ms = load_rows(photos, images, wanted, args.refresh, args.threads)

    report = rates.person_split(person)
    rep = rates.all_pairs(np.flatnonzero(report), person)
    tune = rates.all_pairs(np.flatnonzero(~report), person)
    index = {(n, int(p.stem.rsplit("_", 1)[1])): k for k, (n, p) in enumerate(photos)}
    dev_train = lfw.read_pairs(args.data / "pairsDevTrain.txt")
    dev_test = lfw.read_pairs(args.data / "pairsDevTest.txt")
    print(f"{len(photos)} photos, {len(set(names))} people, no face in {int((~found).sum())}; "
          f"reporting half: {rep.genuine:,} genuine / {rep.impostor:,} impostor pairs "
          f"(tuning half: {tune.genuine:,} / {tune.impostor:,})")
    gallery, probes = rates.gallery_split(person, np.flatnonzero(report))
    print(f"rank-1: {len(gallery):,} people enrolled (reporting half, first photo each), {len(probes):,} probes")
    print(f"{'variant':28s} {'dim':>4s} {'dev acc':>8s} " + " ".join(f"{'TAR@' + format(f, '.0e'):>10s}" for f in rates.FARS)
          + f" {'rank-1':>7s} {'ms/face':>8s}  what")

    def line(name, dim, acc, scores, same, r1, cost, what):
        cells = []
        for f in rates.FARS:
            tar, _, k = rates.tar_at_far(scores, same, f)
            cells.append(f"{100 * tar:9.2f}{'*' if k < 30 else ' '}")
        print(f"{name:28s} {dim:4d} {100 * acc:7.2f}% " + " ".join(cells) + f" {100 * r1:6.2f}% {cost:8.1f}  {what}",
              flush=True)

    def id_scores(emb):
        return emb[probes] @ emb[gallery].T

    rep_cos = {}
    for v in wanted:
        rep_cos[v.name] = rates.cosines(rows[v.name], rep)
        thr, _ = rates.best_threshold_accuracy(*dev_scores(rows[v.name], index, dev_train))
        s, same = dev_scores(rows[v.name], index, dev_test)
        r1 = rates.rank1(id_scores(rows[v.name]), person[gallery], person[probes])
        line(v.name, rows[v.name].shape[1], float(((s > thr) == same).mean()), rep_cos[v.name], rep.same, r1,
             ms[v.name], v.what)
    for spec in args.fuse:
        a, b = spec.split("+")
        fit = rates.Fusion.fit(rates.cosines(rows[a], tune), rates.cosines(rows[b], tune), tune.same)
        tr_a, tr_s = dev_scores(rows[a], index, dev_train)
        tr_b, _ = dev_scores(rows[b], index, dev_train)
        te_a, te_s = dev_scores(rows[a], index, dev_test)
        te_b, _ = dev_scores(rows[b], index, dev_test)
        dev_w = max(np.linspace(0, 1, 21), key=lambda x: rates.best_threshold_accuracy(
            rates.weighted(tr_a, tr_b, x), tr_s)[1])
        thr, _ = rates.best_threshold_accuracy(rates.weighted(tr_a, tr_b, dev_w), tr_s)
        acc = float(((rates.weighted(te_a, te_b, dev_w) > thr) == te_s).mean())
        dim = rows[a].shape[1] + rows[b].shape[1]
        r1 = rates.rank1(id_scores(rates.concat_embeddings(rows[a], rows[b], fit.w)), person[gallery], person[probes])
        line(f"{a}+{b} concat w={fit.w:.2f}", dim, acc, fit.concat(rep_cos[a], rep_cos[b]), rep.same, r1,
             ms[a] + ms[b], "embedding-level: one concatenated vector (= weighted cosine sum)")
        thr, _ = rates.best_threshold_accuracy(fit.far_sum(tr_a, tr_b), tr_s)
        acc = float(((fit.far_sum(te_a, te_b) > thr) == te_s).mean())
        r1 = rates.rank1(fit.far_sum(id_scores(rows[a]), id_scores(rows[b])), person[gallery], person[probes])
        line(f"{a}+{b} FAR-sum", dim, acc, fit.far_sum(rep_cos[a], rep_cos[b]), rep.same, r1,
             ms[a] + ms[b], "score-level: log FARs added (two searches)")
    print("* fewer than 30 impostor pairs above the threshold: the FAR is barely resolved")
    if args.splits:
        split_spread(rows, person, [v.name for v in wanted], args.fuse, args.splits)


def split_tars(rows: dict, person: np.ndarray, names: list[str], fuse: list[str], seed: int) -> list[float]:
    """TAR at 1e-4 on one split's reporting half: each variant, then each fusion (its
    weight and FAR maps fitted on that split's tuning half)."""
    report = rates.person_split(person, seed)
    rep = rates.all_pairs(np.flatnonzero(report), person)
    cos = {v: rates.cosines(rows[v], rep) for v in names}
    out = [rates.tar_at_far(cos[v], rep.same, 1e-4)[0] for v in names]
    tune = rates.all_pairs(np.flatnonzero(~report), person)
    for spec in fuse:
        a, b = spec.split("+")
        fit = rates.Fusion.fit(rates.cosines(rows[a], tune), rates.cosines(rows[b], tune), tune.same)
        out.append(rates.tar_at_far(fit.concat(cos[a], cos[b]), rep.same, 1e-4)[0])
        out.append(rates.tar_at_far(fit.far_sum(cos[a], cos[b]), rep.same, 1e-4)[0])
    return out


def split_spread(rows: dict, person: np.ndarray, names: list[str], fuse: list[str], n: int) -> None:
    """TAR at 1e-4 over n person splits, and the gain over the first variant split by
    split (a paired difference: the split moves both alike)."""
    tars = np.array([split_tars(rows, person, names, fuse, seed) for seed in range(n)]) * 100
    labels = names + [f"{f} {kind}" for f in fuse for kind in ("concat", "FAR-sum")]
    print(f"TAR at FAR 1e-4 over {n} person splits: mean [min, max]; gain over {names[0]} split by split")
    for k, v in enumerate(labels):
        gain = tars[:, k] - tars[:, 0]
        print(f"  {v:28s} {tars[:, k].mean():6.2f} [{tars[:, k].min():.2f}, {tars[:, k].max():.2f}]   "
              f"gain {gain.mean():+.2f} [{gain.min():+.2f}, {gain.max():+.2f}]")


if __name__ == "__main__":
    main()
