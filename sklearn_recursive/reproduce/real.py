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

from dataclasses import dataclass

import numpy as np

from .. import MultiverseRE, RecurrentExpansionClassifier, RecurrentExpansionRegressor
from ._real_data import load_tasks
from ._report import markdown_table, mean_std
from ._suite import (
    PEERS,
    geometric_mean,
    peer_model,
    run_suite,
    score,
    score_table,
    seconds_table,
    seed_range,
    seeds_said,
    time_ratios,
)

# The settings before the rounds issue (0.x): fresh rounds, best validation round, one
# 10% validation split.
OLD_DEFAULTS = dict(round_init="random", round_selection="best", weight_decay=0.0, cv=None)
# After its first part: continued rounds and the one-SE rule, on the same split.
HOLDOUT_DEFAULTS = dict(cv=None)

# label -> RE parameters changed from the current defaults
CANDIDATES = {
    "RE 0.x defaults": OLD_DEFAULTS,
    "RE 0.1 holdout defaults": HOLDOUT_DEFAULTS,
    "RE defaults": {},
    "0.x + round_init=previous": {**OLD_DEFAULTS, "round_init": "previous"},
    "0.x + round_selection=one_se": {**OLD_DEFAULTS, "round_selection": "one_se"},
    "defaults + round_init=random": {"round_init": "random"},
    "defaults + cv=3": {"cv": 3},
    "holdout + weight_decay=1e-3": {**HOLDOUT_DEFAULTS, "weight_decay": 1e-3},
    "holdout + batch_size=32": {**HOLDOUT_DEFAULTS, "batch_size": 32},
    "defaults + weight_decay=1e-3": {"weight_decay": 1e-3},
    "defaults + max_epochs=300, n_iter_no_change=30": {"max_epochs": 300,
                                                       "n_iter_no_change": 30},
    "defaults + combine_rounds=mean": {"combine_rounds": "mean"},
    # small-data training recipes (lead 4): more steps per epoch, a larger step, patience
    "defaults + batch_size=32": {"batch_size": 32},
    "defaults + lr=3e-3": {"lr": 3e-3},
    "defaults + n_iter_no_change=30": {"n_iter_no_change": 30},
    # a leak the next round cannot copy (lead 3): noise on the expansion in training
    "defaults + expansion_noise=0.3": {"expansion_noise": 0.3},
    "defaults + expansion_noise=1": {"expansion_noise": 1.0},
    "defaults + round_init=random, combine_rounds=mean": {"round_init": "random",
                                                          "combine_rounds": "mean"},
    "defaults + round_init=random, combine_rounds=mean, round_selection=best": {
        "round_init": "random", "combine_rounds": "mean", "round_selection": "best"},
}
SINGLE = "single net (round 0 of holdout)"
CV_ROUND0 = "round 0 of RE defaults (5 fold nets)"
# RE column -> the column of its own round 0, read off the same fits
ROUND_ZERO = {"RE 0.1 holdout defaults": SINGLE, "RE defaults": CV_ROUND0}
MULTIVERSE = "seed multiverse (5)"


@dataclass(frozen=True)
class RealConfig:
    seeds: int = 3
    first_seed: int = 0  # seeds first_seed, ..., first_seed + seeds - 1
    tasks: tuple = None  # names; None: all
    models: tuple = None  # labels; None: all
    n_rounds: int = 10
    max_epochs: int = 100
    device: str = "auto"

    @classmethod
    def quick(cls, device="auto"):
        """8 of the tasks, 2 seeds, the peers, round 0, the 0.x defaults and the defaults."""
        return cls(seeds=2, device=device,
                   tasks=("diabetes", "star98 (share above median)", "sunspots (yearly)",
                          "airline (log change)", "breast_cancer", "wine", "iris",
                          "ItalyPowerDemand"),
                   models=(*PEERS, CV_ROUND0, "RE 0.x defaults", "RE defaults"))

    def describe(self):
        tasks = "all tasks" if self.tasks is None else f"{len(self.tasks)} tasks"
        return (f"{tasks}, {seeds_said(self)}, n_rounds={self.n_rounds}, "
                f"max_epochs={self.max_epochs}, device={self.device}")

    def labels(self):
        """The columns, in order; the round-0 columns are read off their RE fits."""
        every = [*PEERS, SINGLE, CV_ROUND0, *CANDIDATES, MULTIVERSE]
        chosen = every if self.models is None else [m for m in every if m in self.models]
        # a round-0 column only beside the RE column it is read off
        return [m for m in chosen if m not in ROUND_ZERO.values()
                or any(zero == m and re in chosen for re, zero in ROUND_ZERO.items())]


