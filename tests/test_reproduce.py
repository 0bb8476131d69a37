"""`python -m sklearn_recursive reproduce` on a tiny setting: the report and plots are written."""

import dataclasses
import re
import sys

import numpy as np
import pytest

from sklearn_recursive.__main__ import main
from sklearn_recursive.reproduce import multiverse, reproduce
from sklearn_recursive.reproduce._report import mean_std, pm
from sklearn_recursive.reproduce.expansion import ExpansionConfig, glitch, rises
from sklearn_recursive.reproduce.feedback import FeedbackConfig
from sklearn_recursive.reproduce.multiverse import MultiverseConfig
from sklearn_recursive.reproduce.real import RealConfig
from sklearn_recursive.reproduce.reasoning import ReasoningConfig
from sklearn_recursive.reproduce.speed import SpeedConfig, alternate, alternate_times
from sklearn_recursive.reproduce.timeseries import TimeSeriesConfig

TINY = {
    "expansion": [ExpansionConfig(seeds=1, n_train=120, n_test=40, rounds=3, max_epochs=2,
                                  hidden=(8,), n_components=2, cv=2)],
    "real": [RealConfig(seeds=2, tasks=("diabetes", "iris"), n_rounds=2, max_epochs=3,
                        models=("ridge / logistic", "round 0 of RE defaults (5 fold nets)",
                                "RE 0.x defaults", "RE defaults"))],
    "multiverse": [MultiverseConfig(seeds=1, datasets=("sinusoid",), variants=("RE", "MVRE"),
                                    k=2, rounds=2, max_epochs=2, n_train=100, n_test=50,
                                    n_jobs=1)],
    "feedback": [FeedbackConfig(seeds=1, train=4, test=4, size=8, sigmas=(0, 4), sizes=(2,),
                                updates=2, channels=2, steps=2, ablations=("no decay",))],
    # without aeon (the tests' install) its tasks are skipped, and the report says so
    "timeseries": [TimeSeriesConfig(seeds=1, tasks=("ItalyPowerDemand",), n_rounds=1,
                                    max_epochs=2, models=("ridge / logistic", "fcn"))],
    "reasoning": [ReasoningConfig.quick(n_train=64, n_test=8, width=4, epochs=1, maze_train=16,
                                        maze_test=4, maze_width=4, repeats=1)],
    "speed": [SpeedConfig(repeats=1, rows=300, epochs=1, rounds=2, round_rows=150, members=2,
                          member_rows=150, feedback_steps=(2,), feedback_batch=2)],
}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    path = reproduce(out, device="cpu", configs=TINY, command="pytest tiny")
    return out, path.read_text(encoding="utf-8")


def test_report_and_plots_are_written(report):
    out, text = report
    assert text.startswith("# sklearn-recursive: what the package reproduces")
    assert "- command: `pytest tiny`" in text and "device cpu" in text
    assert "## 1. Recurrent Expansion on the noisy sinusoid" in text
    assert "## 2. Recurrent Expansion on real data" in text
    assert "## 3. Multiverse Recurrent Expansion" in text
    assert "## 4. FeedbackSegmenter" in text
    assert "## 5. Speed" in text
    assert "## 6. Time-series members" in text
    assert "### Noisy sinusoid" in text  # the multiverse's headings sit below the section's
    for png in ("re_rounds.png", "multiverse_rounds.png", "feedback_f1_fixed.png",
                "feedback_steps_fixed.png"):
        assert (out / png).stat().st_size > 1000
        assert f"]({png})" in text


