"""Cost of the ``"rocket"`` member: its training cache on and off, and aeon's MiniRocket.

``RecurrentExpansionClassifier(module="rocket", n_rounds=1, random_state=0)``
(``--rounds`` changes ``n_rounds``; defaults otherwise: ``cv=5``, so 5 fold
nets a round, each a closed-form ridge head) on two UCR sets aeon ships
(official training split, z-normalised per series as in the time-series
suite), on the CPU. "cached" is the package's default (the member is
initialised once a fit on all training windows, and its fold nets of every
round share one cache of the windows' fixed MiniRocket encodings for their
training and their out-of-fold outputs); "recomputed" builds the member with
``cache_size=0``, so the transform runs in every fold net (at every epoch for
a trained head) and for every out-of-fold output; "MiniRocket (aeon)" is aeon's
``MiniRocketClassifier`` (10,000 kernels, then a RidgeClassifierCV) on the
same rows. ``--preset`` adds ``MultiverseRE(members="timeseries")`` (three
rocket members) and three members of a third of the features each, as the
time-series suite builds them (``n_rounds=3``), and their ratios to
MiniRocket. They alternate in every repeat so that machine noise hits them
alike (``sklearn_recursive.reproduce.speed.alternate_times``, after a warm-up
run of each); the ratios are of the medians.

    OMP_NUM_THREADS=1 python benchmarks/bench_rocket_cache.py [--repeats 3] [--threads 1]
        [--rounds 1] [--tasks ItalyPowerDemand GunPoint] [--preset]
"""

import argparse
import functools
import sys

import numpy as np
import torch
from threadpoolctl import threadpool_limits

import sklearn_recursive
from sklearn_recursive import RecurrentExpansionClassifier, RocketModule
from sklearn_recursive.reproduce.speed import alternate_times
from sklearn_recursive.reproduce.timeseries import (
    MINIROCKET,
    PRESET,
    TimeSeriesConfig,
    load_tasks,
    make_model,
)

THIRDS = "MVRE (rocket ×3, num_features=3360)"


def rocket(cache_size, seed=0, n_rounds=1):
    return RecurrentExpansionClassifier(
        module=functools.partial(RocketModule, cache_size=cache_size), n_rounds=n_rounds,
        device="cpu", random_state=seed)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch and BLAS threads")
    parser.add_argument("--tasks", nargs="+", default=["ItalyPowerDemand", "GunPoint"])
    parser.add_argument("--rounds", type=int, default=1, help="the estimator's n_rounds")
    parser.add_argument("--preset", action="store_true",
                        help='also time members="timeseries" and its thirds variant')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tasks, skipped = load_tasks(args.tasks)
    for name, reason in skipped.items():
        print(f"# {name} not loaded: {reason}")
    print(f"# bench_rocket_cache: sklearn_recursive {sklearn_recursive.__version__}, "
          f"torch {torch.__version__}, {args.threads} torch/BLAS thread(s), device cpu, "
          f"n_rounds={args.rounds}")
    print(f"# {args.repeats} alternating repeats after a warm-up; medians\n")
    presets = (PRESET, THIRDS) if args.preset else ()
    print("| task (train series, channels × length) | cached s | recomputed s | MiniRocket s "
          "| recomputed / cached | cached / MiniRocket | max abs. difference of "
          "probabilities |"
          + "".join(f" {label} s | {label} / MiniRocket |" for label in presets))
    print("|---|---|---|---|---|---|---|" + "---|---|" * len(presets))
    ratios = {label: [] for label in presets}
    with threadpool_limits(args.threads):
        for task in tasks:
            fitted = {}
            models = {
                "cached": lambda: rocket(2**26, n_rounds=args.rounds),
                "recomputed": lambda: rocket(0, n_rounds=args.rounds),
                MINIROCKET: lambda: make_model(MINIROCKET, "classification", 0,
                                               TimeSeriesConfig()),
                **{label: functools.partial(make_model, label, "classification", 0,
                                            TimeSeriesConfig()) for label in presets},
            }

            def runner(name, task=task, fitted=fitted, models=models):
                def run():
                    fitted[name] = models[name]().fit(task.X_train, task.y_train)
                return run

            def progress(rep, times, task=task):
                print(f"{task.name} rep={rep}: " + ", ".join(
                    f"{name} {ts[-1]:.2f}s" for name, ts in times.items()), file=sys.stderr)

            times = alternate_times({name: runner(name) for name in models}, args.repeats,
                                    on_repeat=progress)
            medians = {name: float(np.median(times[name])) for name in models}
            cached, recomputed, mini = (medians[name] for name in list(models)[:3])
            gap = float(np.abs(fitted["cached"].predict_proba(task.X_test)
                               - fitted["recomputed"].predict_proba(task.X_test)).max())
            print(f"| {task.name} ({len(task.X_train)}, {task.shape()}) | {cached:.2f} | "
                  f"{recomputed:.2f} | {mini:.2f} | {recomputed / cached:.1f} | "
                  f"{cached / mini:.1f} | {gap:.1e} |"
                  + "".join(f" {medians[label]:.2f} | {medians[label] / mini:.1f} |"
                            for label in presets), flush=True)
            for label in presets:
                ratios[label].append(medians[label] / mini)
    for label, values in ratios.items():
        print(f"\n{label} / MiniRocket, geometric mean over the tasks: "
              f"{float(np.exp(np.mean(np.log(values)))):.1f}")


if __name__ == "__main__":
    main()
