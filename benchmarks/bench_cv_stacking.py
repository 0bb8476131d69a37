"""Cost of a cross-fitted fit: the fold nets of a round stacked vs trained one by one.

``RecurrentExpansionRegressor(cv=5, random_state=0)`` (defaults otherwise) on
scikit-learn's diabetes data (442 rows) and ``RecurrentExpansionClassifier``
on its breast cancer data (569 rows), on the CPU. With ``cv``, every round
trains one network per fold; "stacked" trains a member's fold nets as one
stacked model (``train_stacked``, the package's path for MLP members), "one
by one" forces the sequential loop of fold nets (``_members._stackable``
patched to refuse). The two alternate in every repeat so that machine noise
hits them alike (``sklearn_recursive.reproduce.speed.alternate``, after a
warm-up fit of each on 100 rows); the ratio is of the medians.

    OMP_NUM_THREADS=1 python benchmarks/bench_cv_stacking.py [--repeats 3] [--cv 5] [--threads 1]
"""

import argparse
import sys

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer, load_diabetes
from threadpoolctl import threadpool_limits

import sklearn_recursive
from sklearn_recursive import RecurrentExpansionClassifier, RecurrentExpansionRegressor, _members
from sklearn_recursive.reproduce.speed import alternate_times

_STACKABLE = _members._stackable


def fit(Est, X, y, cv, stacked):
    """One fit, with the fold nets stacked or trained one by one."""
    _members._stackable = _STACKABLE if stacked else (lambda make_module: False)
    try:
        return Est(cv=cv, device="cpu", random_state=0).fit(X, y)
    finally:
        _members._stackable = _STACKABLE


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cv", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch and BLAS threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    problems = {
        "regressor, diabetes": (RecurrentExpansionRegressor, *load_diabetes(return_X_y=True)),
        "classifier, breast cancer": (RecurrentExpansionClassifier,
                                      *load_breast_cancer(return_X_y=True)),
    }
    print(f"# bench_cv_stacking: sklearn_recursive {sklearn_recursive.__version__}, "
          f"torch {torch.__version__}, {args.threads} torch/BLAS thread(s), device cpu")
    print(f"# cv={args.cv}, random_state=0, defaults otherwise; {args.repeats} alternating "
          "repeats after a warm-up; medians\n")
    print("| problem | stacked s (median) | one by one s (median) | one by one / stacked "
          "| rounds fitted | same predictions |")
    print("|---|---|---|---|---|---|")
    with threadpool_limits(args.threads):
        for problem, (Est, X, y) in problems.items():
            fitted = {}

            def runner(stacked, Est=Est, X=X, y=y, fitted=fitted):
                def run():
                    fitted[stacked] = fit(Est, X, y, args.cv, stacked)
                return run

            warm_up = [lambda s=s, Est=Est, X=X, y=y: fit(Est, X[:100], y[:100], args.cv, s)
                       for s in (True, False)]

            def progress(rep, times, problem=problem):
                print(f"{problem} rep={rep}: " + ", ".join(
                    f"{name} {ts[-1]:.2f}s" for name, ts in times.items()), file=sys.stderr)

            times = alternate_times({"stacked": runner(True), "one by one": runner(False)},
                                    args.repeats, warm_up=warm_up, on_repeat=progress)
            stacked, sequential = (float(np.median(times[name]))
                                   for name in ("stacked", "one by one"))
            a, b = fitted[True], fitted[False]
            same = np.allclose(a.predict(X), b.predict(X), atol=1e-3)
            print(f"| {problem} | {stacked:.2f} | {sequential:.2f} | "
                  f"{sequential / stacked:.2f} | {len(a.history_)} | {same} |", flush=True)


if __name__ == "__main__":
    main()
