"""RecursiveReasoner: thinking longer to solve larger instances (DeepThinking).

Every model is a `RecursiveReasoner` (projection, one weight-tied block with
recall, head; progressive loss). The score is the **exact match**: the
fraction of test instances whose every position is right. Test-time steps
run on the same weights; an accuracy "vs steps" is read from one unroll per
test set, the head applied to the state after each listed step (as
``predict(X, n_steps=t)`` would). Every seed draws new data and weights.

Parts (``parts`` selects them):

1. **extrapolation**: prefix sums (running parity) trained at ``train_bits``
   with ``T`` steps, tested at longer strings for test-time steps from 1 to
   ``max_factor * T``: the "thinking longer" curve, one line per length.
   Targets: >= 0.99 at 16x the training length, and no loss when run to
   32x the trained steps (no overthinking).
2. **ablations**, each on the same data, epochs, width and seed as the full
   recipe: recall off; ``alpha=0`` (plain back-propagation through ``T``
   steps, no progressive loss: does it overthink?); ``train_steps`` drawn
   per batch from a range instead of a fixed ``T``; the same block
   *unshared* at the same depth (``T`` distinct blocks, the feed-forward
   baseline with ``T`` times the block's parameters; it has no step past
   ``T``); the block run once (``n_steps=1`` in training and test).
3. **mazes**: trained at ``maze_size`` cells a side (``2 * size + 1``
   pixels), tested at the training size and at 2x the side; exact match
   (every pixel of the path and off it right) vs steps, and one maze
   solved step by step.
4. **halting**: mean steps used and exact match with adaptive halting
   (``halt_patience``, ``halt_tol``) against a fixed number of steps.
5. **speed**: time of T steps against T one-step passes measured side by
   side (`alternate`), inference and a training step; and the memory that a
   training step with truncated back-propagation keeps for the backward pass
   against the number of steps run without gradient. The memory is the size
   of the tensors autograd saves (counted with
   ``torch.autograd.graph.saved_tensors_hooks``, unique storages, the
   parameters left out): device-independent, it is what back-propagation
   holds beyond the weights; on CUDA the peak allocated memory is given too.
6. **sudoku**: recursion against scale on small Sudoku (`make_sudoku`, one-hot
   input: blank + digits). On the same puzzles, epochs, batch, lr and seeds:
   the TRM form (``form="trm"``, ``n_blocks=2``: "2 layers"), the same
   without deep supervision (one segment of ``T`` cycles), the
   DeepThinking form (same width and blocks), a non-recursive feed-forward
   baseline (the DeepThinking block *unshared*, ``sudoku_depth`` distinct
   blocks trained end to end; 7.5x the TRM form's parameters at the
   defaults) and the DeepThinking block run once. Exact match (the puzzle solved, ``score``) and
   the accuracy on the blank cells, parameters, fit seconds; accuracy vs
   test-time cycles of the recursive models; and mean steps used against
   exact match with adaptive halting (TRM's halting head,
   ``halt_threshold``; label patience) against a fixed number of steps.
"""

import copy
import dataclasses
import functools
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._reasoner import DeepThinkingNet, RecursiveReasoner
from .._training import DivergenceError
from ..datasets import make_mazes, make_prefix_sums, make_sudoku
from ._report import markdown_table, mean_std, pm
from .speed import alternate, with_threads

PARTS = ("extrapolation", "ablations", "mazes", "halting", "speed", "sudoku")


def _optimiser(lr, warmup_epochs, lr_schedule):
    """The optimiser's part of a setting's description."""
    return (f"Adam lr {lr}" + (f", warmup {warmup_epochs} epochs" if warmup_epochs else "")
            + (f", {lr_schedule} schedule" if lr_schedule != "constant" else ""))


