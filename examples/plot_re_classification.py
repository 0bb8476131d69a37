"""
Recurrent Expansion for classification
======================================

`RecurrentExpansionClassifier` is the classifier twin: each round's network sees the
features plus the previous round's compressed feature maps and class probabilities.
Here: the wine dataset that ships with scikit-learn, probabilities from
``predict_proba``, and the accuracy of every round from ``staged_predict``.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_wine
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from sklearn_recursive import RecurrentExpansionClassifier

X, y = load_wine(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y,
                                                    random_state=0)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

# %%
# Five rounds; early stopping holds out 10% of the training rows to pick the round.
clf = RecurrentExpansionClassifier(n_rounds=5, max_epochs=50, random_state=0)
clf.fit(X_train, y_train)
print(f"test accuracy: {clf.score(X_test, y_test):.3f}, best_round_ {clf.best_round_}")
print("class probabilities of the first 3 test rows:")
print(np.round(clf.predict_proba(X_test[:3]), 3))

# %%
# The accuracy of every round on the test rows, and each round's out-of-fold score.
staged = [np.mean(p == y_test) for p in clf.staged_predict(X_test)]
for record, acc in zip(clf.history_, staged):
    print(f"round {record['round']}: out-of-fold loss {record['valid_loss']:.3f}, "
          f"test accuracy {acc:.3f}")

fig, ax = plt.subplots(figsize=(5, 3.5))
ax.plot(staged, "o-")
ax.axvline(clf.best_round_, color="grey", ls="--", label="best_round_")
ax.set(xlabel="round", ylabel="test accuracy", title="wine: accuracy per round")
ax.legend()
fig.tight_layout()
plt.show()
