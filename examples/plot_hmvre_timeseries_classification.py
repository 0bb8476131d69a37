"""
Heterogeneous multiverse on a time-series classification task
=============================================================

`MultiverseRE` with different architectures as members (HMVRE) reads the series as
windows ``(n_samples, n_channels, length)``: an MLP, a 1-D CNN, a GRU and a Transformer
are trained side by side in every round, and their maps and predictions are
aggregated. The data are ItalyPowerDemand from the UCR archive, which ships with
``aeon`` (``pip install aeon``): 67 training and 1029 test days of 24 hourly readings,
to be told apart as winter or summer days.
"""

import matplotlib.pyplot as plt
import numpy as np
from aeon.datasets import load_italy_power_demand
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.neural_network import MLPClassifier

from sklearn_recursive import MultiverseRE, RecurrentExpansionClassifier

X_train, y_train = load_italy_power_demand(split="train")
X_test, y_test = load_italy_power_demand(split="test")
X_train, X_test = X_train.astype(np.float32), X_test.astype(np.float32)
print("windows:", X_train.shape, "classes:", np.unique(y_train))

# %%
# Three rounds of four members; each member cross-fitted on 5 folds of the 67 training
# days (the default), its fold networks stopping early on their held-out folds.
inner = RecurrentExpansionClassifier(n_rounds=3, max_epochs=40, random_state=0)
hmvre = MultiverseRE(inner, members=["mlp", "cnn", "gru", "transformer"]).fit(
    X_train, y_train)
print(f"HMVRE test accuracy: {hmvre.score(X_test, y_test):.3f} "
      f"(best_round_ {hmvre.best_round_})")

# %%
# Every member's out-of-fold loss in every round is in ``history_``.
for record in hmvre.history_:
    losses = ", ".join(f"{m['name']} {m['valid_loss']:.3f}" for m in record["members"])
    print(f"round {record['round']}: {losses}")

# %%
# Baselines on the flattened windows.
flat_train, flat_test = X_train.reshape(len(X_train), -1), X_test.reshape(len(X_test), -1)
scores = {"HMVRE": hmvre.score(X_test, y_test)}
for name, model in {
    "MLPClassifier": MLPClassifier(hidden_layer_sizes=(64, 64), max_iter=1000,
                                   random_state=0),
    "HistGradientBoosting": HistGradientBoostingClassifier(random_state=0),
}.items():
    scores[name] = model.fit(flat_train, y_train).score(flat_test, y_test)
    print(f"{name} test accuracy: {scores[name]:.3f}")

# %%
# Members' out-of-fold loss per round.
fig, ax = plt.subplots(figsize=(6, 3.5))
for i, name in enumerate(m["name"] for m in hmvre.history_[0]["members"]):
    ax.plot([r["members"][i]["valid_loss"] for r in hmvre.history_], "o-", label=name)
ax.set(xlabel="round", ylabel="out-of-fold loss", title="HMVRE members")
ax.legend()
fig.tight_layout()
plt.show()
