"""Feedback vs feed-forward U-Net on noisy shapes: noise, data size, depth, stability.

Every comparison trains ``FeedbackSegmenter`` (feedback, ``n_steps=T``) and
the same U-Net without feedback (``feedback=False``) on the same images with
the same seed, the same number of weight updates and the same optimiser, and
scores them on held-out images (mean foreground F1 / Dice, the estimator's
``score``).  Data come from ``make_noisy_shapes`` (one triangle per 32x32
image; train and test images from different seeds, both at the same sigma).
"Chance" is the F1 of predicting every pixel foreground.

``--noise fixed`` (default) draws the training noise once: every epoch sees
the same noisy images.  ``--noise fresh`` keeps the training shapes but draws
their noise afresh for every epoch (as the seed paper's code does), by
training one epoch over ``epochs`` noisy copies of the training set.  Both
models of a comparison get the same images in the same mode; test images
are drawn once.

1. F1 vs noise sigma in {0, 2, 4, 6, 8}.
2. F1 vs number of training images {2, 4, 8, 16} (at ``--size-sigma``).
3. F1 vs test-time steps 1..4T for the models of section 1, and for the
   depth dial: ``train_steps`` drawn at random per batch, truncated
   back-propagation (``backprop_steps``), both.
4. Stability ablations (at ``--size-sigma``): without the softmax on the
   fed-back state, without the decay, without both.  The size of the state
   ``max |h|`` is tracked per step.

Means and standard deviations are over ``--seeds`` seeds (each seed draws new
data and new weights).  Plots go to ``--plots`` (PNG).  About 12 minutes on 2
CPU cores with the defaults.

    python benchmarks/bench_feedback.py [--noise fixed|fresh] [--seeds 3] [--plots docs/images] \
        [--quick]
"""

import argparse
import sys
import time

import joblib
import numpy as np
import torch

import sklearn_recursive
from sklearn_recursive import DivergenceError, FeedbackSegmenter
from sklearn_recursive._feedback import foreground_dice
from sklearn_recursive.datasets import make_noisy_shapes
from sklearn_recursive.datasets._shapes import _noisy

SIGMAS = [0, 2, 4, 6, 8]
SIZES = [2, 4, 8, 16]


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def data(n, sigma, seed, offset, size):
    return make_noisy_shapes(n, size=size, sigma=sigma, random_state=10_000 * offset + seed)


def chance_f1(y):
    """F1 of predicting every pixel foreground."""
    return float(foreground_dice(y, np.ones_like(y), 2).mean())


