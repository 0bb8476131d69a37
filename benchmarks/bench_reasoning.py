"""RecursiveReasoner: extrapolation, ablations, mazes, halting, speed, Sudoku.

The experiments live in ``sklearn_recursive.reproduce.reasoning`` (read its
docstring for what is compared and how); ``python -m sklearn_recursive
reproduce --sections reasoning`` runs them too. This script runs them alone,
or some of their parts, and prints the tables. The full setting runs on a CPU
in about 70 minutes since the prefix-sum parts train at the width-128 defaults
(on one thread, beside another job, 2026-12-04: extrapolation and halting 41
minutes for 4 seeds, so about 20 for the default 2, the ablations 35; the sudoku
part about 10, 2026-12-02; mazes, speed a few more); on a GPU pass
``--device cuda`` and raise ``--seeds``, ``--n-test`` and the maze budget.

    python benchmarks/bench_reasoning.py \
        [--parts extrapolation ablations mazes halting speed sudoku] [--seeds 2] \
        [--ablation-seeds 1] [--device cpu] [--threads N] [--plots DIR] [--quick]

For example, the prefix-sum extrapolation alone with one seed:

    python benchmarks/bench_reasoning.py --parts extrapolation --seeds 1
"""

import argparse
import dataclasses

import torch
from threadpoolctl import threadpool_limits

from sklearn_recursive.reproduce import reasoning
from sklearn_recursive.reproduce._report import print_section
from sklearn_recursive.reproduce.reasoning import PARTS, ReasoningConfig


def _ints(text):
    return tuple(int(v) for v in text.split(","))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--seeds", type=int, default=None, help="extrapolation and halting")
    parser.add_argument("--ablation-seeds", type=int, default=None, help="ablations and mazes")
    parser.add_argument("--train-bits", type=int, default=None)
    parser.add_argument("--test-bits", type=_ints, default=None, help="e.g. 16,32,64,128,256")
    parser.add_argument("--steps", type=int, default=None, help="T: training steps")
    parser.add_argument("--width", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--n-train", type=int, default=None)
    parser.add_argument("--n-test", type=int, default=None)
    parser.add_argument("--maze-size", type=int, default=None, help="training maze, cells a side")
    parser.add_argument("--maze-epochs", type=int, default=None)
    parser.add_argument("--maze-train", type=int, default=None)
    parser.add_argument("--maze-width", type=int, default=None)
    parser.add_argument("--maze-blocks", type=int, default=None)
    parser.add_argument("--maze-steps", type=int, default=None, help="T of the maze model")
    parser.add_argument("--maze-lr", type=float, default=None)
    parser.add_argument("--maze-warmup", type=int, default=None, help="warmup epochs, mazes")
    parser.add_argument("--lr", type=float, default=None, help="prefix sums")
    parser.add_argument("--warmup-epochs", type=int, default=None, help="prefix sums")
    parser.add_argument("--lr-schedule", choices=("constant", "cosine"), default=None,
                        help="prefix sums")
    parser.add_argument("--maze-lr-schedule", choices=("constant", "cosine"), default=None)
    parser.add_argument("--sudoku-warmup", type=int, default=None, help="warmup epochs, sudoku")
    parser.add_argument("--sudoku-lr-schedule", choices=("constant", "cosine"), default=None)
    parser.add_argument("--threads", type=int, default=0,
                        help="torch and BLAS threads of the whole run (0: leave as they are; "
                        "the timings run on one thread in any case)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--plots", default=None, help="folder for the PNG plots")
    parser.add_argument("--quick", action="store_true", help="tiny settings, to smoke-test")
    args = parser.parse_args()
    changes = {name: getattr(args, name) for name in (
        "seeds", "ablation_seeds", "train_bits", "test_bits", "steps", "width", "epochs",
        "n_train", "n_test", "lr", "warmup_epochs", "lr_schedule", "maze_size", "maze_epochs",
        "maze_train", "maze_width", "maze_blocks", "maze_steps", "maze_lr", "maze_warmup",
        "maze_lr_schedule", "sudoku_warmup", "sudoku_lr_schedule")
        if getattr(args, name) is not None}
    changes.update(parts=tuple(args.parts), device=args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
        threadpool_limits(args.threads)
    if args.maze_size is not None:
        changes["maze_test_sizes"] = (args.maze_size, 2 * args.maze_size)
    cfg = (ReasoningConfig.quick if args.quick else ReasoningConfig)(**changes)
    if cfg.train_bits not in cfg.test_bits:
        cfg = dataclasses.replace(cfg, test_bits=(cfg.train_bits, *cfg.test_bits))
    print_section("bench_reasoning", reasoning, cfg, args.device, args.plots)


if __name__ == "__main__":
    main()
