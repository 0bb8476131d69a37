"""Multiverse Recurrent Expansion against plain RE, an MLP and HistGradientBoosting.

Does a multiverse -- ``MultiverseRE`` with k seeds (MVRE), with heterogeneous
architectures (HMVRE) or with per-round selection (Sc-HMVRE) -- do better than
plain Recurrent Expansion (RE), than one scikit-learn MLP and than
HistGradientBoosting; and does the multiverse smooth or delay the
representation glitch on the noisy sinusoid?

Variants (for a dataset, every RE-based one wraps the same inner estimator,
an MLP 64-64 with PCA to 8 components): ``RE`` alone; ``MVRE k``
(``members=k``, seeds, stacked training); ``HMVRE`` (``members=["mlp",
"cnn", "gru", "transformer"]``); ``Sc-HMVRE`` (the same members,
``n_select=2, weighting="score"``); ``MLP`` (``MLPRegressor`` /
``MLPClassifier``, 64-64, its own early stopping) and ``HGB``
(``HistGradientBoosting*``, defaults), both on flattened windows. Opt-in
controls ``RE-cnn``, ``RE-gru``, ``RE-lstm``, ``RE-transformer`` are RE with
that module alone: does HMVRE beat its best single architecture, or carry
it?

Datasets: the noisy sinusoid (test MSE against the clean sine; the RE-based
variants are fitted with a fixed number of rounds to see the per-round curve,
and with early stopping), and the UCR/UEA sets ItalyPowerDemand and
BasicMotions (ArrowHead on request) that ship with ``aeon``, z-normalised per
sample and channel, scored by accuracy on the official test split. Without
``aeon`` installed the UCR sets are skipped, and the report says so.
"""

import dataclasses
import os
import time
import warnings

import numpy as np
import torch
from joblib import Parallel, delayed
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier, MLPRegressor
from threadpoolctl import threadpool_limits

from .. import MultiverseRE, RecurrentExpansionClassifier, RecurrentExpansionRegressor
from ..datasets import make_sinusoid
from ._report import mse_per_round_figure, pm
from .expansion import glitch

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
        X, y = make_sinusoid(cfg["n_train"], noise=cfg["noise"], random_state=seed)
        t = np.linspace(0.0, 2 * np.pi * 2.0, cfg["n_test"])  # make_sinusoid's n_periods=2
        return X, y, t.reshape(-1, 1).astype(np.float32), np.sin(t)
    import aeon.datasets

    loader = getattr(aeon.datasets, UCR[dataset][0])
    X, y = loader(split="train")
    X_te, y_te = loader(split="test")
    return znorm(X), np.asarray(y), znorm(X_te), np.asarray(y_te)


def make_model(variant, dataset, seed, cfg, early_stopping):
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


def cost(task):
    """Rough relative cost, to start the longest fits first."""
    dataset, variant, _, es = task
    base = {"sinusoid": 10, "italy": 1, "basicmotions": 4, "arrowhead": 30}[dataset]
    weight = {"HMVRE": 8, "Sc-HMVRE": 8, "MVRE": 1.5, "RE": 1, "RE-transformer": 4,
              "RE-cnn": 2, "RE-gru": 1.5, "RE-lstm": 1.5}
    return base * weight.get(variant, 0.1)