def make_model(label, kind, seed, config):
    """The unfitted model called ``label`` for a task of ``kind``, seeded by ``seed``.

    None for the round-0 columns (`ROUND_ZERO`), read off their RE fits.
    """
    regression = kind == "regression"
    if label in PEERS:
        return peer_model(label, regression, seed)
    if label in ROUND_ZERO.values():
        return None
    RE = RecurrentExpansionRegressor if regression else RecurrentExpansionClassifier
    params = dict(n_rounds=config.n_rounds, max_epochs=config.max_epochs,
                  device=config.device, random_state=seed)
    params.update(CANDIDATES.get(label, {}))
    if label == MULTIVERSE:
        return MultiverseRE(RE(**params), members=5, random_state=seed)
    return RE(**params)


def _round_zero(label, model, task, cells):
    """After a fit of a `ROUND_ZERO` column, its round 0 fills the round-0 column."""
    column = ROUND_ZERO.get(label)
    if column in cells:
        first = next(model.staged_predict(task.X_test))
        cells[column].seeds.append(cells[label].seeds[-1])
        cells[column].scores.append(score(task.kind, task.y_test, first))
        cells[column].seconds.append(np.nan)


def run(config, log):
    """Fit every model on every task and seed; ``{task name: (task, {label: Cell})}``."""
    skipped = {}
    tasks = load_tasks(names=config.tasks, skipped=skipped)
    for name, reason in skipped.items():
        log(f"real data: {name} skipped ({reason}; pip install -e '.[bench]')")
    return run_suite(tasks, config.labels(),
                     lambda label, kind, seed: make_model(label, kind, seed, config),
                     seed_range(config), log, "real data", after_fit=_round_zero)


def _versus(cells, label, zero):
    """``label``'s mean minus ``zero``'s, the larger std, and "better" / "tie" / "worse"
    (the difference beyond one std either way); None where either has no score."""
    if not all(name in cells and cells[name].scores for name in (label, zero)):
        return None
    mean, std = mean_std(cells[label].scores)
    zero_mean, zero_std = mean_std(cells[zero].scores)
    std = max(std, zero_std)
    diff = mean - zero_mean
    return diff, std, "better" if diff > std else "worse" if diff < -std else "tie"


def round0_check(results, label="RE defaults"):
    """Per task: RE's mean minus round 0's mean, and whether it is within/over one std."""
    checks = {name: _versus(cells, label, ROUND_ZERO[label])
              for name, (_, cells) in results.items()}
    return {name: check for name, check in checks.items() if check is not None}


def better_than_round0(results, labels, zero=CV_ROUND0):
    """How many tasks each column beats ``zero`` on by more than one std, and on how many
    at least one column does (the best column in hindsight, task by task).

    ``{label: count}`` with ``"any column"`` last, and the number of tasks compared.
    Target (a) of the rounds issue asks RE defaults for half the tasks.
    """
    counts = {label: 0 for label in labels if label != zero}
    tasks = anyone = 0
    for _, cells in results.values():
        if zero not in cells or not cells[zero].scores:
            continue
        tasks += 1
        checks = {label: _versus(cells, label, zero) for label in counts}
        winners = [label for label, check in checks.items()
                   if check is not None and check[2] == "better"]
        for label in winners:
            counts[label] += 1
        anyone += bool(winners)
    counts["any column"] = anyone
    return counts, tasks


def tables(config, results):
    labels = config.labels()
    out = []
    for kind, metric in (("regression", "test R²"), ("classification", "test accuracy")):
        lines = score_table(results, kind, labels,
                            lambda task: f"{task.name} ({len(task.X_train)}/{len(task.X_test)})")
        if not lines:
            continue
        out.append((f"{kind}: {metric}, mean ± std over {seeds_said(config)} "
                    "(task: train/test rows)", lines))
        out.append((f"{kind}: mean fit seconds", seconds_table(results, kind, labels)))
    for label in ROUND_ZERO:
        checks = round0_check(results, label)
        if checks:
            rows = [[name, f"{diff:+.3f}", f"{std:.3f}", verdict]
                    for name, (diff, std, verdict) in checks.items()]
            out.append((f"{label} against its own round 0 (mean difference; std = the larger "
                        "of the two)", markdown_table(["task", "RE − round 0", "std", "verdict"],
                                                      rows)))
    counts, n = better_than_round0(results, labels)
    if n:
        out.append((f"tasks (of {n}) on which each column is better than {CV_ROUND0} by "
                    "more than one std; 'any column': the best column in hindsight, task by "
                    "task", [", ".join(f"{label} {c}" for label, c in counts.items())]))
    if "RE 0.x defaults" in labels:
        for label in labels:
            if label in CANDIDATES and label != "RE 0.x defaults" or label == MULTIVERSE:
                ratios = time_ratios(results, label, "RE 0.x defaults")
                out.append((f"fit time of {label} / RE 0.x defaults, per task (same run)",
                            [", ".join(f"{r:.2f}" for r in ratios)
                             + f"; geometric mean {geometric_mean(ratios):.2f}"]))
    return out


def figures(config, results):
    return []
