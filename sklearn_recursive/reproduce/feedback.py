"""FeedbackSegmenter against the same U-Net without feedback, on noisy shapes.

Every comparison trains ``FeedbackSegmenter`` (feedback, ``n_steps=T``) and
the same U-Net without feedback (``feedback=False``) on the same images with
the same seed, the same number of weight updates and the same optimiser, and
scores both on held-out images. The score is the mean foreground F1 (Dice),
the estimator's ``score``.

Data come from ``make_noisy_shapes``: one triangle per image. Train and test
images come from different seeds, both at the same sigma. "Chance" is the F1
of predicting every pixel foreground.

``noise="fixed"`` draws the training noise once, so every epoch sees the same
noisy images. ``noise="fresh"`` keeps the training shapes but draws their
noise afresh for every epoch, as the seed paper's code does: it trains one
epoch over ``epochs`` noisy copies of the training set. Test images are drawn
once in both modes.

Experiments:

1. F1 vs noise sigma.
2. F1 vs number of training images, at ``size_sigma``.
3. F1 vs test-time steps 1..4T, for the models of experiment 1 and for the
   depth dial: ``train_steps`` drawn per batch, truncated back-propagation
   (``backprop_steps``), and both.
4. Stability ablations at ``size_sigma``: without the softmax on the fed-back
   state, without the decay, and without both. The size of the state
   ``max |h|`` is tracked per step.
"""

import dataclasses
import time

import numpy as np
import torch

from .._feedback import FeedbackSegmenter
from .._training import DivergenceError
from ..datasets import make_noisy_shapes
from ..datasets._shapes import _noisy
from ..metrics import foreground_dice
from ._report import markdown_table, mean_std, pm


@dataclasses.dataclass
class FeedbackConfig:
    """Settings of the feedback experiments (the defaults: the full run)."""

    seeds: int = 3
    steps: int = 5  # T, the trained depth
    train: int = 64  # training images (experiments 1, 3, 4)
    test: int = 64
    size: int = 32  # image side
    size_sigma: float = 4.0  # sigma of experiments 2 to 4
    sigmas: tuple = (0, 2, 4, 6, 8)
    sizes: tuple = (2, 4, 8, 16)
    updates: int = 300  # weight updates of every fit
    batch: int = 8
    channels: int = 8  # U-Net base_channels
    lr: float = 3e-3
    noise: str = "fixed"  # "fixed" or "fresh"
    ablations: tuple = ("random+truncated", "random", "truncated", "no softmax", "no decay",
                        "neither")
    device: str = "cpu"

    @classmethod
    def quick(cls, **changes):
        """A setting that runs in about 2-3 minutes on 2 CPU cores."""
        settings = dict(seeds=2, train=32, test=32, sigmas=(0, 4, 8), sizes=(2, 8),
                        updates=150, ablations=("random+truncated", "no decay", "neither"))
        return cls(**{**settings, **changes})

    def describe(self):
        noise = "drawn once" if self.noise == "fixed" else "drawn afresh every epoch"
        return (
            f"make_noisy_shapes, one triangle per {self.size}x{self.size} image, training "
            f"noise {noise}; {self.train} training / {self.test} test images per seed; "
            f"{self.seeds} seeds (each draws new data and weights); U-Net "
            f"base_channels={self.channels} depth=2; feedback T={self.steps} steps, tau=3; "
            f"{self.updates} Adam updates (lr {self.lr}, batch {self.batch} or the training "
            "set if smaller) for every model; mean ± std (ddof=1) over seeds of the test F1 "
            "(foreground Dice)"
        )


def _variants(T):
    return {
        "random+truncated": (f"random depth: train_steps=(2, {2 * T}), backprop_steps=3",
                             dict(train_steps=(2, 2 * T), backprop_steps=3)),
        "random": (f"random depth alone: train_steps=(2, {2 * T})",
                   dict(train_steps=(2, 2 * T))),
        "truncated": (f"truncation alone: T={T}, backprop_steps=1", dict(backprop_steps=1)),
        "no softmax": ("no softmax on the feedback", dict(softmax_feedback=False)),
        "no decay": ("no decay", dict(decay=False)),
        "neither": ("no softmax, no decay", dict(softmax_feedback=False, decay=False)),
    }


def _data(cfg, n, sigma, seed, offset):
    return make_noisy_shapes(n, size=cfg.size, sigma=sigma, random_state=10_000 * offset + seed)


