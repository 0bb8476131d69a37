"""Training-path overhead: our skorch path vs a hand-written PyTorch loop.

Same network (MLPModule 20 -> 64 -> 64 -> 1), same data, batch size, epochs,
optimizer and shuffling; the runs alternate so that machine noise hits both
alike (``sklearn_recursive.reproduce.speed.alternate``, after a warm-up fit
of each on 512 rows). Prints the ratio of medians. Target: <= 1.15.

    python benchmarks/bench_training_overhead.py [--rows 10000] [--repeats 5] [--threads 1]
"""

import argparse
import functools

import numpy as np
import torch
from skorch import NeuralNetRegressor

from sklearn_recursive import MLPModule
from sklearn_recursive.reproduce.speed import alternate, hand_loop
from sklearn_recursive.reproduce.speed import package_path as our_path


def skorch_default(X, y, epochs, batch_size, lr, seed):
    torch.manual_seed(seed)
    net = NeuralNetRegressor(
        MLPModule, module__n_features=X.shape[1], module__n_expansion=0,
        module__n_outputs=1, optimizer=torch.optim.Adam, lr=lr, max_epochs=epochs,
        batch_size=batch_size, train_split=None, iterator_train__shuffle=True, verbose=0,
    )
    return net.fit(X, y)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's own choice)")
    parser.add_argument("--skip-skorch-default", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    rng = np.random.default_rng(0)
    X = rng.standard_normal((args.rows, 20)).astype(np.float32)
    y = (X[:, :5].sum(axis=1, keepdims=True) + 0.1 * rng.standard_normal((args.rows, 1)))
    y = y.astype(np.float32)
    paths = {"hand-written loop": hand_loop, "sklearn_recursive path": our_path}
    if not args.skip_skorch_default:
        paths["skorch defaults"] = skorch_default
    runners = {name: functools.partial(fn, X, y, args.epochs, args.batch_size, 1e-3, 0)
               for name, fn in paths.items()}
    warm_up = [functools.partial(fn, X[:512], y[:512], 1, args.batch_size, 1e-3, 0)
               for fn in paths.values()]
    medians = alternate(runners, args.repeats, warm_up=warm_up)

    base = medians["hand-written loop"]
    print(f"MLP 20-64-64-1, {args.rows} rows, batch {args.batch_size}, {args.epochs} epochs, "
          f"{args.repeats} alternating repeats, torch threads {torch.get_num_threads()}")
    print(f"{'path':<24} {'median s':>9} {'ratio':>7}")
    for name, med in medians.items():
        print(f"{name:<24} {med:>9.3f} {med / base:>7.2f}x")
    ratio = medians["sklearn_recursive path"] / base
    print(f"overhead ratio (target <= 1.15): {ratio:.2f}")


if __name__ == "__main__":
    main()
