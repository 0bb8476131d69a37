"""
Fitting a multiverse's members on a Dask cluster
================================================

The members of a `MultiverseRE` round are independent fits, sent through joblib. Any
joblib backend runs them: local processes (``n_jobs``), threads, or the workers of a Dask
cluster via ``joblib.parallel_config(backend="dask")``. Here the cluster is a
``LocalCluster`` on this machine; with a real cluster only the ``Client`` address
changes. Each member gets its own seed, so the result does not depend on where it ran.
"""

import joblib
import matplotlib.pyplot as plt
import numpy as np
from distributed import Client, LocalCluster

from sklearn_recursive import MultiverseRE, RecurrentExpansionRegressor
from sklearn_recursive.datasets import make_sinusoid

if __name__ == "__main__":  # worker processes re-import this file
    X, y = make_sinusoid(600, noise=0.3, random_state=0)
    X_test, y_clean = make_sinusoid(500, noise=0.0, random_state=1)

    def multiverse():
        inner = RecurrentExpansionRegressor(n_rounds=3, max_epochs=20, random_state=0)
        # heterogeneous members cannot be stacked into one model: one fit per member
        return MultiverseRE(inner, members=["mlp", "cnn", "gru"], n_jobs=3)

    # %%
    # Sequential reference, then the same multiverse with its members on Dask workers.
    reference = multiverse().set_params(n_jobs=None).fit(X, y)
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster) as client,
        joblib.parallel_config(backend="dask"),
    ):
        print("Dask workers:", len(client.scheduler_info()["workers"]))
        on_dask = multiverse().fit(X, y)

    # %%
    # The members were trained with the same seeds, so the predictions agree up to
    # float rounding.
    gap = np.abs(on_dask.predict(X_test) - reference.predict(X_test)).max()
    print(f"largest difference between the two fits' predictions: {gap:.2e}")
    mse = np.mean((on_dask.predict(X_test) - y_clean) ** 2)
    print(f"test MSE vs the clean sine: {mse:.4f} (best_round_ {on_dask.best_round_})")

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(X_test[:, 0], y_clean, "k-", lw=1, label="clean sine")
    ax.plot(X_test[:, 0], on_dask.predict(X_test), label="multiverse fitted on Dask")
    ax.set(xlabel="t", ylabel="y")
    ax.legend()
    fig.tight_layout()
    plt.show()
