"""Speed, as ratios of times measured side by side in one run.

Each comparison runs its variants in turn, ``repeats`` times, so that machine
noise hits them alike, after one warm-up run each. It reports the median
time of each variant and the ratio of medians against the variant's unit:

1. **Training path**: the skorch path every network of the package trains
   on, against a hand-written PyTorch loop (same MLP, data, batch size,
   epochs, optimiser and shuffling). Target: at most 1.15.
2. **Rounds**: ``RecurrentExpansionRegressor(n_rounds=R)`` against R times
   the same estimator with ``n_rounds=1``, on 20 features (later rounds add
   the expansion's columns). Target: at most 1.15.
3. **Multiverse**: ``MultiverseRE`` with k MLP members, stacked into one
   batched model or fitted one by one, against k single RE fits. Target for
   the stacked one on CPU: at most 0.35.
4. **Feedback steps**: one training step (forward, loss, backward) of a
   ``FeedbackSegmenter`` network with T steps, against T passes of the same
   U-Net without feedback. Target: at most 1.1.
"""

import dataclasses
import statistics
import time

import numpy as np
import torch

from .. import MLPModule, MultiverseRE, RecurrentExpansionRegressor
from .._feedback_nets import FeedbackUNet, StepwiseCrossEntropy
from .._training import TensorDataset, TrainSettings, train_network
from ..datasets import make_noisy_shapes
from ._report import markdown_table


@dataclasses.dataclass
class SpeedConfig:
    """Settings of the speed comparisons (the defaults: the full run)."""

    repeats: int = 5
    rows: int = 10_000  # training path
    epochs: int = 10
    rounds: int = 5  # rounds comparison
    round_rows: int = 4000
    round_epochs: int = 20
    members: int = 8  # multiverse comparison
    member_rows: int = 2000
    feedback_steps: tuple = (1, 2, 5, 10)
    feedback_batch: int = 16
    threads: int = 1  # torch and BLAS threads while timing (None: leave as they are)
    device: str = "cpu"

    @classmethod
    def quick(cls, **changes):
        """A setting that runs in under a minute on 2 CPU cores."""
        settings = dict(repeats=5, rows=5000, epochs=5, rounds=4, round_rows=2000,
                        round_epochs=10, members=8, feedback_steps=(1, 5))
        return cls(**{**settings, **changes})

    def describe(self):
        return (
            f"{self.repeats} alternating repeats after a warm-up, medians; training path: "
            f"MLP 20-64-64-1 on {self.rows} rows, {self.epochs} epochs, batch 128; rounds: "
            f"R={self.rounds} on {self.round_rows} rows x 20 features, {self.round_epochs} epochs; "
            f"multiverse: k="
            f"{self.members} MLP 64-64 members on {self.member_rows} rows; feedback: U-Net "
            f"base_channels=16 depth=2, batch {self.feedback_batch} of 32x32 images, "
            f"T in {list(self.feedback_steps)}; device {self.device}, "
            f"{self.threads or torch.get_num_threads()} torch/BLAS threads"
        )


def alternate_times(runners, repeats, sync=None, *, warm_up=True, on_repeat=None):
    """Seconds of each ``runners[name]()``, run in turn ``repeats`` times.

    Parameters
    ----------
    runners : dict of callable
        The variants, timed in this order in every repeat.
    repeats : int
    sync : callable or None
        Called before and after each run (``torch.cuda.synchronize``).
    warm_up : bool or iterable of callable, default=True
        True: every runner runs once before the timings; else these
        callables run instead (e.g. small fits), none when empty or False.
    on_repeat : callable or None
        ``on_repeat(repeat, times)`` after every repeat (progress lines).

    Returns
    -------
    times : dict
        ``{name: [seconds of each repeat]}``.
    """
    for run in runners.values() if warm_up is True else (warm_up or ()):
        run()
    times = {name: [] for name in runners}
    for repeat in range(repeats):
        for name, run in runners.items():
            if sync:
                sync()
            start = time.perf_counter()
            run()
            if sync:
                sync()
            times[name].append(time.perf_counter() - start)
        if on_repeat is not None:
            on_repeat(repeat, times)
    return times