def test_report_tables_hold_measured_numbers(report):
    _, text = report
    # per-round MSE of both RE variants: three rounds of "mean ± std"
    for variant in ("in-sample", "leak-free (cv=2)"):
        row = next(line for line in text.splitlines() if line.startswith(f"| {variant} |"))
        assert len(re.findall(r"\d\.\d{4} ± \d\.\d{4}", row)) == 3
    assert "| 4 |" in text  # the sigma=4 row of the feedback noise table
    assert re.search(r"^\| MVRE k=2 \| \d\.\d{5} ± \d\.\d{5} \|", text, flags=re.M)
    assert "| no decay |" in text
    # every speed comparison has its unit row at ratio 1 (or 1/R, 1/k) and measured variants
    for comparison in ("training path", "rounds", "multiverse", "feedback steps"):
        assert len(re.findall(rf"^\| {comparison} \| .* \| \d+\.\d{{3}} \| \d+\.\d{{3}} \|",
                              text, flags=re.M)) >= 2
    assert "nan" not in text.lower()
    # the real-data tables: every cell of the tasks' rows is measured
    for task in ("diabetes (331/111)", "iris (112/38)"):
        row = next(line for line in text.splitlines() if line.startswith(f"| {task} |"))
        assert len(re.findall(r"\d\.\d{3} ± \d\.\d{3}", row)) == 4, row
    assert re.search(r"^\| diabetes \| [+-]\d\.\d{3} \| \d\.\d{3} \| (tie|better|worse) \|$",
                     text, flags=re.M)
    assert "geometric mean" in text
    assert re.search(r"ridge / logistic \d, RE 0\.x defaults \d, RE defaults \d, "
                     r"any column \d$", text, flags=re.M)


def test_glitch():
    assert glitch([3.0, 1.0, 1.05, 1.2, 0.9, 2.0], 0.1) == (4, 5)
    assert glitch([3.0, 2.0, 1.0], 0.1) == (2, None)
    best, above = rises([3.0, 1.0, 1.05, 1.2, 1.0, 2.0], 0.1)
    assert best == 1 and above.tolist() == [3, 5]


@pytest.mark.parametrize(
    "values, mean, std",
    [
        ([1.0, 2.0, 3.0], 2.0, 1.0),  # the sample std (ddof=1), not the population one
        ([4.0, 8.0], 6.0, np.sqrt(8.0)),
        ([5.0], 5.0, 0.0),  # one seed: 0
        ([1.0, np.nan, 3.0], 2.0, np.sqrt(2.0)),  # NaN (a diverged fit) ignored
        ([np.nan, 2.0], 2.0, 0.0),
        ([np.nan], np.nan, np.nan),
    ],
)
def test_mean_std(values, mean, std):
    np.testing.assert_allclose(mean_std(values), (mean, std))


def test_mean_std_over_an_axis():
    values = np.array([[1.0, 10.0, 5.0], [3.0, 10.0, np.nan]])  # (seeds, rounds)
    mean, std = mean_std(values, axis=0)
    np.testing.assert_allclose(mean, [2.0, 10.0, 5.0])
    np.testing.assert_allclose(std, [np.sqrt(2.0), 0.0, 0.0])
    np.testing.assert_allclose(mean_std(values.T, axis=1)[1], std)


def test_pm():
    assert pm([1.0, 2.0, 3.0]) == "2.000 ± 1.000"
    assert pm([0.5], 2) == "0.50 ± 0.00"
    assert pm([]) == pm([np.nan, np.nan]) == "-"


def test_alternate_runs_the_variants_in_turn():
    calls = []
    runners = {name: (lambda name=name: calls.append(name)) for name in ("a", "b")}
    repeats = []
    times = alternate_times(runners, 3, on_repeat=lambda rep, times: repeats.append(
        (rep, {name: len(ts) for name, ts in times.items()})))
    assert calls == ["a", "b"] * 4  # a warm-up run of each, then three repeats
    assert {name: len(ts) for name, ts in times.items()} == {"a": 3, "b": 3}
    assert repeats == [(r, {"a": r + 1, "b": r + 1}) for r in range(3)]

    calls.clear()
    alternate_times(runners, 1, warm_up=[lambda: calls.append("small")])
    assert calls == ["small", "a", "b"]
    calls.clear()
    medians = alternate(runners, 2, warm_up=False, sync=lambda: calls.append("sync"))
    assert calls == ["sync", "a", "sync", "sync", "b", "sync"] * 2
    assert set(medians) == {"a", "b"} and all(t >= 0 for t in medians.values())