@dataclasses.dataclass
class ReasoningConfig:
    """Settings of the reasoning experiments (the defaults: the full run).

    The prefix-sum parts follow the estimator's defaults since 2026-12-04
    (width 128, a warmup and a cosine decay) and take about 2.3x as long
    as at width 64: on one CPU thread, beside another single-thread job,
    extrapolation and halting took 41 minutes for 4 seeds and the ablations
    35 minutes (the full fit 323 s, the alpha=0 fit 761 s).  At width 64
    the full setting took about 18 minutes (measured 2026-12-02 part by
    part: a prefix-sum fit 99 s and its curves to 640 steps 55 s per seed,
    the alpha=0 fit 215 s, the unshared one 101 s, the maze fit 172 s,
    halting 30 s, speed 40 s; recall off and the fixed T not timed), and
    the sudoku part, which the change leaves as it was, about 10.5 minutes
    more (621 s measured
    2026-12-02: per seed TRM 99 s, TRM in one segment 96 s, DeepThinking
    30 s, the feed-forward baseline 63 s, the block once 15 s); with
    ``device="cuda"`` raise ``seeds``, ``n_test`` and the maze budget.
    """

    parts: tuple = PARTS
    seeds: int = 2  # extrapolation, halting
    ablation_seeds: int = 1  # ablations and mazes
    # prefix sums
    train_bits: int = 16
    test_bits: tuple = (16, 32, 64, 128, 256)
    n_train: int = 4000
    n_test: int = 100
    steps: int = 20  # T, the trained steps
    max_factor: int = 32  # test-time steps up to max_factor * T
    width: int = 128  # the estimator's defaults: width, warmup and schedule
    n_blocks: int = 2
    epochs: int = 30
    batch: int = 100
    lr: float = 1e-3
    warmup_epochs: int = 3  # RecursiveReasoner's learning-rate warmup (its "auto" at 30 epochs)
    lr_schedule: str = "cosine"  # and its schedule after the warmup
    ablations: tuple = ("recall off", "alpha=0", "fixed T", "unshared", "once")
    ablation_bits: tuple = (16, 64)
    ablation_factor: int = 8  # ablation curves up to ablation_factor * T
    # halting, at max_factor * T steps at most
    halt_bits: tuple = (16, 64, 256)
    halt_rules: tuple = (("halt_patience", 5), ("halt_patience", 20), ("halt_tol", 1e-3))
    # mazes
    maze_size: int = 5  # cells a side: 11x11 pixels
    maze_test_sizes: tuple = (5, 10)
    maze_train: int = 2000
    maze_test: int = 50
    maze_steps: int = 20
    maze_width: int = 32
    maze_epochs: int = 20
    maze_batch: int = 25
    maze_lr: float = 1e-3
    maze_blocks: int = 2
    maze_warmup: int = 0  # warmup_epochs of the maze model
    maze_lr_schedule: str = "constant"
    maze_factor: int = 4
    # speed and memory
    speed_steps: tuple = (5, 20)
    speed_batch: int = 100
    speed_bits: int = 64
    repeats: int = 5
    memory_frozen: tuple = (0, 10, 50, 200)
    memory_backprop: int = 5
    memory_batch: int = 16
    threads: int = 1  # torch and BLAS threads while timing (None: leave as they are)
    # sudoku: recursion against scale
    sudoku_box: tuple = (2, 2)  # box shape: (2, 2) is 4x4, (2, 3) 6x6
    sudoku_train: int = 4000
    sudoku_test: int = 200
    sudoku_width: int = 32
    sudoku_blocks: int = 2  # "2 layers": residual blocks of the recursive block
    sudoku_epochs: int = 20
    sudoku_batch: int = 50
    sudoku_lr: float = 1e-3
    sudoku_warmup: int = 0  # warmup_epochs of the sudoku models
    sudoku_lr_schedule: str = "constant"
    sudoku_steps: int = 8  # T: test cycles (TRM) / steps (DeepThinking), and trained depth
    sudoku_latent: int = 3  # TRM's n_latent
    sudoku_supervision: int = 4  # TRM's n_supervision
    sudoku_depth: int = 8  # distinct blocks of the feed-forward baseline
    sudoku_factor: int = 4  # test-time cycles up to sudoku_factor * T
    sudoku_halt_thresholds: tuple = (0.5, 0.9)  # TRM's halting head
    sudoku_halt_patience: int = 2  # labels unchanged for that many steps
    sudoku_seeds: int = 2
    sudoku_models: tuple = ("trm", "trm one segment", "deepthinking", "feed-forward", "once")
    device: str = "cpu"

    @classmethod
    def quick(cls, **changes):
        """A setting that runs in well under a minute on one CPU thread.

        The networks are tiny and barely trained: the numbers exercise the
        code path and mean nothing.
        """
        settings = dict(
            seeds=1, train_bits=8, test_bits=(8, 16, 32), n_train=400, n_test=32, steps=6,
            max_factor=8, width=12, epochs=2, ablation_bits=(8, 16), ablation_factor=4,
            halt_bits=(8, 32), halt_rules=(("halt_patience", 3), ("halt_tol", 1e-2)),
            maze_size=3, maze_test_sizes=(3, 6), maze_train=100, maze_test=16, maze_steps=6,
            maze_width=8, maze_epochs=1, maze_batch=25, speed_steps=(6,), speed_batch=32,
            speed_bits=16, repeats=3, memory_frozen=(0, 8, 32), memory_backprop=2,
            memory_batch=8, sudoku_train=64, sudoku_test=16, sudoku_width=4, sudoku_epochs=1,
            sudoku_batch=32, sudoku_steps=2, sudoku_latent=1, sudoku_supervision=2,
            sudoku_depth=4, sudoku_factor=2, sudoku_seeds=1, warmup_epochs=0,
        )
        return cls(**{**settings, **changes})

    def describe(self):
        out = [] if set(self.parts) <= {"sudoku"} else [
            f"prefix sums: {self.n_train} training strings of {self.train_bits} bits, "
            f"{self.n_test} test strings per length; RecursiveReasoner width={self.width}, "
            f"n_blocks={self.n_blocks}, T={self.steps} steps, {self.epochs} epochs "
            f"(batch {self.batch}, {_optimiser(self.lr, self.warmup_epochs, self.lr_schedule)}"
            "); test-time steps up to "
            f"{self.max_factor}T; {self.seeds} seed(s), ablations {self.ablation_seeds} "
            f"seed(s); mean ± std (ddof=1) over seeds of the exact match",
        ]
        if "mazes" in self.parts:
            side = 2 * self.maze_size + 1
            out.append(
                f"mazes: {self.maze_train} training mazes of {self.maze_size}x"
                f"{self.maze_size} cells ({side}x{side} pixels), {self.maze_test} test mazes "
                f"per size {list(self.maze_test_sizes)}; width={self.maze_width}, "
                f"n_blocks={self.maze_blocks}, T={self.maze_steps}, {self.maze_epochs} epochs "
                f"(batch {self.maze_batch}, "
                f"{_optimiser(self.maze_lr, self.maze_warmup, self.maze_lr_schedule)})"
            )
        if "sudoku" in self.parts:
            side = self.sudoku_box[0] * self.sudoku_box[1]
            out.append(
                f"sudoku: {self.sudoku_train} training puzzles {side}x{side} (minimal: every "
                f"removable given removed), {self.sudoku_test} test puzzles; width="
                f"{self.sudoku_width}, n_blocks={self.sudoku_blocks}, T={self.sudoku_steps}, "
                f"{self.sudoku_epochs} epochs (batch {self.sudoku_batch}, "
                f"{_optimiser(self.sudoku_lr, self.sudoku_warmup, self.sudoku_lr_schedule)}); "
                f"TRM n_latent={self.sudoku_latent}, n_supervision={self.sudoku_supervision}; "
                f"{self.sudoku_seeds} seed(s)"
            )
        out.append(f"device {self.device}")
        return "; ".join(out)


