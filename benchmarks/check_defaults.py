"""scikit-learn's ``check_estimator`` on every estimator with its default settings.

The suite runs the checks with fast settings (``tests/test_estimator_checks.py``);
this runs them on ``RecurrentExpansionRegressor()``, ``RecurrentExpansionClassifier()``
and ``MultiverseRE()`` of either, as a new user's first call would, seeded by the
checks' own ``set_random_state``. It prints, per estimator, the checks run, the
failures with their messages, and the minutes taken (about 15 minutes on 2 CPU
cores, one torch thread). The listed expected failure is the suite's.

    python benchmarks/check_defaults.py
"""

import time

import torch
from sklearn.utils.estimator_checks import check_estimator

from sklearn_recursive import (
    MultiverseRE,
    RecurrentExpansionClassifier,
    RecurrentExpansionRegressor,
)

EXPECTED = {"check_sample_weight_equivalence_on_dense_data"}  # see the suite's reason


def main():
    torch.set_num_threads(1)
    estimators = [RecurrentExpansionRegressor(), RecurrentExpansionClassifier(),
                  MultiverseRE(), MultiverseRE(RecurrentExpansionClassifier())]
    for est in estimators:
        start = time.perf_counter()
        results = check_estimator(est, on_fail=None)
        failed = [r for r in results if r["status"] == "failed"]
        unexpected = [r for r in failed if r["check_name"] not in EXPECTED]
        print(f"{est!r}: {len(results)} checks, {len(failed)} failed "
              f"({len(unexpected)} not listed), {(time.perf_counter() - start) / 60:.1f} min",
              flush=True)
        for r in failed:
            print(f"    {r['check_name']}: {str(r['exception'])[:200]}", flush=True)


if __name__ == "__main__":
    main()
