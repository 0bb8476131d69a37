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
