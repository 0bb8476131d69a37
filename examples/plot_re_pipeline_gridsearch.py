"""
Recurrent Expansion in a Pipeline, tuned with GridSearchCV
==========================================================

`RecurrentExpansionRegressor` is a scikit-learn regressor: it goes into a Pipeline
after a scaler and is tuned like any other estimator. Here: the diabetes dataset that
ships with scikit-learn, a search over the number of rounds and the network's width,
and a comparison on held-out rows with scikit-learn's own MLP and gradient boosting.
"""

import matplotlib.pyplot as plt
from sklearn.datasets import load_diabetes
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_recursive import RecurrentExpansionRegressor

X, y = load_diabetes(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)

# %%
# The pipeline, and a small grid. Parameters of a pipeline step are named
# ``<step>__<parameter>``.
pipe = make_pipeline(StandardScaler(),
                     RecurrentExpansionRegressor(max_epochs=50, random_state=0))
grid = {
    "recurrentexpansionregressor__n_rounds": [1, 3],
    "recurrentexpansionregressor__hidden_layer_sizes": [(32,), (64, 64)],
}
search = GridSearchCV(pipe, grid, cv=3).fit(X_train, y_train)
print("best parameters:", search.best_params_)
print(f"cross-validated R^2 of the best: {search.best_score_:.3f}")

# %%
# Held-out R^2 against two scikit-learn baselines on the same split.
baselines = {
    "MLPRegressor": make_pipeline(StandardScaler(), MLPRegressor(
        hidden_layer_sizes=(64, 64), early_stopping=True, max_iter=2000, random_state=0)),
    "HistGradientBoosting": HistGradientBoostingRegressor(random_state=0),
}
scores = {"RE (tuned)": search.score(X_test, y_test)}
for name, model in baselines.items():
    scores[name] = model.fit(X_train, y_train).score(X_test, y_test)
for name, score in scores.items():
    print(f"{name:>22}: test R^2 {score:.3f}")

# %%
# The fitted RE of the best pipeline keeps a record of its rounds.
re = search.best_estimator_[-1]
print("rounds fitted:", re.n_rounds_, "best_round_:", re.best_round_)
fig, ax = plt.subplots(figsize=(6, 3))
ax.barh(list(scores), list(scores.values()))
ax.set(xlabel="test R^2", title="diabetes, 25% held out")
fig.tight_layout()
plt.show()
