"""Feedback vs feed-forward U-Net on noisy shapes: noise, data size, depth, stability.

The experiments live in ``sklearn_recursive.reproduce.feedback`` (read its
docstring for what is compared and how); ``python -m sklearn_recursive
reproduce`` runs them too. This script runs them alone and prints the
tables. With the defaults, one run takes 13-14 minutes on 2 CPU cores.

    python benchmarks/bench_feedback.py [--noise fixed|fresh] [--seeds 3] [--plots docs/images] \
        [--quick]
"""

import argparse

from sklearn_recursive.reproduce import feedback
from sklearn_recursive.reproduce._report import print_section
from sklearn_recursive.reproduce.feedback import FeedbackConfig


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--noise", choices=["fixed", "fresh"], default="fixed",
                        help="training noise drawn once, or afresh every epoch")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5, help="T: training steps")
    parser.add_argument("--train", type=int, default=64, help="training images")
    parser.add_argument("--test", type=int, default=64)
    parser.add_argument("--updates", type=int, default=300, help="weight updates of every fit")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--plots", default=None, help="folder for the PNG plots")
    parser.add_argument("--quick", action="store_true", help="tiny settings, to smoke-test")
    args = parser.parse_args()
    cfg = FeedbackConfig(noise=args.noise, seeds=args.seeds, steps=args.steps, train=args.train,
                         test=args.test, updates=args.updates, device=args.device)
    if args.quick:
        cfg = FeedbackConfig(noise=args.noise, seeds=1, updates=10, train=8, test=8,
                             device=args.device)
    print_section("bench_feedback", feedback, cfg, args.device, args.plots)


if __name__ == "__main__":
    main()