def _sinusoid_lines(res, cfg):
    lines = []
    s = cfg["sinusoid"]
    last = s["rounds"] - 1
    shown = [r for r in SHOWN_ROUNDS if r < last] + [last]
    lines.append("\n## Noisy sinusoid\n")
    lines.append(f"Train: make_sinusoid({cfg['n_train']}, noise={cfg['noise']}, "
          "random_state=seed); "
          f"test: MSE against the clean sin(t) on an even grid of {cfg['n_test']} points over "
          f"[0, 4π] (noise variance {cfg['noise'] ** 2:.2f} is the noisy-target floor). "
          "X is raw t (1 feature): the sequence members (cnn, gru, transformer) read it as a "
          "1-channel sequence of length 1 -- a fair but odd use of them.\n")
    lines.append(f"### early_stopping=False, all {s['rounds']} rounds: test MSE per round "
          "(staged_predict)\n")
    lines.append("min (per seed): each seed's round of minimum test MSE and that MSE (an oracle); "
          "mean-curve min: round of the minimum of the mean curve; last/min: mean curve's last "
          "round over its minimum; jitter: mean |log(MSE_r+1 / MSE_r)| over rounds >= 1 "
          f"(roughness); rise: first round after the mean-curve minimum that is > "
          f"{1 + cfg['margin']:.2f} × it.\n")
    cols = [f"round {r}" for r in shown]
    lines.append("| variant | " + " | ".join(cols) + " | min round (per seed) | min MSE (per seed) "
          "| mean-curve min | last/min | jitter | rise | fit s |")
    lines.append("|---|" + "---|" * (len(cols) + 7))
    for v in VARIANTS:
        rows = [r for r in res if r["variant"] == v and not r["es"]]
        if not rows:
            continue
        curves = np.array([r["curve"] for r in rows])
        mean_curve = curves.mean(axis=0)
        best, first = glitch(mean_curve, cfg["margin"])
        rise = "none" if first is None else str(first)
        jitter = "–"  # needs at least two steps between rounds >= 1
        if curves.shape[1] >= 3:
            jitter = pm(np.mean(np.abs(np.diff(np.log(curves[:, 1:]), axis=1)), axis=1), 3)
        cells = [pm(curves[:, r], 5) for r in shown]
        argmins = ", ".join(str(int(np.argmin(c))) for c in curves)
        lines.append(f"| {label(v, cfg)} | " + " | ".join(cells)
              + f" | {argmins} | {pm(curves.min(axis=1), 5)} | {best} ({mean_curve[best]:.5f}) "
              f"| {mean_curve[-1] / mean_curve[best]:.2f} | {jitter} | {rise} "
              f"| {pm([r['seconds'] for r in rows], 2)} |")

    lines.append(f"\n### early_stopping=True (validation_fraction {s['valid_frac']}, patience "
          f"{cfg['patience']} epochs and rounds, at most {s['rounds']} rounds): test MSE of "
          "predict\n")
    lines.append("oracle: the minimum test MSE over that fit's own rounds. MLP: sklearn "
          f"MLPRegressor{cfg['hidden']} with its own early stopping; HGB: defaults.\n")
    lines.append("| variant | test MSE at best_round_ | best_round_ (per seed) | rounds fitted "
          "| oracle MSE | fit s |")
    lines.append("|---|---|---|---|---|---|")
    for v in (*VARIANTS, *BASELINES):
        rows = [r for r in res if r["variant"] == v and r["es"]]
        if not rows:
            continue
        if v in BASELINES:
            lines.append(f"| {v} | {pm([r['score'] for r in rows], 5)} | – | – | – "
                  f"| {pm([r['seconds'] for r in rows], 2)} |")
            continue
        best = ", ".join(str(r["best_round"]) for r in rows)
        fitted = ", ".join(str(r["n_rounds"]) for r in rows)
        lines.append(f"| {label(v, cfg)} | {pm([r['score'] for r in rows], 5)} | {best} | {fitted} "
              f"| {pm([r['curve'].min() for r in rows], 5)} "
              f"| {pm([r['seconds'] for r in rows], 2)} |")
    return lines