def training_set(args, n, sigma, seed, offset):
    """Training images and masks, and the fit settings that give ``args.updates`` updates.

    With ``--noise fresh`` the images are ``epochs`` noisy copies of the same
    shapes, each with new noise, trained for one epoch.
    """
    X, y = data(n, sigma, seed, offset, args.size)
    batch = min(args.batch, n)
    epochs = max(1, round(args.updates / -(-n // batch)))
    if args.noise == "fresh":
        y = np.concatenate([y] * epochs)
        X = _noisy(y, sigma, np.random.default_rng([seed, offset, 7]))
        epochs = 1
    return X, y, dict(max_epochs=epochs, batch_size=batch)


def make(args, fit_settings, seed, **params):
    return FeedbackSegmenter(
        n_steps=args.steps, base_channels=args.channels, depth=2, lr=args.lr,
        device=args.device, random_state=seed, **fit_settings, **params,
    )


def fit(est, X, y):
    start = time.perf_counter()
    try:
        est.fit(X, y)
    except DivergenceError as exc:
        log(f"   diverged: {exc}")
        return None, time.perf_counter() - start
    return est, time.perf_counter() - start


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
    h = module.init_state(x)
    sizes = []
    for t in range(1, n_steps + 1):
        h = h + module.update(x, h, t)
        sizes.append(float(h.abs().flatten(1).amax(dim=1).mean()))
    return np.array(sizes)


def mean_std(values):
    values = np.asarray(values, dtype=float)
    return f"{np.nanmean(values):.3f} ± {np.nanstd(values):.3f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--noise", choices=["fixed", "fresh"], default="fixed",
                        help="training noise drawn once, or afresh every epoch")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5, help="T: training steps")
    parser.add_argument("--train", type=int, default=64, help="training images (sections 1, 3, 4)")
    parser.add_argument("--test", type=int, default=64)
    parser.add_argument("--size", type=int, default=32, help="image side")
    parser.add_argument("--size-sigma", type=float, default=4.0,
                        help="sigma of sections 2 and 4")
    parser.add_argument("--updates", type=int, default=300,
                        help="weight updates of every fit (epochs = updates / batches)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--channels", type=int, default=8, help="U-Net base_channels")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--plots", default=None, help="folder for the PNG plots")
    parser.add_argument("--quick", action="store_true", help="tiny settings, to smoke-test")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.updates, args.train, args.test = 1, 10, 8, 8
    seeds = range(args.seeds)
    T, T_max = args.steps, 4 * args.steps
    t0 = time.perf_counter()

    print(f"# bench_feedback: sklearn_recursive {sklearn_recursive.__version__}, "
          f"torch {torch.__version__}, {joblib.cpu_count()} cores, "
          f"{torch.get_num_threads()} torch threads, device {args.device}")
    print(f"# make_noisy_shapes: one triangle per {args.size}x{args.size} image, training noise "
          + ("drawn once; " if args.noise == "fixed" else "drawn afresh every epoch; ")
          + f"{args.train} training / {args.test} test images per seed; seeds {list(seeds)}")
    print(f"# U-Net base_channels={args.channels} depth=2; feedback T={T} steps, tau=3; "
          f"{args.updates} Adam updates (lr {args.lr}, batch {args.batch} or the training "
          "set if smaller) for every fit; "
          "mean ± std over seeds of the test F1 (foreground Dice)")

    # ---- 1. F1 vs sigma (and 3. staged F1 of the same models) -------------
    res = {s: {"ff": [], "fb": [], "chance": [], "staged": []} for s in SIGMAS}
    example, trained = None, {}
    for sigma in SIGMAS:
        for seed in seeds:
            X, y, settings = training_set(args, args.train, sigma, seed, 1)
            Xt, yt = data(args.test, sigma, seed, 2, args.size)
            ff, s_ff = fit(make(args, settings, seed, feedback=False), X, y)
            fb, s_fb = fit(make(args, settings, seed), X, y)
            res[sigma]["chance"].append(chance_f1(yt))
            res[sigma]["ff"].append(ff.score(Xt, yt) if ff else np.nan)
            res[sigma]["fb"].append(fb.score(Xt, yt) if fb else np.nan)
            if fb:
                res[sigma]["staged"].append(staged_f1(fb, Xt, yt, T_max))
            if sigma == args.size_sigma:
                trained[seed] = fb  # reused by sections 3 and 4
                if seed == 0 and fb and ff:
                    example = (fb, ff, Xt[:1], yt[:1])
            log(f"sigma={sigma} seed={seed}: ff {res[sigma]['ff'][-1]:.3f} ({s_ff:.1f}s), "
                f"fb {res[sigma]['fb'][-1]:.3f} ({s_fb:.1f}s)  [{time.perf_counter() - t0:.0f}s]")

    print(f"\n## 1. Test F1 vs noise sigma ({args.train} training images)\n")
    print("| sigma | feed-forward | feedback | feedback - ff (per seed) | chance |")
    print("|---|---|---|---|---|")
    for sigma in SIGMAS:
        r = res[sigma]
        diff = np.array(r["fb"]) - np.array(r["ff"])
        print(f"| {sigma} | {mean_std(r['ff'])} | {mean_std(r['fb'])} | {mean_std(diff)} "
              f"| {np.mean(r['chance']):.3f} |")

    # ---- 2. F1 vs training images -----------------------------------------
    sig = args.size_sigma
    sizes = {n: {"ff": [], "fb": []} for n in SIZES}
    chance = []
    for seed in seeds:
        Xt, yt = data(args.test, sig, seed, 2, args.size)
        chance.append(chance_f1(yt))
        for n in SIZES:
            X, y, settings = training_set(args, n, sig, seed, 3)
            ff, _ = fit(make(args, settings, seed, feedback=False), X, y)
            fb, _ = fit(make(args, settings, seed), X, y)
            sizes[n]["ff"].append(ff.score(Xt, yt) if ff else np.nan)
            sizes[n]["fb"].append(fb.score(Xt, yt) if fb else np.nan)
            log(f"n={n} seed={seed}: ff {sizes[n]['ff'][-1]:.3f}, fb {sizes[n]['fb'][-1]:.3f}  "
                f"[{time.perf_counter() - t0:.0f}s]")
    print(f"\n## 2. Test F1 vs training images (sigma={sig:g}, {args.updates} updates each; "
          f"chance {np.mean(chance):.3f})\n")
    print("| training images | feed-forward | feedback | feedback > chance (seeds) "
          "| ff > chance (seeds) |")
    print("|---|---|---|---|---|")
    for n in SIZES:
        r = sizes[n]
        above = [sum(f > c for f, c in zip(r[k], chance)) for k in ("fb", "ff")]
        print(f"| {n} | {mean_std(r['ff'])} | {mean_std(r['fb'])} | {above[0]}/{len(r['fb'])} "
              f"| {above[1]}/{len(r['ff'])} |")

    # ---- 3 and 4. depth dial and stability ablations at sigma = sig --------
    variants = {
        f"trained T={T} (section 1)": None,
        f"random depth: train_steps=(2, {2 * T}), backprop_steps=3": dict(
            train_steps=(2, 2 * T), backprop_steps=3),
        f"random depth alone: train_steps=(2, {2 * T})": dict(train_steps=(2, 2 * T)),
        f"truncation alone: T={T}, backprop_steps=1": dict(backprop_steps=1),
        "no softmax on the feedback": dict(softmax_feedback=False),
        "no decay": dict(decay=False),
        "no softmax, no decay": dict(softmax_feedback=False, decay=False),
    }
    curves = {name: {"f1": [], "state": [], "diverged": 0} for name in variants}
    params_of = variants
    for seed in seeds:
        X, y, settings = training_set(args, args.train, sig, seed, 1)
        Xt, yt = data(args.test, sig, seed, 2, args.size)
        for name, params in variants.items():
            if params is None and seed in trained:
                est = trained[seed]
            else:
                est, _ = fit(make(args, settings, seed, **(params or {})), X, y)
            if est is None:
                curves[name]["diverged"] += 1
                continue
            with np.errstate(all="ignore"):
                curves[name]["f1"].append(staged_f1(est, Xt, yt, T_max))
                curves[name]["state"].append(staged_state(est, Xt, T_max))
            log(f"{name} seed={seed}: F1 at T {curves[name]['f1'][-1][T - 1]:.3f}, "
                f"at 4T {curves[name]['f1'][-1][-1]:.3f}  [{time.perf_counter() - t0:.0f}s]")

    shown = sorted({1, 2, T - 1, T, T + 1, 2 * T, 3 * T, T_max} - {0})
    print(f"\n## 3. Test F1 vs test-time steps (trained with T={T} steps, or a random number "
          "of them)\n")
    print("| model | " + " | ".join(f"step {t}" for t in shown) + " | best step |")
    print("|---|" + "---|" * (len(shown) + 1))
    for sigma in SIGMAS:
        f1 = np.array(res[sigma]["staged"])
        print(f"| T={T}, sigma={sigma} | " + " | ".join(
            f"{f1[:, t - 1].mean():.3f}" for t in shown) + f" | {f1.mean(0).argmax() + 1} |")
    for name, c in curves.items():
        if c["f1"] and params_of[name] is not None:
            f1 = np.array(c["f1"])
            print(f"| {name}, sigma={sig:g} | " + " | ".join(
                f"{f1[:, t - 1].mean():.3f}" for t in shown) + f" | {f1.mean(0).argmax() + 1} |")

    print(f"\n## 4. Stability ablations (sigma={sig:g}): test F1 and state size max|h| "
          "per step\n")
    print("| variant | diverged in training | F1 at T | F1 at 4T | max|h| at T | max|h| at 4T "
          "| max|h| growth T→4T |")
    print("|---|---|---|---|---|---|---|")
    for name, c in curves.items():
        if not c["f1"]:
            print(f"| {name} | {c['diverged']}/{args.seeds} | - | - | - | - | - |")
            continue
        f1, st = np.array(c["f1"]), np.array(c["state"])
        print(f"| {name} | {c['diverged']}/{args.seeds} | {mean_std(f1[:, T - 1])} "
              f"| {mean_std(f1[:, -1])} | {st[:, T - 1].mean():.3g} | {st[:, -1].mean():.3g} "
              f"| {np.mean(st[:, -1] / st[:, T - 1]):.2f}× |")

    print(f"\n# total {time.perf_counter() - t0:.0f}s")
    if args.plots:
        plot(args, res, sizes, chance, curves, example, sig)


def plot(args, res, sizes, chance, curves, example, sig):
    import os

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(args.plots, exist_ok=True)
    T, T_max = args.steps, 4 * args.steps

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    ax = axes[0]
    for key, label in (("ff", "feed-forward"), ("fb", f"feedback (T={T})")):
        m = [np.nanmean(res[s][key]) for s in SIGMAS]
        e = [np.nanstd(res[s][key]) for s in SIGMAS]
        ax.errorbar(SIGMAS, m, yerr=e, marker="o", capsize=3, label=label)
    ax.plot(SIGMAS, [np.mean(res[s]["chance"]) for s in SIGMAS], "k--", label="chance (all fg)")
    ax.set(xlabel="noise sigma", ylabel="test F1", title=f"F1 vs noise ({args.train} images)",
           ylim=(0, 1.02))
    ax.legend()
    ax = axes[1]
    for key, label in (("ff", "feed-forward"), ("fb", "feedback")):
        m = [np.nanmean(sizes[n][key]) for n in SIZES]
        e = [np.nanstd(sizes[n][key]) for n in SIZES]
        ax.errorbar(SIZES, m, yerr=e, marker="o", capsize=3, label=label)
    ax.axhline(np.mean(chance), color="k", ls="--", label="chance")
    ax.set_xscale("log", base=2)
    ax.minorticks_off()
    ax.set(xticks=SIZES, xticklabels=SIZES, xlabel="training images",
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
    fig.savefig(os.path.join(args.plots, f"feedback_f1_{args.noise}.png"), dpi=110)
    plt.close(fig)

    if example is not None:
        fb, ff, x, y = example
        shown = [1, 2, 3, T, 2 * T, T_max]
        probas = list(fb.staged_predict_proba(x, n_steps=T_max))
        fig, axes = plt.subplots(1, len(shown) + 3, figsize=(2.2 * (len(shown) + 3), 2.6))
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
        fig.savefig(os.path.join(args.plots, f"feedback_steps_{args.noise}.png"), dpi=110)
        plt.close(fig)
    log(f"plots written to {args.plots}")


if __name__ == "__main__":
    main()
