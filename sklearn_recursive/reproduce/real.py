"""Recurrent Expansion on real data, side by side with the models users would pick.

Regression and classification tasks that install offline (scikit-learn's,
statsmodels' and aeon's bundled sets; series as lag windows, UCR sets
flattened), each with one fixed split (`_real_data`). Every model is fitted
with several seeds; the tables give the test score's mean ± std over seeds
(R² for regression, accuracy for classification), the mean fit seconds, and
over the suite the mean score and mean rank (1 = best on a task). "single
net" is round 0 of the RE default fit (the same network, no expansion);
"RE 0.x defaults" are the settings before the rounds issue; the candidates
change one thing each. Every model but RE sees X through a StandardScaler
(RE standardises X itself).
"""

import time
import warnings
from dataclasses import dataclass, field

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.metrics import accuracy_score, r2_score
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .. import MultiverseRE, RecurrentExpansionClassifier, RecurrentExpansionRegressor
from ._real_data import load_tasks
from ._report import markdown_table, mean_std

# The settings before the rounds issue (0.x): fresh rounds, best validation round.
OLD_DEFAULTS = dict(round_init="random", round_selection="best", weight_decay=0.0)

# label -> RE parameters changed from the current defaults
CANDIDATES = {
    "RE 0.x defaults": OLD_DEFAULTS,
    "RE defaults": {},
    "0.x + round_init=previous": {**OLD_DEFAULTS, "round_init": "previous"},
    "0.x + round_selection=one_se": {**OLD_DEFAULTS, "round_selection": "one_se"},
    "defaults + cv=5": {"cv": 5},
    "defaults + weight_decay=1e-3": {"weight_decay": 1e-3},
    "defaults + batch_size=32": {"batch_size": 32},
}
PEERS = ("ridge / logistic", "sklearn MLP", "HistGradientBoosting")
SINGLE = "single net (round 0)"
MULTIVERSE = "seed multiverse (5)"


@dataclass(frozen=True)
class RealConfig:
    seeds: int = 3
    tasks: tuple = None  # names; None: all
    models: tuple = None  # labels; None: all
    n_rounds: int = 10
    max_epochs: int = 100
    device: str = "auto"

    @classmethod
    def quick(cls, device="auto"):
        """8 of the tasks, 2 seeds, the peers, round 0 and RE before and after."""
        return cls(seeds=2, device=device,
                   tasks=("diabetes", "star98 (share above median)", "sunspots (yearly)",
                          "airline (log change)", "breast_cancer", "wine", "iris",
                          "ItalyPowerDemand"),
                   models=(*PEERS, SINGLE, "RE 0.x defaults", "RE defaults"))

    def describe(self):
        tasks = "all tasks" if self.tasks is None else f"{len(self.tasks)} tasks"
        return (f"{tasks}, {self.seeds} seeds, n_rounds={self.n_rounds}, "
                f"max_epochs={self.max_epochs}, device={self.device}")

    def labels(self):
        """The columns, in order; round 0 is read off the "RE defaults" fits."""
        every = [*PEERS, SINGLE, *CANDIDATES, MULTIVERSE]
        chosen = every if self.models is None else [m for m in every if m in self.models]
        if "RE defaults" not in chosen:
            chosen = [m for m in chosen if m != SINGLE]
        return chosen


def make_model(label, kind, seed, config):
    """The unfitted model called ``label`` for a task of ``kind``, seeded by ``seed``."""
    regression = kind == "regression"

    def scaled(model):
        return make_pipeline(StandardScaler(), model)

    if label == "ridge / logistic":
        return scaled(RidgeCV(alphas=np.logspace(-3, 3, 13)) if regression
                      else LogisticRegression(max_iter=5000))
    if label == "sklearn MLP":
        MLP = MLPRegressor if regression else MLPClassifier
        return scaled(MLP(hidden_layer_sizes=(64, 64), max_iter=500, random_state=seed))
    if label == "HistGradientBoosting":
        HGB = HistGradientBoostingRegressor if regression else HistGradientBoostingClassifier
        return scaled(HGB(random_state=seed))
    RE = RecurrentExpansionRegressor if regression else RecurrentExpansionClassifier
    common = dict(n_rounds=config.n_rounds, max_epochs=config.max_epochs,
                  device=config.device, random_state=seed)
    common.update(CANDIDATES.get(label, {}))
    if label == MULTIVERSE:
        return MultiverseRE(RE(**common), members=5, random_state=seed)
    if label == SINGLE:  # read off the RE defaults' round 0
        return None
    return RE(**common)


def _score(kind, y, pred):
    return float(r2_score(y, pred) if kind == "regression" else accuracy_score(y, pred))


def _fit_score(model, task):
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(task.X_train, task.y_train)
    seconds = time.perf_counter() - start
    return _score(task.kind, task.y_test, model.predict(task.X_test)), seconds


@dataclass
class Cell:
    """One model on one task: test scores and fit seconds per seed."""

    scores: list = field(default_factory=list)
    seconds: list = field(default_factory=list)
    best_rounds: list = field(default_factory=list)


