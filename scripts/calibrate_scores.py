#!/usr/bin/env python3
"""Calibrate Baidu-style 0..100 match scores from an embedder's cosine similarity.

    python scripts/calibrate_scores.py [--embedder sface|sface_dlib] [--data ../shared/data/lfw-view1] [--refresh]

Writes the embedder's table (edge/library/score_calibration.json for SFace, TABLES in
edge/library/scores.py: the knots it interpolates) and prints how well the mapping
meets its targets. Every embedder is calibrated the same way on the same photos, so
score 80 is FAR ~1e-4 whichever a site runs.

The scale. Baidu's 80 is its recommended same-person threshold; we give the number a
fixed meaning in impostor false-accept rate (FAR, the share of different-person pairs
scoring at least as high):

    score = 40 + 10 * log10(1 / FAR(cosine))

so 60 <-> FAR 1e-2, 70 <-> 1e-3, 80 <-> 1e-4, 90 <-> 1e-5. Above 90 the scale turns
linear in cosine, from the FAR-1e-5 cosine up to 100 at cosine 1 (the same face): most
genuine pairs lie beyond FAR 1e-6, and a scale still counting impostor odds would pin
them all at 100, hiding how strong a match is (Baidu's own answers spread over 80-100).
FAR is measured on every cross-person pair of LFW view 1's 4991 photos (~12 million
pairs, each photo embedded end to end by the real pipeline). Below the median
impostor cosine (FAR 0.5, score 43.0) the score falls linearly to 0 at cosine -1:
that region carries no decision, it only has to stay monotone and continuous.

The tail. An empirical FAR of 1e-5 rests on ~120 exceedances and 1e-6 on ~12 (or
none), so the far tail is extrapolated by peaks over threshold: the excesses over u,
the cosine at FAR 1e-3 (~12,000 pairs), are fitted with a generalised Pareto
distribution by the method of moments (closed form, xi = (1 - m^2/v)/2,
sigma = m (1 + m^2/v)/2), and with an exponential (xi = 0, sigma = mean excess) for
comparison. Both are checked against the empirical FAR at 1e-4 and 1e-5 (printed and
stored). The table uses the empirical FAR while at least MIN_EXCEEDANCES (200) pairs
exceed a cosine - there the count's own error is under ~7 % (0.3 score) - and the
fitted tail beyond, re-anchored at that splice point so the curve stays continuous
(a GPD above a higher threshold is again a GPD with the same xi and
sigma' = sigma + xi (c - u), so the re-anchoring changes no fitted shape).

Label noise. LFW files a few people under two names and has photos whose central
face is someone else; such pairs count as "impostors" at cosines 0.58-0.94 and, being
outliers, dominate a moment fit (with them xi = +0.05, without -0.04: the tail flips
from heavy to bounded). IDENTITY_FIXES reassigns the six cases found among the top
impostor pairs (each checked by eye); their pairs become genuine.

Which tail model: the exponential unless the GPD's shape differs from 0 by more than
two standard errors, i.e. the data must show a bounded (xi < 0) or heavy (xi > 0)
tail before we rely on it. Cosine is bounded by 1, so a light tail is plausible, but
the exponential puts more mass far out than a bounded GPD and so errs towards
*lower* scores for strong matches - the safe side for a false-accept threshold.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from edge.accuracy.lfw import DEFAULT_DATA, IDENTITY_FIXES, identity, list_photos  # noqa: E402,F401  (eval_open_set reads them here)
from edge.analysis import embedders  # noqa: E402
from edge.analysis.app import AnalyserConfig, FaceAnalyser  # noqa: E402
from edge.library.scores import TABLES  # noqa: E402
from edge.imaging import decode_image  # noqa: E402
from edge.models.manifest import default_models_dir, load_manifest  # noqa: E402
from edge.thresholds import SAME_PERSON_SCORE, SFACE_SAME_PERSON_COSINE  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / "var" / "calibration" / "lfw_view1_embeddings.npz"   # SFace's; others: _NAME added

TAIL_FAR = 1e-3          # peaks-over-threshold threshold u sits at this FAR
MIN_EXCEEDANCES = 200    # fewer impostor pairs above a cosine: trust the fit, not the count
SCORE_STEP = 1.0         # knot spacing in score units (keeps np.interp within ~0.1 score)
REPORT_SCORES = (60, 70, 80, 90)

FAR_SCALE_TOP = 90.0     # scores up to here count impostor odds; above, linear to 100 at cosine 1


# ---------------------------------------------------------------------------- scale

def far_to_score(far):
    return 40.0 + 10.0 * np.log10(1.0 / np.asarray(far, dtype=np.float64))


def score_to_far(score):
    return 10.0 ** (-(np.asarray(score, dtype=np.float64) - 40.0) / 10.0)


# ---------------------------------------------------------------------------- embeddings

def embed_photos(analyser: FaceAnalyser, photos: list[tuple[str, Path]]) -> tuple[np.ndarray, np.ndarray]:
    """(embeddings [N, dim], found [N]); rows of photos without a face are zero."""
    emb = np.zeros((len(photos), analyser.embedder.dim), np.float32)
    found = np.zeros(len(photos), bool)
    t0 = time.perf_counter()
    for i, (_, path) in enumerate(photos):
        faces = analyser.analyse(decode_image(path.read_bytes()), max_face_num=1, face_sort_type=1,
                                 stages={"embedding"})
        if faces:
            emb[i], found[i] = faces[0].embedding, True
        if (i + 1) % 500 == 0:
            print(f"  embedded {i + 1}/{len(photos)} ({time.perf_counter() - t0:.0f} s)", flush=True)
    return emb, found


def load_embeddings(images: Path, embedder: str, model: str, refresh: bool, threads: int):
    """(photos, embeddings, found) from the cache when it matches the photo list and model."""
    photos = list_photos(images)
    rel = np.array([str(p.relative_to(images)) for _, p in photos])
    cache = CACHE if embedder == "sface" else CACHE.with_name(f"{CACHE.stem}_{embedder}.npz")
    if cache.exists() and not refresh:
        z = np.load(cache)
        if np.array_equal(z["paths"], rel) and str(z["model"]) == model:
            return photos, z["emb"], z["found"]
        print("embedding cache is stale (photos or model changed): recomputing")
    print(f"embedding {len(photos)} photos with the full pipeline ({embedder}) ...")
    emb, found = embed_photos(FaceAnalyser(AnalyserConfig(threads=threads, embedder=embedder)), photos)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(cache, paths=rel, model=model, emb=emb, found=found)
    return photos, emb, found


# ---------------------------------------------------------------------------- pairs

def all_pair_sims(emb: np.ndarray, person: np.ndarray, block: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """(impostor, genuine) cosines over every unordered pair, impostors sorted ascending.

    Blockwise upper-triangle matmul; ~12M float32 impostor values are ~50 MB.
    """
    imp, gen = [], []
    for i0 in range(0, len(emb), block):
        i1 = min(i0 + block, len(emb))
        s = emb[i0:i1] @ emb[i0:].T
        upper = np.arange(i0, i1)[:, None] < np.arange(i0, len(emb))[None, :]
        same = person[i0:i1, None] == person[None, i0:]
        imp.append(s[upper & ~same])
        gen.append(s[upper & same])
    return np.sort(np.concatenate(imp)).astype(np.float32), np.concatenate(gen).astype(np.float32)


def read_same_pairs(path: Path) -> list[tuple[str, int, int]]:
    """The same-person lines (`name i j`) of an LFW pairs file."""
    lines = path.read_text().split("\n")
    n = int(lines[0].split()[0])
    return [(p[0], int(p[1]), int(p[2])) for p in (ln.split("\t") for ln in lines[1:1 + n]) if len(p) == 3]


def listed_pair_sims(pairs, index: dict, emb: np.ndarray, found: np.ndarray) -> tuple[np.ndarray, int, int]:
    """(cosines of the scorable pairs, pairs with a photo missing, pairs with a face missing)."""
    sims, missing, no_face = [], 0, 0
    for name, i, j in pairs:
        a, b = index.get((name, i)), index.get((name, j))
        if a is None or b is None:
            missing += 1
        elif not (found[a] and found[b]):
            no_face += 1
        else:
            sims.append(float(emb[a] @ emb[b]))
    return np.array(sims, np.float32), missing, no_face


# ---------------------------------------------------------------------------- FAR and tail

def empirical_far(imp_sorted: np.ndarray, cos) -> np.ndarray:
    """Share of impostor pairs with similarity >= cos."""
    n = len(imp_sorted)
    return (n - np.searchsorted(imp_sorted, np.asarray(cos, np.float32), side="left")) / n


def empirical_cosine(imp_sorted: np.ndarray, far) -> np.ndarray:
    """Cosine at which the empirical FAR is `far` (interpolated upper quantile)."""
    return np.quantile(imp_sorted, 1.0 - np.asarray(far, np.float64), method="linear")


def fit_tail(excess: np.ndarray) -> dict:
    """GPD by method of moments, its shape's standard error, and the exponential fit.

    Method-of-moments standard error of xi (Hosking & Wallis 1987, valid for xi < 1/4):
    var = (1-2xi)^2 (1-xi+6xi^2) / ((1-3xi)(1-4xi) n).
    """
    m, v, n = float(excess.mean()), float(excess.var(ddof=1)), len(excess)
    r = m * m / v
    xi, sigma = 0.5 * (1.0 - r), 0.5 * m * (1.0 + r)
    se = np.sqrt((1 - 2 * xi) ** 2 * (1 - xi + 6 * xi ** 2) / ((1 - 3 * xi) * (1 - 4 * xi) * n)) if xi < 0.25 else np.inf
    return {"n_excesses": n, "mean_excess": m, "gpd_xi": xi, "gpd_sigma": sigma, "gpd_xi_se": float(se),
            "exponential_sigma": m}


def tail_far(cos, u: float, far_u: float, xi: float, sigma: float) -> np.ndarray:
    """FAR above threshold u under a GPD (xi = 0: exponential) anchored at FAR(u) = far_u."""
    y = np.maximum(np.asarray(cos, np.float64) - u, 0.0)
    if xi == 0.0:
        return far_u * np.exp(-y / sigma)
    base = np.maximum(1.0 + xi * y / sigma, 0.0)
    with np.errstate(divide="ignore"):
        return far_u * base ** (-1.0 / xi)


def tail_cosine(far, u: float, far_u: float, xi: float, sigma: float) -> np.ndarray:
    """Inverse of tail_far."""
    q = np.asarray(far, np.float64) / far_u
    if xi == 0.0:
        return u - sigma * np.log(q)
    return u + sigma / xi * (q ** (-xi) - 1.0)


# ---------------------------------------------------------------------------- table

def build_knots(imp_sorted: np.ndarray, splice_far: float, splice_cos: float, xi: float, sigma_u: float,
                u: float) -> np.ndarray:
    """[[cosine, score], ...]: linear from (-1, 0) to the median, empirical, the fitted
    tail up to FAR_SCALE_TOP, then linear to (1, 100)."""
    sigma_s = sigma_u + xi * (splice_cos - u)  # the same GPD seen from the splice point
    s_half = float(far_to_score(0.5))
    scores = np.concatenate([[s_half], np.arange(np.ceil(s_half), FAR_SCALE_TOP + 1e-9, SCORE_STEP)])
    scores = np.union1d(scores, [float(far_to_score(splice_far))])
    fars = score_to_far(scores)
    cos = np.where(fars >= splice_far, empirical_cosine(imp_sorted, np.minimum(fars, 0.5)),
                   tail_cosine(fars, splice_cos, splice_far, xi, sigma_s))
    knots = np.vstack([[-1.0, 0.0], np.column_stack([cos, scores]), [1.0, 100.0]])
    if not (np.all(np.diff(knots[:, 0]) > 0) and np.all(np.diff(knots[:, 1]) > 0)):
        raise RuntimeError("calibration knots are not strictly increasing")
    return knots


def exact_score(imp_sorted, cos, splice_far, splice_cos, xi, sigma_s, top_cos) -> np.ndarray:
    """The score the design asks for at `cos` (no interpolation), for checking the knots."""
    cos = np.asarray(cos, np.float64)
    far = np.where(cos <= splice_cos, empirical_far(imp_sorted, cos),
                   tail_far(cos, splice_cos, splice_far, xi, sigma_s))
    by_far = np.clip(far_to_score(np.maximum(far, 1e-300)), 0, FAR_SCALE_TOP)
    linear = FAR_SCALE_TOP + (100.0 - FAR_SCALE_TOP) * (cos - top_cos) / (1.0 - top_cos)
    return np.where(cos > top_cos, linear, by_far)


# ---------------------------------------------------------------------------- main

def calibrate(data: Path, embedder: str, refresh: bool, threads: int) -> None:
    spec = load_manifest(default_models_dir())["embedder"]
    model = spec.file if embedder == "sface" else embedders.model_id(embedder)
    images = data / "images"
    photos, emb, found = load_embeddings(images, embedder, model, refresh, threads)
    names = [identity(images, n, p) for n, p in photos]
    no_face = [str(p.relative_to(images)) for (_, p), f in zip(photos, found) if not f]
    people_ids = {n: k for k, n in enumerate(sorted(set(names)))}
    person = np.array([people_ids[n] for n in names])
    keep = np.flatnonzero(found)
    folders = len({n for n, _ in photos})
    print(f"{len(photos)} photos in {folders} folders = {len(people_ids)} people after "
          f"{len(IDENTITY_FIXES)} label fixes; no face found in {len(no_face)}"
          + (": " + ", ".join(no_face) if no_face else ""))

    imp, gen = all_pair_sims(emb[keep], person[keep])
    n_imp = len(imp)
    print(f"{n_imp:,} impostor pairs, {len(gen):,} genuine pairs "
          f"({len(set(person[keep][np.bincount(person[keep])[person[keep]] >= 2]))} people with >= 2 faces)")

    # --- tail fit above u = cosine at FAR 1e-3
    u = float(empirical_cosine(imp, TAIL_FAR))
    far_u = float(empirical_far(imp, u))
    fit = fit_tail(imp[imp >= u].astype(np.float64) - u)
    use_gpd = abs(fit["gpd_xi"]) > 2 * fit["gpd_xi_se"]
    xi = fit["gpd_xi"] if use_gpd else 0.0
    sigma_u = fit["gpd_sigma"] if use_gpd else fit["exponential_sigma"]
    splice_far = MIN_EXCEEDANCES / n_imp
    splice_cos = float(empirical_cosine(imp, splice_far))
    sigma_s = sigma_u + xi * (splice_cos - u)

    knots = build_knots(imp, splice_far, splice_cos, xi, sigma_u, u)

    # --- checks: interpolation error, fit vs empirical
    grid = np.linspace(-1.0, 1.0, 200001)
    grid = grid[grid >= knots[1, 0]]
    interp_err = np.abs(np.interp(grid, knots[:, 0], knots[:, 1])
                        - exact_score(imp, grid, splice_far, splice_cos, xi, sigma_s,
                                      float(np.interp(FAR_SCALE_TOP, knots[:, 1], knots[:, 0]))))
    # Where the empirical FAR is step-like (counts of a few pairs) the "exact" curve is noise;
    # judge the interpolation where >= MIN_EXCEEDANCES pairs back it or the model takes over.
    interp_err_max = float(interp_err.max())

    checkpoints = {}
    for far in (1e-3, 1e-4, 1e-5, 1e-6):
        c_emp = float(empirical_cosine(imp, far)) if far * n_imp >= 1 else None
        c_tab = (float(np.interp(far_to_score(far), knots[:, 1], knots[:, 0])) if far_to_score(far) <= FAR_SCALE_TOP
                 else float(tail_cosine(far, splice_cos, splice_far, xi, sigma_s)))
        checkpoints[f"{far:.0e}"] = {
            "cosine": c_tab,
            "score": float(np.interp(c_tab, knots[:, 0], knots[:, 1])),
            "empirical_cosine": c_emp,
            "empirical_far": float(empirical_far(imp, c_tab)),
            "exceedances": int(round(float(empirical_far(imp, c_tab)) * n_imp)),
            "gpd_far": float(tail_far(c_tab, u, far_u, fit["gpd_xi"], fit["gpd_sigma"])),
            "exponential_far": float(tail_far(c_tab, u, far_u, 0.0, fit["exponential_sigma"])),
        }

    # --- genuine acceptance
    index = {(n, int(p.stem.rsplit("_", 1)[1])): k for k, (n, p) in enumerate(photos)}
    listed = {}
    for split in ("pairsDevTrain", "pairsDevTest"):
        sims, missing, nf = listed_pair_sims(read_same_pairs(data / f"{split}.txt"), index, emb, found)
        listed[split] = {"sims": sims, "missing_photo": missing, "no_face": nf}

    table = {
        "description": f"{'SFace' if embedder == 'sface' else embedder} cosine -> Baidu-style 0..100 score; score = 40 + 10*log10(1/impostor FAR) up to "
                       "90 (FAR 1e-5), then linear in cosine to 100 at cosine 1. "
                       "Generated by scripts/calibrate_scores.py; interpolate linearly (np.interp).",
        "generated": dt.date.today().isoformat(),
        **({"model_file": spec.file, "model_sha256": spec.sha256} if embedder == "sface" else
           {"embedder": embedder, "model_id": model}),
        "data": "LFW view 1 (lfw-view1/images), every photo, detection included",
        "images": len(photos),
        "images_without_face": len(no_face),
        "folders": folders,
        "people": len(people_ids),
        "identity_fixes": IDENTITY_FIXES,
        "impostor_pairs": n_imp,
        "genuine_pairs": int(len(gen)),
        "genuine_listed_pairs": {k: int(len(v["sims"])) for k, v in listed.items()},
        "far_checkpoints": checkpoints,
        "tail_model": {
            "used": "gpd" if use_gpd else "exponential",
            "rule": "exponential unless |GPD xi| > 2 standard errors",
            "threshold_far": TAIL_FAR,
            "threshold_cosine": u,
            **fit,
            "splice_min_exceedances": MIN_EXCEEDANCES,
            "splice_far": splice_far,
            "splice_cosine": splice_cos,
            "xi_used": xi,
            "sigma_at_splice": sigma_s,
        },
        "interpolation_max_error_score": interp_err_max,
        "knots": [[round(float(c), 6), round(float(s), 4)] for c, s in knots],
    }
    TABLES[embedder].write_text(json.dumps(table, indent=1) + "\n")

    report(table, imp, gen, listed, knots, TABLES[embedder])


def report(table: dict, imp: np.ndarray, gen: np.ndarray, listed: dict, knots: np.ndarray, path: Path) -> None:
    def cos_at(score):
        return float(np.interp(score, knots[:, 1], knots[:, 0]))

    n_imp = len(imp)
    t = table["tail_model"]
    print(f"\ntail above u = {t['threshold_cosine']:.4f} (FAR {t['threshold_far']:.0e}, {t['n_excesses']:,} excesses):")
    print(f"  GPD (method of moments): xi = {t['gpd_xi']:+.4f} +- {t['gpd_xi_se']:.4f}, sigma = {t['gpd_sigma']:.5f}"
          + (f", upper end cosine {t['threshold_cosine'] - t['gpd_sigma'] / t['gpd_xi']:.4f}" if t['gpd_xi'] < 0 else ""))
    print(f"  exponential: sigma = {t['exponential_sigma']:.5f}")
    print(f"  used: {t['used']}, spliced in above cosine {t['splice_cosine']:.4f} "
          f"(FAR {t['splice_far']:.2e}, {t['splice_min_exceedances']} exceedances)")
    print("\n  FAR     cosine   exceed.  empirical FAR  GPD FAR     exp. FAR")
    for k, c in table["far_checkpoints"].items():
        print(f"  {k}  {c['cosine']:.4f}  {c['exceedances']:7d}  {c['empirical_far']:.3e}     "
              f"{c['gpd_far']:.3e}   {c['exponential_far']:.3e}")

    print(f"\nimpostor exceedance per score ({n_imp:,} pairs):")
    print("  score  cosine   target FAR  achieved FAR  (pairs)")
    for s in REPORT_SCORES:
        c = cos_at(s)
        k = int(n_imp - np.searchsorted(imp, np.float32(c), side="left"))
        print(f"  {s:5d}  {c:.4f}  {score_to_far(s):.0e}       {k / n_imp:.3e}     ({k})")

    print("\ngenuine acceptance (TAR = share scoring >= the score):")
    sets = [("all same-person folder pairs", gen)] + [(f"{k} same pairs", v["sims"]) for k, v in listed.items()]
    print("  " + " " * 32 + "  ".join(f"TAR@{s}" for s in (70, 80, 90)) + "   pairs")
    for name, sims in sets:
        print(f"  {name:32s}" + "  ".join(f"{(sims >= cos_at(s)).mean():6.3f}" for s in (70, 80, 90))
              + f"   {len(sims)}")
    q = np.interp(np.percentile(gen, [10, 50, 90]), knots[:, 0], knots[:, 1])
    print(f"  genuine folder pairs' scores: 10th pct {q[0]:.1f}, median {q[1]:.1f}, 90th pct {q[2]:.1f}")
    for k, v in listed.items():
        if v["missing_photo"] or v["no_face"]:
            print(f"  ({k}: {v['missing_photo']} pairs with a photo missing, {v['no_face']} with no face found - not scored)")

    c80 = cos_at(SAME_PERSON_SCORE)
    sface = ("   (published SFace same-person cosine "
             f"{SFACE_SAME_PERSON_COSINE}; it scores {np.interp(SFACE_SAME_PERSON_COSINE, knots[:, 0], knots[:, 1]):.1f})"
             if "model_file" in table else "")
    print(f"\ncosine at score {SAME_PERSON_SCORE:.0f}: {c80:.4f}{sface}")
    print(f"knots: {len(knots)}, max |interp - design| over cosine >= median: "
          f"{table['interpolation_max_error_score']:.3f} score")
    top = imp[-5:][::-1]
    print("highest impostor cosines: " + ", ".join(f"{c:.4f}" for c in top))
    print(f"wrote {path.relative_to(REPO)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--embedder", choices=sorted(TABLES), default="sface")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--refresh", action="store_true", help="recompute the cached embeddings")
    args = ap.parse_args()
    calibrate(args.data, args.embedder, args.refresh, args.threads)


if __name__ == "__main__":
    main()
