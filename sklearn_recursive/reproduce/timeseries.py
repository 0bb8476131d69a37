"""Time-series members against random-convolution classifiers.

The classification sets aeon ships offline as equal-length series
(ItalyPowerDemand, GunPoint, ArrowHead, BasicMotions with 6 channels, OSULeaf,
ACSF1), on their official train/test splits, each series z-normalised per
channel (mean 0, std 1 over time); and the forecasting series of the real-data
suite (airline log change, sunspots, co2 monthly change, elnino) kept as
one-channel windows ``(n, 1, window)``, not normalised per window, with the
last 25% of the windows as the test rows. Every model is fitted with several
seeds; the tables give the test score's mean ± std over seeds (accuracy for
classification, R² for forecasting), over the suite the mean score and mean
rank (1 = best on a task), and each model's fit time as a ratio to
MiniRocket's (geometric mean over the tasks; the seconds themselves, of one
machine, only in a table below). "MiniRocket (aeon)" is aeon's
MiniRocketClassifier (10,000 kernels, then a RidgeClassifierCV) and, for
forecasting, aeon's MiniRocketRegressor (the same transform, then a RidgeCV);
"ridge / logistic", "sklearn MLP" and "HistGradientBoosting" see the series
flattened, behind a StandardScaler. The columns named after a built-in module
(fcn, resnet, inception, rocket, cnn, gru) are Recurrent Expansion with that
network alone in every round, and "HMVRE (mlp, cnn, gru, transformer)" a
Multiverse RE with one member of each of those four, as before the time-series
issue; ``members="timeseries"`` is `MultiverseRE`'s preset (three rocket
members) and the other multiverse columns the candidates it was chosen among
(three rocket members of a third of the features each, rocket and fcn, the
former preset rocket, inception and fcn, and that with resnet added). The
columns with parameters after the name change those of their column: a longer
training budget (``max_epochs=300, n_iter_no_change=30``) for the former preset
and for each trained member alone (the recipe for tiny training sets), the rocket
member's former Adam-trained
head (``head="trained"``, each fold net keeping its last epoch), and the rocket
member without the window's values in its ridge head (``linear_window=False``),
and the rocket member choosing its ridge by leave-one-out for regression too
(``ridge_cv=None``, its default before 5 contiguous blocks).
RE runs ``n_rounds=3`` rounds here (round 0 and two expansions, of its
``one_se`` selection), not its default 10, since the convolutional members cost
a multiple of a single network per round on a CPU.
"""

import dataclasses
import functools
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.preprocessing import FunctionTransformer

from .. import MultiverseRE, RecurrentExpansionClassifier, RecurrentExpansionRegressor
from .._members import PRESETS
from .._modules import RocketModule
from ._real_data import Task, _airline, _co2, _elnino, _sunspots
from ._suite import (
    PEERS,
    geometric_mean,
    peer_model,
    run_suite,
    score_table,
    seconds_table,
    seed_range,
    seeds_said,
    time_ratios,
)

MINIROCKET = "MiniRocket (aeon)"
# label -> the built-in module RE uses alone in every round
MEMBERS = ("fcn", "resnet", "inception", "rocket", "cnn", "gru", "lstm", "transformer")
HMVRE_MEMBERS = ("mlp", "cnn", "gru", "transformer")
HMVRE = f"HMVRE ({', '.join(HMVRE_MEMBERS)})"
# label -> the members of a Multiverse RE: the preset and the candidates it was chosen from
PRESET = f'members="timeseries" (rocket ×{len(PRESETS["timeseries"])})'
MULTIVERSES = {
    PRESET: "timeseries",
    # three smaller rocket members: together the features of one
    "MVRE (rocket ×3, num_features=3360)":
        (("rocket", functools.partial(RocketModule, num_features=3360)),) * 3,
    "HMVRE (rocket, fcn)": ("rocket", "fcn"),
    # the preset until the rocket member's ridge head
    "HMVRE (rocket, inception, fcn)": ("rocket", "inception", "fcn"),
    "HMVRE (rocket, inception, resnet, fcn)": ("rocket", "inception", "resnet", "fcn"),
}
# the training budget for tiny training sets: label -> (column it changes, RE parameters)
LONGER = dict(max_epochs=300, n_iter_no_change=30)
# the rocket member with the head it had before the closed-form ridge: trained by Adam
# (its fold nets keeping their last epoch, n_iter_no_change after their best held-out loss)
TRAINED_HEAD = dict(module=functools.partial(RocketModule, head="trained"),
                    restore_best_weights=False, n_iter_no_change=30)
