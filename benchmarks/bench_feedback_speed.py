"""Cost of T feedback steps against T feed-forward passes (forward + backward).

Target (issue 4): training with T feedback steps costs <= 1.1 x T
feed-forward passes of the same U-Net backbone.

Two levels, every variant alternating with the others in each repeat so that
machine noise hits them alike (``sklearn_recursive.reproduce.speed.alternate``,
after a warm-up run of each); medians over repeats:

1. **Training step** of the bare networks on one batch: forward, loss and
   backward (the target's terms), then again with the Adam step (which T
   steps pay once and T feed-forward passes T times).  Unit: the
   feed-forward U-Net (``feedback=False``).  A second column divides by T
   steps of the *feedback* U-Net's own single step (its input and output
   carry the extra feedback channels), which separates the loop's own
   overhead (softmax, concatenation, decay, state update, per-step loss)
   from the wider first and last convolutions.
2. **Whole fit** through the estimator: ``FeedbackSegmenter(n_steps=T)``
   against ``FeedbackSegmenter(feedback=False)``, same data, epochs, seed.

    python benchmarks/bench_feedback_speed.py [--steps 1 2 5 10] [--size 32] \
        [--batch 16] [--repeats 7] [--threads 2] [--device cpu]
"""

import argparse
import sys

import joblib
import torch

import sklearn_recursive
from sklearn_recursive import FeedbackSegmenter
from sklearn_recursive.datasets import make_noisy_shapes
from sklearn_recursive.reproduce.speed import alternate, feedback_step_timer, feedback_unet


def progress(label, scale, unit, digits):
    """An ``on_repeat`` of `alternate`: every variant's last time on stderr."""

    def show(rep, times):
        print(f"{label} {rep}: " + ", ".join(
            f"{name} {ts[-1] * scale:.{digits}f}{unit}" for name, ts in times.items()),
            file=sys.stderr)

    return show


def build(n_classes, steps, args, feedback=True):
    assert n_classes == 2
    return feedback_unet(steps, args.device, feedback=feedback,
                         base_channels=args.base_channels, depth=args.depth)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 2, 5, 10])
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--base-channels", type=int, default=16)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--iters", type=int, default=5, help="training steps per timing")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--fit-steps", type=int, default=5, help="T of the whole-fit comparison")
    parser.add_argument("--fit-images", type=int, default=64)
    parser.add_argument("--fit-epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else None

    X, y = make_noisy_shapes(max(args.batch, args.fit_images), size=args.size, sigma=2.0,
                             random_state=0)
    x = torch.tensor(X[: args.batch], device=args.device)
    target = torch.tensor(y[: args.batch], device=args.device)

    print(f"# bench_feedback_speed: sklearn_recursive {sklearn_recursive.__version__}, "
          f"torch {torch.__version__}, {joblib.cpu_count()} cores, "
          f"{torch.get_num_threads()} torch threads, device {args.device}")
    print(f"# U-Net base_channels={args.base_channels} depth={args.depth}, batch {args.batch} "
          f"images {args.size}x{args.size}, 2 classes; {args.iters} training steps per timing, "
          f"{args.repeats} alternating repeats; medians")

    # 1. training steps of the bare networks
    for optimize, what in ((False, "forward + loss + backward"),
                           (True, "forward + loss + backward + Adam step")):
        runners = {"feed-forward U-Net (unit)": feedback_step_timer(
            build(2, 1, args, feedback=False), x, target, args.iters, adam=optimize)}
        for steps in args.steps:
            runners[f"feedback T={steps}"] = feedback_step_timer(
                build(2, steps, args), x, target, args.iters, adam=optimize)
        # after a warm-up run of each (allocator, optimizer state, kernels): seconds per step
        medians = alternate(runners, args.repeats, sync,
                            on_repeat=progress("rep", 1e3 / args.iters, "ms", 1))
        medians = {name: seconds / args.iters for name, seconds in medians.items()}
        unit = medians["feed-forward U-Net (unit)"]
        one_step = medians["feedback T=1"] if 1 in args.steps else None
        print(f"\n## 1. One training step: {what}\n")
        print("| variant | median ms | time / (T x feed-forward) | time / (T x own 1-step) |")
        print("|---|---|---|---|")
        for name, med in medians.items():
            steps = int(name.split("=")[1]) if name.startswith("feedback") else 1
            own = f"{med / (steps * one_step):.3f}" if one_step else "-"
            print(f"| {name} | {med * 1e3:.1f} | {med / (steps * unit):.3f} | {own} |")

    # 2. whole fits through the estimator
    T = args.fit_steps
    Xf, yf = X[: args.fit_images], y[: args.fit_images]
    # every fit the same number of epochs: no stop on a training-loss plateau
    common = dict(base_channels=args.base_channels, depth=args.depth, max_epochs=args.fit_epochs,
                  n_iter_no_change=None, batch_size=args.batch, device=args.device,
                  random_state=0)
    fits = {
        "FeedbackSegmenter(feedback=False) (unit)": lambda: FeedbackSegmenter(
            feedback=False, **common),
        f"FeedbackSegmenter(n_steps={T})": lambda: FeedbackSegmenter(n_steps=T, **common),
    }
    warm_up = [lambda make=make: make().set_params(max_epochs=1).fit(Xf[:8], yf[:8])
               for make in fits.values()]
    medians = alternate({name: (lambda make=make: make().fit(Xf, yf))
                         for name, make in fits.items()}, args.repeats, sync,
                        warm_up=warm_up, on_repeat=progress("fit rep", 1, "s", 2))
    unit = medians["FeedbackSegmenter(feedback=False) (unit)"]
    print(f"\n## 2. Whole fit: {args.fit_images} images, {args.fit_epochs} epochs, "
          f"batch {args.batch}\n")
    print("| variant | median s | time / (T x feed-forward fit) |")
    print("|---|---|---|")
    for name, med in medians.items():
        steps = 1 if "feedback=False" in name else T
        print(f"| {name} | {med:.2f} | {med / (steps * unit):.3f} |")


if __name__ == "__main__":
    main()
