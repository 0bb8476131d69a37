"""Multiverse vs plain Recurrent Expansion: test error of MVRE, HMVRE and Sc-HMVRE.

Question: does a multiverse -- ``MultiverseRE`` with k seeds (MVRE), with
heterogeneous architectures (HMVRE) or with per-round selection (Sc-HMVRE) --
do better than plain Recurrent Expansion (RE), than one scikit-learn MLP and
than HistGradientBoosting; and does the multiverse smooth or delay the
representation glitch on the noisy sinusoid?

Variants (for a dataset, every RE-based one wraps the same inner estimator):

* ``RE``: ``RecurrentExpansionRegressor`` / ``...Classifier`` alone (MLP 64-64);
* ``MVRE k=5``: ``MultiverseRE(est, members=5)`` (seeds; stacked training);
* ``HMVRE``: ``MultiverseRE(est, members=["mlp", "cnn", "gru", "transformer"])``;
* ``Sc-HMVRE``: the same members, ``n_select=2, weighting="score"``;
* ``MLP``: ``MLPRegressor`` / ``MLPClassifier(hidden_layer_sizes=(64, 64),
  early_stopping=True)`` on flattened windows;
* ``HGB``: ``HistGradientBoosting*`` with default settings on flattened windows;
* opt-in controls (``--variants``): ``RE-cnn``, ``RE-gru``, ``RE-lstm``,
  ``RE-transformer``, i.e. RE with ``module=<arch>`` alone -- does HMVRE beat its best
  single architecture, or only carry it?

Datasets:

1. ``sinusoid``: ``make_sinusoid(1000, noise=0.3, random_state=seed)`` for
   training; test MSE against the clean ``sin(t)`` on an even grid of
   ``--n-test`` points over the training range. The RE-based variants are fitted
   twice: with ``early_stopping=False`` and a fixed ``--rounds`` (test MSE per
   round from ``staged_predict``: the glitch), and with ``early_stopping=True``
   (test MSE at ``best_round_``). The input is 2-D with one feature, which the
   sequence members read as a sequence of length 1.
2. ``italy``: aeon's ItalyPowerDemand (67 train / 1029 test windows of length 24,
   2 classes); accuracy on the official test split.
3. ``basicmotions``: aeon's BasicMotions (40 / 40 windows, 6 channels x 100, 4
   classes) -- the default third set; ``arrowhead`` (36 / 175, 1 x 251, 3 classes)
   can be chosen with ``--datasets`` but its transformer member (251 tokens)
   makes a full run several times longer.

Every series of the UCR/UEA sets is z-normalised per sample and channel.
Classification uses ``early_stopping=True`` (``--valid-frac`` of the tiny training
sets held out, also for the sklearn MLP). Means ± standard deviations (ddof=1)
are over ``--seeds`` seeds (seed s seeds the data of the sinusoid and every
``random_state``). Fits run ``--n-jobs`` at a time, each with ``--threads``
torch/BLAS threads (default 1: two threads per fit on 2 cores contend badly).

The experiment code lives in ``sklearn_recursive.reproduce.multiverse``
(``python -m sklearn_recursive reproduce`` runs it too); this script runs it
alone. The default run takes about 10-12 minutes on 2 cores; ``--quick``
about 1-2.

    python benchmarks/bench_multiverse_accuracy.py [--quick] [--seeds 3] [--n-jobs 2]
        [--datasets sinusoid italy basicmotions] [--variants RE MVRE ... HGB]
        [--device cpu] [--threads 1]
"""

import argparse

import joblib
import sklearn
import torch

import sklearn_recursive
from sklearn_recursive.reproduce._report import Progress
from sklearn_recursive.reproduce.multiverse import (
    ARCHS,
    BASELINES,
    DATASETS,
    DEFAULT_VARIANTS,
    SINGLE,
    VARIANTS,
    MultiverseConfig,
    markdown_lines,
    run,
)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["sinusoid", "italy", "basicmotions"],
                        choices=DATASETS)
    parser.add_argument("--variants", nargs="+", default=list(DEFAULT_VARIANTS),
                        choices=[*VARIANTS, *BASELINES],
                        help="RE-cnn, RE-gru, RE-lstm, RE-transformer (not run by default): "
                             "RE with that module alone, to compare HMVRE with its members")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0 .. seeds-1")
    parser.add_argument("--k", type=int, default=5, help="members of MVRE")
    parser.add_argument("--rounds", type=int, default=15,
                        help="rounds on the sinusoid (fixed without early stopping)")
    parser.add_argument("--max-epochs", type=int, default=30, help="epochs/net, sinusoid")
    parser.add_argument("--ucr-rounds", type=int, default=5, help="max rounds, UCR sets")
    parser.add_argument("--ucr-max-epochs", type=int, default=100, help="epochs/net, UCR sets")
    parser.add_argument("--valid-frac", type=float, default=0.2,
                        help="validation_fraction on the (tiny) UCR training sets")
    parser.add_argument("--n-train", type=int, default=1000)
    parser.add_argument("--n-test", type=int, default=2000)
    parser.add_argument("--noise", type=float, default=0.3)
    parser.add_argument("--margin", type=float, default=0.10,
                        help="relative rise over the minimum that counts as the glitch")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch/BLAS threads per fit")
    parser.add_argument("--n-jobs", type=int, default=2, help="fits run side by side")
    parser.add_argument("--quick", action="store_true",
                        help="2 seeds, sinusoid 500 rows x 5 rounds x 10 epochs, UCR 2 rounds "
                             "x 30 epochs, ItalyPowerDemand and BasicMotions")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.n_train, args.n_test = 2, 500, 1000
        args.rounds, args.max_epochs, args.ucr_rounds, args.ucr_max_epochs = 5, 10, 2, 30
    cfg = MultiverseConfig(
        seeds=args.seeds, datasets=tuple(args.datasets), variants=tuple(args.variants), k=args.k,
        rounds=args.rounds, max_epochs=args.max_epochs, ucr_rounds=args.ucr_rounds,
        ucr_max_epochs=args.ucr_max_epochs, valid_frac=args.valid_frac, n_train=args.n_train,
        n_test=args.n_test, noise=args.noise, margin=args.margin, threads=args.threads,
        n_jobs=args.n_jobs, device=args.device,
    )
    log = Progress()
    print("# bench_multiverse_accuracy" + (" (--quick)" if args.quick else ""))
    print()
    print(f"sklearn_recursive {sklearn_recursive.__version__}, torch {torch.__version__}, "
          f"scikit-learn {sklearn.__version__}; device {args.device}; "
          f"{joblib.cpu_count()} cores.  ")
    print(f"{cfg.describe()}.  ")
    print(f"Inner estimator of every RE-based variant: MLP (64, 64), PCA to 8, batch 128, "
          f"Adam lr 0.001. MVRE k={args.k}: members=k (stacked); HMVRE: members={list(ARCHS)} "
          "(built-in defaults: cnn (16, 32) k=5, gru 32, transformer d_model 32 × 2 layers; "
          "fusion width 64); Sc-HMVRE: HMVRE + n_select=2, weighting='score'.")
    if any(v in SINGLE for v in args.variants):
        print("RE, module=<arch>: the same inner estimator with that built-in module alone "
              "(hidden_layer_sizes unused), one network per round.")
    results = run(cfg, log)
    print("\n".join(markdown_lines(cfg, results)))
    print(f"\nTotal wall time {log.elapsed():.0f} s.")


if __name__ == "__main__":
    main()