def test_unknown_section(tmp_path):
    with pytest.raises(ValueError, match=r"unknown sections \['nope'\]"):
        reproduce(tmp_path, sections=["nope"])


def test_command_line_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["reproduce", "--help"])
    assert exc.value.code == 0
    assert "--quick" in capsys.readouterr().out


def test_multiverse_says_when_aeon_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "aeon", None)  # import aeon raises ImportError
    cfg = MultiverseConfig(seeds=1, datasets=("sinusoid", "italy"), variants=("HGB",),
                           n_train=60, n_test=20, n_jobs=1)
    results = multiverse.run(cfg, lambda message: None)
    assert results["ucr"] == []
    text = "\n".join(multiverse.tables(cfg, results)[0][1])
    assert "aeon is not installed: ItalyPowerDemand skipped" in text
    assert "pip install aeon" in text


def test_expansion_variants_name_their_cv():
    """"in-sample" is ``cv=None`` said explicitly (the estimators' default is ``cv=5``)."""
    from sklearn_recursive.reproduce.expansion import _variants

    variants = _variants(ExpansionConfig(cv=3))
    assert variants == {"in-sample": {"cv": None}, "leak-free (cv=3)": {"cv": 3}}


def test_run_suite_fits_every_model_on_the_same_threads():
    """A model that changes torch's threads (aeon's MiniRocket does, through numba's
    OpenMP) does not change those of the models fitted after it, nor those the suite
    leaves behind."""
    import torch

    from sklearn_recursive.reproduce._real_data import Task
    from sklearn_recursive.reproduce._suite import run_suite

    seen = []

    class Model:
        def __init__(self, threads_after):
            self.threads_after = threads_after

        def fit(self, X, y):
            seen.append(torch.get_num_threads())
            if self.threads_after:
                torch.set_num_threads(self.threads_after)
            return self

        def predict(self, X):
            return np.zeros(len(X))

    X, y = np.zeros((4, 2)), np.arange(4.0)
    task = Task("t", "regression", "none", X, y, X, y)
    before = torch.get_num_threads()
    try:
        run_suite([task], ["plain", "changes"], lambda label, kind, seed: Model(
            before + 1 if label == "changes" else None), 2, lambda line: None, "t",
            threads=before)
        after = torch.get_num_threads()  # the last fit changed them
    finally:
        torch.set_num_threads(before)
    assert seen == [before] * 4
    assert after == before


def test_a_suite_runs_the_seeds_it_is_given():
    """``--first-seed 2 --seeds 2`` fits seeds 2 and 3 (a long suite split over
    processes), and the tables say which seeds they average."""
    from sklearn_recursive.reproduce._real_data import Task
    from sklearn_recursive.reproduce._suite import run_suite, seed_range, seeds_said
    from sklearn_recursive.reproduce.timeseries import TimeSeriesConfig

    seen = []

    class Model:
        def __init__(self, seed):
            self.seed = seed

        def fit(self, X, y):
            seen.append(self.seed)
            return self

        def predict(self, X):
            return np.zeros(len(X))

    config = dataclasses.replace(TimeSeriesConfig(), seeds=2, first_seed=2)
    X, y = np.zeros((4, 2)), np.arange(4.0)
    task = Task("t", "regression", "none", X, y, X, y)
    results = run_suite([task], ["m"], lambda label, kind, seed: Model(seed),
                        seed_range(config), lambda line: None, "t")
    assert seen == [2, 3]
    assert results["t"][1]["m"].seeds == [2, 3]
    assert len(results["t"][1]["m"].scores) == 2
    assert seeds_said(config) == "2 seeds (2-3)"
    assert seeds_said(dataclasses.replace(config, seeds=1)) == "1 seed (2)"
    assert seeds_said(TimeSeriesConfig()) == "3 seeds"
    assert "2 seeds (2-3)" in config.describe()


