"""What the suites on real data share: the usual peers, the loop, the tables.

`real` (RE on tabular tasks) and `timeseries` (time-series members against
MiniRocket) each define their tasks and their models; the loop over tasks,
seeds and models, the score and seconds tables, ranks and time ratios are
written once, here.
"""

import time
import warnings
from dataclasses import dataclass, field, fields

import numpy as np
import torch
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.metrics import accuracy_score, r2_score
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ._report import markdown_table, mean_std

PEERS = ("ridge / logistic", "sklearn MLP", "HistGradientBoosting")


def peer_model(label, regression, seed, prepare=None):
    """One of `PEERS`, behind a StandardScaler (after ``prepare``, e.g. a flattening step)."""
    if label == "ridge / logistic":
        model = (RidgeCV(alphas=np.logspace(-3, 3, 13)) if regression
                 else LogisticRegression(max_iter=5000))
    elif label == "sklearn MLP":
        MLP = MLPRegressor if regression else MLPClassifier
        model = MLP(hidden_layer_sizes=(64, 64), max_iter=500, random_state=seed)
    elif label == "HistGradientBoosting":
        HGB = HistGradientBoostingRegressor if regression else HistGradientBoostingClassifier
        model = HGB(random_state=seed)
    else:
        raise ValueError(f"unknown peer {label!r}; the peers are {PEERS}.")
    steps = [] if prepare is None else [prepare]
    return make_pipeline(*steps, StandardScaler(), model)


def score(kind, y, pred):
    """Test R² (regression) or accuracy (classification)."""
    return float(r2_score(y, pred) if kind == "regression" else accuracy_score(y, pred))


def fit_score(model, task):
    """Fit ``model`` on ``task``'s training rows; its test score and fit seconds."""
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(task.X_train, task.y_train)
    seconds = time.perf_counter() - start
    return score(task.kind, task.y_test, model.predict(task.X_test)), seconds


@dataclass
class Cell:
    """One model on one task: test scores and fit seconds per seed."""

    seeds: list = field(default_factory=list)
    scores: list = field(default_factory=list)
    seconds: list = field(default_factory=list)
    best_rounds: list = field(default_factory=list)


def run_suite(tasks, labels, make_model, seeds, log, prefix, after_fit=None, threads=None):
    """Fit every model on every task and seed: ``{task name: (task, {label: Cell})}``.

    ``seeds``: how many (seeds 0, 1, ...), or the seeds themselves (a long suite
    split over processes or machines runs ``range(first, last)`` in each).
    ``make_model(label, kind, seed)`` returns the unfitted model, or None for a
    column that another fit fills in: ``after_fit(label, model, task,
    cells)`` is called after every fit.

    Every fit starts, and the suite ends, with torch on ``threads`` threads
    (None: as many as at the call). Another library may change them behind
    torch's back -- numba's ``set_num_threads``, which aeon's MiniRocket calls
    around its transform, sets the OpenMP threads torch shares, to all cores
    when it is done -- and the models after it (in this suite or the next)
    would train on more threads than the ones before.
    """
    threads = torch.get_num_threads() if threads is None else threads
    torch.set_num_threads(threads)
    results = {}
    for task in tasks:
        log(f"{prefix}: {task.describe()}")
        cells = {label: Cell() for label in labels}
        for seed in range(seeds) if isinstance(seeds, int) else seeds:
            for label in labels:
                model = make_model(label, task.kind, seed)
                if model is None:
                    continue
                test_score, seconds = fit_score(model, task)
                torch.set_num_threads(threads)
                cell = cells[label]
                cell.seeds.append(seed)
                cell.scores.append(test_score)
                cell.seconds.append(seconds)
                if hasattr(model, "best_round_"):
                    cell.best_rounds.append(model.best_round_)
                if after_fit is not None:
                    after_fit(label, model, task, cells)
            log(f"  seed {seed}: " + ", ".join(
                f"{label} {cells[label].scores[-1]:.3f}" for label in labels
                if cells[label].scores))
        results[task.name] = (task, cells)
    return results


def seed_range(config):
    """The seeds a suite's ``config`` runs: ``first_seed`` on, ``seeds`` of them."""
    return range(config.first_seed, config.first_seed + config.seeds)


