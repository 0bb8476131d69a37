"""The rounds as an ensemble (combine_rounds="mean"): what predicts, what is scored."""

import pickle

import numpy as np
import pytest
from sklearn.utils._param_validation import InvalidParameterError

from sklearn_recursive import (
    MultiverseRE,
    RecurrentExpansionClassifier,
    RecurrentExpansionRegressor,
)
from sklearn_recursive._expansion import Outputs, running_means
from sklearn_recursive._rounds import _Combined

from .conftest import fast


def noisy_data(n=200, seed=0, classes=False):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 4))
    y = np.sin(2 * X[:, 0]) + X[:, 1] + 0.5 * rng.standard_normal(n)
    return X, (np.digitize(y, [-0.5, 0.5]) if classes else y)


def mean_model(cls, **params):
    defaults = dict(
        n_rounds=4, cv=3, round_init="random", combine_rounds="mean", early_stopping=True
    )
    return fast(cls, **{**defaults, **params})


def test_running_means():
    arrays = [np.array([1.0, 2.0]), np.array([3.0, 4.0]), np.array([8.0, 0.0])]
    out = list(running_means(iter(arrays)))
    np.testing.assert_allclose(out, [[1, 2], [2, 3], [4, 2]])
    assert arrays[0].tolist() == [1.0, 2.0]  # the inputs are not changed


def test_combined_outputs_are_the_running_mean_and_last_is_the_round_itself():
    first = Outputs(np.array([[1.0], [3.0]]), np.zeros((2, 2)))
    second = Outputs(np.array([[3.0], [5.0]]), np.ones((2, 2)))
    last = _Combined("last")
    assert last.add(first, None)[0] is first
    mean = _Combined("mean")
    mean.add(first, None)
    train, valid = mean.add(second, None)
    assert valid is None
    np.testing.assert_allclose(train.yhat, [[2.0], [4.0]])


@pytest.mark.parametrize("cls", [RecurrentExpansionRegressor, RecurrentExpansionClassifier])
def test_staged_predictions_are_running_means_of_the_rounds(cls):
    classes = cls is RecurrentExpansionClassifier
    X, y = noisy_data(classes=classes)
    model = mean_model(cls, random_state=0).fit(X, y)
    staged = getattr(model, "staged_predict_proba" if classes else "staged_predict")
    means = list(staged(X))
    model.combine_rounds = "last"  # the same fitted rounds, each on its own
    rounds = list(staged(X))
    model.combine_rounds = "mean"
    assert len(means) == len(rounds) == model.n_rounds_
    for r in range(len(rounds)):
        np.testing.assert_allclose(means[r], np.mean(rounds[: r + 1], axis=0), rtol=1e-6)
    # predict is the chain's prediction at best_round_
    if classes:
        np.testing.assert_allclose(model.predict_proba(X), means[model.best_round_])
        np.testing.assert_array_equal(
            model.predict(X), list(model.staged_predict(X))[model.best_round_]
        )
    else:
        np.testing.assert_allclose(model.predict(X), means[model.best_round_])


@pytest.mark.parametrize("combine", ["last", "mean"])
def test_best_round_is_the_lowest_selection_loss(combine):
    X, y = noisy_data(seed=1)
    model = mean_model(
        RecurrentExpansionRegressor, round_selection="best", combine_rounds=combine, random_state=0
    ).fit(X, y)
    losses = [record["selection_loss"] for record in model.history_]
    assert model.best_round_ == int(np.argmin(losses))
    # round 0's mean is round 0: both modes score it the same
    assert losses[0] == pytest.approx(model.history_[0]["valid_loss"], rel=1e-6)
    if combine == "last":
        np.testing.assert_allclose(losses, [r["valid_loss"] for r in model.history_], rtol=1e-6)


def test_mean_selection_scores_the_mean_of_the_out_of_fold_predictions():
    # the selection loss of round 1 is the loss of the mean of rounds 0 and 1's
    # out-of-fold predictions, which is at most the mean of their losses
    # (squared error is convex) and differs from round 1's own loss
    X, y = noisy_data(seed=2)
    model = mean_model(
        RecurrentExpansionRegressor,
        round_selection="best",
        n_rounds=2,
        early_stopping=False,
        random_state=0,
    ).fit(X, y)
    h = model.history_
    assert h[1]["selection_loss"] <= (h[0]["valid_loss"] + h[1]["valid_loss"]) / 2 + 1e-9
    assert h[1]["selection_loss"] != pytest.approx(h[1]["valid_loss"], rel=1e-9)


def test_mean_is_deterministic_pickles_and_works_in_a_multiverse():
    X, y = noisy_data(seed=3, classes=True)
    a = mean_model(RecurrentExpansionClassifier, random_state=0).fit(X, y)
    b = mean_model(RecurrentExpansionClassifier, random_state=0).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    c = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(a.predict_proba(X), c.predict_proba(X))
    mv = MultiverseRE(mean_model(RecurrentExpansionClassifier), members=2, random_state=0).fit(X, y)
    staged = list(mv.staged_predict(X))
    np.testing.assert_array_equal(mv.predict(X), staged[mv.best_round_])


def test_combine_rounds_is_validated():
    X, y = noisy_data()
    with pytest.raises(InvalidParameterError, match="combine_rounds"):
        RecurrentExpansionRegressor(combine_rounds="median").fit(X, y)
