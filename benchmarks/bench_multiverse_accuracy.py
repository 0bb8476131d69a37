"""Multiverse vs plain Recurrent Expansion: test error of MVRE, HMVRE and Sc-HMVRE.

Question: does a multiverse -- ``MultiverseRE`` with k seeds (MVRE), with
heterogeneous architectures (HMVRE) or with per-round selection (Sc-HMVRE) --
do better than plain Recurrent Expansion (RE), than one scikit-learn MLP and
than HistGradientBoosting; and does the multiverse smooth or delay the
representation glitch on the noisy sinusoid?

Variants (for a dataset, every RE-based one wraps the same inner estimator):

* ``RE``: ``RecurrentExpansionRegressor`` / ``...Classifier`` alone (MLP 64-64);
* ``MVRE k=5``: ``MultiverseRE(est, members=5)`` (seeds; stacked training);
* ``HMVRE``: ``MultiverseRE(est, members=["mlp", "cnn", "gru", "transformer"])``;
* ``Sc-HMVRE``: the same members, ``n_select=2, weighting="score"``;
* ``MLP``: ``MLPRegressor`` / ``MLPClassifier(hidden_layer_sizes=(64, 64),
  early_stopping=True)`` on flattened windows;
* ``HGB``: ``HistGradientBoosting*`` with default settings on flattened windows;
* opt-in controls (``--variants``): ``RE-cnn``, ``RE-gru``, ``RE-lstm``,
  ``RE-transformer``, i.e. RE with ``module=<arch>`` alone -- does HMVRE beat its best
  single architecture, or only carry it?

Datasets:

1. ``sinusoid``: ``make_sinusoid(1000, noise=0.3, random_state=seed)`` for
   training; test MSE against the clean ``sin(t)`` on an even grid of
   ``--n-test`` points over the training range. The RE-based variants are fitted
   twice: with ``early_stopping=False`` and a fixed ``--rounds`` (test MSE per
   round from ``staged_predict``: the glitch), and with ``early_stopping=True``
   (test MSE at ``best_round_``). The input is 2-D with one feature, which the
   sequence members read as a sequence of length 1.
2. ``italy``: aeon's ItalyPowerDemand (67 train / 1029 test windows of length 24,
   2 classes); accuracy on the official test split.
3. ``basicmotions``: aeon's BasicMotions (40 / 40 windows, 6 channels x 100, 4
   classes) -- the default third set; ``arrowhead`` (36 / 175, 1 x 251, 3 classes)
   can be chosen with ``--datasets`` but its transformer member (251 tokens)
   makes a full run several times longer.

Every series of the UCR/UEA sets is z-normalised per sample and channel.
Classification uses ``early_stopping=True`` (``--valid-frac`` of the tiny training
sets held out, also for the sklearn MLP). Means ± standard deviations are over
``--seeds`` seeds (seed s seeds the data of the sinusoid and every
``random_state``). Fits run ``--n-jobs`` at a time, each with ``--threads``
torch/BLAS threads (default 1: two threads per fit on 2 cores contend badly).

The default run takes about 10-12 minutes on 2 cores; ``--quick`` about 1-2.

    python benchmarks/bench_multiverse_accuracy.py [--quick] [--seeds 3] [--n-jobs 2]
        [--datasets sinusoid italy basicmotions] [--variants RE MVRE ... HGB]
        [--device cpu] [--threads 1]
"""

import argparse
import os
import sys
import time
import warnings

import numpy as np

