"""Do two versions of the package give the same predictions for the same seed?

Fits eight fixed configurations (RE with and without early stopping, cross-fitted,
the classifier, stacked, heterogeneous with selection and score weighting, aulc
weighting) with each version, in its own process with one torch thread, and
compares the predictions. Use it around a refactoring: structural changes must
give ``equal=True`` everywhere.

    git worktree add /tmp/old <commit>
    python benchmarks/compare_predictions.py --old /tmp/old [--new .]

Options a version does not have are left out (``standardize=False`` is passed
where it exists, the behaviour before it).
"""

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

FIT = r'''
import inspect, sys
import numpy as np, torch
torch.set_num_threads(1)
from sklearn_recursive import (MultiverseRE, RecurrentExpansionClassifier,
                               RecurrentExpansionRegressor)
from sklearn_recursive.datasets import make_sinusoid
R, C = RecurrentExpansionRegressor, RecurrentExpansionClassifier
old = {"standardize": False} if "standardize" in inspect.signature(R).parameters else {}
base = dict(hidden_layer_sizes=(16,), n_rounds=3, n_components=2, max_epochs=15, batch_size=32,
            lr=1e-2, device="cpu", random_state=0, **old)
rng = np.random.default_rng(0)
X, y = make_sinusoid(300, noise=0.3, random_state=0)
Xc = rng.standard_normal((200, 4)).astype(np.float32)
yc = (Xc[:, 0] + Xc[:, 1] > 0).astype(int) + (Xc[:, 2] > 1)
W = rng.standard_normal((150, 2, 12)).astype(np.float32)
yw = W[:, 0, -1] + 0.5 * W[:, 1, :3].sum(1)
es = {**base, "early_stopping": True}
configs = {
    "re": lambda: R(**base).fit(X, y).predict(X),
    "re_es": lambda: R(**es).fit(X, y).predict(X),
    "re_cv": lambda: R(**es, cv=3).fit(X, y).predict(X),
    "clf": lambda: C(**base).fit(Xc, yc).predict_proba(Xc),
    "clf_es": lambda: C(**es).fit(Xc, yc).predict_proba(Xc),
    "mv_stacked": lambda: MultiverseRE(R(**es), members=3).fit(X, y).predict(X),
    "mv_het": lambda: MultiverseRE(R(**es), members=["mlp", "cnn", "gru"], weighting="score",
                                   n_select=2).fit(W, yw).predict(W),
    "mv_clf": lambda: MultiverseRE(C(**base), members=["mlp", "mlp"], batched=False,
                                   weighting="aulc").fit(Xc, yc).predict_proba(Xc),
}
np.savez(sys.argv[1], **{name: np.asarray(fit()) for name, fit in configs.items()})
'''


def predictions(tree, out):
    env = {**os.environ, "PYTHONPATH": str(Path(tree).resolve()), "OMP_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory() as cwd:  # not the checkout: import from PYTHONPATH
        subprocess.run([sys.executable, "-c", FIT, str(out)], env=env, cwd=cwd, check=True)
    return np.load(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", required=True, help="source tree of the old version")
    parser.add_argument("--new", default=".", help="source tree of the new one (default: .)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        old = predictions(args.old, Path(tmp) / "old.npz")
        new = predictions(args.new, Path(tmp) / "new.npz")
        print(f"{'configuration':<14} {'equal':<6} max |difference|")
        for name in old.files:
            diff = float(np.max(np.abs(old[name] - new[name])))
            print(f"{name:<14} {str(np.array_equal(old[name], new[name])):<6} {diff:.3g}")


if __name__ == "__main__":
    main()
