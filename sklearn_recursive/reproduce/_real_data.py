"""Real datasets that install offline, with fixed splits, for the real-data suite.

Every task is ``(name, kind, X_train, y_train, X_test, y_test)`` with 2-D
float ``X`` (time series flattened, forecasting series cut into lag windows)
and a split fixed once for all: the official train/test split of UCR/UEA
sets, the last 25% of a series for forecasting, and a seeded 75/25 split
(stratified for classification) otherwise. Sources: scikit-learn's bundled
sets, statsmodels' datasets and aeon's bundled series (the ``bench`` extra).
"""

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import train_test_split

from ..timeseries import make_windows


@dataclass(frozen=True)
class Task:
    name: str
    kind: str  # "regression" or "classification"
    source: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray

    def describe(self):
        return (f"{self.name} ({self.source}; {len(self.X_train)} train / {len(self.X_test)} "
                f"test rows, {self.X_train.shape[1]} features)")


def _split(name, kind, source, X, y):
    stratify = y if kind == "classification" else None
    X_tr, X_te, y_tr, y_te = train_test_split(
        np.asarray(X, dtype=float), np.asarray(y), test_size=0.25, random_state=0,
        stratify=stratify,
    )
    return Task(name, kind, source, X_tr, y_tr, X_te, y_te)


def _subsample(X, y, n, seed=0):
    rows = np.random.default_rng(seed).permutation(len(X))[:n]
    return np.asarray(X)[rows], np.asarray(y)[rows]


def _forecast(name, source, series, window, difference=False):
    """One-step-ahead forecasting of ``series`` from the ``window`` values before.

    With ``difference``, the windows and the target are first differences
    (the model forecasts the change), as one would for a trending series.
    The last 25% of the windows, in time order, are the test rows.
    """
    series = np.asarray(series, dtype=float)
    if difference:
        series = np.diff(series)
    X, y = make_windows(series, window)
    X = X.reshape(len(X), -1)
    n_test = int(np.ceil(0.25 * len(X)))
    return Task(name, "regression", source, X[:-n_test], y[:-n_test], X[-n_test:], y[-n_test:])


def _ucr(name, loader_name):
    from aeon.datasets import load_classification

    X_tr, y_tr = load_classification(loader_name, split="train")
    X_te, y_te = load_classification(loader_name, split="test")
    def flat(X):
        return np.asarray(X, dtype=float).reshape(len(X), -1)

    return Task(name, "classification", "aeon, UCR official split",
                flat(X_tr), np.asarray(y_tr), flat(X_te), np.asarray(y_te))


def _statsmodels(name):
    import statsmodels.api as sm

    return getattr(sm.datasets, name).load_pandas().data


def _diabetes():
    from sklearn.datasets import load_diabetes

    return _split("diabetes", "regression", "scikit-learn", *load_diabetes(return_X_y=True))


def _fair():
    fair = _statsmodels("fair")
    return _split("fair (affairs)", "regression", "statsmodels, 2000 of 6366 rows",
                  *_subsample(fair.drop(columns="affairs"), fair["affairs"], 2000))


def _randhie():
    rand = _statsmodels("randhie")
    return _split("randhie (doctor visits)", "regression", "statsmodels, 2000 of 20190 rows",
                  *_subsample(rand.drop(columns="mdvis"), rand["mdvis"], 2000))


def _star98():
    star = _statsmodels("star98")
    share = star["NABOVE"] / (star["NABOVE"] + star["NBELOW"])
    return _split("star98 (share above median)", "regression", "statsmodels",
                  star.drop(columns=["NABOVE", "NBELOW"]), share)


def _grunfeld():
    data = _statsmodels("grunfeld")
    firms = np.eye(data["firm"].nunique())[data["firm"].astype("category").cat.codes]
    X = np.column_stack([data[["value", "capital", "year"]].to_numpy(float), firms])
    return _split("grunfeld (investment)", "regression", "statsmodels", X, data["invest"])


def _covid():
    from aeon.datasets import load_covid_3month

    X_tr, y_tr = load_covid_3month(split="train")
    X_te, y_te = load_covid_3month(split="test")
    return Task("covid3month", "regression", "aeon TSER, official split",
                X_tr.reshape(len(X_tr), -1), y_tr, X_te.reshape(len(X_te), -1), y_te)


def _co2():
    co2 = _statsmodels("co2")["co2"].resample("MS").mean().interpolate()
    return _forecast("co2 (monthly change)", "statsmodels, windows of 24", co2.to_numpy(), 24,
                     difference=True)


def _sunspots():
    sun = _statsmodels("sunspots")["SUNACTIVITY"].to_numpy()
    return _forecast("sunspots (yearly)", "statsmodels, windows of 12", sun, 12)


def _elnino():
    nino = _statsmodels("elnino").drop(columns="YEAR").to_numpy().ravel()
    return _forecast("elnino (monthly SST)", "statsmodels, windows of 24", nino, 24)


def _airline():
    from aeon.datasets import load_airline

    airline = np.log(np.asarray(load_airline(), dtype=float))
    return _forecast("airline (log change)", "aeon, windows of 12", airline, 12,
                     difference=True)


def _sklearn_classification(name):
    from sklearn import datasets

    loader = getattr(datasets, f"load_{name}")
    return lambda: _split(name, "classification", "scikit-learn", *loader(return_X_y=True))


def _anes96():
    anes = _statsmodels("anes96")
    return _split("anes96 (vote)", "classification", "statsmodels",
                  anes.drop(columns="vote"), anes["vote"].astype(int))


# name -> loader, in the tables' order; a task's data are loaded only when asked for
TASKS = {
    "diabetes": _diabetes,
    "fair (affairs)": _fair,
    "randhie (doctor visits)": _randhie,
    "star98 (share above median)": _star98,
    "grunfeld (investment)": _grunfeld,
    "covid3month": _covid,
    "co2 (monthly change)": _co2,
    "sunspots (yearly)": _sunspots,
    "elnino (monthly SST)": _elnino,
    "airline (log change)": _airline,
    **{name: _sklearn_classification(name)
       for name in ("breast_cancer", "wine", "iris", "digits")},
    "anes96 (vote)": _anes96,
    **{name: (lambda name=name: _ucr(name, name))
       for name in ("ItalyPowerDemand", "GunPoint", "ArrowHead")},
}


def load_tasks(names=None, skipped=None):
    """The suite's tasks (all, or those ``names``), in `TASKS` order.

    A task whose package is not installed (statsmodels, aeon: the ``bench``
    extra) is left out; with a dict ``skipped``, its name is recorded there
    with the reason.
    """
    if names is not None:
        unknown = sorted(set(names) - set(TASKS))
        if unknown:
            raise ValueError(f"unknown tasks {unknown}; the suite has {list(TASKS)}.")
    tasks = []
    for name, load in TASKS.items():
        if names is not None and name not in names:
            continue
        try:
            tasks.append(load())
        except ImportError as exc:
            if skipped is not None:
                skipped[name] = f"{exc.name or exc} is not installed"
    return tasks