def run(config, log):
    """Fit every model on every task and seed; ``{task name: (task, {label: Cell})}``."""
    results = {}
    labels = config.labels()
    skipped = {}
    tasks = load_tasks(names=config.tasks, skipped=skipped)
    for name, reason in skipped.items():
        log(f"real data: {name} skipped ({reason}; pip install -e '.[bench]')")
    for task in tasks:
        log(f"real data: {task.describe()}")
        cells = {label: Cell() for label in labels}
        for seed in range(config.seeds):
            for label in labels:
                if label == SINGLE:
                    continue
                model = make_model(label, task.kind, seed, config)
                score, seconds = _fit_score(model, task)
                cell = cells[label]
                cell.scores.append(score)
                cell.seconds.append(seconds)
                if hasattr(model, "best_round_"):
                    cell.best_rounds.append(model.best_round_)
                if label == "RE defaults" and SINGLE in cells:
                    first = next(model.staged_predict(task.X_test))
                    cells[SINGLE].scores.append(_score(task.kind, task.y_test, first))
                    cells[SINGLE].seconds.append(np.nan)
            log(f"  seed {seed}: " + ", ".join(
                f"{label} {cells[label].scores[-1]:.3f}" for label in labels
                if cells[label].scores))
        results[task.name] = (task, cells)
    return results


def _ranks(means):
    """Rank of each column on one task, 1 = best; ties share the mean rank."""
    from scipy.stats import rankdata

    return rankdata(-np.asarray(means), method="average", nan_policy="omit")


def summary(results, kind, labels):
    """Per label: mean score over the tasks of ``kind``, mean rank, mean fit seconds."""
    rows = [cells for task, cells in results.values() if task.kind == kind]
    if not rows:
        return {}
    means = np.array([[mean_std(cells[label].scores)[0] for label in labels] for cells in rows])
    ranks = np.array([_ranks(m) for m in means])
    return {label: (float(np.nanmean(means[:, j])), float(np.nanmean(ranks[:, j])))
            for j, label in enumerate(labels)}


def round0_check(results, label="RE defaults"):
    """Per task: RE's mean minus round 0's mean, and whether it is within/over one std."""
    out = {}
    for name, (_, cells) in results.items():
        if label not in cells or SINGLE not in cells or not cells[SINGLE].scores:
            continue
        re_mean, re_std = mean_std(cells[label].scores)
        r0_mean, r0_std = mean_std(cells[SINGLE].scores)
        std = max(re_std, r0_std)
        diff = re_mean - r0_mean
        out[name] = (diff, std, "better" if diff > std else "worse" if diff < -std else "tie")
    return out


def tables(config, results):
    labels = config.labels()
    out = []
    for kind, metric in (("regression", "test R²"), ("classification", "test accuracy")):
        rows = []
        for name, (task, cells) in results.items():
            if task.kind != kind:
                continue
            row = [f"{name} ({len(task.X_train)}/{len(task.X_test)})"]
            for label in labels:
                mean, std = mean_std(cells[label].scores)
                row.append("-" if np.isnan(mean) else f"{mean:.3f} ± {std:.3f}")
            rows.append(row)
        if not rows:
            continue
        summ = summary(results, kind, labels)
        rows.append(["**mean score**", *(f"{summ[label][0]:.3f}" for label in labels)])
        rows.append(["**mean rank**", *(f"{summ[label][1]:.2f}" for label in labels)])
        out.append((f"{kind}: {metric}, mean ± std over {config.seeds} seeds "
                    "(task: train/test rows)", markdown_table(["task", *labels], rows)))
        secs = []
        for name, (task, cells) in results.items():
            if task.kind == kind:
                secs.append([name, *(f"{np.nanmean(cells[label].seconds):.1f}"
                                     if cells[label].seconds and
                                     not np.all(np.isnan(cells[label].seconds)) else "-"
                                     for label in labels)])
        out.append((f"{kind}: mean fit seconds", markdown_table(["task", *labels], secs)))
    checks = round0_check(results)
    if checks:
        rows = [[name, f"{diff:+.3f}", f"{std:.3f}", verdict]
                for name, (diff, std, verdict) in checks.items()]
        out.append(("RE defaults against their own round 0 (mean difference; std = the larger "
                    "of the two)", markdown_table(["task", "RE − round 0", "std", "verdict"],
                                                  rows)))
    ratios = []
    for _, cells in results.values():
        if "RE defaults" in cells and "RE 0.x defaults" in cells:
            new = np.mean(cells["RE defaults"].seconds)
            old = np.mean(cells["RE 0.x defaults"].seconds)
            ratios.append(new / old)
    if ratios:
        out.append(("fit time of RE defaults / RE 0.x defaults, per task (same run)",
                    [", ".join(f"{r:.2f}" for r in ratios) +
                     f"; geometric mean {float(np.exp(np.mean(np.log(ratios)))):.2f}"]))
    return out


def figures(config, results):
    return []
