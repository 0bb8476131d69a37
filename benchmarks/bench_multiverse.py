"""Cost of a multiverse round: k members stacked vs one by one vs n_jobs=2.

All runs fit ``MultiverseRE`` (or one ``RecurrentExpansionRegressor``, the
unit) on the same data with the same inner settings (MLP 20 -> 64 -> 64 -> 1,
one round, no early stopping); the variants alternate in every repeat so that
machine noise hits them alike (``sklearn_recursive.reproduce.speed.alternate``,
after a warm-up fit of each on 256 rows). Ratios are medians over k single fits, i.e.
``time / (k x one RE fit)``. Target for the stacked multiverse on CPU:
<= 0.35.

    python benchmarks/bench_multiverse.py [--k 8] [--rows 2000] [--repeats 5] [--threads 1 2]
"""

import argparse
import sys

import joblib
import numpy as np
import torch

import sklearn_recursive
from sklearn_recursive import MultiverseRE, RecurrentExpansionRegressor
from sklearn_recursive.reproduce.speed import alternate


def make_estimator(epochs, seed):
    return RecurrentExpansionRegressor(
        (64, 64), n_rounds=1, max_epochs=epochs, batch_size=128, early_stopping=False,
        device="cpu", random_state=seed,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                        help="torch threads of the main process, one block of runs each")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    X = rng.standard_normal((args.rows, 20)).astype(np.float32)
    y = (X[:, :5].sum(axis=1) + 0.1 * rng.standard_normal(args.rows)).astype(np.float32)
    k = args.k

    variants = {
        "one RE fit (unit)": lambda: make_estimator(args.epochs, 0),
        f"k={k} stacked (batched=True)": lambda: MultiverseRE(
            make_estimator(args.epochs, 0), members=k, batched=True),
        f"k={k} one by one": lambda: MultiverseRE(
            make_estimator(args.epochs, 0), members=k, batched=False),
        f"k={k} n_jobs=2 (loky)": lambda: MultiverseRE(
            make_estimator(args.epochs, 0), members=k, batched=False, n_jobs=2),
    }
    runners = {name: (lambda make=make: make().fit(X, y)) for name, make in variants.items()}
    # warm-up: imports, loky workers
    warm_up = [lambda make=make: make().fit(X[:256], y[:256]) for make in variants.values()]
    print(f"# bench_multiverse: sklearn_recursive {sklearn_recursive.__version__}, "
          f"torch {torch.__version__}, {joblib.cpu_count()} cores, device cpu")
    print(f"# data {args.rows} x 20, MLP 64-64, {args.epochs} epochs, batch 128, 1 round, "
          f"k={k}, {args.repeats} alternating repeats; medians")
    for threads in args.threads:
        torch.set_num_threads(threads)

        def progress(rep, times, threads=threads):
            print(f"threads={threads} rep={rep}: " + ", ".join(
                f"{name} {ts[-1]:.2f}s" for name, ts in times.items()), file=sys.stderr)

        medians = alternate(runners, args.repeats, warm_up=warm_up, on_repeat=progress)
        unit = medians["one RE fit (unit)"]
        print(f"\n## torch threads in the main process: {threads} "
              "(loky workers: cores // n_jobs = 1 each)\n")
        print("| variant | median s | time / one fit | time / (k x one fit) |")
        print("|---|---|---|---|")
        for name, med in medians.items():
            print(f"| {name} | {med:.2f} | {med / unit:.2f} | {med / (k * unit):.3f} |")
        stacked = medians[f"k={k} stacked (batched=True)"] / (k * unit)
        verdict = "met" if stacked <= 0.35 else "NOT met"
        print(f"\nstacked: {stacked:.3f} x k single fits (target <= 0.35: {verdict})")


if __name__ == "__main__":
    main()