def training_set(cfg, n, sigma, seed, offset):
    """Training images and masks, and the fit settings that give ``cfg.updates`` updates.

    With ``noise="fresh"`` the images are ``epochs`` noisy copies of the same
    shapes, each with new noise, trained for one epoch.
    """
    X, y = _data(cfg, n, sigma, seed, offset)
    batch = min(cfg.batch, n)
    epochs = max(1, round(cfg.updates / -(-n // batch)))
    if cfg.noise == "fresh":
        y = np.concatenate([y] * epochs)
        X = _noisy(y, sigma, np.random.default_rng([seed, offset, 7]))
        epochs = 1
    return X, y, dict(max_epochs=epochs, batch_size=batch)


def _make(cfg, fit_settings, seed, **params):
    # every model makes the same number of updates: no stop on a loss plateau
    return FeedbackSegmenter(
        n_steps=cfg.steps, base_channels=cfg.channels, depth=2, lr=cfg.lr, n_iter_no_change=None,
        device=cfg.device, random_state=seed, **fit_settings, **params,
    )


def _fit(est, X, y, log):
    start = time.perf_counter()
    try:
        est.fit(X, y)
    except DivergenceError as exc:
        log(f"   diverged: {exc}")
        return None, time.perf_counter() - start
    return est, time.perf_counter() - start


def chance_f1(y):
    """F1 of predicting every pixel foreground."""
    return float(foreground_dice(y, np.ones_like(y), 2).mean())


def staged_f1(est, X, y, n_steps):
    """Test F1 after each step 1..n_steps."""
    return np.array([
        foreground_dice(y, est.classes_[p.argmax(axis=1)], 2).mean()
        for p in est.staged_predict_proba(X, n_steps=n_steps)
    ])


@torch.no_grad()
def staged_state(est, X, n_steps):
    """``max |h|`` over pixels and channels after each step, averaged over images."""
    module = est.module_.eval()
    x = torch.tensor(X, device=est.device_)
    return np.array([
        float(step.state.abs().flatten(1).amax(dim=1).mean()) for step in module.steps(x, n_steps)
    ])


def run(cfg, log):
    """Run the four experiments; return their results (a dict)."""
    T, T_max = cfg.steps, 4 * cfg.steps
    seeds = range(cfg.seeds)
    sig = cfg.size_sigma

    # 1. F1 vs sigma; the feedback models' staged F1 serves experiment 3
    noise = {s: {"ff": [], "fb": [], "chance": [], "staged": []} for s in cfg.sigmas}
    example, trained = None, {}
    for sigma in cfg.sigmas:
        for seed in seeds:
            X, y, settings = training_set(cfg, cfg.train, sigma, seed, 1)
            Xt, yt = _data(cfg, cfg.test, sigma, seed, 2)
            ff, s_ff = _fit(_make(cfg, settings, seed, feedback=False), X, y, log)
            fb, s_fb = _fit(_make(cfg, settings, seed), X, y, log)
            r = noise[sigma]
            r["chance"].append(chance_f1(yt))
            r["ff"].append(ff.score(Xt, yt) if ff else np.nan)
            r["fb"].append(fb.score(Xt, yt) if fb else np.nan)
            if fb:
                r["staged"].append(staged_f1(fb, Xt, yt, T_max))
            if sigma == sig:
                trained[seed] = fb  # reused by experiments 3 and 4
                if seed == 0 and fb and ff:
                    example = (fb, ff, Xt[:1], yt[:1])
            log(f"feedback 1/3 sigma={sigma} seed={seed}: ff {r['ff'][-1]:.3f} ({s_ff:.1f}s), "
                f"fb {r['fb'][-1]:.3f} ({s_fb:.1f}s)")

    # 2. F1 vs training images
    sizes = {n: {"ff": [], "fb": []} for n in cfg.sizes}
    chance = []
    for seed in seeds:
        Xt, yt = _data(cfg, cfg.test, sig, seed, 2)
        chance.append(chance_f1(yt))
        for n in cfg.sizes:
            X, y, settings = training_set(cfg, n, sig, seed, 3)
            ff, _ = _fit(_make(cfg, settings, seed, feedback=False), X, y, log)
            fb, _ = _fit(_make(cfg, settings, seed), X, y, log)
            sizes[n]["ff"].append(ff.score(Xt, yt) if ff else np.nan)
            sizes[n]["fb"].append(fb.score(Xt, yt) if fb else np.nan)
            log(f"feedback 2/3 n={n} seed={seed}: ff {sizes[n]['ff'][-1]:.3f}, "
                f"fb {sizes[n]['fb'][-1]:.3f}")

    # 3 and 4. depth dial and stability ablations at sigma = size_sigma
    variants = {f"trained T={T} (experiment 1)": None}
    variants.update(_variants(T)[key] for key in cfg.ablations)
    curves = {name: {"f1": [], "state": [], "diverged": 0, "params": params}
              for name, params in variants.items()}
    for seed in seeds:
        X, y, settings = training_set(cfg, cfg.train, sig, seed, 1)
        Xt, yt = _data(cfg, cfg.test, sig, seed, 2)
        for name, params in variants.items():
            if params is None and seed in trained:
                est = trained[seed]
            else:
                est, _ = _fit(_make(cfg, settings, seed, **(params or {})), X, y, log)
            if est is None:
                curves[name]["diverged"] += 1
                continue
            with np.errstate(all="ignore"):
                curves[name]["f1"].append(staged_f1(est, Xt, yt, T_max))
                curves[name]["state"].append(staged_state(est, Xt, T_max))
            log(f"feedback 3/3 {name} seed={seed}: F1 at T "
                f"{curves[name]['f1'][-1][T - 1]:.3f}, at 4T {curves[name]['f1'][-1][-1]:.3f}")
    return dict(noise=noise, sizes=sizes, chance=chance, curves=curves, example=example)


def tables(cfg, results):
    """The four result tables: a list of ``(title, markdown lines)``."""
    T, T_max, sig = cfg.steps, 4 * cfg.steps, cfg.size_sigma
    noise, sizes, chance, curves = (results[k] for k in ("noise", "sizes", "chance", "curves"))
    out = []

    rows = []
    for sigma in cfg.sigmas:
        r = noise[sigma]
        diff = np.array(r["fb"]) - np.array(r["ff"])
        rows.append([sigma, pm(r["ff"]), pm(r["fb"]), pm(diff),
                     f"{np.mean(r['chance']):.3f}"])
    out.append((f"Test F1 vs noise sigma ({cfg.train} training images)", markdown_table(
        ["sigma", "feed-forward", "feedback", "feedback - ff (per seed)", "chance"], rows)))

    rows = []
    for n in cfg.sizes:
        r = sizes[n]
        above = [sum(f > c for f, c in zip(r[k], chance)) for k in ("fb", "ff")]
        rows.append([n, pm(r["ff"]), pm(r["fb"]), f"{above[0]}/{len(r['fb'])}",
                     f"{above[1]}/{len(r['ff'])}"])
    out.append((f"Test F1 vs training images (sigma={sig:g}, {cfg.updates} updates each; "
                f"chance {np.mean(chance):.3f})", markdown_table(
        ["training images", "feed-forward", "feedback", "feedback > chance (seeds)",
         "ff > chance (seeds)"], rows)))

    shown = sorted({1, 2, T - 1, T, T + 1, 2 * T, 3 * T, T_max} - {0})
    rows = []
    for sigma in cfg.sigmas:
        f1 = np.array(noise[sigma]["staged"])
        if len(f1):
            rows.append([f"T={T}, sigma={sigma}", *(f"{f1[:, t - 1].mean():.3f}" for t in shown),
                         int(f1.mean(0).argmax() + 1)])
    for name, c in curves.items():
        if c["f1"] and c["params"] is not None:
            f1 = np.array(c["f1"])
            rows.append([f"{name}, sigma={sig:g}", *(f"{f1[:, t - 1].mean():.3f}" for t in shown),
                         int(f1.mean(0).argmax() + 1)])
    out.append((f"Test F1 vs test-time steps (trained with T={T} steps, or a number of them "
                "drawn per batch)", markdown_table(
        ["model", *(f"step {t}" for t in shown), "best step"], rows)))

    rows = []
    for name, c in curves.items():
        if not c["f1"]:
            rows.append([name, f"{c['diverged']}/{cfg.seeds}", *["-"] * 5])
            continue
        f1, st = np.array(c["f1"]), np.array(c["state"])
        rows.append([name, f"{c['diverged']}/{cfg.seeds}", pm(f1[:, T - 1]),
                     pm(f1[:, -1]), f"{st[:, T - 1].mean():.3g}",
                     f"{st[:, -1].mean():.3g}", f"{np.mean(st[:, -1] / st[:, T - 1]):.2f}×"])
    out.append((f"Stability ablations (sigma={sig:g}): test F1 and state size max|h| per step",
                markdown_table(["variant", "diverged in training", "F1 at T", "F1 at 4T",
                                "max|h| at T", "max|h| at 4T", "max|h| growth T→4T"], rows)))
    return out


def figures(cfg, results):
    """``(name, figure, caption)`` of the F1 plots and of the per-step pictures."""
    from matplotlib.figure import Figure

    T, T_max, sig = cfg.steps, 4 * cfg.steps, cfg.size_sigma
    noise, sizes, chance, curves = (results[k] for k in ("noise", "sizes", "chance", "curves"))
    out = []

    fig = Figure(figsize=(15, 4))
    axes = fig.subplots(1, 3)
    ax = axes[0]
    for key, label in (("ff", "feed-forward"), ("fb", f"feedback (T={T})")):
        m, e = np.transpose([mean_std(noise[s][key]) for s in cfg.sigmas])
        ax.errorbar(cfg.sigmas, m, yerr=e, marker="o", capsize=3, label=label)
    ax.plot(cfg.sigmas, [np.mean(noise[s]["chance"]) for s in cfg.sigmas], "k--",
            label="chance (all fg)")
    ax.set(xlabel="noise sigma", ylabel="test F1", title=f"F1 vs noise ({cfg.train} images)",
           ylim=(0, 1.02))
    ax.legend()
    ax = axes[1]
    for key, label in (("ff", "feed-forward"), ("fb", "feedback")):
        m, e = np.transpose([mean_std(sizes[n][key]) for n in cfg.sizes])
        ax.errorbar(cfg.sizes, m, yerr=e, marker="o", capsize=3, label=label)
    ax.axhline(np.mean(chance), color="k", ls="--", label="chance")
    ax.set_xscale("log", base=2)
    ax.minorticks_off()
    ax.set(xticks=cfg.sizes, xticklabels=cfg.sizes, xlabel="training images",
           ylabel="test F1", title=f"F1 vs training images (sigma={sig:g})", ylim=(0, 1.02))
    ax.legend()
    ax = axes[2]
    steps = np.arange(1, T_max + 1)
    for name, c in curves.items():
        if c["f1"]:
            ax.plot(steps, np.mean(c["f1"], axis=0), marker=".", label=name)
    ax.axvline(T, color="grey", ls=":", label="trained depth")
    ax.set(xlabel="test-time steps", ylabel="test F1", ylim=(0, 1.02),
           title=f"F1 vs steps (sigma={sig:g})")
    ax.legend(fontsize=7)
    fig.tight_layout()
    out.append((f"feedback_f1_{cfg.noise}.png", fig,
                "Test F1 vs noise, vs training images, and vs test-time steps (mean over "
                "seeds; bars: std (ddof=1) over seeds)"))

    if results["example"] is not None:
        fb, ff, x, y = results["example"]
        shown = sorted({1, 2, 3, T, 2 * T, T_max})
        probas = list(fb.staged_predict_proba(x, n_steps=T_max))
        fig = Figure(figsize=(2.2 * (len(shown) + 3), 2.6))
        axes = fig.subplots(1, len(shown) + 3)
        axes[0].imshow(x[0, 0], cmap="gray")
        axes[0].set_title(f"input, sigma={sig:g}")
        for ax, t in zip(axes[1:], shown):
            ax.imshow(probas[t - 1][0, 1], cmap="magma", vmin=0, vmax=1)
            ax.set_title(f"step {t}" + (" (=T)" if t == T else ""))
        axes[-2].imshow(ff.predict_proba(x)[0, 1], cmap="magma", vmin=0, vmax=1)
        axes[-2].set_title("feed-forward")
        axes[-1].imshow(y[0], cmap="gray")
        axes[-1].set_title("truth")
        for ax in axes:
            ax.set_axis_off()
        fig.suptitle("foreground probability per feedback step", y=1.0)
        fig.tight_layout()
        out.append((f"feedback_steps_{cfg.noise}.png", fig,
                    f"One test image at sigma {sig:g}: the foreground probability after each "
                    "shown step, the feed-forward U-Net trained on the same images, the truth"))
    return out
