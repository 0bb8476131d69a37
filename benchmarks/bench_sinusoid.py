"""Test error per round on the noisy sinusoid: the representation glitch and cross-fitting.

Training data: ``make_sinusoid(n_train, noise, random_state=seed)``; test data:
``make_sinusoid(n_test, noise, random_state=seed + 10_000)``, scored against its
noisy y ("noisy") and against the clean sin(t) ("clean", the same seed with
``noise=0``, so the same t). Per round (``staged_predict``) it compares

* RE in-sample:  ``RecurrentExpansionRegressor(cv=None)``;
* RE cv=5:       cross-fitted predictions, maps = mean of the fold networks;

all with ``early_stopping=False``, and two baselines: the same network alone
given the same total epochs (``n_rounds=1, max_epochs=rounds * max_epochs``)
and ``HistGradientBoostingRegressor()`` with default settings. A fourth curve,
"MLP same epochs", is that lone network scored after every ``max_epochs``
epochs (trained on with skorch's ``partial_fit``), i.e. at the epochs RE has
spent by each round. The in-sample
and cv=5 variants are also fitted with ``early_stopping=True`` (10% of the
training rows held out, ``--patience`` epochs and rounds) to see which ``best_round_`` they
pick and the test error there.

For each variant it reports the round of minimum mean test MSE, the first
later round whose mean MSE exceeds that minimum by more than ``--margin``
(relative; the "representation glitch"), how many later rounds do, and the
final round's and the last quarter's MSE relative to the minimum (the glitch as
``sklearn_recursive.reproduce.expansion.glitch`` finds it). Means and standard
deviations (ddof=1) are over ``--seeds`` seeds (seed s seeds the data and
``random_state``).

Target: none fixed; the question is whether the glitch appears, and whether
cross-fitting delays or removes it. Default run (n_train 1000, noise 0.3,
hidden (64, 64), n_components 8, 30 epochs, 40 rounds for every variant,
3 seeds) takes about 6-7 minutes on 2 cores (``--n-jobs 2``); ``--quick`` under
half a minute. One torch/BLAS thread per fit.

    python benchmarks/bench_sinusoid.py [--rounds 40] [--seeds 3] [--quick] [--plot PATH]
"""

import argparse
import time

import numpy as np

from sklearn_recursive.reproduce._report import pm
from sklearn_recursive.reproduce.expansion import glitch, rises

VARIANTS = ("in-sample", "cv=5")
MLP_CURVE = "MLP same epochs"  # one network, test MSE after (i + 1) * max_epochs epochs
CURVES = (*VARIANTS, MLP_CURVE)
ES_VARIANTS = ("in-sample ES", "cv=5 ES")
BASELINES = ("plain MLP", "HGB")