ARCHS = ("mlp", "cnn", "gru", "transformer")
MULTIVERSES = ("MVRE", "HMVRE", "Sc-HMVRE")
# RE with one sequence architecture as its module: opt-in controls (--variants) that tell
# whether HMVRE beats its best single member, or only carries it.
SINGLE = tuple(f"RE-{a}" for a in ("cnn", "gru", "lstm", "transformer"))
VARIANTS = ("RE", *MULTIVERSES, *SINGLE)  # every RE-based variant, in table order
BASELINES = ("MLP", "HGB")
DEFAULT_VARIANTS = ("RE", *MULTIVERSES, *BASELINES)
UCR = {  # name: (aeon loader, printed name)
    "italy": ("load_italy_power_demand", "ItalyPowerDemand"),
    "basicmotions": ("load_basic_motions", "BasicMotions"),
    "arrowhead": ("load_arrow_head", "ArrowHead"),
}
DATASETS = ("sinusoid", *UCR)
SHOWN_ROUNDS = (0, 1, 3, 5, 10)


def label(variant, cfg):
    if variant == "MVRE":
        return f"MVRE k={cfg['k']}"
    if variant in SINGLE:
        return f"RE, module={variant[3:]!r}"
    return variant


def znorm(X):
    """Per-sample, per-channel z-normalisation of windows (n, channels, length)."""
    X = np.asarray(X, dtype=np.float64)
    mean = X.mean(axis=2, keepdims=True)
    std = X.std(axis=2, keepdims=True)
    return ((X - mean) / np.where(std > 1e-8, std, 1.0)).astype(np.float32)


def load(dataset, seed, cfg):
    """X_train, y_train, X_test, y_test; the sinusoid's y_test is the clean sine."""
    if dataset == "sinusoid":
        from sklearn_recursive.datasets import make_sinusoid

        X, y = make_sinusoid(cfg["n_train"], noise=cfg["noise"], random_state=seed)
        t = np.linspace(0.0, 2 * np.pi * 2.0, cfg["n_test"])  # make_sinusoid's n_periods=2
        return X, y, t.reshape(-1, 1).astype(np.float32), np.sin(t)
    import aeon.datasets

    loader = getattr(aeon.datasets, UCR[dataset][0])
    X, y = loader(split="train")
    X_te, y_te = loader(split="test")
    return znorm(X), np.asarray(y), znorm(X_te), np.asarray(y_te)


def make_model(variant, dataset, seed, cfg, early_stopping):
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    from sklearn_recursive import (
        MultiverseRE,
        RecurrentExpansionClassifier,
        RecurrentExpansionRegressor,
    )

    regression = dataset == "sinusoid"
    s = cfg["sinusoid"] if regression else cfg["ucr"]
    if variant == "MLP":
        MLP = MLPRegressor if regression else MLPClassifier
        extra = {} if regression else {"validation_fraction": s["valid_frac"]}
        return MLP(hidden_layer_sizes=cfg["hidden"], early_stopping=True, max_iter=1000,
                   random_state=seed, **extra)
    if variant == "HGB":
        HGB = HistGradientBoostingRegressor if regression else HistGradientBoostingClassifier
        return HGB(random_state=seed)
    RE = RecurrentExpansionRegressor if regression else RecurrentExpansionClassifier
    module = variant[3:] if variant in SINGLE else None
    est = RE(
        hidden_layer_sizes=cfg["hidden"], n_rounds=s["rounds"], n_components=cfg["n_components"],
        max_epochs=s["max_epochs"], batch_size=cfg["batch_size"], lr=cfg["lr"],
        early_stopping=early_stopping, validation_fraction=s["valid_frac"],
        device=cfg["device"], random_state=seed, module=module,
    )
    if variant == "RE" or variant in SINGLE:
        return est
    if variant == "MVRE":
        return MultiverseRE(est, members=cfg["k"])
    if variant == "HMVRE":
        return MultiverseRE(est, members=list(ARCHS))
    return MultiverseRE(est, members=list(ARCHS), n_select=2, weighting="score")