def seeds_said(config):
    """``"3 seeds"``, or ``"1 seed (2)"`` / ``"2 seeds (3-4)"`` when they do not start at 0."""
    n = config.seeds
    text = f"{n} seed{'s' * (n != 1)}"
    if config.first_seed:
        first, last = config.first_seed, config.first_seed + n - 1
        text += f" ({first})" if n == 1 else f" ({first}-{last})"
    return text


def merge_results(parts):
    """Several runs' results as one (a suite split over processes by ``--first-seed``).

    ``parts``: ``{task name: (task, {label: Cell})}`` each. Per task and label the cells'
    seeds, scores, seconds and selected rounds are joined, tasks and labels in the order
    they first appear. The same seed of one model on one task twice is an error: it
    would be counted twice in the mean and std.
    """
    merged = {}
    for part in parts:
        for name, (task, cells) in part.items():
            into = merged.setdefault(name, (task, {}))[1]
            for label, cell in cells.items():
                joined = into.setdefault(label, Cell())
                twice = sorted(set(joined.seeds) & set(cell.seeds))
                if twice:
                    raise ValueError(f"seed(s) {twice} of {label!r} on {name!r} are in more "
                                     "than one of the results to merge; each run must have "
                                     "its own seeds (--first-seed).")
                for attribute in fields(Cell):
                    getattr(joined, attribute.name).extend(getattr(cell, attribute.name))
    return merged


def _ranks(means):
    """Rank of each column on one task, 1 = best; ties share the mean rank."""
    from scipy.stats import rankdata

    return rankdata(-np.asarray(means), method="average", nan_policy="omit")


def summary(results, kind, labels):
    """Per label: mean score over the tasks of ``kind``, and mean rank."""
    rows = [cells for task, cells in results.values() if task.kind == kind]
    if not rows:
        return {}
    means = np.array([[mean_std(cells[label].scores)[0] for label in labels] for cells in rows])
    ranks = np.array([_ranks(m) for m in means])
    return {label: (float(np.nanmean(means[:, j])), float(np.nanmean(ranks[:, j])))
            for j, label in enumerate(labels)}


def score_table(results, kind, labels, row_label):
    """Markdown lines: mean ± std per task and label, then mean score and mean rank."""
    rows = []
    for task, cells in results.values():
        if task.kind != kind:
            continue
        row = [row_label(task)]
        for label in labels:
            mean, std = mean_std(cells[label].scores)
            row.append("-" if np.isnan(mean) else f"{mean:.3f} ± {std:.3f}")
        rows.append(row)
    if not rows:
        return []
    summ = summary(results, kind, labels)
    rows.append(["**mean score**", *(f"{summ[label][0]:.3f}" for label in labels)])
    rows.append(["**mean rank**", *(f"{summ[label][1]:.2f}" for label in labels)])
    return markdown_table(["task", *labels], rows)


def seconds_table(results, kind, labels):
    """Markdown lines: mean fit seconds per task and label ("-" where none was timed)."""
    rows = []
    for name, (task, cells) in results.items():
        if task.kind == kind:
            rows.append([name, *(f"{np.nanmean(cells[label].seconds):.1f}"
                                 if cells[label].seconds
                                 and not np.all(np.isnan(cells[label].seconds)) else "-"
                                 for label in labels)])
    return markdown_table(["task", *labels], rows)


def time_ratios(results, label, reference, kinds=("regression", "classification")):
    """Per task of ``kinds``: ``label``'s mean fit seconds over ``reference``'s."""
    return [float(np.mean(cells[label].seconds) / np.mean(cells[reference].seconds))
            for task, cells in results.values()
            if task.kind in kinds and cells[label].seconds and cells[reference].seconds]


def geometric_mean(values):
    return float(np.exp(np.mean(np.log(values))))