def run_task(name, seed, cfg):
    """Fit one variant on one seed; return its test MSEs (per round when staged)."""
    import torch
    from sklearn.ensemble import HistGradientBoostingRegressor
    from threadpoolctl import threadpool_limits

    from sklearn_recursive import RecurrentExpansionRegressor
    from sklearn_recursive._training import TensorDataset
    from sklearn_recursive.datasets import make_sinusoid

    torch.set_num_threads(1)
    X, y = make_sinusoid(cfg["n_train"], noise=cfg["noise"], random_state=seed)
    X_te, y_te = make_sinusoid(cfg["n_test"], noise=cfg["noise"], random_state=seed + 10_000)
    X_cl, y_cl = make_sinusoid(cfg["n_test"], noise=0.0, random_state=seed + 10_000)
    assert np.array_equal(X_te, X_cl)

    def scores(pred):
        return {"clean": float(np.mean((pred - y_cl) ** 2)),
                "noisy": float(np.mean((pred - y_te) ** 2))}

    common = dict(
        hidden_layer_sizes=cfg["hidden"], n_components=cfg["n_components"],
        max_epochs=cfg["max_epochs"], batch_size=cfg["batch_size"], lr=cfg["lr"],
        device="cpu", random_state=seed,
    )
    cls, n_rounds, kwargs = RecurrentExpansionRegressor, cfg["rounds"], {}
    if name == "HGB":
        cls, common = HistGradientBoostingRegressor, dict(random_state=seed)
    elif name == "plain MLP":
        n_rounds, common["max_epochs"] = 1, cfg["rounds"] * cfg["max_epochs"]
    elif name == MLP_CURVE:
        n_rounds = 1
    elif name.startswith("cv=5"):
        n_rounds, kwargs["cv"] = cfg["cv_rounds"], 5
    if cls is not HistGradientBoostingRegressor:
        kwargs.update(n_rounds=n_rounds, early_stopping=name.endswith("ES"),
                      n_iter_no_change=cfg["patience"])
    est = cls(**common, **kwargs)
    start = time.perf_counter()
    with threadpool_limits(1):
        est.fit(X, y)
        if name == MLP_CURVE:
            # keep training the same net (and Adam state) max_epochs at a time;
            # the shuffling restarts from its seed in each chunk.
            net = est.rounds_[0].nets[0]
            y_enc = ((y.reshape(-1, 1) - est.y_mean_) / est.y_scale_).astype(np.float32)
            X_net = est._validate_X(X)  # the network's input: X as fit standardised it
            data = TensorDataset({"X": X_net, "Z": np.zeros((len(X), 0), np.float32)}, y_enc)
            staged = [scores(est.predict(X_te))]
            for _ in range(cfg["rounds"] - 1):
                net.partial_fit(data)
                staged.append(scores(est.predict(X_te)))
            assert len(net.history) == cfg["rounds"] * cfg["max_epochs"]
        elif name in VARIANTS or name in ES_VARIANTS:
            staged = [scores(p) for p in est.staged_predict(X_te)]
        else:
            staged = [scores(est.predict(X_te))]
    out = {
        "name": name, "seed": seed, "seconds": time.perf_counter() - start,
        "clean": np.array([s["clean"] for s in staged]),
        "noisy": np.array([s["noisy"] for s in staged]),
    }
    if name in ES_VARIANTS:
        out["best_round"], out["n_rounds"] = int(est.best_round_), int(est.n_rounds_)
        out["predict_clean"] = scores(est.predict(X_te))["clean"]
        out["epochs"] = float(np.mean([h["epochs"] for h in est.history_[: est.best_round_ + 1]]))
    return out