def _ucr_lines(res, datasets, shapes, cfg):
    lines = []
    u = cfg["ucr"]
    lines.append("\n## UCR/UEA classification: accuracy on the official test split\n")
    lines.append("Every series z-normalised per sample and channel. RE-based: "
          "early_stopping=True, "
          f"validation_fraction {u['valid_frac']}, patience {cfg['patience']}, at most "
          f"{u['rounds']} rounds of at most {u['max_epochs']} epochs; best_round_ per seed in "
          f"brackets. MLP: sklearn MLPClassifier{cfg['hidden']}, early_stopping=True, "
          f"validation_fraction {u['valid_frac']}, on flattened windows; HGB: defaults, "
          "flattened windows.\n")
    lines.append("| variant | " + " | ".join(
        f"{UCR[d][1]} {shapes[d]} acc | fit s" for d in datasets) + " |")
    lines.append("|---|" + "---|---|" * len(datasets))
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
        lines.append(f"| {label(v, cfg)} | " + " | ".join(cells) + " |")
    return lines


def _selection_lines(res, datasets):
    lines = []
    rows = [r for r in res if r["variant"] == "Sc-HMVRE"]
    if not rows:
        return lines
    lines.append("\n### Sc-HMVRE: how often each architecture was among the n_select=2 kept\n")
    lines.append("Over every fitted round of every seed (sinusoid: the early_stopping=False fits, "
          "selected by training loss; classification: by validation loss).\n")
    lines.append("| dataset | " + " | ".join(ARCHS) + " |")
    lines.append("|---|" + "---|" * len(ARCHS))
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
            lines.append(f"| {d} | " + " | ".join(f"{kept[a]}/{total}" for a in ARCHS) + " |")
    return lines


@dataclasses.dataclass
class MultiverseConfig:
    """Settings of the multiverse experiments (the defaults: the full run)."""

    seeds: int = 3
    datasets: tuple = ("sinusoid", "italy", "basicmotions")
    variants: tuple = DEFAULT_VARIANTS
    k: int = 5  # members of MVRE
    rounds: int = 15  # sinusoid rounds (fixed without early stopping)
    max_epochs: int = 30  # epochs per network, sinusoid
    ucr_rounds: int = 5
    ucr_max_epochs: int = 100
    valid_frac: float = 0.2  # validation_fraction on the (tiny) UCR training sets
    n_train: int = 1000
    n_test: int = 2000
    noise: float = 0.3
    margin: float = 0.10  # relative rise over the minimum that counts as the glitch
    threads: int = 1  # torch/BLAS threads per fit
    n_jobs: int = 2  # fits side by side
    device: str = "cpu"

    @classmethod
    def quick(cls, **changes):
        """A setting that runs in two to three minutes on 2 CPU cores."""
        settings = dict(seeds=2, datasets=("sinusoid", "italy"), n_train=800, n_test=1000,
                        rounds=8, max_epochs=20, ucr_rounds=2, ucr_max_epochs=30)
        return cls(**{**settings, **changes})

    def as_dict(self):
        """The settings in the form `run_task` takes."""
        return dict(
            hidden=(64, 64), n_components=8, batch_size=128, lr=1e-3, patience=10, k=self.k,
            n_train=self.n_train, n_test=self.n_test, noise=self.noise, margin=self.margin,
            device=self.device, threads=self.threads,
            sinusoid=dict(rounds=self.rounds, max_epochs=self.max_epochs, valid_frac=0.1),
            ucr=dict(rounds=self.ucr_rounds, max_epochs=self.ucr_max_epochs,
                     valid_frac=self.valid_frac),
        )

    def describe(self):
        return (
            f"datasets {', '.join(self.datasets)}; variants {', '.join(self.variants)}; "
            f"{self.seeds} seeds; sinusoid {self.n_train} training rows, {self.rounds} rounds "
            f"x {self.max_epochs} epochs; UCR at most {self.ucr_rounds} rounds x "
            f"{self.ucr_max_epochs} epochs; MVRE k={self.k}; {self.n_jobs} fits side by side, "
            f"{self.threads} torch/BLAS thread(s) each; mean ± std (ddof=1) over seeds"
        )


