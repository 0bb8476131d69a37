"""
The representation glitch, round by round
=========================================

Recurrent Expansion trains a chain of networks; each round sees the input plus what the
previous round made of it. On noisy data, the test error first falls round after round,
then rises again once the rounds start fitting the noise that earlier rounds passed on:
the *representation glitch*. ``staged_predict`` gives the prediction of every round,
and the defaults (cross-fitting, early stopping) pick ``best_round_`` out of fold.
"""

import matplotlib.pyplot as plt
import numpy as np

from sklearn_recursive import RecurrentExpansionRegressor
from sklearn_recursive.datasets import make_sinusoid
from sklearn_recursive.plotting import plot_rounds

# %%
# Noisy samples of a sine for training; the clean sine for testing.
X, y = make_sinusoid(1000, noise=0.3, random_state=0)
X_test, y_clean = make_sinusoid(1000, noise=0.0, random_state=1)

# %%
# The original method: in-sample expansion (``cv=None``), no early stopping, all 15
# rounds, and the test error of each.
re = RecurrentExpansionRegressor(n_rounds=15, max_epochs=20, cv=None, early_stopping=False,
                                 random_state=0).fit(X, y)
test_mse = np.array([np.mean((p - y_clean) ** 2) for p in re.staged_predict(X_test)])
best = int(test_mse.argmin())
print("test MSE per round:", np.round(test_mse, 4))
print(f"lowest at round {best}; last round is {test_mse[-1] / test_mse[best]:.2f}x that")

# %%
# The defaults: 5 fold networks per round, each stopping early on its held-out fold;
# every row's out-of-fold prediction scores the rounds, and the earliest round within
# one standard error of the best is used for prediction.
es = RecurrentExpansionRegressor(n_rounds=15, max_epochs=20, random_state=0).fit(X, y)
print(f"best_round_ = {es.best_round_} of {es.n_rounds_} rounds fitted; test MSE there "
      f"{np.mean((es.predict(X_test) - y_clean) ** 2):.4f}")

# %%
# Left: test error per round of the original method. Right: the defaults' training and
# out-of-fold loss per round, from ``history_``.
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
ax1.plot(test_mse, "o-")
ax1.axvline(best, color="grey", ls="--", label=f"minimum (round {best})")
ax1.set(xlabel="round", ylabel="test MSE vs the clean sine", yscale="log",
        title="staged_predict, in-sample, no early stopping")
ax1.legend()
plot_rounds(es, ax=ax2)
fig.tight_layout()
plt.show()