# the rocket member without the window's values in its linear head (MiniRocket's features)
PPV_ONLY = dict(module=functools.partial(RocketModule, linear_window=False))
# the rocket member choosing its ridge by leave-one-out on forecasting windows too
# (the default before ridge_cv="auto": 5 contiguous blocks for regression targets)
LOO_RIDGE = dict(module=functools.partial(RocketModule, ridge_cv=None))
BUDGETS = {
    "HMVRE (rocket, inception, fcn), max_epochs=300, n_iter_no_change=30":
        ("HMVRE (rocket, inception, fcn)", LONGER),
    'rocket, head="trained", restore_best_weights=False, n_iter_no_change=30':
        ("rocket", TRAINED_HEAD),
    "rocket, linear_window=False": ("rocket", PPV_ONLY),
    "rocket, ridge_cv=None": ("rocket", LOO_RIDGE),
    # the trained members with the longer budget (the tiny-set recipe, docs/multiverse.md)
    **{f"{name}, max_epochs=300, n_iter_no_change=30": (name, LONGER)
       for name in MEMBERS if name != "rocket"},
}
KINDS = (("classification", "classification", "test accuracy"),
         ("regression", "forecasting", "test R²"))


@dataclass(frozen=True)
class SeriesTask(Task):
    """A `Task` whose ``X`` are 3-D series ``(n, n_channels, length)``."""

    def shape(self):
        return f"{self.X_train.shape[1]}×{self.X_train.shape[2]}"

    def describe(self):
        return (f"{self.name} ({self.source}; {len(self.X_train)} train / {len(self.X_test)} "
                f"test series, channels × length {self.shape()})")


def _znorm(X):
    """Each series of ``X`` ``(n, C, L)`` z-normalised per channel over time."""
    X = np.asarray(X, dtype=float)
    std = X.std(axis=2, keepdims=True)
    return (X - X.mean(axis=2, keepdims=True)) / np.where(std > 0, std, 1.0)


def _classification(name):
    from aeon.datasets import load_classification

    splits = []
    for split in ("train", "test"):
        X, y = load_classification(name, split=split)
        if not isinstance(X, np.ndarray) or X.ndim != 3:
            raise ValueError("unequal-length series (aeon gives a list, not a 3-D array)")
        splits += [_znorm(X), np.asarray(y)]
    source = "aeon, UEA" if splits[0].shape[1] > 1 else "aeon, UCR"
    return SeriesTask(name, "classification", f"{source} official split, z-normalised",
                      *splits)


def _windows(load):
    """A forecasting task of the real-data suite with its lag windows as ``(n, 1, window)``."""
    def loader():
        task = load()
        return SeriesTask(**{**{f.name: getattr(task, f.name) for f in dataclasses.fields(task)},
                             "X_train": task.X_train[:, None, :],
                             "X_test": task.X_test[:, None, :]})

    return loader


# name -> loader, in the tables' order; a task's data are loaded only when asked for
TASKS = {
    **{name: (lambda name=name: _classification(name))
       for name in ("ItalyPowerDemand", "GunPoint", "ArrowHead", "BasicMotions", "OSULeaf",
                    "ACSF1")},
    "airline (log change)": _windows(_airline),
    "sunspots (yearly)": _windows(_sunspots),
    "co2 (monthly change)": _windows(_co2),
    "elnino (monthly SST)": _windows(_elnino),
}


def load_tasks(names=None):
    """The tasks (all, or those ``names``) in `TASKS` order, and ``{name: reason}`` of
    those that failed to load."""
    if names is not None:
        unknown = sorted(set(names) - set(TASKS))
        if unknown:
            raise ValueError(f"unknown tasks {unknown}; the suite has {list(TASKS)}.")
    tasks, skipped = [], {}
    for name, load in TASKS.items():
        if names is None or name in names:
            try:
                tasks.append(load())
            except Exception as exc:  # a data set missing from this install: a note, not a stop
                skipped[name] = f"{type(exc).__name__}: {exc}"
    return tasks, skipped


@dataclass(frozen=True)
class TimeSeriesConfig:
    seeds: int = 3
    first_seed: int = 0  # seeds first_seed, ..., first_seed + seeds - 1
    tasks: tuple = None  # names; None: all
    models: tuple = None  # labels; None: all
    n_rounds: int = 3  # RE's rounds: round 0 and two expansions (RE's default is 10)
    max_epochs: int = 100
    device: str = "auto"

    @classmethod
    def quick(cls, device="auto"):
        """2 small sets and 1 forecasting series, 1 seed, max_epochs=50; MiniRocket, the
        peers and the two cheapest members (rocket, resnet, inception and gru cost 3 to 15
        times fcn per epoch on a CPU)."""
        return cls(seeds=1, max_epochs=50, device=device,
                   tasks=("ItalyPowerDemand", "GunPoint", "airline (log change)"),
                   models=(MINIROCKET, *PEERS, "fcn", "cnn"))

    def describe(self):
        tasks = "all tasks" if self.tasks is None else f"{len(self.tasks)} tasks"
        return (f"{tasks}, {seeds_said(self)}, n_rounds={self.n_rounds}, "
                f"max_epochs={self.max_epochs}, device={self.device}")

    def labels(self):
        """The columns, in order."""
        every = [MINIROCKET, *PEERS, *MEMBERS, HMVRE, *MULTIVERSES, *BUDGETS]
        if self.models is None:
            return every
        unknown = sorted(set(self.models) - set(every))
        if unknown:
            raise ValueError(f"unknown models {unknown}; the suite has {every}.")
        return [m for m in every if m in self.models]


