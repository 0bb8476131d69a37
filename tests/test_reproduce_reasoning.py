"""The reasoning section of ``reproduce`` on a tiny setting: tables, figures, helpers."""

import io
import re

import numpy as np
import pytest
import torch

import sklearn_recursive._reasoner as reasoner_module
from sklearn_recursive import RecursiveReasoner
from sklearn_recursive.datasets import make_mazes, make_prefix_sums, make_sudoku
from sklearn_recursive.reproduce import SECTIONS, reproduce
from sklearn_recursive.reproduce import reasoning as section
from sklearn_recursive.reproduce.reasoning import (
    ReasoningConfig,
    UnsharedDeepThinkingNet,
    exact_by_step,
    fit_unshared,
    saved_bytes,
    step_grid,
    sudoku_by_step,
    sudoku_onehot,
)

# The quick setting, smaller still: every part runs, in a few seconds.
TINY = ReasoningConfig.quick(n_train=64, n_test=8, width=4, epochs=1, maze_train=16,
                             maze_test=4, maze_width=4, repeats=1)


@pytest.fixture(scope="module")
def results():
    torch.manual_seed(0)
    return section.run(TINY, lambda message: None)


@pytest.fixture(scope="module")
def text(results):
    return "\n".join(line for _, lines in section.tables(TINY, results) for line in lines)


def _row(text, start):
    return next(line for line in text.splitlines() if line.startswith(start))


def test_step_grid():
    assert step_grid(20, 32) == [1, 2, 5, 10, 20, 40, 80, 160, 320, 640]
    assert step_grid(6, 8) == [1, 2, 3, 6, 12, 24, 48]
    assert step_grid(1, 4) == [1, 2, 4]


def test_tables_have_the_expected_rows_of_measured_numbers(results, text):
    titles = [title for title, _ in section.tables(TINY, results)]
    assert len(titles) == 10
    assert "nan" not in text.lower()
    cell = r"\d\.\d\d ± \d\.\d\d"
    grid = step_grid(TINY.steps, TINY.max_factor)
    for b in TINY.test_bits:  # one row per length, a cell per test-time step
        row = _row(text, f"| {b} ({b / TINY.train_bits:g}x) |")
        assert len(re.findall(cell, row)) == len(grid), row
    for key in ("full recipe", "recall off", "alpha=0", "train_steps=6: a fixed T", "unshared",
                "block run once"):
        row = _row(text, f"| {key}")
        assert len(re.findall(cell, row)) >= 2 * len(TINY.ablation_bits) - 2, row
    # the unshared net has no step past its depth: "-" there, numbers up to it
    assert "- (no step)" in _row(text, "| unshared")
    for size in TINY.maze_test_sizes:
        row = _row(text, f"| {size} cells, {2 * size + 1}x{2 * size + 1} px")
        assert len(re.findall(cell, row)) == len(step_grid(TINY.maze_steps, TINY.maze_factor))
    for b in TINY.halt_bits:
        for rule in ("fixed steps (no halting)", "halt_patience=3", "halt_tol=0.01"):
            assert re.search(rf"^\| {b} \| {re.escape(rule)} \| \d+\.\d ± \d+\.\d \| "
                             r"\d\.\d{3} ± \d\.\d{3} \|$", text, flags=re.M), (b, rule)
    for mode in ("inference", "training step"):
        assert len(re.findall(rf"^\| {mode} \| .* \| \d+\.\d+ \| \d+\.\d{{3}} \| \d+\.\d{{3}} \|",
                              text, flags=re.M)) == 2 + len(TINY.speed_steps)
    for n in TINY.memory_frozen:
        assert re.search(rf"^\| {n} \| \d+\.\d{{3}} \| \d+\.\d{{3}} \|$", text, flags=re.M)


def test_halting_uses_fewer_steps_than_the_budget(results):
    rows = results["halting"]["rows"]
    budget = results["halting"]["budget"]
    assert budget == step_grid(TINY.steps, TINY.max_factor)[-1]
    for b in TINY.halt_bits:
        assert rows[(b, "none")]["steps"] == [budget]
        assert 1 <= rows[(b, "halt_patience=3")]["steps"][0] <= budget


def test_memory_is_flat_in_the_steps_without_gradient(results):
    memory = results["speed"]["memory"]
    truncated = [row["truncated"] for row in memory[1:]]  # n > 0: the projection is frozen
    assert len(set(truncated)) == 1
    full = [row["full"] for row in memory]
    assert full == sorted(full) and full[-1] > 2 * full[0]


def test_figures_are_drawn(results, tmp_path):
    names = []
    for name, fig, caption in section.figures(TINY, results):
        fig.savefig(tmp_path / name, dpi=50)
        assert (tmp_path / name).stat().st_size > 1000 and caption
        names.append(name)
    assert names == ["reasoning_steps.png", "reasoning_mazes.png", "reasoning_maze_steps.png",
                     "reasoning_sudoku.png"]


