"""What a joblib backend adds to every multiverse round: sequential vs loky,
threads, a local Dask cluster and a local Ray instance.

The members of a round are fitted through one joblib ``Parallel`` call; the
rounds run one after the other. Every backend fits the same heterogeneous
multiverse (an MLP and a CNN member: they cannot be stacked) with 1 and with
R rounds; the difference, divided by R - 1, is the cost of one more round,
reported as a ratio to the sequential fit's round. The backends alternate
in every repeat, after a warm-up run of each; medians
(``sklearn_recursive.reproduce.speed.alternate``). Dask and Ray start once,
before the timings (their start-up is printed, not counted); Ray is skipped
when not installed.

    python benchmarks/bench_backends.py [--rounds 4] [--rows 1000] [--epochs 20] [--repeats 3]
"""

import argparse
import contextlib
import functools
import time
import warnings

import joblib
import torch

import sklearn_recursive
from sklearn_recursive import MultiverseRE, RecurrentExpansionRegressor
from sklearn_recursive.datasets import make_sinusoid
from sklearn_recursive.reproduce.speed import alternate


def make(rounds, epochs):
    est = RecurrentExpansionRegressor((64, 64), n_rounds=rounds, max_epochs=epochs,
                                      early_stopping=False, device="cpu", random_state=0)
    return MultiverseRE(est, members=["mlp", "cnn"], n_jobs=2)


def fit(backend, rounds, epochs, X, y):
    context = (contextlib.nullcontext() if backend is None
               else joblib.parallel_config(backend=backend))
    with context:
        make(rounds, epochs).fit(X, y)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)  # the sequential fit on one core, like one worker

    X, y = make_sinusoid(args.rows, random_state=0)
    print(f"# bench_backends: sklearn_recursive {sklearn_recursive.__version__}, "
          f"torch {torch.__version__}, joblib {joblib.__version__}, "
          f"{joblib.cpu_count()} cores, device cpu")
    print(f"# MultiverseRE(members=['mlp', 'cnn'], n_jobs=2), MLP 64-64, {args.rows} rows, "
          f"{args.epochs} epochs, 1 vs {args.rounds} rounds, {args.repeats} alternating "
          "repeats; medians")

    backends = {"sequential (n_jobs=1)": "sequential", "loky, n_jobs=2": None,
                "threading, n_jobs=2": "threading"}
    stack = contextlib.ExitStack()
    from distributed import Client, LocalCluster

    start = time.perf_counter()
    cluster = stack.enter_context(LocalCluster(n_workers=2, threads_per_worker=1,
                                               dashboard_address=None))
    stack.enter_context(Client(cluster))
    print(f"# Dask LocalCluster(2 workers x 1 thread) started in "
          f"{time.perf_counter() - start:.1f} s")
    backends["Dask LocalCluster"] = "dask"
    try:
        import ray
        from ray.util.joblib import register_ray
    except ImportError:
        print("# ray is not installed: skipped")
    else:
        register_ray()
        start = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        stack.callback(ray.shutdown)
        print(f"# Ray (num_cpus=2) started in {time.perf_counter() - start:.1f} s")
        backends["Ray"] = "ray"

    runners = {(name, rounds): functools.partial(fit, backend, rounds, args.epochs, X, y)
               for name, backend in backends.items() for rounds in (1, args.rounds)}
    with stack:  # alternate() warms every runner up first: imports in every worker
        medians = alternate(runners, args.repeats)

    def per_round(name):
        return (medians[name, args.rounds] - medians[name, 1]) / (args.rounds - 1)

    sequential = "sequential (n_jobs=1)"
    print("| backend | one round (ratio to sequential) | whole fit of "
          f"{args.rounds} rounds (ratio to sequential) |")
    print("|---|---|---|")
    for name in backends:
        print(f"| {name} | {per_round(name) / per_round(sequential):.2f} | "
              f"{medians[name, args.rounds] / medians[sequential, args.rounds]:.2f} |")


if __name__ == "__main__":
    main()
