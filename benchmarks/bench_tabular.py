"""Recurrent Expansion on small real tabular datasets that ship with scikit-learn.

5-fold cross-validated score (R² for diabetes, accuracy for the classifiers) of

* RE with default settings (``early_stopping=True``: best round chosen on 10%
  held-out rows);
* RE in-sample without early stopping (all 10 rounds, the last one used);
* RE cross-fitted (``cv=5``) without early stopping;
* RE cross-fitted with early stopping;
* scikit-learn's ``MLPRegressor``/``MLPClassifier`` (64, 64) with and without
  early stopping, and ``HistGradientBoosting*`` with defaults,

every model behind a ``StandardScaler``. It also prints, for diabetes, the
test R² after each round of the no-early-stopping fits on one split: the
leakage of in-sample IMTs on small noisy data shows there.

    python benchmarks/bench_tabular.py [--datasets diabetes wine] [--quick]
"""

import argparse
import time
import warnings

from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_wine
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import r2_score
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score, train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_recursive import RecurrentExpansionClassifier, RecurrentExpansionRegressor
from sklearn_recursive.reproduce._report import pm

LOADERS = {
    "diabetes": load_diabetes,
    "breast_cancer": load_breast_cancer,
    "wine": load_wine,
    "digits": load_digits,
}


def models(regression, quick):
    RE = RecurrentExpansionRegressor if regression else RecurrentExpansionClassifier
    extra = dict(max_epochs=30, n_rounds=4) if quick else {}
    MLP = MLPRegressor if regression else MLPClassifier
    HGB = HistGradientBoostingRegressor if regression else HistGradientBoostingClassifier
    return {
        "RE defaults (ES)": RE(random_state=0, **extra),
        "RE in-sample, no ES": RE(early_stopping=False, random_state=0, **extra),
        "RE cv=5, no ES": RE(early_stopping=False, cv=5, random_state=0, **extra),
        "RE cv=5 + ES": RE(cv=5, random_state=0, **extra),
        "sklearn MLP (ES)": MLP(hidden_layer_sizes=(64, 64), max_iter=1000,
                                early_stopping=True, random_state=0),
        "sklearn MLP (no ES)": MLP(hidden_layer_sizes=(64, 64), max_iter=1000, random_state=0),
        "HistGradientBoosting": HGB(random_state=0),
    }


def per_round_diabetes(quick):
    X, y = load_diabetes(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, random_state=0)
    scaler = StandardScaler().fit(X_tr)
    X_tr, X_te = scaler.transform(X_tr), scaler.transform(X_te)
    extra = dict(max_epochs=30, n_rounds=4) if quick else {}
    print("\ndiabetes, one 75/25 split: test R² after each round (early_stopping=False)")
    for name, cv in [("in-sample", None), ("cv=5", 5)]:
        reg = RecurrentExpansionRegressor(early_stopping=False, cv=cv, random_state=0, **extra)
        reg.fit(X_tr, y_tr)
        curve = " ".join(f"{r2_score(y_te, p):6.3f}" for p in reg.staged_predict(X_te))
        train = " ".join(f"{h['train_loss']:6.3f}" for h in reg.history_)
        print(f"  {name:<10} test R²   {curve}")
        print(f"  {'':<10} train loss {train}  (standardised y; out-of-fold with cv)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(LOADERS), choices=list(LOADERS))
    parser.add_argument("--quick", action="store_true", help="fewer rounds and epochs")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=ConvergenceWarning)

    quick = " (quick)" if args.quick else ""
    print(f"5-fold CV, mean ± std (ddof=1) over folds; every model behind StandardScaler{quick}")
    print(f"{'dataset':<14} {'model':<22} {'score':>15} {'seconds':>8}")
    for name in args.datasets:
        X, y = LOADERS[name](return_X_y=True)
        regression = name == "diabetes"
        cv = (KFold if regression else StratifiedKFold)(5, shuffle=True, random_state=0)
        for model_name, model in models(regression, args.quick).items():
            start = time.perf_counter()
            scores = cross_val_score(make_pipeline(StandardScaler(), model), X, y, cv=cv)
            seconds = time.perf_counter() - start
            metric = "R²" if regression else "acc"
            print(f"{name:<14} {model_name:<22} {metric} {pm(scores, 3)}"
                  f" {seconds:>8.1f}", flush=True)
    if "diabetes" in args.datasets:
        per_round_diabetes(args.quick)


if __name__ == "__main__":
    main()