def run(cfg, log):
    """Fit every (dataset, variant, seed); return the results and what was skipped."""
    settings = cfg.as_dict()
    datasets = list(dict.fromkeys(cfg.datasets))
    ucr = [d for d in datasets if d in UCR]
    skipped = None
    if ucr:
        try:
            import aeon  # noqa: F401
        except ImportError:
            skipped = (f"aeon is not installed: {', '.join(UCR[d][1] for d in ucr)} skipped. "
                       "Install it with `pip install aeon` (or the `bench` extra: "
                       "`pip install 'sklearn-recursive[bench]'`).")
            log(skipped)
            datasets = [d for d in datasets if d not in UCR]
            ucr = []
    shapes = {}
    for d in ucr:
        X, _, X_te, y_te = load(d, 0, settings)
        shapes[d] = (f"({len(X)}/{len(X_te)} × {X.shape[1]}×{X.shape[2]}, "
                     f"{len(np.unique(y_te))} cl)")
    tasks = []
    for d in datasets:
        for seed in range(cfg.seeds):
            for v in dict.fromkeys(cfg.variants):
                if d == "sinusoid" and v in VARIANTS:
                    tasks.append((d, v, seed, False))
                tasks.append((d, v, seed, True))  # baselines: their own early stopping
    tasks.sort(key=cost, reverse=True)
    jobs = (delayed(run_task)(*task, settings) for task in tasks)
    results = []
    for out in Parallel(n_jobs=cfg.n_jobs, return_as="generator_unordered")(jobs):
        results.append(out)
        what = (f"MSE {out['score']:.5f}" if out["dataset"] == "sinusoid"
                else f"acc {out['score']:.3f}")
        if "best_round" in out:
            what += f", best_round_ {out['best_round']}/{out['n_rounds']}"
        es = (" ES" if out["es"] and out["dataset"] == "sinusoid" and out["variant"] in VARIANTS
              else "")
        log(f"multiverse {len(results)}/{len(tasks)} {out['dataset']} "
            f"{label(out['variant'], settings)}{es} seed={out['seed']}: {what}, "
            f"fit {out['seconds']:.1f}s")
    results.sort(key=lambda r: r["seed"])
    return dict(results=results, datasets=datasets, ucr=ucr, shapes=shapes, skipped=skipped)


def markdown_lines(cfg, results):
    """Every table, with its explanations, as Markdown lines (headings from ``##``)."""
    settings, res = cfg.as_dict(), results["results"]
    lines = [f"> {results['skipped']}", ""] if results["skipped"] else []
    if "sinusoid" in results["datasets"]:
        lines += _sinusoid_lines([r for r in res if r["dataset"] == "sinusoid"], settings)
    if results["ucr"]:
        lines += _ucr_lines([r for r in res if r["dataset"] in UCR], results["ucr"],
                            results["shapes"], settings)
    lines += _selection_lines(res, results["datasets"])
    return "\n".join(lines).split("\n")


def tables(cfg, results):
    """The tables of `markdown_lines`, one heading level down, as one block."""
    lines = ["#" + line if line.startswith("#") else line for line in markdown_lines(cfg, results)]
    return [("Multiverse variants against RE, an MLP and HistGradientBoosting", lines)]


def figures(cfg, results):
    """``(name, figure, caption)``: mean test MSE per round on the sinusoid."""
    curves = {}
    for r in results["results"]:
        if r["dataset"] == "sinusoid" and not r["es"] and "curve" in r:
            curves.setdefault(r["variant"], []).append(r["curve"])
    if not curves:
        return []
    settings = cfg.as_dict()

    def draw(ax):
        for variant, runs in curves.items():
            ax.plot(np.mean(runs, axis=0), marker="o", label=label(variant, settings))

    fig = mse_per_round_figure(
        draw, "Noisy sinusoid: mean test MSE per round (no early stopping)")
    return [("multiverse_rounds.png", fig, "Mean test MSE per round over seeds, without "
             "early stopping, for RE and the multiverses")]
