"""Cost of rounds: fit time of R rounds vs R x the fit time of one round.

`RecurrentExpansionRegressor(n_rounds=R)` and the same estimator with
`n_rounds=1` (same data, epochs, batch size, seed, device="cpu",
early_stopping=False) are fitted alternately, after a warm-up fit
(``sklearn_recursive.reproduce.speed.alternate_times``); the ratio of
medians time(R rounds) / (R x time(1 round)) is printed.
Target: <= 1.15.

It also splits both fits' wall time, from the estimator's own records, into
the networks' epoch loops (skorch's per-epoch ``dur``), the rest of each
round (``history_[i]["seconds"]`` minus its epoch loops: building the net,
IMT inference on the training rows, the round record) and the rest of
``fit`` (input checks, and between rounds the fit of ``rho`` and the
expansion), each as a fraction of R x the 1-round fit time.

Torch and numpy's BLAS run on one thread by default (``--threads``): on a
shared 2-core machine, multi-threaded kernels on these small problems made
single fits (and the PCA aggregator) vary by more than 10x from run to run.

    python benchmarks/bench_rounds.py [--rounds 5] [--repeats 7] [--quick]
"""

import argparse
import statistics

import numpy as np
import torch
from sklearn.datasets import make_regression
from threadpoolctl import threadpool_limits

from sklearn_recursive import RecurrentExpansionRegressor
from sklearn_recursive.datasets import make_sinusoid
from sklearn_recursive.reproduce.speed import alternate_times


def make_data(kind, n_rows, seed):
    if kind == "sinusoid":
        return make_sinusoid(n_rows, noise=0.3, random_state=seed)
    X, y = make_regression(
        n_samples=n_rows, n_features=20, n_informative=10, noise=10.0, random_state=seed
    )
    y = y + 0.01 * y**2  # a little curvature, so that later rounds have something to do
    return X.astype(np.float32), y.astype(np.float32)


def components(est, wall):
    """A fit's ``wall`` seconds split, from the estimator's own records."""
    per_round = [rec["seconds"] for rec in est.history_]
    loops = [
        sum(float(d) for net in rnd.nets for d in net.history[:, "dur"]) for rnd in est.rounds_
    ]
    return {
        "wall": wall,
        "epoch loops": sum(loops),
        "rest of each round": sum(per_round) - sum(loops),
        "rest of fit": wall - sum(per_round),
        "loops_per_round": loops,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="R")
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--data", choices=["regression", "sinusoid"], default="regression",
                        help="20-feature make_regression (default) or make_sinusoid")
    parser.add_argument("--epochs", type=int, default=20, help="max_epochs of every network")
    parser.add_argument("--hidden", type=int, nargs="+", default=[64, 64])
    parser.add_argument("--n-components", type=int, default=8)
    parser.add_argument("--cv", type=int, default=None, help="cross-fitting folds (default none)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--quick", action="store_true",
                        help="small setting: 1000 rows, 5 epochs, 3 repeats")
    parser.add_argument("--plot", metavar="PATH", help="save a PNG of the fit times")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.epochs, args.repeats = 1000, 5, 3

    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)  # numpy's BLAS too (the PCA aggregator)
    X, y = make_data(args.data, args.rows, 0)
    R = args.rounds
    params = dict(
        hidden_layer_sizes=tuple(args.hidden), n_components=args.n_components, cv=args.cv,
        max_epochs=args.epochs, batch_size=args.batch_size, early_stopping=False,
        device="cpu", random_state=0,
    )
    fitted = {1: [], R: []}

    def fit(n_rounds, X=X, y=y):
        return RecurrentExpansionRegressor(n_rounds=n_rounds, **params).fit(X, y)

    walls = alternate_times(
        {n: (lambda n=n: fitted[n].append(fit(n))) for n in fitted}, args.repeats,
        warm_up=[lambda: fit(2, X[:256], y[:256])],  # the first fit in a process pays ~1 s
    )
    runs = {n: [components(est, wall) for est, wall in zip(fitted[n], walls[n])]
            for n in fitted}

    def med(n_rounds, key):
        return statistics.median(run[key] for run in runs[n_rounds])

    base = R * med(1, "wall")
    pair_ratios = [b["wall"] / (R * a["wall"]) for a, b in zip(runs[1], runs[R])]
    print(f"RecurrentExpansionRegressor, {args.data} data {X.shape[0]}x{X.shape[1]}, hidden "
          f"{tuple(args.hidden)}, n_components {args.n_components}, cv {args.cv}, "
          f"{args.epochs} epochs, batch {args.batch_size}, device cpu, torch threads "
          f"{torch.get_num_threads()} (BLAS {args.threads}), {args.repeats} alternating repeats")
    print()
    print("component                 R x (1 round)   R rounds      extra   "
          "(fractions of R x median wall of the 1-round fit)")
    for key in ("epoch loops", "rest of each round", "rest of fit", "wall"):
        one, many = R * med(1, key), med(R, key)
        print(f"{key:<24} {one / base:>14.3f} {many / base:>10.3f} {(many - one) / base:>+10.3f}")
    print("(medians per row; the component rows need not add up to the wall row exactly)")
    later = [statistics.median(run["loops_per_round"][i] for run in runs[R]) for i in range(R)]
    print(f"epoch-loop time of rounds 1..{R - 1} (wider input: + n_components + 1 columns) "
          f"relative to round 0 of the same fit: "
          + " ".join(f"{t / later[0]:.2f}" for t in later[1:]))
    print(f"per-pair ratios time(R)/(R x time(1)): min {min(pair_ratios):.3f}, "
          f"median {statistics.median(pair_ratios):.3f}, max {max(pair_ratios):.3f}")
    ratio = med(R, "wall") / base
    print(f"ratio of medians time({R} rounds) / ({R} x time(1 round)) "
          f"(target <= 1.15): {ratio:.3f}")

    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        ones = [R * run["wall"] / base for run in runs[1]]
        manys = [run["wall"] / base for run in runs[R]]
        ax.plot(range(args.repeats), ones, "o-", label=f"{R} x time(1 round)")
        ax.plot(range(args.repeats), manys, "s-", label=f"time({R} rounds)")
        ax.axhline(1.15, color="grey", ls="--", label="target 1.15")
        ax.set_xticks(range(args.repeats))
        ax.set_xlabel("repeat (alternating)")
        ax.set_ylabel(f"fit time / ({R} x median time(1 round))")
        ax.set_title(f"ratio of medians {ratio:.3f}")
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)
        print(f"plot saved to {args.plot}")


if __name__ == "__main__":
    main()
