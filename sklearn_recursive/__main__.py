"""Demo: Recurrent Expansion on the noisy sinusoid; or the reproduction report.

    sklearn-recursive [demo] [--quick] [--out DIR] [--no-plot]      (or python -m sklearn_recursive)
    sklearn-recursive reproduce [--quick] [--out DIR]   (see sklearn_recursive.reproduce)

Fits a `RecurrentExpansionRegressor` with its defaults (5-fold cross-fitting,
early stopping), prints one line per round (training error, out-of-fold error,
test error, AULC, the round chosen)
and, when matplotlib is installed, saves a plot of error per round and of the
fitted curves to ``DIR/re_sinusoid.png``.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from . import RecurrentExpansionRegressor, __version__
from .datasets import make_sinusoid


def run_demo(quick=False, out=".", plot=True, stream=sys.stdout):
    """Fit RE on the noisy sinusoid and report per-round errors.

    Returns
    -------
    estimator : RecurrentExpansionRegressor
    test_mse : list of float
        Test MSE (against the clean sine) after each round.
    figure_path : Path or None
    """
    n_train = 600 if quick else 1500
    X, y = make_sinusoid(n_train, noise=0.3, random_state=0)
    X_test, y_test = make_sinusoid(1000, noise=0.0, shuffle=False, random_state=1)
    reg = RecurrentExpansionRegressor(
        hidden_layer_sizes=(32, 32) if quick else (64, 64),
        n_rounds=6 if quick else 15,
        n_components=8,
        max_epochs=20 if quick else 40,
        early_stopping=True,
        n_iter_no_change=5 if quick else 10,
        random_state=0,
    )
    print(
        f"sklearn-recursive {__version__}: RecurrentExpansionRegressor on the noisy sinusoid\n"
        f"{n_train} training rows (noise sd 0.3; 5-fold cross-fitting: every row trains "
        f"4 of 5 networks and its out-of-fold prediction scores the rounds), "
        f"test = 1000 rows of the clean sine; errors are MSE",
        file=stream,
    )
    start = time.perf_counter()
    reg.fit(X, y)
    seconds = time.perf_counter() - start
    staged = list(reg.staged_predict(X_test))
    test_mse = [float(np.mean((p - y_test) ** 2)) for p in staged]

    y_var = float(np.var(y))
    print(f"\n{'round':>5} {'train':>9} {'oof':>9} {'test':>9} {'AULC':>8} {'epochs':>6}",
          file=stream)
    for rec, mse in zip(reg.history_, test_mse):
        # history_ losses are in standardised-y units; report MSE in y's units
        print(
            f"{rec['round']:>5} {rec['train_loss'] * y_var:>9.4f} "
            f"{rec['valid_loss'] * y_var:>9.4f} {mse:>9.4f} {rec['aulc']:>8.4f} "
            f"{rec['epochs']:>6d}{'  <- best_round_' if rec['best'] else ''}",
            file=stream,
        )
    print(
        f"\nfit: {seconds:.1f} s, {reg.n_rounds_} rounds on {reg.device_}. "
        f"Test MSE: round 0 (its 5 fold networks, no expansion) {test_mse[0]:.4f}, "
        f"best_round_ {reg.best_round_} {test_mse[reg.best_round_]:.4f}; "
        f"the noise variance is 0.09, the floor for train/out-of-fold MSE.",
        file=stream,
    )
    # the fair baseline: the same network, trained as long as all rounds together
    total_epochs = int(sum(rec["epochs"] for rec in reg.history_))
    single = RecurrentExpansionRegressor(
        hidden_layer_sizes=reg.hidden_layer_sizes, n_rounds=1, max_epochs=total_epochs,
        random_state=0,
    ).fit(X, y)
    single_mse = float(np.mean((single.predict(X_test) - y_test) ** 2))
    print(
        f"round 0 alone given the same {total_epochs} epochs as all rounds together "
        f"(same early stopping): test MSE "
        f"{single_mse:.4f}",
        file=stream,
    )
    figure_path = None
    if plot:
        figure_path = _plot(reg, staged, test_mse, X, y, X_test, y_test, Path(out), stream)
    return reg, test_mse, figure_path


def _plot(reg, staged, test_mse, X, y, X_test, y_test, out, stream):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib is not installed: no plot; pip install matplotlib)", file=stream)
        return None
    out.mkdir(parents=True, exist_ok=True)
    y_var = float(np.var(y))
    rounds = [r["round"] for r in reg.history_]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ax1.plot(rounds, [r["train_loss"] * y_var for r in reg.history_], "o-", label="train")
    ax1.plot(rounds, [r["valid_loss"] * y_var for r in reg.history_], "s-",
             label="out of fold")
    ax1.plot(rounds, test_mse, "^-", label="test (clean sine)")
    ax1.axvline(reg.best_round_, color="gray", ls="--", label="best_round_")
    ax1.set(xlabel="round", ylabel="MSE", yscale="log", title="Error per round")
    ax1.legend()
    ax2.scatter(X[:, 0], y, s=3, color="lightgray", label="training rows")
    ax2.plot(X_test[:, 0], y_test, "k-", lw=1, label="clean sine")
    ax2.plot(X_test[:, 0], staged[0], label="round 0")
    ax2.plot(X_test[:, 0], staged[reg.best_round_], label=f"round {reg.best_round_} (best)")
    ax2.set(xlabel="t", ylabel="y", title="Fitted curves")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    path = out / "re_sinusoid.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"plot saved to {path}", file=stream)
    return path


def _demo_options():
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument("--quick", action="store_true", help="smaller data and fewer rounds")
    options.add_argument("--out", default=".", help="folder for the plot (default: .)")
    options.add_argument("--no-plot", action="store_true", help="do not save a plot")
    return options


def build_parser(prog="sklearn-recursive"):
    """The command line: ``demo`` (the default) and ``reproduce``."""
    from .reproduce import add_arguments as add_reproduce_arguments

    demo_options = _demo_options()
    parser = argparse.ArgumentParser(
        prog=prog,
        parents=[demo_options],
        description="sklearn-recursive: the demo (Recurrent Expansion on the noisy sinusoid, "
        "error per round; the default command) or the reproduction report.",
    )
    commands = parser.add_subparsers(dest="command", metavar="{demo,reproduce}")
    commands.add_parser("demo", parents=[demo_options], help="the demo (default)",
                        description="Recurrent Expansion on the noisy sinusoid: error per round.")
    add_reproduce_arguments(commands.add_parser(
        "reproduce", help="run the experiments and write a Markdown report",
        description="Run the experiments that check the seed papers' claims and write a "
        "Markdown report with plots.",
    ))
    return parser


def main(argv=None, prog="sklearn-recursive"):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(prog).parse_args(argv)
    if args.command == "reproduce":
        from .reproduce import run_from_args

        return run_from_args(args, command=" ".join([prog, *argv]))
    run_demo(quick=args.quick, out=args.out, plot=not args.no_plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(prog="python -m sklearn_recursive"))