def _warm_up(cfg):
    """One tiny fit of every member kind per worker process, so that the first timed
    fit does not pay for torch's lazy initialisation."""
    if os.environ.get("_BENCH_MV_ACC_WARM"):
        return
    from sklearn_recursive import MultiverseRE, RecurrentExpansionClassifier

    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 2, 8)).astype(np.float32)
    y = np.arange(40) % 2
    est = RecurrentExpansionClassifier((8,), n_rounds=2, n_components=2, max_epochs=2,
                                       device=cfg["device"], random_state=0)
    MultiverseRE(est, members=list(ARCHS)).fit(X, y)
    MultiverseRE(est, members=2).fit(X, y)
    os.environ["_BENCH_MV_ACC_WARM"] = "1"


def run_task(dataset, variant, seed, early_stopping, cfg):
    """Fit one (dataset, variant, seed[, early stopping]) and score it on the test set."""
    import torch
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(cfg["threads"])
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    with threadpool_limits(cfg["threads"]):
        _warm_up(cfg)
        X, y, X_te, y_te = load(dataset, seed, cfg)
        regression = dataset == "sinusoid"
        if variant in BASELINES:  # flattened windows
            X, X_te = X.reshape(len(X), -1), X_te.reshape(len(X_te), -1)
        model = make_model(variant, dataset, seed, cfg, early_stopping)
        start = time.perf_counter()
        model.fit(X, y)
        seconds = time.perf_counter() - start

        def score(pred):
            if regression:
                return float(np.mean((pred - y_te) ** 2))
            return float(np.mean(pred == y_te))

        out = {"dataset": dataset, "variant": variant, "seed": seed, "es": early_stopping,
               "seconds": seconds, "score": score(model.predict(X_te))}
        if variant in VARIANTS:
            out["best_round"], out["n_rounds"] = int(model.best_round_), int(model.n_rounds_)
            if regression:
                out["curve"] = np.array([score(p) for p in model.staged_predict(X_te)])
            if variant in MULTIVERSES:
                out["members"] = [[(m["name"], bool(m["selected"])) for m in h["members"]]
                                  for h in model.history_]
    return out


def stats(values):
    values = np.asarray(values, dtype=float)
    std = values.std(axis=0, ddof=1) if len(values) > 1 else np.zeros(values.shape[1:])
    return values.mean(axis=0), std


def pm(values, digits):
    mean, std = stats(values)
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def cost(task):
    """Rough relative cost, to start the longest fits first."""
    dataset, variant, _, es = task
    base = {"sinusoid": 10, "italy": 1, "basicmotions": 4, "arrowhead": 30}[dataset]
    weight = {"HMVRE": 8, "Sc-HMVRE": 8, "MVRE": 1.5, "RE": 1, "RE-transformer": 4,
              "RE-cnn": 2, "RE-gru": 1.5, "RE-lstm": 1.5}
    return base * weight.get(variant, 0.1)