def test_better_than_round0_counts_each_column_and_the_best_in_hindsight():
    from sklearn_recursive.reproduce._suite import Cell
    from sklearn_recursive.reproduce.real import CV_ROUND0, better_than_round0, round0_check

    def cells(zero, re, ridge):
        return {CV_ROUND0: Cell(scores=zero), "RE defaults": Cell(scores=re),
                "ridge / logistic": Cell(scores=ridge)}

    results = {
        # RE ahead by 0.1, stds 0.01: better; ridge behind: worse
        "a": (None, cells([0.5, 0.51, 0.52], [0.6, 0.61, 0.62], [0.3, 0.3, 0.3])),
        # RE ahead by 0.01 within a std of 0.1: a tie; ridge ahead beyond it
        "b": (None, cells([0.4, 0.5, 0.6], [0.41, 0.51, 0.61], [0.9, 0.9, 0.9])),
        # nobody ahead
        "c": (None, cells([0.5, 0.5, 0.5], [0.5, 0.5, 0.5], [0.5, 0.5, 0.5])),
        # no round-0 scores: not compared
        "d": (None, cells([], [0.9], [0.9])),
    }
    labels = [CV_ROUND0, "RE defaults", "ridge / logistic"]
    counts, n = better_than_round0(results, labels)
    assert n == 3
    assert counts == {"RE defaults": 1, "ridge / logistic": 1, "any column": 2}
    assert list(counts)[-1] == "any column"
    checks = round0_check(results)
    assert [checks[t][2] for t in ("a", "b", "c")] == ["better", "tie", "tie"]
    assert "d" not in checks


def test_a_suite_split_over_runs_combines_into_one_table(tmp_path, capsys):
    """``--save`` each run's results, ``--combine`` them: one table over every seed,
    computed by the suite's own code; the same seed twice, or another setting, is an
    error."""
    from sklearn_recursive.reproduce import real
    from sklearn_recursive.reproduce._suite import command_line

    files = []
    for seed in (0, 1):
        path = tmp_path / f"s{seed}.pkl"
        command_line(real, RealConfig, ["--seeds", "1", "--first-seed", str(seed), "--tasks",
                                        "iris", "--models", "ridge / logistic", "sklearn MLP",
                                        "--save", str(path)])
        files.append(str(path))
    single = capsys.readouterr().out
    assert "1 seed (1)" in single
    command_line(real, RealConfig, ["--combine", *files])
    text = capsys.readouterr().out
    assert "Setting: 1 tasks, 2 seeds, n_rounds=10" in text
    row = next(line for line in text.splitlines() if line.startswith("| iris (112/38) |"))
    # logistic regression ignores the seed: the same score twice, std 0
    assert row.split("|")[2].strip() == "0.974 ± 0.000"
    assert re.fullmatch(r"\d\.\d{3} ± \d\.\d{3}", row.split("|")[3].strip())
    for flags, message in ((["--seeds", "0"], "--seeds must be at least 1, got 0"),
                           (["--first-seed", "-1"], "--first-seed must be 0 or more")):
        with pytest.raises(SystemExit):
            command_line(real, RealConfig, flags)
        assert message in capsys.readouterr().err
    with pytest.raises(SystemExit):  # a flag --combine would ignore
        command_line(real, RealConfig, ["--combine", *files, "--seeds", "5"])
    assert "--seeds would be ignored" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"seed\(s\) \[0\] of 'ridge / logistic' on 'iris'"):
        command_line(real, RealConfig, ["--combine", files[0], files[0]])
    other = tmp_path / "other.pkl"
    command_line(real, RealConfig, ["--seeds", "1", "--first-seed", "2", "--tasks", "iris",
                                    "--models", "ridge / logistic", "--save", str(other)])
    import pickle

    with open(other, "rb") as file:
        saved = pickle.load(file)
    saved["config"] = dataclasses.replace(saved["config"], n_rounds=3)
    with open(other, "wb") as file:
        pickle.dump(saved, file)
    with pytest.raises(ValueError, match="another setting"):
        command_line(real, RealConfig, ["--combine", files[0], str(other)])
    from sklearn_recursive.reproduce import timeseries

    with pytest.raises(ValueError, match="holds no results of this suite .*RealConfig, not "
                                         "a TimeSeriesConfig"):
        command_line(timeseries, timeseries.TimeSeriesConfig, ["--combine", files[0]])