def glitch_summary(curve, margin):
    """Minimum round, the glitch (first later round above min * (1 + margin)), how many
    later rounds are above, of how many, final / min, mean of the last quarter / min."""
    best, first = glitch(curve, margin)
    _, above = rises(curve, margin)
    late = curve[-max(1, len(curve) // 4):].mean()
    n_after = len(curve) - best - 1
    return best, first, above.size, n_after, curve[-1] / curve[best], late / curve[best]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=1000)
    parser.add_argument("--n-test", type=int, default=2000)
    parser.add_argument("--noise", type=float, default=0.3)
    parser.add_argument("--hidden", type=int, nargs="+", default=[64, 64])
    parser.add_argument("--n-components", type=int, default=8)
    parser.add_argument("--max-epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--rounds", type=int, default=40, help="rounds of the in-sample RE")
    parser.add_argument("--cv-rounds", type=int, default=None,
                        help="rounds of the cv=5 variants (default: --rounds)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0 .. seeds-1")
    parser.add_argument("--patience", type=int, default=10,
                        help="n_iter_no_change of the early-stopping variants (the default's)")
    parser.add_argument("--margin", type=float, default=0.10,
                        help="relative rise over the minimum that counts as the glitch")
    parser.add_argument("--n-jobs", type=int, default=2, help="parallel fits (1 thread each)")
    parser.add_argument("--quick", action="store_true",
                        help="small setting: 500 rows, 8 rounds, 15 epochs, 2 seeds")
    parser.add_argument("--plot", metavar="PATH", help="save a PNG of test MSE per round")
    args = parser.parse_args()
    if args.quick:
        args.n_train, args.n_test, args.rounds, args.max_epochs, args.seeds = 500, 1000, 8, 15, 2
    if args.cv_rounds is None:
        args.cv_rounds = args.rounds
    cfg = dict(
        n_train=args.n_train, n_test=args.n_test, noise=args.noise, hidden=tuple(args.hidden),
        n_components=args.n_components, max_epochs=args.max_epochs,
        batch_size=args.batch_size, lr=args.lr, rounds=args.rounds, cv_rounds=args.cv_rounds,
        patience=args.patience,
    )

    from joblib import Parallel, delayed

    # longest fits first, so that the two workers finish together
    order = ("cv=5", "cv=5 ES", "in-sample", "plain MLP", MLP_CURVE,
             "in-sample ES", "HGB")
    tasks = [(name, seed) for name in order for seed in range(args.seeds)]
    start = time.perf_counter()
    results = Parallel(n_jobs=args.n_jobs)(delayed(run_task)(n, s, cfg) for n, s in tasks)
    elapsed = time.perf_counter() - start
    by = {}
    for res in results:
        by.setdefault(res["name"], []).append(res)

    print(f"noisy sinusoid: n_train {args.n_train}, n_test {args.n_test}, noise {args.noise} "
          f"(noisy-target MSE floor {args.noise ** 2:.3f}), MLP {tuple(args.hidden)}, PCA to "
          f"{args.n_components}, {args.max_epochs} epochs/net, batch {args.batch_size}, "
          f"lr {args.lr}")
    print(f"rounds: in-sample {args.rounds}, cv=5 variants {args.cv_rounds}; seeds "
          f"0..{args.seeds - 1}; test MSE mean ± std (ddof=1) over seeds")
    print(f"'{MLP_CURVE}': one network (the round-0 net) trained on for (round + 1) x "
          f"{args.max_epochs} epochs, i.e. the epochs RE has spent by that round")
    curves = {
        v: {t: np.array([r[t] for r in by[v]]) for t in ("clean", "noisy")} for v in CURVES
    }
    n_max = max(args.rounds, args.cv_rounds)
    minima = {int(np.argmin(curves[v][t].mean(axis=0))) for v in CURVES for t in curves[v]}
    if n_max <= 12:
        shown = list(range(n_max))
    else:
        step = max(1, n_max // 10)
        shown = sorted(set(range(5)) | set(range(0, n_max, step)) | minima | {n_max - 1})
    for target in ("clean", "noisy"):
        label = "clean sin(t)" if target == "clean" else "noisy y"
        print()
        print(f"test MSE vs {label} per round (* = round of minimum mean)")
        print(f"{'round':>5} " + " ".join(f"{v:>16}" for v in CURVES))
        for i in shown:
            cells = []
            for v in CURVES:
                vals = curves[v][target]
                if i >= vals.shape[1]:
                    cells.append(f"{'':>16}")
                    continue
                star = "*" if i == int(np.argmin(vals.mean(axis=0))) else " "
                cells.append(f"{pm(vals[:, i], 4):>15}{star}")
            print(f"{i:>5} " + " ".join(cells))
        for b in BASELINES:
            vals = [r[target][0] for r in by[b]]
            extra = (f" (n_rounds=1, max_epochs={args.rounds * args.max_epochs})"
                     if b == "plain MLP" else " (default settings)")
            print(f"{b:>12}: {pm(vals, 4)}{extra}")

    print()
    print(f"glitch analysis on the mean curves (rise = mean MSE > min x {1 + args.margin:.2f})")
    print("(rounds above: later rounds above that level / later rounds; last-quarter/min: mean "
          "MSE of the last quarter of the rounds over the minimum)")
    print(f"{'variant':<16} {'target':<6} {'min round':>9} {'min MSE':>8} {'first rise':>10} "
          f"{'rounds above':>12} {'final/min':>9} {'last-quarter/min':>16}")
    for v in CURVES:
        for target in ("clean", "noisy"):
            best, first, n_above, n_after, ratio, late = glitch_summary(
                curves[v][target].mean(axis=0), args.margin
            )
            mean = curves[v][target].mean(axis=0)[best]
            first_s = "none" if first is None else str(first)
            print(f"{v:<16} {target:<6} {best:>9} {mean:>8.4f} {first_s:>10} "
                  f"{f'{n_above}/{n_after}':>12} {ratio:>9.3f} {late:>16.3f}")
    print("per seed, round of minimum clean MSE: " + "; ".join(
        f"{v}: {[int(np.argmin(c)) for c in curves[v]['clean']]}" for v in CURVES))

    print()
    print(f"early_stopping=True (validation_fraction 0.1, patience {cfg['patience']} epochs and "
          f"{cfg['patience']} rounds); test "
          "MSE of predict (chain up to best_round_);")
    print("oracle: round of minimum test clean MSE among this ES fit's rounds, and that MSE; "
          "no-ES: the early_stopping=False fit above at round best_round_;")
    print(f"epochs/net: mean epochs of the networks of rounds 0..best_round_ (max "
          f"{args.max_epochs}; each net stops after {cfg['patience']} epochs without a better "
          "valid loss)")
    print(f"{'variant':<14} {'seed':>4} {'best_round_':>11} {'n_rounds_':>9} {'clean MSE':>9} "
          f"{'noisy MSE':>9} {'oracle round':>12} {'oracle MSE':>10} {'no-ES MSE':>9} "
          f"{'epochs/net':>10}")
    for v in ES_VARIANTS:
        base = v.removesuffix(" ES")
        for r in by[v]:
            b = r["best_round"]
            assert np.isclose(r["predict_clean"], r["clean"][b])
            ref = curves[base]["clean"][r["seed"]]
            same = ref[b] if b < len(ref) else float("nan")
            oracle = int(np.argmin(r["clean"]))
            print(f"{v:<14} {r['seed']:>4} {b:>11} {r['n_rounds']:>9} "
                  f"{r['clean'][b]:>9.4f} {r['noisy'][b]:>9.4f} {oracle:>12} "
                  f"{r['clean'][oracle]:>10.4f} {same:>9.4f} {r['epochs']:>10.1f}")
        clean = pm([r["clean"][r["best_round"]] for r in by[v]], 4)
        noisy = pm([r["noisy"][r["best_round"]] for r in by[v]], 4)
        oracle = pm([r["clean"].min() for r in by[v]], 4)
        print(f"{v:<14} {'mean':>4}  at best_round_: clean {clean}, noisy {noisy}; "
              f"oracle clean {oracle}")
    print()
    print(f"total wall time {elapsed:.0f} s with n_jobs={args.n_jobs}")

    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharex=True)
        for ax, target in zip(axes, ("clean", "noisy")):
            for v, color in zip(CURVES, ("C0", "C1", "C2", "C7")):
                vals = curves[v][target]
                rounds = np.arange(vals.shape[1])
                label = f"RE {v}" if v in VARIANTS else f"{v} ((round+1) x epochs)"
                ax.plot(rounds, vals.mean(axis=0), color=color, label=label,
                        ls="-" if v in VARIANTS else ":")
                ax.fill_between(rounds, vals.min(axis=0), vals.max(axis=0), color=color,
                                alpha=0.2)
            for b, color in zip(BASELINES, ("C3", "C4")):
                ax.axhline(np.mean([r[target][0] for r in by[b]]), color=color, ls="--",
                           label=f"{b} ({args.rounds * args.max_epochs} epochs)"
                           if b == "plain MLP" else b)
            ax.set_yscale("log")
            ax.set_xlabel("round")
            ax.set_ylabel(f"test MSE vs {'clean sin(t)' if target == 'clean' else 'noisy y'}")
        axes[0].legend(fontsize=8)
        fig.suptitle(f"noisy sinusoid, mean and min-max over {args.seeds} seeds")
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)
        print(f"plot saved to {args.plot}")


if __name__ == "__main__":
    main()