def step_grid(T, factor):
    """Test-time steps: 1, 2, T/4, T/2, then T doubled up to ``factor * T``."""
    grid = {1, 2, T // 4, T // 2}
    t = T
    while t <= factor * T:
        grid.add(t)
        t *= 2
    return sorted(s for s in grid if s >= 1)


# --------------------------------------------------------------------------- the unshared net


class UnsharedDeepThinkingNet(DeepThinkingNet):
    """`DeepThinkingNet` with a different block at every step: the feed-forward baseline.

    ``depth`` blocks of the same architecture, each with its own weights
    (initialised independently); step ``i`` runs block ``i``, so the network
    has ``depth`` steps and no more. Training, the progressive loss and the
    frozen steps are those of `DeepThinkingNet` (``unroll`` is the one
    place where the steps run); adaptive halting is not supported.
    """

    def __init__(self, *args, depth, **kwargs):
        super().__init__(*args, **kwargs)
        blocks = [self.block]
        for _ in range(depth - 1):
            block = copy.deepcopy(self.block)
            for layer in block.modules():
                if isinstance(layer, (nn.Conv1d, nn.Conv2d)):
                    layer.reset_parameters()
            blocks.append(block)
        self.blocks = nn.ModuleList(blocks)

    def _blocks(self, n_steps):
        if n_steps > len(self.blocks):
            raise ValueError(
                f"the unshared network has {len(self.blocks)} steps; {n_steps} were asked."
            )
        return self.blocks[:n_steps]

    def _run_block(self, block, h, x):
        return block(torch.cat([h, x], dim=1) if self.recall else h)

    def step(self, h, x):
        raise NotImplementedError("the unshared network's step depends on its index: use unroll")

    def unroll(self, x, n_steps, n_frozen=0):
        grad = torch.is_grad_enabled()
        with torch.set_grad_enabled(grad and n_frozen == 0):
            h = self.projection(x)
        for i, block in enumerate(self._blocks(n_steps)):
            with torch.set_grad_enabled(grad and i >= n_frozen):
                h = self._run_block(block, h, x)
        return h

    def steps(self, x, n_steps):
        h = self.projection(x)
        for block in self._blocks(n_steps):
            h = self._run_block(block, h, x)
            yield h


def fit_unshared(est, X, y, depth):
    """Fit ``est`` with `UnsharedDeepThinkingNet` of ``depth`` steps as its network.

    The estimator's own training path (data, loss, steps drawn, clipping,
    seeds) with another network: ``_network_class`` set on this instance.
    """
    est._network_class = functools.partial(UnsharedDeepThinkingNet, depth=depth)
    return est.fit(X, y)


# --------------------------------------------------------------------------- measuring


@torch.no_grad()
def _hits_by_step(est, X, y, steps, batch):
    """Yield ``(i, rows, hit)`` for each batch of rows and each of ``steps``, in one unroll.

    The head reads the state after step ``steps[i]`` (``steps`` sorted,
    unique), as ``est.predict(X, n_steps=steps[i])`` would; ``hit`` is
    ``(len(rows), n_positions)``, True where the label is right, all False for
    a sample whose logits are not finite.
    """
    module = est.module_.eval()
    for start in range(0, len(X), batch):
        rows = slice(start, start + batch)
        x = torch.tensor(X[rows], device=est.device_)
        target = y[rows].reshape(len(x), -1)
        i = 0
        for t, h in enumerate(module.steps(x, steps[-1]), 1):
            if t != steps[i]:
                continue
            logits = module.head(h)
            finite = torch.isfinite(logits).flatten(1).all(dim=1).cpu().numpy()[:, None]
            pred = est.classes_[logits.argmax(dim=1).cpu().numpy()].reshape(len(x), -1)
            yield i, rows, (pred == target) & finite
            i += 1


def exact_by_step(est, X, y, steps, batch=64, per_position=False):
    """Exact match (or per-position accuracy) after each of ``steps``, in one unroll.

    The head reads the state after each listed step, as ``est.predict(X,
    n_steps=t)`` would; a sample whose logits are not finite counts as
    wrong. Returns an array aligned with ``sorted(set(steps))``.
    """
    steps = sorted(set(steps))
    right = np.zeros(len(steps))
    for i, _, hit in _hits_by_step(est, X, y, steps, batch):
        right[i] += float((hit.mean(axis=1) if per_position else hit.all(axis=1)).sum())
    return right / len(X)


def _fit(est, X, y, log, depth=None):
    start = time.perf_counter()
    try:
        if depth is None:
            est.fit(X, y)
        else:
            fit_unshared(est, X, y, depth)
    except DivergenceError as exc:
        log(f"   diverged: {exc}")
        return None, time.perf_counter() - start
    return est, time.perf_counter() - start


def _n_params(est):
    return sum(p.numel() for p in est.module_.parameters())


def _bits(n, n_bits, seed, offset):
    seed = 1_000_000 * offset + 1000 * seed + n_bits
    return make_prefix_sums(n, n_bits=n_bits, random_state=seed)


def _model(cfg, seed, **params):
    settings = dict(n_steps=cfg.steps, width=cfg.width, n_blocks=cfg.n_blocks,
                    max_epochs=cfg.epochs, batch_size=cfg.batch, lr=cfg.lr,
                    warmup_epochs=cfg.warmup_epochs, lr_schedule=cfg.lr_schedule,
                    device=cfg.device, random_state=seed)
    return RecursiveReasoner(**{**settings, **params})


def _variants(T):
    """``{key: (label, estimator parameters, unshared depth or None)}`` of the ablations."""
    return {
        "recall off": ("recall off", dict(recall=False), None),
        "alpha=0": ("alpha=0 (no progressive loss: BPTT through T)", dict(alpha=0.0), None),
        "fixed T": (f"train_steps={T}: a fixed T (not drawn per batch)", dict(
            train_steps=T), None),
        # a feed-forward net has its depth and no other: a fixed T
        "unshared": (f"unshared: {T} distinct blocks (feed-forward)", dict(train_steps=T), T),
        "once": ("block run once (n_steps=1)", dict(n_steps=1), None),
    }


def run(cfg, log):
    """Run the selected parts; return their results (a dict)."""
    unknown = sorted(set(cfg.parts) - set(PARTS))
    if unknown:
        raise ValueError(f"unknown parts {unknown}; choose from {list(PARTS)}.")
    out = {}
    models = {}
    if {"extrapolation", "ablations", "halting"} & set(cfg.parts):
        out["extrapolation"], models = _extrapolation(cfg, log)
    if "ablations" in cfg.parts:
        out["ablations"] = _ablations(cfg, log, models)
    if "halting" in cfg.parts:
        out["halting"] = _halting(cfg, log, models, out["extrapolation"])
    if "mazes" in cfg.parts:
        out["mazes"] = _mazes(cfg, log)
    if "speed" in cfg.parts:
        out["speed"] = with_threads(cfg.threads, cfg.device, _speed, cfg, log)
    if "sudoku" in cfg.parts:
        out["sudoku"] = _sudoku(cfg, log)
    return out


def _extrapolation(cfg, log):
    grid = step_grid(cfg.steps, cfg.max_factor)
    sizes = cfg.test_bits if "extrapolation" in cfg.parts else ()
    res = {"grid": grid, "exact": {b: [] for b in sizes}, "fit_s": [], "diverged": 0}
    models = {}
    parts = set(cfg.parts)
    n_models = max(cfg.seeds if {"extrapolation", "halting"} & parts else 0,
                   cfg.ablation_seeds if "ablations" in parts else 0)
    for seed in range(n_models):
        X, y = _bits(cfg.n_train, cfg.train_bits, seed, 1)
        est, seconds = _fit(_model(cfg, seed), X, y, log)
        models[seed] = est, seconds
        if seed >= cfg.seeds:
            continue  # trained for the ablations only
        res["fit_s"].append(seconds)
        if est is None:
            res["diverged"] += 1
        for b in sizes:
            Xt, yt = _bits(cfg.n_test, b, seed, 2)
            curve = exact_by_step(est, Xt, yt, grid) if est else np.full(len(grid), np.nan)
            res["exact"][b].append(curve)
            log(f"reasoning 1 seed={seed} bits={b}: exact at T {curve[grid.index(cfg.steps)]:.3f}"
                f", best {np.nanmax(curve):.3f}, at {grid[-1]} steps {curve[-1]:.3f}")
    if models.get(0, (None,))[0] is not None:
        res["params"] = _n_params(models[0][0])
    return res, models


def _ablations(cfg, log, models):
    T = cfg.steps
    grid = step_grid(T, cfg.ablation_factor)
    low, high = max(1, T // 2), T + T // 2
    variants = {"full recipe": (
        f"full recipe (T drawn from {low}..{high}, alpha=1, recall)", {}, None)}
    variants.update((k, _variants(T)[k]) for k in cfg.ablations)
    res = {"grid": grid, "variants": {}}
    for key, (label, params, depth) in variants.items():
        r = res["variants"][key] = dict(label=label, exact={b: [] for b in cfg.ablation_bits},
                                        fit_s=[], diverged=0, params=None, depth=depth,
                                        steps=params.get("n_steps", T))
        for seed in range(cfg.ablation_seeds):
            X, y = _bits(cfg.n_train, cfg.train_bits, seed, 1)
            if key == "full recipe":
                est, seconds = models[seed]
            else:
                est, seconds = _fit(_model(cfg, seed, **params), X, y, log, depth)
            r["fit_s"].append(seconds)
            if est is None:
                r["diverged"] += 1
                continue
            r["params"] = _n_params(est)
            usable = [t for t in grid if depth is None or t <= depth]
            for b in cfg.ablation_bits:
                Xt, yt = _bits(cfg.n_test, b, seed, 2)
                curve = np.full(len(grid), np.nan)
                curve[: len(usable)] = exact_by_step(est, Xt, yt, usable)
                r["exact"][b].append(curve)
            log(f"reasoning 2 {key} seed={seed}: " + ", ".join(
                f"{b} bits best {np.nanmax(r['exact'][b][-1]):.3f}" for b in cfg.ablation_bits))
    return res


def _halting(cfg, log, models, extrapolation):
    budget = step_grid(cfg.steps, cfg.max_factor)[-1]
    rules = [(f"{name}={value:g}", {name: value}) for name, value in cfg.halt_rules]
    res = {"budget": budget, "rows": {}}
    for b in cfg.halt_bits:
        for seed in range(cfg.seeds):
            est = models[seed][0]
            if est is None:
                continue
            Xt, yt = _bits(cfg.n_test, b, seed, 2)
            curves = extrapolation["exact"].get(b, [])
            for name, params in [("none", {}), *rules]:
                if name == "none" and seed < len(curves):  # measured in part 1
                    exact, used = float(curves[seed][-1]), float(budget)
                else:
                    exact, used = _halted(est, params, Xt, yt, budget)
                row = res["rows"].setdefault((b, name), {"exact": [], "steps": []})
                row["exact"].append(exact)
                row["steps"].append(used)
            log(f"reasoning 4 halting bits={b} seed={seed}: " + ", ".join(
                f"{name} {res['rows'][(b, name)]['exact'][-1]:.3f} in "
                f"{res['rows'][(b, name)]['steps'][-1]:.1f} steps" for name, _ in
                [("none", {}), *rules]))
    return res


def _halted(est, params, X, y, budget):
    """Exact match and mean steps used of ``est.predict`` with the halting ``params``."""
    est.set_params(**{"halt_patience": None, "halt_tol": None, **params})
    try:
        pred, used = est.predict(X, n_steps=budget, return_steps=True)
    except DivergenceError:
        return np.nan, np.nan
    finally:
        est.set_params(halt_patience=None, halt_tol=None)
    return float((pred == y).reshape(len(y), -1).all(axis=1).mean()), float(used.mean())


def _mazes(cfg, log):
    T = cfg.maze_steps
    grid = step_grid(T, cfg.maze_factor)
    res = {"grid": grid, "exact": {s: [] for s in cfg.maze_test_sizes},
           "pixel": {s: [] for s in cfg.maze_test_sizes}, "fit_s": [], "example": None}
    for seed in range(cfg.ablation_seeds):
        X, y = make_mazes(cfg.maze_train, cfg.maze_size, random_state=1_000_000 + seed)
        est, seconds = _fit(RecursiveReasoner(
            n_steps=T, width=cfg.maze_width, n_blocks=cfg.maze_blocks, max_epochs=cfg.maze_epochs,
            batch_size=cfg.maze_batch, lr=cfg.maze_lr, warmup_epochs=cfg.maze_warmup,
            lr_schedule=cfg.maze_lr_schedule, device=cfg.device, random_state=seed,
        ), X, y, log)
        res["fit_s"].append(seconds)
        log(f"reasoning 3 mazes seed={seed}: fit {seconds:.0f} s, training loss per epoch "
            + ("-" if est is None else " ".join(f"{v:.4f}" for v in est.history_)))
        for size in cfg.maze_test_sizes:
            Xt, yt = make_mazes(cfg.maze_test, size, random_state=2_000_000 + 1000 * seed + size)
            if est is None:
                res["exact"][size].append(np.full(len(grid), np.nan))
                res["pixel"][size].append(np.full(len(grid), np.nan))
                continue
            res["exact"][size].append(exact_by_step(est, Xt, yt, grid, batch=cfg.maze_batch))
            res["pixel"][size].append(exact_by_step(est, Xt, yt, grid, batch=cfg.maze_batch,
                                                    per_position=True))
            if seed == 0 and size == max(cfg.maze_test_sizes):
                shown = sorted({1, T // 4, T // 2, T, 2 * T, grid[-1]} - {0})
                probas = list(est.staged_predict_proba(Xt[:1], n_steps=grid[-1]))
                res["example"] = dict(x=Xt[0], y=yt[0], shown=shown,
                                      proba=[probas[t - 1][0, 1] for t in shown])
            log(f"reasoning 3 mazes size={size} seed={seed}: exact at T "
                f"{res['exact'][size][-1][grid.index(T)]:.3f}, best "
                f"{np.nanmax(res['exact'][size][-1]):.3f}, pixels at T "
                f"{res['pixel'][size][-1][grid.index(T)]:.3f}")
    return res


# --------------------------------------------------------------------------- sudoku


def sudoku_onehot(X, n_digits=None):
    """One-hot puzzles: ``(n, N, N)`` ints ``0..N`` (0 blank) to ``(n, N + 1, N, N)`` float32.

    Channel 0 marks the blank cells, channel ``d`` the given digit ``d``;
    ``n_digits`` (``N``) defaults to the side of the grid.
    """
    X = np.asarray(X)
    n_digits = X.shape[-1] if n_digits is None else n_digits
    return (X[:, None] == np.arange(n_digits + 1).reshape(-1, 1, 1)).astype(np.float32)


def sudoku_by_step(est, X, y, blank, steps, batch=100):
    """Exact match and blank-cell accuracy after each of ``steps``, in one unroll.

    ``X`` the one-hot puzzles, ``y`` the solutions (labels), ``blank`` a
    boolean mask of the blank cells; as `exact_by_step`, the head reads the
    answer state after each listed step (``est.predict(X, n_steps=t)``), and
    non-finite logits count as wrong. Returns two arrays aligned with
    ``sorted(set(steps))``.
    """
    steps = sorted(set(steps))
    exact, cells = np.zeros(len(steps)), np.zeros(len(steps))
    for i, rows, hit in _hits_by_step(est, X, y, steps, batch):
        exact[i] += float(hit.all(axis=1).sum())
        cells[i] += float(hit[blank[rows].reshape(len(hit), -1)].sum())
    return exact / len(X), cells / blank.sum()


def _sudoku_models(cfg):
    """``{key: (label, estimator parameters, unshared depth or None)}`` of the sudoku part."""
    T = cfg.sudoku_steps
    grad = min(2, T)
    models = {
        "trm": (f"TRM form ({cfg.sudoku_blocks} blocks, n_latent={cfg.sudoku_latent}, "
                f"n_supervision={cfg.sudoku_supervision})",
                dict(form="trm", n_latent=cfg.sudoku_latent,
                     n_supervision=cfg.sudoku_supervision), None),
        "trm one segment": (f"TRM form, no deep supervision (n_supervision=1, train_steps={T}, "
                            f"backprop_steps={grad})",
                            dict(form="trm", n_latent=cfg.sudoku_latent, n_supervision=1,
                                 train_steps=T, backprop_steps=grad), None),
        # every form at the depth T (the feed-forward net has no other)
        "deepthinking": (f"DeepThinking form ({cfg.sudoku_blocks} blocks, progressive loss, "
                         f"train_steps={T})", dict(train_steps=T), None),
        "feed-forward": (f"feed-forward: {cfg.sudoku_depth} distinct blocks (unshared, "
                         "trained end to end)", dict(n_steps=cfg.sudoku_depth, alpha=0.0,
                                                     train_steps=cfg.sudoku_depth),
                         cfg.sudoku_depth),
        "once": ("DeepThinking block run once (n_steps=1)", dict(n_steps=1), None),
    }
    unknown = sorted(set(cfg.sudoku_models) - set(models))
    if unknown:
        raise ValueError(f"unknown sudoku_models {unknown}; choose from {list(models)}.")
    return {key: models[key] for key in cfg.sudoku_models}


def _sudoku_data(cfg, n, seed, offset):
    X, y = make_sudoku(n, box_shape=tuple(cfg.sudoku_box),
                       random_state=3_000_000 + 1000 * seed + offset)
    return sudoku_onehot(X), y, X == 0


def _sudoku(cfg, log):
    T = cfg.sudoku_steps
    grid = step_grid(T, cfg.sudoku_factor)
    budget = grid[-1]
    models = _sudoku_models(cfg)
    res = {"grid": grid, "budget": budget, "models": {}, "halting": {}, "seen": []}
    for key, (label, _, depth) in models.items():
        res["models"][key] = dict(label=label, exact=[], cells=[], curve_exact=[],
                                  curve_cells=[], fit_s=[], diverged=0, params=None,
                                  depth=depth, steps=None)
    for seed in range(cfg.sudoku_seeds):
        X, y, _ = _sudoku_data(cfg, cfg.sudoku_train, seed, 1)
        Xt, yt, blank = _sudoku_data(cfg, cfg.sudoku_test, seed, 2)
        train = {x.tobytes() for x in X}
        res["seen"].append(float(np.mean([x.tobytes() in train for x in Xt])))
        for key, (_, params, depth) in models.items():
            r = res["models"][key]
            settings = dict(n_steps=T, width=cfg.sudoku_width, n_blocks=cfg.sudoku_blocks,
                            max_epochs=cfg.sudoku_epochs, batch_size=cfg.sudoku_batch,
                            lr=cfg.sudoku_lr, warmup_epochs=cfg.sudoku_warmup,
                            lr_schedule=cfg.sudoku_lr_schedule, device=cfg.device,
                            random_state=seed)
            est, seconds = _fit(RecursiveReasoner(**{**settings, **params}), X, y, log, depth)
            r["fit_s"].append(seconds)
            if est is None:
                r["diverged"] += 1
                continue
            r["params"] = _n_params(est)
            r["steps"] = own = est.n_steps
            exact, cells = sudoku_by_step(est, Xt, yt, blank, [own])
            r["exact"].append(exact[0])
            r["cells"].append(cells[0])
            if depth is None and own > 1:  # a recursive model: the curve over test cycles
                exact, cells = sudoku_by_step(est, Xt, yt, blank, grid)
                r["curve_exact"].append(exact)
                r["curve_cells"].append(cells)
                rules = [("fixed", {}, T), ("fixed", {}, budget),
                         (f"halt_patience={cfg.sudoku_halt_patience}",
                          dict(halt_patience=cfg.sudoku_halt_patience), budget)]
                if params.get("form") == "trm":
                    rules += [(f"halt_threshold={v:g}", dict(halt_threshold=v), budget)
                              for v in cfg.sudoku_halt_thresholds]
                for name, rule, n_steps in rules:
                    name = f"fixed {n_steps} steps" if name == "fixed" else name
                    exact, used = _halted_sudoku(est, rule, Xt, yt, n_steps)
                    row = res["halting"].setdefault((key, name), dict(exact=[], steps=[]))
                    row["exact"].append(exact)
                    row["steps"].append(used)
            log(f"reasoning 6 sudoku {key} seed={seed}: fit {seconds:.0f} s, exact "
                f"{r['exact'][-1]:.3f}, blank cells {r['cells'][-1]:.3f}, loss "
                + " ".join(f"{v:.3f}" for v in est.history_))
    return res


def _halted_sudoku(est, rule, X, y, n_steps):
    """Exact match and mean steps used of ``est.predict`` with the halting ``rule``."""
    off = dict(halt_patience=None, halt_tol=None, halt_threshold=None)
    est.set_params(**{**off, **rule})
    try:
        pred, used = est.predict(X, n_steps=n_steps, return_steps=True)
    except DivergenceError:
        return np.nan, np.nan
    finally:
        est.set_params(**off)
    return float((pred == y).reshape(len(y), -1).all(axis=1).mean()), float(used.mean())


def step_timer(module, x, n_steps, y=None):
    """A callable running ``module`` for ``n_steps`` steps: inference, or with ``y`` a
    training step (forward through every step with gradient, cross-entropy, backward)."""
    if y is None:
        def run():
            with torch.no_grad():
                module.head(module.unroll(x, n_steps))
    else:
        def run():
            module.zero_grad(set_to_none=True)
            F.cross_entropy(module.head(module.unroll(x, n_steps)), y).backward()
    return run


def block_timer(module, x, n_steps, y=None):
    """``n_steps`` passes of the block alone (no projection, no head) on a fixed state."""
    with torch.no_grad():
        h0 = module.projection(x)

    def run():
        with torch.set_grad_enabled(y is not None):
            for _ in range(n_steps):
                out = module.step(h0, x)
            if y is not None:
                out.sum().backward()
    return run


def saved_bytes(module, x, y, n_frozen, n_grad):
    """Bytes autograd saves for the backward of one training step (unique storages).

    The step runs ``n_frozen`` steps without gradient, then ``n_grad`` with
    it, the head and the cross-entropy; the tensors saved for backward are
    counted once per storage, the parameters left out.
    """
    params = {p.untyped_storage().data_ptr() for p in module.parameters()}
    seen = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in params:
            seen[storage.data_ptr()] = storage.nbytes()
        return tensor

    module.zero_grad(set_to_none=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        h = module.unroll(x, n_frozen + n_grad, n_frozen)
        loss = F.cross_entropy(module.head(h), y)
    loss.backward()
    return sum(seen.values())


def _peak_bytes(module, x, y, n_frozen, n_grad):
    """Peak CUDA memory above the start of one training step (None off CUDA)."""
    if x.device.type != "cuda":
        return None
    module.zero_grad(set_to_none=True)
    torch.cuda.synchronize(x.device)
    base = torch.cuda.memory_allocated(x.device)
    torch.cuda.reset_peak_memory_stats(x.device)
    h = module.unroll(x, n_frozen + n_grad, n_frozen)
    F.cross_entropy(module.head(h), y).backward()
    torch.cuda.synchronize(x.device)
    return torch.cuda.max_memory_allocated(x.device) - base


def _speed(cfg, log):
    device = cfg.device
    sync = torch.cuda.synchronize if str(device).startswith("cuda") else None
    torch.manual_seed(0)
    module = DeepThinkingNet(1, 2, dim=1, width=cfg.width, n_blocks=cfg.n_blocks,
                             n_steps=cfg.steps, seed=0).to(device)
    X, y = make_prefix_sums(cfg.speed_batch, cfg.speed_bits, random_state=0)
    x, target = torch.tensor(X, device=device), torch.tensor(y, device=device)
    res = {"time": {}, "memory": []}
    for mode, labels in (("inference", None), ("training step", target)):
        module.train(labels is not None)
        runners = {"1 step (unit A: T x this)": step_timer(module, x, 1, labels),
                   "block alone (unit B: T x this)": block_timer(module, x, 1, labels)}
        for T in cfg.speed_steps:
            runners[f"T={T} steps"] = step_timer(module, x, T, labels)
        med = alternate(runners, cfg.repeats, sync)
        one, block = med["1 step (unit A: T x this)"], med["block alone (unit B: T x this)"]
        rows = {}
        for name, seconds in med.items():
            T = int(name.split("=")[1].split()[0]) if name.startswith("T=") else 1
            rows[name] = (seconds, seconds / (T * one), seconds / (T * block))
        res["time"][mode] = rows
        log(f"reasoning 5 speed {mode}: " + ", ".join(
            f"{name} {ratios[1]:.3f}/{ratios[2]:.3f}" for name, ratios in rows.items()))

    Xm, ym = make_prefix_sums(cfg.memory_batch, cfg.train_bits, random_state=1)
    xm, tm = torch.tensor(Xm, device=device), torch.tensor(ym, device=device)
    module.train()
    b = cfg.memory_backprop
    for n in cfg.memory_frozen:
        row = dict(frozen=n, truncated=saved_bytes(module, xm, tm, n, b),
                   full=saved_bytes(module, xm, tm, 0, n + b),
                   peak_truncated=_peak_bytes(module, xm, tm, n, b),
                   peak_full=_peak_bytes(module, xm, tm, 0, n + b))
        res["memory"].append(row)
        log(f"reasoning 5 memory: {n} no-gradient steps + {b}: saved "
            f"{row['truncated'] / 2**20:.2f} MiB (full BPTT {row['full'] / 2**20:.2f} MiB)")
    return res


# --------------------------------------------------------------------------- rendering


def _cells(curves):
    """``pm`` cells of an array (seeds, steps)."""
    curves = np.asarray(curves, dtype=float).reshape(-1, np.shape(curves)[-1])
    return [pm(curves[:, i], 2) for i in range(curves.shape[1])]


def _first_at(grid, curve, level=0.99):
    """The fewest steps whose mean exact match is at least ``level``, or ``-``."""
    hits = [t for t, v in zip(grid, curve) if v >= level]
    return hits[0] if hits else "-"


def tables(cfg, results):
    """The result tables: a list of ``(title, markdown lines)``."""
    out = []
    T = cfg.steps
    ext = results.get("extrapolation")
    if ext and ext["exact"]:
        grid = ext["grid"]
        rows = []
        for b, curves in ext["exact"].items():
            mean = mean_std(curves)[0] if len(curves) else np.full(len(grid), np.nan)
            drop = np.nanmax(mean) - mean[-1]
            rows.append([f"{b} ({b / cfg.train_bits:g}x)", *_cells(curves),
                         _first_at(grid, mean), f"{drop:.2f}"])
        out.append((
            f"Prefix sums: exact match vs test-time steps (trained at {cfg.train_bits} bits, "
            f"T={T}; {cfg.n_test} test strings per length; {ext['diverged']} of "
            f"{cfg.seeds} fits diverged; fit {np.mean(ext['fit_s']):.0f} s per seed)",
            markdown_table(["bits", *(f"{t}" + (" (T)" if t == T else "") for t in grid),
                            "fewest steps ≥ 0.99", f"best - at {grid[-1]} (overthinking)"],
                           rows)))
    abl = results.get("ablations")
    if abl:
        grid = abl["grid"]
        header = ["variant", "parameters", "fit s", "diverged"]
        for b in cfg.ablation_bits:
            header += [f"{b} bits: at its trained steps", f"{b} bits: best (steps)",
                       f"{b} bits: at {grid[-1]} steps"]
        rows = []
        for r in abl["variants"].values():
            row = [r["label"], r["params"] or "-", pm(r["fit_s"], 0), r["diverged"]]
            for b in cfg.ablation_bits:
                curves = np.array(r["exact"][b]) if r["exact"][b] else None
                if curves is None:
                    row += ["-"] * 3
                    continue
                mean = mean_std(curves)[0]
                best = int(np.nanargmax(mean))
                at_last = "- (no step)" if np.isnan(mean[-1]) else pm(curves[:, -1], 2)
                row += [pm(curves[:, grid.index(r["steps"])], 2) if r["steps"] in grid else "-",
                        f"{mean[best]:.2f} ({grid[best]})", at_last]
            rows.append(row)
        out.append((
            f"Ablations on the same budget (trained at {cfg.train_bits} bits; "
            f"{cfg.ablation_seeds} seed(s)): exact match", markdown_table(header, rows)))
        rows = [[r["label"], b, *(_cells(r["exact"][b]) if r["exact"][b] else ["-"] * len(grid))]
                for b in cfg.ablation_bits for r in abl["variants"].values()]
        out.append(("Ablations: exact match vs test-time steps",
                    markdown_table(["variant", "bits", *map(str, grid)], rows)))
    mz = results.get("mazes")
    if mz:
        grid, Tm = mz["grid"], cfg.maze_steps
        rows = []
        for size in cfg.maze_test_sizes:
            side = 2 * size + 1
            pixel = mean_std(mz["pixel"][size])[0]
            rows.append([f"{size} cells, {side}x{side} px" + (" (train)" if size ==
                                                               cfg.maze_size else ""),
                         *_cells(mz["exact"][size]),
                         f"{pixel[grid.index(Tm)]:.3f} / {np.nanmax(pixel):.3f}"])
        out.append((
            f"Mazes: exact match vs test-time steps (trained at {cfg.maze_size} cells, "
            f"T={Tm}; {cfg.maze_test} test mazes per size; fit {np.mean(mz['fit_s']):.0f} s)",
            markdown_table(["maze", *(f"{t}" + (" (T)" if t == Tm else "") for t in grid),
                            "per-pixel at T / best"], rows)))
    hl = results.get("halting")
    if hl:
        rows = []
        for (b, name), r in hl["rows"].items():
            rows.append([b, "fixed steps (no halting)" if name == "none" else name,
                         pm(r["steps"], 1), pm(r["exact"], 3)])
        out.append((
            f"Halting: mean steps used and exact match, at most {hl['budget']} steps "
            f"({cfg.seeds} seed(s); the patience rule: labels unchanged for that many steps; "
            "the tolerance rule: relative change of the state at most that)",
            markdown_table(["bits", "rule", "mean steps used", "exact match"], rows)))
    sp = results.get("speed")
    if sp:
        rows = []
        for mode, variants in sp["time"].items():
            for name, (seconds, ratio_a, ratio_b) in variants.items():
                rows.append([mode, name, f"{seconds * 1e3:.2f}", f"{ratio_a:.3f}",
                             f"{ratio_b:.3f}"])
        out.append((
            f"Speed: T steps against T one-step passes, timed side by side (median of "
            f"{cfg.repeats}; batch {cfg.speed_batch} of {cfg.speed_bits} bits, width "
            f"{cfg.width}; unit A: the network run for one step, projection and head included; "
            "unit B: the block alone; target ≤ 1.1)",
            markdown_table(["mode", "variant", "median ms", "ratio to T x unit A",
                            "ratio to T x unit B"], rows)))
        cuda = sp["memory"] and sp["memory"][0]["peak_truncated"] is not None
        rows = []
        for r in sp["memory"]:
            row = [r["frozen"], f"{r['truncated'] / 2**20:.3f}", f"{r['full'] / 2**20:.3f}"]
            if cuda:
                row += [f"{r['peak_truncated'] / 2**20:.3f}", f"{r['peak_full'] / 2**20:.3f}"]
            rows.append(row)
        header = ["no-gradient steps n", f"truncated (n + {cfg.memory_backprop}): saved MiB",
                  f"full BPTT through n + {cfg.memory_backprop}: saved MiB"]
        if cuda:
            header += ["truncated: CUDA peak MiB", "full: CUDA peak MiB"]
        out.append((
            "Memory of a training step vs steps without gradient: the tensors autograd saves "
            f"for backward (unique storages, parameters excluded; batch {cfg.memory_batch} of "
            f"{cfg.train_bits} bits, width {cfg.width})", markdown_table(header, rows)))
    sd = results.get("sudoku")
    if sd:
        side = cfg.sudoku_box[0] * cfg.sudoku_box[1]
        grid, T = sd["grid"], cfg.sudoku_steps
        trm_params = sd["models"].get("trm", {}).get("params")
        rows = []
        for r in sd["models"].values():
            ratio = (f" ({r['params'] / trm_params:.1f}x)" if r["params"] and trm_params
                     else "")
            rows.append([r["label"], f"{r['params'] or '-'}{ratio}", pm(r["fit_s"], 0),
                         r["diverged"], r["steps"] or "-", pm(r["exact"], 3),
                         pm(r["cells"], 3)])
        seen = np.mean(sd["seen"]) if sd["seen"] else np.nan
        out.append((
            f"Sudoku {side}x{side}: recursion against scale (same {cfg.sudoku_train} training "
            f"puzzles, {cfg.sudoku_epochs} epochs, batch {cfg.sudoku_batch}, "
            f"{_optimiser(cfg.sudoku_lr, cfg.sudoku_warmup, cfg.sudoku_lr_schedule)}, width "
            f"{cfg.sudoku_width}; {cfg.sudoku_test} test puzzles, "
            f"{seen:.0%} of them also in the training set; mean ± std over "
            f"{cfg.sudoku_seeds} seed(s))",
            markdown_table(["model", "parameters (x TRM)", "fit s", "diverged",
                            "test steps (TRM: cycles)", "exact match (solved)",
                            "blank-cell accuracy"], rows)))
        rows = []
        for r in sd["models"].values():
            if r["curve_exact"]:
                rows.append([r["label"], "exact match", *_cells(r["curve_exact"])])
                rows.append([r["label"], "blank cells", *_cells(r["curve_cells"])])
        out.append((
            f"Sudoku {side}x{side}: accuracy vs test-time steps (TRM: cycles), same weights "
            f"(trained to T={T})",
            markdown_table(["model", "metric", *(f"{t}" + (" (T)" if t == T else "")
                                                 for t in grid)], rows)))
        rows = [[sd["models"][key]["label"], name, pm(r["steps"], 1), pm(r["exact"], 3)]
                for (key, name), r in sd["halting"].items()]
        out.append((
            f"Sudoku {side}x{side}: mean steps used and exact match, adaptive halting (at most "
            f"{sd['budget']} steps) against a fixed number of steps (halt_threshold: TRM's "
            "halting head, P(answer exactly right) at least that; halt_patience: labels "
            "unchanged for that many steps)",
            markdown_table(["model", "rule", "mean steps used", "exact match"], rows)))
    return out


def figures(cfg, results):
    """``(name, figure, caption)``: the thinking-longer curves, ablations, mazes."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    out = []
    T = cfg.steps
    ext, abl = results.get("extrapolation"), results.get("ablations")
    if (ext and ext["exact"]) or abl:
        panels = (1 if ext and ext["exact"] else 0) + (len(cfg.ablation_bits) if abl else 0)
        fig = Figure(figsize=(5 * panels, 4))
        axes = np.atleast_1d(fig.subplots(1, panels))
        i = 0
        if ext and ext["exact"]:
            ax = axes[0]
            for b, curves in ext["exact"].items():
                mean, std = mean_std(curves)
                ax.plot(ext["grid"], mean, marker="o", label=f"{b} bits")
                ax.fill_between(ext["grid"], mean - std, mean + std, alpha=0.2)
            ax.axvline(T, color="grey", ls=":", label=f"trained steps T={T}")
            ax.set(xscale="log", xlabel="test-time steps", ylabel="exact match",
                   ylim=(-0.02, 1.02),
                   title=f"Prefix sums trained at {cfg.train_bits} bits")
            ax.legend(fontsize=8)
            i = 1
        if abl:
            for ax, b in zip(axes[i:], cfg.ablation_bits):
                for r in abl["variants"].values():
                    if r["exact"][b]:
                        ax.plot(abl["grid"], mean_std(r["exact"][b])[0], marker=".",
                                label=r["label"])
                ax.axvline(T, color="grey", ls=":")
                ax.set(xscale="log", xlabel="test-time steps", ylabel="exact match",
                       ylim=(-0.02, 1.02), title=f"Ablations at {b} bits")
                ax.legend(fontsize=6)
        fig.tight_layout()
        out.append(("reasoning_steps.png", fig,
                    "Exact match vs test-time steps, same weights (log scale; mean over seeds, "
                    "band: std): the thinking-longer curve per length, and the ablations"))
    mz = results.get("mazes")
    if mz:
        fig = Figure(figsize=(5, 4))
        ax = fig.subplots()
        for size in cfg.maze_test_sizes:
            ax.plot(mz["grid"], mean_std(mz["exact"][size])[0], marker="o",
                    label=f"{size} cells ({2 * size + 1} px) exact")
            ax.plot(mz["grid"], mean_std(mz["pixel"][size])[0], ls="--",
                    label=f"{size} cells per-pixel")
        ax.axvline(cfg.maze_steps, color="grey", ls=":", label="trained steps")
        ax.set(xscale="log", xlabel="test-time steps", ylabel="accuracy", ylim=(-0.02, 1.02),
               title=f"Mazes trained at {cfg.maze_size} cells")
        ax.legend(fontsize=7)
        fig.tight_layout()
        out.append(("reasoning_mazes.png", fig, "Mazes: exact match and per-pixel accuracy vs "
                    "test-time steps"))
        ex = mz["example"]
        if ex is not None:
            fig = Figure(figsize=(2.4 * (len(ex["shown"]) + 2), 2.8))
            axes = fig.subplots(1, len(ex["shown"]) + 2)
            open_, start, goal = ex["x"]
            rgb = np.stack([open_ * (1 - goal), open_ * (1 - start), open_ * (1 - start - goal)],
                           axis=-1)
            axes[0].imshow(np.clip(rgb, 0, 1))
            axes[0].set_title("maze (start red, goal green)", fontsize=8)
            cmap = colormaps["magma"].with_extremes(bad="0.6")  # walls grey
            for ax, t, p in zip(axes[1:], ex["shown"], ex["proba"]):
                ax.imshow(np.where(open_ > 0, p, np.nan), cmap=cmap, vmin=0, vmax=1)
                ax.set_title(f"step {t}" + (" (=T)" if t == cfg.maze_steps else ""))
            axes[-1].imshow(ex["y"], cmap="gray")
            axes[-1].set_title("true path")
            for ax in axes:
                ax.set_axis_off()
            fig.tight_layout()
            out.append(("reasoning_maze_steps.png", fig,
                        f"One test maze at {len(ex['y'])}x{len(ex['y'])} pixels (trained at "
                        f"{2 * cfg.maze_size + 1}): the probability of 'on the path' of every "
                        "open pixel after each shown step (walls grey)"))
    sd = results.get("sudoku")
    if sd and any(r["curve_exact"] for r in sd["models"].values()):
        fig = Figure(figsize=(10, 4))
        axes = fig.subplots(1, 2)
        for i, r in enumerate(sd["models"].values()):
            if r["curve_exact"]:
                for ax, curves in zip(axes, (r["curve_exact"], r["curve_cells"])):
                    ax.plot(sd["grid"], mean_std(curves)[0], marker="o", color=f"C{i}",
                            label=r["label"])
            elif r["exact"]:
                for ax, values in zip(axes, (r["exact"], r["cells"])):
                    ax.axhline(np.mean(values), ls="--", lw=1, color=f"C{i}", label=r["label"])
        side = cfg.sudoku_box[0] * cfg.sudoku_box[1]
        for ax, what in zip(axes, ("exact match (solved)", "blank-cell accuracy")):
            ax.axvline(cfg.sudoku_steps, color="grey", ls=":")
            ax.set(xscale="log", xlabel="test-time steps (TRM: cycles)", ylabel=what,
                   ylim=(-0.02, 1.02), title=f"Sudoku {side}x{side}: {what}")
        axes[0].legend(fontsize=6)
        fig.tight_layout()
        out.append(("reasoning_sudoku.png", fig,
                    "Sudoku: exact match and blank-cell accuracy vs test-time steps of the "
                    "recursive models (mean over seeds); dashed: the non-recursive baselines"))
    return out