def print_sinusoid(res, cfg):
    s = cfg["sinusoid"]
    last = s["rounds"] - 1
    shown = [r for r in SHOWN_ROUNDS if r < last] + [last]
    print("\n## Noisy sinusoid\n")
    print(f"Train: make_sinusoid({cfg['n_train']}, noise={cfg['noise']}, random_state=seed); "
          f"test: MSE against the clean sin(t) on an even grid of {cfg['n_test']} points over "
          f"[0, 4π] (noise variance {cfg['noise'] ** 2:.2f} is the noisy-target floor). "
          "X is raw t (1 feature): the sequence members (cnn, gru, transformer) read it as a "
          "1-channel sequence of length 1 -- a fair but odd use of them.\n")
    print(f"### early_stopping=False, all {s['rounds']} rounds: test MSE per round "
          "(staged_predict)\n")
    print("min (per seed): each seed's round of minimum test MSE and that MSE (an oracle); "
          "mean-curve min: round of the minimum of the mean curve; last/min: mean curve's last "
          "round over its minimum; jitter: mean |log(MSE_r+1 / MSE_r)| over rounds >= 1 "
          f"(roughness); rise: first round after the mean-curve minimum that is > "
          f"{1 + cfg['margin']:.2f} × it.\n")
    cols = [f"round {r}" for r in shown]
    print("| variant | " + " | ".join(cols) + " | min round (per seed) | min MSE (per seed) "
          "| mean-curve min | last/min | jitter | rise | fit s |")
    print("|---|" + "---|" * (len(cols) + 7))
    for v in VARIANTS:
        rows = [r for r in res if r["variant"] == v and not r["es"]]
        if not rows:
            continue
        curves = np.array([r["curve"] for r in rows])
        mean_curve = curves.mean(axis=0)
        best = int(np.argmin(mean_curve))
        above = np.flatnonzero(mean_curve[best + 1:] > mean_curve[best] * (1 + cfg["margin"]))
        rise = str(int(above[0]) + best + 1) if above.size else "none"
        jitter = np.mean(np.abs(np.diff(np.log(curves[:, 1:]), axis=1)), axis=1)
        cells = [pm(curves[:, r], 5) for r in shown]
        argmins = ", ".join(str(int(np.argmin(c))) for c in curves)
        print(f"| {label(v, cfg)} | " + " | ".join(cells)
              + f" | {argmins} | {pm(curves.min(axis=1), 5)} | {best} ({mean_curve[best]:.5f}) "
              f"| {mean_curve[-1] / mean_curve[best]:.2f} | {pm(jitter, 3)} | {rise} "
              f"| {pm([r['seconds'] for r in rows], 2)} |")

    print(f"\n### early_stopping=True (validation_fraction {s['valid_frac']}, patience "
          f"{cfg['patience']} epochs and rounds, at most {s['rounds']} rounds): test MSE of "
          "predict\n")
    print("oracle: the minimum test MSE over that fit's own rounds. MLP: sklearn "
          f"MLPRegressor{cfg['hidden']} with its own early stopping; HGB: defaults.\n")
    print("| variant | test MSE at best_round_ | best_round_ (per seed) | rounds fitted "
          "| oracle MSE | fit s |")
    print("|---|---|---|---|---|---|")
    for v in (*VARIANTS, *BASELINES):
        rows = [r for r in res if r["variant"] == v and r["es"]]
        if not rows:
            continue
        if v in BASELINES:
            print(f"| {v} | {pm([r['score'] for r in rows], 5)} | – | – | – "
                  f"| {pm([r['seconds'] for r in rows], 2)} |")
            continue
        best = ", ".join(str(r["best_round"]) for r in rows)
        fitted = ", ".join(str(r["n_rounds"]) for r in rows)
        print(f"| {label(v, cfg)} | {pm([r['score'] for r in rows], 5)} | {best} | {fitted} "
              f"| {pm([r['curve'].min() for r in rows], 5)} "
              f"| {pm([r['seconds'] for r in rows], 2)} |")


def print_ucr(res, datasets, shapes, cfg):
    u = cfg["ucr"]
    print("\n## UCR/UEA classification: accuracy on the official test split\n")
    print(f"Every series z-normalised per sample and channel. RE-based: early_stopping=True, "
          f"validation_fraction {u['valid_frac']}, patience {cfg['patience']}, at most "
          f"{u['rounds']} rounds of at most {u['max_epochs']} epochs; best_round_ per seed in "
          f"brackets. MLP: sklearn MLPClassifier{cfg['hidden']}, early_stopping=True, "
          f"validation_fraction {u['valid_frac']}, on flattened windows; HGB: defaults, "
          "flattened windows.\n")
    print("| variant | " + " | ".join(
        f"{UCR[d][1]} {shapes[d]} acc | fit s" for d in datasets) + " |")
    print("|---|" + "---|---|" * len(datasets))
    for v in (*VARIANTS, *BASELINES):
        if not any(r["variant"] == v for r in res):
            continue
        cells = []
        for d in datasets:
            rows = [r for r in res if r["dataset"] == d and r["variant"] == v]
            acc = pm([r["score"] for r in rows], 3)
            if v in VARIANTS:
                acc += " [" + ",".join(str(r["best_round"]) for r in rows) + "]"
            cells += [acc, pm([r["seconds"] for r in rows], 2)]
        print(f"| {label(v, cfg)} | " + " | ".join(cells) + " |")