def test_parts_run_alone():
    cfg = ReasoningConfig.quick(parts=("speed",), repeats=1, width=4)
    results = section.run(cfg, lambda message: None)
    assert set(results) == {"speed"}
    assert [title for title, _ in section.tables(cfg, results)][0].startswith("Speed")
    assert section.figures(cfg, results) == []
    with pytest.raises(ValueError, match=r"unknown parts \['nope'\]"):
        section.run(ReasoningConfig.quick(parts=("nope",)), lambda message: None)


@pytest.fixture(scope="module")
def bits_model():
    X, y = make_prefix_sums(64, n_bits=8, random_state=0)
    return RecursiveReasoner(n_steps=3, width=8, max_epochs=2, batch_size=16, device="cpu",
                             random_state=0).fit(X, y)


def test_exact_by_step_agrees_with_score(bits_model):
    Xt, yt = make_prefix_sums(40, n_bits=12, random_state=1)
    steps = [1, 3, 5]
    exact = exact_by_step(bits_model, Xt, yt, steps, batch=16)
    pos = exact_by_step(bits_model, Xt, yt, steps, batch=16, per_position=True)
    for i, t in enumerate(steps):
        assert exact[i] == pytest.approx(bits_model.score(Xt, yt, n_steps=t))
        assert pos[i] == pytest.approx(bits_model.score(Xt, yt, n_steps=t, per_position=True))


def test_exact_by_step_on_grids():
    X, y = make_mazes(12, size=2, random_state=0)
    model = RecursiveReasoner(n_steps=2, width=4, max_epochs=1, batch_size=6, device="cpu",
                              random_state=0).fit(X, y)
    Xt, yt = make_mazes(5, size=3, random_state=1)
    for t, value in zip([1, 4], exact_by_step(model, Xt, yt, [4, 1], per_position=True)):
        assert value == pytest.approx(model.score(Xt, yt, n_steps=t, per_position=True))


def test_unshared_network_trains_on_the_estimators_path():
    X, y = make_prefix_sums(32, n_bits=8, random_state=0)
    original = reasoner_module.DeepThinkingNet
    est = fit_unshared(RecursiveReasoner(n_steps=3, width=4, max_epochs=1, batch_size=16,
                                         device="cpu", random_state=0), X, y, depth=3)
    assert RecursiveReasoner._network_class is original  # the class is left as it was
    net = est.module_
    assert isinstance(net, UnsharedDeepThinkingNet) and len(net.blocks) == 3
    weights = [block[0].weight for block in net.blocks]
    assert not torch.equal(weights[0], weights[1])  # distinct, not shared
    shared = sum(p.numel() for p in original(1, 2, width=4).parameters())
    block = sum(p.numel() for p in net.blocks[0].parameters())
    assert sum(p.numel() for p in net.parameters()) == shared + 2 * block
    assert est.predict(X[:2], n_steps=2).shape == (2, 8)
    with pytest.raises(ValueError, match="has 3 steps; 4 were asked"):
        est.predict(X[:2], n_steps=4)


def test_saved_bytes_count_the_steps_with_gradient():
    torch.manual_seed(0)
    net = reasoner_module.DeepThinkingNet(1, 2, width=4).train()
    X, y = make_prefix_sums(4, n_bits=8, random_state=0)
    x, target = torch.tensor(X), torch.tensor(y)
    one, two = saved_bytes(net, x, target, 5, 1), saved_bytes(net, x, target, 5, 2)
    assert saved_bytes(net, x, target, 20, 1) == one  # flat in the frozen steps
    assert two > one  # grows with the steps that carry gradient
    assert saved_bytes(net, x, target, 0, 3) - saved_bytes(net, x, target, 0, 2) == two - one


def test_registered_and_in_the_report(tmp_path):
    assert SECTIONS["reasoning"][2] is ReasoningConfig
    cfg = ReasoningConfig.quick(parts=("extrapolation", "mazes"), n_train=32, n_test=4,
                                width=4, epochs=1, test_bits=(8,), maze_train=8, maze_test=2,
                                maze_width=4)
    path = reproduce(tmp_path, sections=["reasoning"], device="cpu",
                     configs={"reasoning": [cfg]}, stream=io.StringIO())
    report = path.read_text(encoding="utf-8")
    assert "## 1. RecursiveReasoner: thinking longer" in report
    assert "**Prefix sums: exact match vs test-time steps" in report
    assert "](reasoning_steps.png)" in report and (tmp_path / "reasoning_maze_steps.png").exists()
    assert np.isfinite(float(re.search(r"Time: (\d+) s", report).group(1)))


# --------------------------------------------------------------------------- sudoku


def test_sudoku_onehot():
    X, _ = make_sudoku(3, random_state=0)
    onehot = sudoku_onehot(X)
    assert onehot.shape == (3, 5, 4, 4) and onehot.dtype == np.float32
    assert np.array_equal(onehot.sum(axis=1), np.ones((3, 4, 4)))  # one channel a cell
    assert np.array_equal(onehot.argmax(axis=1), X)  # channel 0 blank, d the digit d
    assert sudoku_onehot(X[:, :2, :2], n_digits=4).shape == (3, 5, 2, 2)