def _flatten(X):
    return np.asarray(X).reshape(len(X), -1)


def make_model(label, kind, seed, config):
    """The unfitted model called ``label`` for a task of ``kind``, seeded by ``seed``.

    Every model takes the 3-D series: the peers flatten them first.
    """
    regression = kind == "regression"
    if label == MINIROCKET:
        if regression:
            from aeon.regression.convolution_based import MiniRocketRegressor

            return MiniRocketRegressor(random_state=seed)
        from aeon.classification.convolution_based import MiniRocketClassifier

        return MiniRocketClassifier(random_state=seed)
    if label in PEERS:
        return peer_model(label, regression, seed, prepare=FunctionTransformer(_flatten))
    RE = RecurrentExpansionRegressor if regression else RecurrentExpansionClassifier
    common = dict(n_rounds=config.n_rounds, max_epochs=config.max_epochs,
                  device=config.device, random_state=seed)
    if label in BUDGETS:
        label, changes = BUDGETS[label]
        common.update(changes)
    if label == HMVRE:
        return MultiverseRE(RE(**common), members=list(HMVRE_MEMBERS), random_state=seed)
    if label in MULTIVERSES:
        return MultiverseRE(RE(**common), members=MULTIVERSES[label], random_state=seed)
    if label in MEMBERS:
        return RE(**{"module": label, **common})
    raise ValueError(f"unknown model {label!r}.")


def _warm_up(labels, tasks, config):
    """Pay the one-off costs before any fit is timed: numba compiling (or loading from its
    cache) MiniRocket's kernels, and torch's first fit on the device."""
    if not tasks:
        return
    rng = np.random.default_rng(0)
    if MINIROCKET in labels:
        from aeon.transformations.collection.convolution_based import MiniRocket

        # the univariate and the multivariate kernels, as the tasks need them
        for channels in sorted({min(task.X_train.shape[1], 2) for task in tasks}):
            MiniRocket(n_kernels=84, random_state=0).fit_transform(
                rng.normal(size=(4, channels, 16)))
    if any(label not in PEERS and label != MINIROCKET for label in labels):
        RecurrentExpansionRegressor(module="cnn", n_rounds=1, max_epochs=1,
                                    device=config.device, random_state=0).fit(
            rng.normal(size=(16, 1, 16)), rng.normal(size=16))


class Results(dict):
    """``{task name: (task, {label: Cell})}``; ``skipped`` holds ``{name: reason}``."""

    def __init__(self, *args, skipped=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.skipped = dict(skipped or {})


def run(config, log):
    """Fit every model on every task and seed; ``{task name: (task, {label: Cell})}``."""
    labels = config.labels()
    tasks, skipped = load_tasks(names=config.tasks)
    for name, reason in skipped.items():
        log(f"time series: {name} not loaded ({reason})")
    threads = torch.get_num_threads()  # before MiniRocket's warm-up can change them
    _warm_up(labels, tasks, config)
    results = run_suite(tasks, labels,
                        lambda label, kind, seed: make_model(label, kind, seed, config),
                        seed_range(config), log, "time series", threads=threads)
    return Results(results, skipped=skipped)


def tables(config, results):
    labels = config.labels()
    out = []
    for kind, title, metric in KINDS:
        lines = score_table(results, kind, labels, lambda task: (
            f"{task.name} ({len(task.X_train)}/{len(task.X_test)}, {task.shape()})"))
        if not lines:
            continue
        out.append((f"{title}: {metric}, mean ± std over {seeds_said(config)} "
                    "(task: train/test series, channels × length)", lines))
        if MINIROCKET in labels:
            n = sum(task.kind == kind for task, _ in results.values())
            ratios = {label: geometric_mean(time_ratios(results, label, MINIROCKET, (kind,)))
                      for label in labels if label != MINIROCKET}
            out.append((f"{title}: fit time / {MINIROCKET}'s, geometric mean over "
                        f"{n} task{'s' * (n != 1)} (same run)",
                        [", ".join(f"{label} {r:.3g}×" for label, r in ratios.items())]))
        rounds = {}
        for label in labels:
            per_task = [np.mean(cells[label].best_rounds) for task, cells in results.values()
                        if task.kind == kind and cells[label].best_rounds]
            if per_task:
                rounds[label] = float(np.mean(per_task))
        if rounds:
            out.append((f"{title}: RE's selected round (0 = round 0 kept; rounds 0 to "
                        f"{config.n_rounds - 1}), mean over tasks and seeds",
                        [", ".join(f"{label} {r:.2f}" for label, r in rounds.items())]))
        out.append((f"{title}: mean fit seconds on this machine (for reference: compare "
                    "the ratios above)", seconds_table(results, kind, labels)))
    skipped = getattr(results, "skipped", {})
    if skipped:
        out.append(("tasks not run (failed to load)",
                    [f"- {name}: {reason}" for name, reason in skipped.items()]))
    return out


def figures(config, results):
    return []