def print_selection(res, datasets):
    rows = [r for r in res if r["variant"] == "Sc-HMVRE"]
    if not rows:
        return
    print("\n### Sc-HMVRE: how often each architecture was among the n_select=2 kept\n")
    print("Over every fitted round of every seed (sinusoid: the early_stopping=False fits, "
          "selected by training loss; classification: by validation loss).\n")
    print("| dataset | " + " | ".join(ARCHS) + " |")
    print("|---|" + "---|" * len(ARCHS))
    for d in datasets:
        kept = dict.fromkeys(ARCHS, 0)
        total = 0
        for r in rows:
            if r["dataset"] != d or (d == "sinusoid" and r["es"]):
                continue
            for rnd in r["members"]:
                total += 1
                for name, selected in rnd:
                    kept[name] += selected
        if total:
            print(f"| {d} | " + " | ".join(f"{kept[a]}/{total}" for a in ARCHS) + " |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["sinusoid", "italy", "basicmotions"],
                        choices=DATASETS)
    parser.add_argument("--variants", nargs="+", default=list(DEFAULT_VARIANTS),
                        choices=[*VARIANTS, *BASELINES],
                        help="RE-cnn, RE-gru, RE-lstm, RE-transformer (not run by default): "
                             "RE with that module alone, to compare HMVRE with its members")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0 .. seeds-1")
    parser.add_argument("--k", type=int, default=5, help="members of MVRE")
    parser.add_argument("--rounds", type=int, default=15,
                        help="rounds on the sinusoid (fixed without early stopping)")
    parser.add_argument("--max-epochs", type=int, default=30, help="epochs/net, sinusoid")
    parser.add_argument("--ucr-rounds", type=int, default=5, help="max rounds, UCR sets")
    parser.add_argument("--ucr-max-epochs", type=int, default=100, help="epochs/net, UCR sets")
    parser.add_argument("--valid-frac", type=float, default=0.2,
                        help="validation_fraction on the (tiny) UCR training sets")
    parser.add_argument("--n-train", type=int, default=1000)
    parser.add_argument("--n-test", type=int, default=2000)
    parser.add_argument("--noise", type=float, default=0.3)
    parser.add_argument("--margin", type=float, default=0.10,
                        help="relative rise over the minimum that counts as the glitch")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch/BLAS threads per fit")
    parser.add_argument("--n-jobs", type=int, default=2, help="fits run side by side")
    parser.add_argument("--quick", action="store_true",
                        help="2 seeds, sinusoid 500 rows x 5 rounds x 10 epochs, UCR 2 rounds "
                             "x 30 epochs, ItalyPowerDemand and BasicMotions")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.n_train, args.n_test = 2, 500, 1000
        args.rounds, args.max_epochs, args.ucr_rounds, args.ucr_max_epochs = 5, 10, 2, 30
    cfg = dict(
        hidden=(64, 64), n_components=8, batch_size=128, lr=1e-3, patience=10, k=args.k,
        n_train=args.n_train, n_test=args.n_test, noise=args.noise, margin=args.margin,
        device=args.device, threads=args.threads,
        sinusoid=dict(rounds=args.rounds, max_epochs=args.max_epochs, valid_frac=0.1),
        ucr=dict(rounds=args.ucr_rounds, max_epochs=args.ucr_max_epochs,
                 valid_frac=args.valid_frac),
    )

    datasets = list(dict.fromkeys(args.datasets))
    ucr = [d for d in datasets if d in UCR]
    if ucr:
        try:
            import aeon  # noqa: F401
        except ImportError:
            msg = (f"aeon is not installed: skipping {', '.join(UCR[d][1] for d in ucr)}. "
                   "Install it with `pip install aeon` (it is in the `bench` extra: "
                   "pip install 'sklearn-recursive[bench]').")
            print(msg, file=sys.stderr)
            print(f"> {msg}\n")
            datasets = [d for d in datasets if d not in UCR]
            ucr = []

    import joblib
    import sklearn
    import torch
    from joblib import Parallel, delayed

    import sklearn_recursive

    shapes = {}
    for d in ucr:
        X, _, X_te, y_te = load(d, 0, cfg)
        shapes[d] = f"({len(X)}/{len(X_te)} × {X.shape[1]}×{X.shape[2]}, {len(np.unique(y_te))} cl)"

    tasks = []
    for d in datasets:
        for seed in range(args.seeds):
            for v in dict.fromkeys(args.variants):
                if d == "sinusoid" and v in VARIANTS:
                    tasks.append((d, v, seed, False))
                tasks.append((d, v, seed, True))  # baselines: their own early stopping
    tasks.sort(key=cost, reverse=True)

    aeon_version = ""
    if ucr:
        import aeon

        aeon_version = f", aeon {aeon.__version__}"
    print("# bench_multiverse_accuracy" + (" (--quick)" if args.quick else ""))
    print()
    print(f"sklearn_recursive {sklearn_recursive.__version__}, torch {torch.__version__}, "
          f"scikit-learn {sklearn.__version__}{aeon_version}; device {args.device}; "
          f"{joblib.cpu_count()} cores, {args.n_jobs} fit(s) side by side, "
          f"torch.set_num_threads({args.threads}) and {args.threads} BLAS thread(s) per fit.  ")
    print(f"Seeds 0..{args.seeds - 1}; mean ± std (ddof=1) over seeds.  ")
    print(f"Inner estimator of every RE-based variant: MLP {cfg['hidden']}, PCA to "
          f"{cfg['n_components']}, batch {cfg['batch_size']}, Adam lr {cfg['lr']}; sinusoid "
          f"{args.rounds} rounds × {args.max_epochs} epochs; UCR at most {args.ucr_rounds} "
          f"rounds × {args.ucr_max_epochs} epochs. MVRE k={args.k}: members=k (stacked); "
          f"HMVRE: members={list(ARCHS)} (built-in defaults: cnn (16, 32) k=5, gru 32, "
          "transformer d_model 32 × 2 layers; fusion width 64); Sc-HMVRE: HMVRE + n_select=2, "
          "weighting='score'.")
    if any(v in SINGLE for v in args.variants):
        print("RE, module=<arch>: the same inner estimator with that built-in module alone "
              "(hidden_layer_sizes unused), one network per round.")

    start = time.perf_counter()
    jobs = (delayed(run_task)(*task, cfg) for task in tasks)
    results = []
    for out in Parallel(n_jobs=args.n_jobs, return_as="generator_unordered")(jobs):
        results.append(out)
        what = f"MSE {out['score']:.5f}" if out["dataset"] == "sinusoid" else \
            f"acc {out['score']:.3f}"
        if "best_round" in out:
            what += f", best_round_ {out['best_round']}/{out['n_rounds']}"
        es = " ES" if out["es"] and out["dataset"] == "sinusoid" and out["variant"] in VARIANTS \
            else ""
        print(f"[{time.perf_counter() - start:6.0f}s {len(results)}/{len(tasks)}] "
              f"{out['dataset']} {label(out['variant'], cfg)}{es} seed={out['seed']}: {what}, "
              f"fit {out['seconds']:.1f}s", file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - start
    results.sort(key=lambda r: r["seed"])

    if "sinusoid" in datasets:
        print_sinusoid([r for r in results if r["dataset"] == "sinusoid"], cfg)
    if ucr:
        print_ucr([r for r in results if r["dataset"] in UCR], ucr, shapes, cfg)
    print_selection(results, datasets)
    print(f"\nTotal wall time {elapsed:.0f} s ({len(tasks)} fits, n_jobs={args.n_jobs}).")


if __name__ == "__main__":
    main()
