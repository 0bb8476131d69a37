"""A tiny run of the time-series benchmark (`sklearn_recursive.reproduce.timeseries`)."""

import io
import re

import pytest

pytest.importorskip("aeon")

from sklearn_recursive.reproduce import timeseries  # noqa: E402
from sklearn_recursive.reproduce._report import Progress  # noqa: E402

TINY = timeseries.TimeSeriesConfig(
    seeds=1, tasks=("ItalyPowerDemand",), n_rounds=1, max_epochs=2, device="cpu",
    models=("ridge / logistic", "fcn", "MiniRocket (aeon)"),
)


@pytest.fixture(scope="module")
def tables():
    results = timeseries.run(TINY, Progress(io.StringIO()))
    return results, timeseries.tables(TINY, results)


def test_every_cell_is_measured(tables):
    results, out = tables
    assert list(results) == ["ItalyPowerDemand"] and not results.skipped
    task, cells = results["ItalyPowerDemand"]
    assert task.X_train.shape == (67, 1, 24) and task.X_test.shape == (1029, 1, 24)
    assert TINY.labels() == ["MiniRocket (aeon)", "ridge / logistic", "fcn"]
    text = "\n".join(line for _, lines in out for line in lines)
    row = next(line for line in text.splitlines()
               if line.startswith("| ItalyPowerDemand (67/1029, 1×24) |"))
    assert len(re.findall(r"\d\.\d{3} ± \d\.\d{3}", row)) == 3, row
    assert re.search(r"^\| \*\*mean rank\*\* \| \d\.\d{2} \| \d\.\d{2} \| \d\.\d{2} \|$",
                     text, flags=re.M)
    assert "nan" not in text.lower()


def test_time_ratio_line(tables):
    _, out = tables
    titles = [title for title, _ in out]
    ratio = next(lines for title, lines in out
                 if title.startswith("classification: fit time / MiniRocket (aeon)'s"))
    assert re.fullmatch(r"ridge / logistic [\d.e+-]+×, fcn [\d.e+-]+×", ratio[0]), ratio
    assert not any(title.startswith("forecasting") for title in titles)


def test_multiverse_columns():
    """The preset's column fits ``members="timeseries"``; the candidates their lists."""
    preset = timeseries.make_model(timeseries.PRESET, "classification", 0, TINY)
    assert preset.members == "timeseries" and preset.random_state == 0
    assert preset.estimator.n_rounds == TINY.n_rounds
    for label, members in timeseries.MULTIVERSES.items():
        model = timeseries.make_model(label, "regression", 1, TINY)
        assert type(model.estimator).__name__ == "RecurrentExpansionRegressor"
        assert model.members == members
        assert label in timeseries.TimeSeriesConfig().labels()


def test_budget_columns_change_their_base_column_as_named():
    budgets = list(timeseries.BUDGETS.values())
    assert ("HMVRE (rocket, inception, fcn)", timeseries.LONGER) in budgets
    assert ("rocket", timeseries.PPV_ONLY) in budgets
    trained = [name for name in timeseries.MEMBERS if name != "rocket"]
    assert [base for base, changes in budgets if changes == timeseries.LONGER] == [
        "HMVRE (rocket, inception, fcn)", *trained]
    assert ("rocket", timeseries.TRAINED_HEAD) in budgets
    assert timeseries.TRAINED_HEAD["module"].keywords == {"head": "trained"}
    for label, (base, changes) in timeseries.BUDGETS.items():
        model = timeseries.make_model(label, "classification", 0, TINY)
        reference = timeseries.make_model(base, "classification", 0, TINY)
        re_ = getattr(model, "estimator", model)
        assert type(model) is type(reference)
        assert {k: re_.get_params()[k] for k in changes} == changes
        named = [f"{k}={v}" for k, v in changes.items() if k != "module"]
        if "module" in changes:  # the module's own arguments come first
            named[:0] = [f'{k}="{v}"' if isinstance(v, str) else f"{k}={v}"
                         for k, v in changes["module"].keywords.items()]
        assert label == f"{base}, " + ", ".join(named)
        ref = getattr(reference, "estimator", reference)
        assert (ref.max_epochs, ref.restore_best_weights) == (TINY.max_epochs, True)