def alternate(runners, repeats, sync=None, **options):
    """Median seconds of each ``runners[name]()`` of `alternate_times`."""
    times = alternate_times(runners, repeats, sync, **options)
    return {name: statistics.median(ts) for name, ts in times.items()}


def _regression_data(rows, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, 20)).astype(np.float32)
    y = X[:, :5].sum(axis=1, keepdims=True) + 0.1 * rng.standard_normal((rows, 1))
    return X, y.astype(np.float32)


def hand_loop(X, y, epochs, batch_size, lr, seed, device="cpu"):
    """A plain PyTorch training loop of ``MLPModule`` (Adam, shuffled batches, MSE)."""
    torch.manual_seed(seed)
    module = MLPModule(X.shape[1], 0, 1).to(device)
    opt = torch.optim.Adam(module.parameters(), lr=lr)
    loss_fn = torch.nn.MSELoss()
    Xt, yt = torch.tensor(X, device=device), torch.tensor(y, device=device)
    gen = torch.Generator().manual_seed(seed)
    module.train()
    for _ in range(epochs):
        perm = torch.randperm(len(Xt), generator=gen).to(device)
        Xs, ys = Xt[perm], yt[perm]
        total = 0.0
        for start in range(0, len(Xs), batch_size):
            xb, yb = Xs[start : start + batch_size], ys[start : start + batch_size]
            opt.zero_grad()
            loss = loss_fn(module(xb), yb)
            loss.backward()
            opt.step()
            total += loss.item()
    return module


def package_path(X, y, epochs, batch_size, lr, seed, device="cpu"):
    """What a round-0 network of `RecurrentExpansionRegressor` runs."""
    data = TensorDataset({"X": X, "Z": np.zeros((len(X), 0), np.float32)}, y, device=device)
    settings = TrainSettings(
        torch.nn.MSELoss, max_epochs=epochs, batch_size=batch_size, lr=lr, device=device
    )
    return train_network(lambda: MLPModule(X.shape[1], 0, 1), data, None, settings, seed=seed)


def feedback_step_timer(module, x, y, iters=3, adam=False):
    """A callable running ``iters`` training steps of ``module``, for `alternate`.

    A step is forward, loss and backward; with ``adam``, an Adam step too.
    """
    module.train()
    criterion = StepwiseCrossEntropy()
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3) if adam else None

    def run():
        for _ in range(iters):
            module.zero_grad(set_to_none=True)
            criterion(module(x), y).backward()
            if optimizer is not None:
                optimizer.step()

    return run


def feedback_unet(steps, device, feedback=True, base_channels=16, depth=2):
    torch.manual_seed(0)
    return FeedbackUNet(1, 2, dim=2, feedback=feedback, n_steps=steps,
                        base_channels=base_channels, depth=depth, seed=0).to(device)


def _log(log, out, comparison):
    log(f"speed {len(out)}/4 {comparison}: " + ", ".join(
        f"{name} {ratio:.3f}" for name, (_, ratio) in out[comparison].items()))


def run(cfg, log):
    """Time the four comparisons; return ``{comparison: {variant: (seconds, ratio)}}``.

    On the CPU, torch and BLAS run on ``cfg.threads`` threads meanwhile: on a
    small shared machine, multi-threaded kernels on these small problems make
    single timings vary several-fold.
    """
    return with_threads(cfg.threads, cfg.device, _run, cfg, log)


def with_threads(threads, device, fn, *args):
    """``fn(*args)`` with torch and BLAS on ``threads`` threads on the CPU, then as before.

    None, or a CUDA ``device``, leaves the threads as they are.
    """
    from threadpoolctl import threadpool_limits

    if threads is None or str(device).startswith("cuda"):
        return fn(*args)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(threads):
            return fn(*args)
    finally:
        torch.set_num_threads(before)


