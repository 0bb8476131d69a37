"""Draw the figures of the user guide into ``docs/images/``.

    python docs/make_figures.py [--only re|multiverse] [--out docs/images]

Every figure is measured here, from the package's own experiment code
(`sklearn_recursive.reproduce`), and the page that shows it names this
command. About 15 minutes on 2 CPU cores (`--tiny`: seconds, for the tests).
The feedback figures come from ``benchmarks/bench_feedback.py --plots``.

- ``re_staged.png``: one Recurrent Expansion fit on the noisy sinusoid — the
  prediction of several rounds against the clean sine, and `plot_rounds`'s
  validation loss per round;
- ``re_rounds.png``: test MSE per round over 3 seeds, in-sample and
  leak-free (the full ``reproduce`` expansion setting);
- ``multiverse_rounds.png``: the same curve for RE and MVRE, HMVRE and
  Sc-HMVRE (the full ``reproduce`` multiverse setting, sinusoid only);
- ``multiverse_members.png``: `plot_rounds` of one Sc-HMVRE fit — each
  member's validation loss per round, which ones were selected, the
  aggregate.
"""

import argparse
import pathlib
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from sklearn_recursive import MultiverseRE, RecurrentExpansionRegressor  # noqa: E402
from sklearn_recursive.datasets import make_sinusoid  # noqa: E402
from sklearn_recursive.plotting import plot_rounds  # noqa: E402
from sklearn_recursive.reproduce import expansion, multiverse  # noqa: E402

HERE = pathlib.Path(__file__).parent


def _log(message):
    print(message, file=sys.stderr, flush=True)


def _save(fig, out, name):
    path = pathlib.Path(out) / name
    fig.savefig(path, dpi=110)
    plt.close(fig)
    _log(f"wrote {path}")


def re_staged(out, tiny=False):
    """One RE fit: staged predictions against the clean sine, and plot_rounds."""
    n, rounds, epochs = (200, 3, 3) if tiny else (1000, 12, 30)
    X, y = make_sinusoid(n, random_state=0)
    reg = RecurrentExpansionRegressor((64, 64), n_rounds=rounds, max_epochs=epochs,
                                      n_iter_no_change=rounds, random_state=0).fit(X, y)
    grid = np.linspace(X.min(), X.max(), 400, dtype=np.float32)[:, None]
    staged = list(reg.staged_predict(grid))
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.scatter(X[:, 0], y, s=3, color="0.75", label="training rows (noise sd 0.3)")
    left.plot(grid[:, 0], np.sin(grid[:, 0]), color="black", lw=2, label="clean sine")
    shown = sorted({0, 1, reg.best_round_, len(staged) - 1})
    for r in shown:
        tag = " (best_round_)" if r == reg.best_round_ else ""
        left.plot(grid[:, 0], staged[r], lw=1.5, label=f"round {r}{tag}")
    left.set(xlabel="t", ylabel="y", title="staged_predict: the chain after each round")
    left.legend(fontsize=8, loc="lower left")
    plot_rounds(reg, ax=right)
    right.set_title("plot_rounds: validation loss per round")
    fig.tight_layout()
    _save(fig, out, "re_staged.png")


def _section(module, cfg, out):
    results = module.run(cfg, _log)
    for title, lines in module.tables(cfg, results):
        _log(f"\n{title}\n" + "\n".join(lines))
    for name, fig, _caption in module.figures(cfg, results):
        fig.savefig(pathlib.Path(out) / name, dpi=110)
        _log(f"wrote {pathlib.Path(out) / name}")


def re_rounds(out, tiny=False):
    """Test MSE per round over seeds: the reproduce expansion section's figure."""
    cfg = expansion.ExpansionConfig()
    if tiny:
        cfg = expansion.ExpansionConfig(seeds=1, n_train=100, n_test=100, rounds=2,
                                        max_epochs=2, hidden=(8,), n_components=2, cv=2)
    _section(expansion, cfg, out)


def multiverse_rounds(out, tiny=False):
    """RE against the multiverses per round: the reproduce multiverse figure."""
    variants = ("RE", "MVRE", "HMVRE", "Sc-HMVRE")
    cfg = multiverse.MultiverseConfig(datasets=("sinusoid",), variants=variants)
    if tiny:
        cfg = multiverse.MultiverseConfig(datasets=("sinusoid",), variants=("RE", "MVRE"),
                                          seeds=1, k=2, rounds=2, max_epochs=2, n_train=100,
                                          n_test=100, n_jobs=1)
    _section(multiverse, cfg, out)


def multiverse_members(out, tiny=False):
    """plot_rounds of one Sc-HMVRE: members, selection and the aggregate."""
    n, rounds, epochs = (200, 2, 2) if tiny else (1000, 8, 30)
    X, y = make_sinusoid(n, random_state=0)
    est = RecurrentExpansionRegressor((64, 64), n_rounds=rounds, max_epochs=epochs,
                                      n_iter_no_change=rounds, random_state=0)
    mv = MultiverseRE(est, members=["mlp", "cnn", "gru", "transformer"], n_select=2,
                      weighting="score", n_jobs=2).fit(X, y)
    fig, ax = plt.subplots(figsize=(7, 4))
    plot_rounds(mv, ax=ax)
    ax.set_yscale("log")
    ax.set_title("Sc-HMVRE on the noisy sinusoid: filled = selected (n_select=2)")
    fig.tight_layout()
    _save(fig, out, "multiverse_members.png")


FIGURES = {"re": (re_staged, re_rounds), "multiverse": (multiverse_rounds, multiverse_members)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(HERE / "images"))
    parser.add_argument("--only", choices=sorted(FIGURES), action="append")
    parser.add_argument("--tiny", action="store_true", help="a seconds-long smoke setting")
    args = parser.parse_args(argv)
    pathlib.Path(args.out).mkdir(parents=True, exist_ok=True)
    for group in args.only or sorted(FIGURES):
        for draw in FIGURES[group]:
            draw(args.out, tiny=args.tiny)


if __name__ == "__main__":
    main()