def test_sudoku_tables(results, text):
    sd = results["sudoku"]
    assert list(sd["models"]) == list(TINY.sudoku_models) == [
        "trm", "trm one segment", "deepthinking", "feed-forward", "once"]
    cell = r"\d\.\d{3} ± \d\.\d{3}"
    for r in sd["models"].values():
        row = _row(text, f"| {r['label']} | {r['params']} (")
        assert len(re.findall(cell, row)) == 2, row  # exact match, blank cells
        assert r["params"] > 0 and len(r["exact"]) == TINY.sudoku_seeds
    params = {key: r["params"] for key, r in sd["models"].items()}
    assert params["feed-forward"] > 3 * params["trm"]  # depth 4 in the quick setting
    assert params["once"] == params["deepthinking"]
    assert params["trm one segment"] == params["trm"]
    grid = step_grid(TINY.sudoku_steps, TINY.sudoku_factor)
    assert sd["grid"] == grid and sd["budget"] == grid[-1]
    for key in ("trm", "trm one segment", "deepthinking"):  # recursive: a curve over cycles
        label = re.escape(sd["models"][key]["label"])
        for metric in ("exact match", "blank cells"):
            row = re.search(rf"^\| {label} \| {metric} \|.*$", text, flags=re.M).group(0)
            assert len(re.findall(r"\d\.\d\d ± \d\.\d\d", row)) == len(grid), row
    halting = sd["halting"]
    rules = {key: [name for k, name in halting if k == key]
             for key in ("trm", "trm one segment", "deepthinking")}
    fixed = [f"fixed {TINY.sudoku_steps} steps", f"fixed {grid[-1]} steps",
             f"halt_patience={TINY.sudoku_halt_patience}"]
    assert rules["deepthinking"] == fixed
    thresholds = [f"halt_threshold={v:g}" for v in TINY.sudoku_halt_thresholds]
    assert rules["trm"] == rules["trm one segment"] == fixed + thresholds
    for (_, name), r in halting.items():
        assert 1 <= r["steps"][0] <= grid[-1]
        if name.startswith("fixed"):
            assert r["steps"][0] == int(name.split()[1])
        assert re.search(rf"^\| .* \| {re.escape(name)} \| \d+\.\d ± \d+\.\d \| {cell} \|$",
                         text, flags=re.M)


def test_sudoku_part_runs_alone_on_a_selection_of_models():
    cfg = ReasoningConfig.quick(parts=("sudoku",), sudoku_train=32, sudoku_test=4,
                                sudoku_models=("deepthinking", "once"))
    results = section.run(cfg, lambda message: None)
    assert set(results) == {"sudoku"} and list(results["sudoku"]["models"]) == [
        "deepthinking", "once"]
    tables = section.tables(cfg, results)
    assert len(tables) == 3 and all(title.startswith("Sudoku 4x4") for title, _ in tables)
    assert "| 1368 | " in "\n".join(tables[0][1])  # no TRM: parameters without a ratio
    assert [name for name, _, _ in section.figures(cfg, results)] == ["reasoning_sudoku.png"]
    assert cfg.describe().startswith("sudoku: 32 training puzzles 4x4")
    with pytest.raises(ValueError, match=r"unknown sudoku_models \['nope'\]"):
        section.run(ReasoningConfig.quick(parts=("sudoku",), sudoku_models=("nope",)),
                    lambda message: None)


def test_sudoku_by_step_agrees_with_score():
    X, y = make_sudoku(40, random_state=0)
    Xt, yt = make_sudoku(20, random_state=1)
    model = RecursiveReasoner(n_steps=2, form="trm", width=4, n_latent=1, n_supervision=2,
                              max_epochs=1, batch_size=20, device="cpu",
                              random_state=0).fit(sudoku_onehot(X), y)
    blank = Xt == 0
    exact, cells = sudoku_by_step(model, sudoku_onehot(Xt), yt, blank, [3, 1], batch=7)
    for i, t in enumerate([1, 3]):
        pred = model.predict(sudoku_onehot(Xt), n_steps=t)
        assert exact[i] == pytest.approx(model.score(sudoku_onehot(Xt), yt, n_steps=t))
        assert cells[i] == pytest.approx((pred == yt)[blank].mean())


def test_sudoku_baseline_of_the_defaults_has_4x_the_parameters():
    cfg = ReasoningConfig()
    assert "sudoku" in cfg.parts
    side = cfg.sudoku_box[0] * cfg.sudoku_box[1]
    common = dict(dim=2, width=cfg.sudoku_width, n_blocks=cfg.sudoku_blocks)
    trm = reasoner_module.TinyRecursiveNet(side + 1, side, n_latent=cfg.sudoku_latent,
                                           **common)
    deep = UnsharedDeepThinkingNet(side + 1, side, depth=cfg.sudoku_depth, **common)

    def count(net):
        return sum(p.numel() for p in net.parameters())

    assert count(deep) >= 4 * count(trm)