def _run(cfg, log):
    device = cfg.device
    sync = torch.cuda.synchronize if str(device).startswith("cuda") else None
    out = {}

    X, y = _regression_data(cfg.rows)
    med = alternate({
        "hand-written PyTorch loop (unit)": lambda: hand_loop(X, y, cfg.epochs, 128, 1e-3, 0,
                                                              device),
        "sklearn_recursive training path": lambda: package_path(X, y, cfg.epochs, 128, 1e-3, 0,
                                                                device),
    }, cfg.repeats, sync)
    unit = med["hand-written PyTorch loop (unit)"]
    out["training path"] = {k: (v, v / unit) for k, v in med.items()}
    _log(log, out, "training path")

    X, y = _regression_data(cfg.round_rows, seed=1)
    y = y.ravel()
    R = cfg.rounds

    def re_fit(n_rounds):
        return RecurrentExpansionRegressor(n_rounds=n_rounds, max_epochs=cfg.round_epochs,
                                           early_stopping=False, device=device,
                                           random_state=0).fit(X, y)

    med = alternate({"1 round (unit: R x this)": lambda: re_fit(1),
                     f"R={R} rounds": lambda: re_fit(R)}, cfg.repeats, sync)
    unit = R * med["1 round (unit: R x this)"]
    out["rounds"] = {k: (v, v / unit) for k, v in med.items()}
    _log(log, out, "rounds")

    X, y = _regression_data(cfg.member_rows)
    y = y.ravel()
    k = cfg.members

    def inner():
        return RecurrentExpansionRegressor((64, 64), n_rounds=1, max_epochs=cfg.epochs,
                                           batch_size=128, early_stopping=False, device=device,
                                           random_state=0)

    med = alternate({
        "one RE fit (unit: k x this)": lambda: inner().fit(X, y),
        f"k={k} stacked (batched=True)": lambda: MultiverseRE(inner(), members=k,
                                                              batched=True).fit(X, y),
        f"k={k} one by one": lambda: MultiverseRE(inner(), members=k, batched=False).fit(X, y),
    }, cfg.repeats, sync)
    unit = k * med["one RE fit (unit: k x this)"]
    out["multiverse"] = {name: (v, v / unit) for name, v in med.items()}
    _log(log, out, "multiverse")

    X, y = make_noisy_shapes(cfg.feedback_batch, size=32, sigma=2.0, random_state=0)
    x, target = torch.tensor(X, device=device), torch.tensor(y, device=device)
    unit_name = "feed-forward U-Net, 1 pass (unit: T x this)"
    runners = {unit_name: feedback_step_timer(feedback_unet(1, device, feedback=False), x,
                                              target)}
    steps = {unit_name: 1}
    for T in cfg.feedback_steps:
        name = f"feedback, T={T} steps"
        runners[name] = feedback_step_timer(feedback_unet(T, device), x, target)
        steps[name] = T
    med = alternate(runners, cfg.repeats, sync)
    out["feedback steps"] = {name: (v, v / (steps[name] * med[unit_name]))
                             for name, v in med.items()}
    _log(log, out, "feedback steps")
    return out


TARGETS = {"training path": "≤ 1.15", "rounds": "≤ 1.15", "multiverse": "stacked ≤ 0.35",
           "feedback steps": "≤ 1.1"}


def tables(cfg, results):
    """One table of every comparison's medians and ratios."""
    rows = []
    for comparison, variants in results.items():
        for name, (seconds, ratio) in variants.items():
            rows.append([comparison, name, f"{seconds:.3f}", f"{ratio:.3f}",
                         TARGETS[comparison]])
    return [("Medians and ratios to each comparison's unit", markdown_table(
        ["comparison", "variant", "median s", "ratio to unit", "target"], rows))]


def figures(cfg, results):
    """No figures: the ratios are the result."""
    return []