def command_line(section, config_class, argv=None, doc=None):
    """The benchmarks' command line over a suite ``section`` (`real`, `timeseries`).

    ``--quick`` is ``config_class.quick()``; ``--seeds``, ``--first-seed``, ``--tasks``
    and ``--models`` replace its fields. Prints the section's tables.
    """
    import argparse
    import dataclasses
    import sys

    from ._report import Progress

    parser = argparse.ArgumentParser(description=(doc or section.__doc__).splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help=" ".join(config_class.quick.__doc__.split("\n\n")[0].split()))
    parser.add_argument("--seeds", type=int, default=None, help="how many seeds")
    parser.add_argument("--first-seed", type=int, default=None,
                        help="the first seed (default 0): --first-seed 2 --seeds 1 runs seed 2 "
                        "alone, so a long suite can be split over processes")
    parser.add_argument("--tasks", nargs="+", default=None)
    parser.add_argument("--models", nargs="+", default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--save", metavar="FILE", default=None,
                        help="also pickle the setting and the results to FILE")
    parser.add_argument("--combine", metavar="FILE", nargs="+", default=None,
                        help="run nothing: print the tables of the results that earlier runs "
                        "saved with --save (each with its own seeds), merged")
    args = parser.parse_args(argv)
    if args.seeds is not None and args.seeds < 1:
        parser.error(f"--seeds must be at least 1, got {args.seeds}.")
    if args.first_seed is not None and args.first_seed < 0:
        parser.error(f"--first-seed must be 0 or more (a random_state), got {args.first_seed}.")
    if args.combine:
        given = [flag for flag, value in (("--quick", args.quick), ("--seeds", args.seeds),
                                          ("--first-seed", args.first_seed),
                                          ("--tasks", args.tasks), ("--models", args.models))
                 if value]
        if given:
            parser.error(f"--combine runs nothing, so {', '.join(given)} would be ignored: "
                         "give them to the runs that --save the results.")
        config, results = _combine(args.combine, config_class)
    else:
        config = (config_class.quick if args.quick else config_class)(device=args.device)
        changes = {"seeds": args.seeds, "first_seed": args.first_seed,
                   "tasks": args.tasks and tuple(args.tasks),
                   "models": args.models and tuple(args.models)}
        config = dataclasses.replace(config,
                                     **{k: v for k, v in changes.items() if v is not None})
    print(f"{section.__doc__.splitlines()[0]}\nSetting: {config.describe()}\n")
    if not args.combine:
        results = section.run(config, Progress(sys.stderr))
    if args.save:
        import pickle

        with open(args.save, "wb") as file:
            pickle.dump({"config": config, "results": dict(results)}, file)
    for title, lines in section.tables(config, results):
        print(f"{title}\n")
        print("\n".join(lines), "\n", flush=True)


def _combine(paths, config_class):
    """The setting and merged results of the runs saved in ``paths`` (`command_line`'s
    ``--save``): the first run's setting, with every run's models and tasks, and its
    seeds as one range when they are one."""
    import dataclasses
    import pickle

    configs, parts = [], []
    for path in paths:
        with open(path, "rb") as file:  # files this command line wrote: trusted as code
            saved = pickle.load(file)
        found = saved.get("config") if isinstance(saved, dict) else saved
        if not isinstance(found, config_class) or "results" not in saved:
            raise ValueError(f"{path} holds no results of this suite (found a "
                             f"{type(found).__name__}, not a {config_class.__name__}); "
                             "--combine reads the files that --save wrote.")
        configs.append(saved["config"])
        parts.append(saved["results"])

    def setting(config):  # what must agree: all but the seeds, tasks and models
        return dataclasses.replace(config, seeds=0, first_seed=0, tasks=None, models=None)

    for path, other in zip(paths[1:], configs[1:]):
        if setting(other) != setting(configs[0]):
            raise ValueError(f"{path} was run with another setting ({other.describe()}) "
                             f"than {paths[0]} ({configs[0].describe()}); only runs of one "
                             "setting can be merged.")
    results = merge_results(parts)
    labels = list(dict.fromkeys(label for _, cells in results.values() for label in cells))
    seeds = sorted({seed for _, cells in results.values() for cell in cells.values()
                    for seed in cell.seeds})
    contiguous = seeds == list(range(seeds[0], seeds[0] + len(seeds))) if seeds else True
    config = dataclasses.replace(
        configs[0], models=tuple(labels), tasks=tuple(results),
        seeds=len(seeds), first_seed=seeds[0] if seeds and contiguous else 0)
    return config, results
