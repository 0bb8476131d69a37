"""Defects a new user hit (issue 11): each test failed before its fix."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import check_fit_idempotent, set_random_state

from sklearn_recursive import (
    MultiverseRE,
    RecurrentExpansionClassifier,
    RecurrentExpansionRegressor,
)

from .conftest import fast

R, C = RecurrentExpansionRegressor, RecurrentExpansionClassifier


@pytest.mark.parametrize(
    "make",
    [
        lambda: MultiverseRE(fast(C, early_stopping=True), members=["mlp", "gru"],
                             weighting="score", n_select=1),
        lambda: fast(R),
        lambda: MultiverseRE(fast(R), members=["mlp", "cnn", "transformer"]),
    ],
    ids=["mv_mlp_gru_classifier", "re", "mv_windows"],
)
def test_prediction_does_not_depend_on_the_other_rows(make, user_threads):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 2, 12)).astype(np.float32)
    est = make()
    y = (X[:, 0, -1] > 0).astype(int) if isinstance(est.estimator if hasattr(
        est, "members") else est, C) else X[:, 0, -1]
    est.fit(X, y)
    predict = getattr(est, "predict_proba", est.predict)
    full = predict(X)
    for rows in [slice(0, 1), slice(5, 9), slice(3, 270), slice(250, None)]:
        assert np.array_equal(predict(X[rows]), full[rows])


def test_multiverse_is_seeded_the_scikit_learn_way(regression_data):
    X, y = regression_data
    unseeded = MultiverseRE(fast(R, random_state=None), members=2)
    check_fit_idempotent("MultiverseRE", unseeded)  # set_random_state reaches the fit
    a = MultiverseRE(fast(R, random_state=None), members=2, random_state=3).fit(X, y)
    b = MultiverseRE(fast(R, random_state=7), members=2, random_state=3).fit(X, y)
    assert a.estimator_.random_state == 3
    assert np.array_equal(a.predict(X), b.predict(X))
    default = MultiverseRE()
    set_random_state(default, 5)  # estimator=None: the default estimator gets the seed
    assert default.random_state == 5
    assert default._make_estimator().random_state == 5


def test_multiverse_estimator_is_a_fitted_estimator(regression_data, classification_data):
    X, y = regression_data
    mv = MultiverseRE(fast(R), members=["mlp", "cnn"]).fit(X, y)
    assert hasattr(mv.estimator_, "n_features_in_") and mv.estimator_.n_features_in_ == 4
    assert np.array_equal(mv.estimator_.predict(X), mv.predict(X))
    assert mv.history_ is mv.estimator_.history_ and mv.rounds_ is mv.estimator_.rounds_
    assert not hasattr(mv, "classes_")
    Xc, yc = classification_data
    mvc = MultiverseRE(fast(C), members=2).fit(Xc, yc)
    assert np.array_equal(mvc.classes_, mvc.estimator_.classes_)
    unfitted = MultiverseRE(fast(R))
    assert not hasattr(unfitted, "n_features_in_") and not hasattr(unfitted, "history_")
    with pytest.raises(NotFittedError):
        unfitted.predict(X)


def test_unscaled_features_are_standardised():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 20)) * 1e7 + 3e7
    y = X[:, 0] / 1e7 + 0.1 * rng.standard_normal(300)
    reg = fast(R, max_epochs=40).fit(X, y)
    assert reg.score(X, y) > 0.8
    np.testing.assert_allclose(reg.x_mean_, X.mean(axis=0))
    raw = fast(R, max_epochs=40, standardize=False)
    assert not hasattr(raw.fit(X[:, :3] / 1e7, y), "x_mean_")


def test_windows_are_standardised_per_channel():
    rng = np.random.default_rng(0)
    W = rng.standard_normal((80, 3, 10)) * [[[1.0], [100.0], [1e6]]]
    reg = fast(R).fit(W, W[:, 0, -1])
    assert reg.x_mean_.shape == (3,) and reg.x_scale_.shape == (3,)
    np.testing.assert_allclose(reg.x_scale_, W.transpose(1, 0, 2).reshape(3, -1).std(axis=1))


def test_values_beyond_float32_get_a_clear_error(regression_data):
    X, y = regression_data
    big = X.astype(np.float64)
    big[0, 0] = 1e39
    with pytest.raises(ValueError, match="beyond float32's range.*standardize=True"):
        fast(R, standardize=False).fit(big, y)
    reg = fast(R).fit(X, y)  # standardised: a 1e39 at predict is far outside training
    with pytest.raises(ValueError, match="beyond float32's range .* after standardisation"):
        reg.predict(big)


def _nan_transform(maps):
    return np.full_like(maps, np.nan)


def test_an_aggregator_that_outputs_nan_is_named(regression_data):
    X, y = regression_data
    agg = FunctionTransformer(_nan_transform)
    with pytest.raises(ValueError, match="aggregator FunctionTransformer.*non-finite"):
        fast(R, aggregator=agg).fit(X, y)


@pytest.mark.parametrize(
    "est, match",
    [
        (fast(R, n_rounds=True), "'n_rounds' parameter .* must be an int in the range"),
        (fast(R, max_epochs=False), "'max_epochs' parameter .* must be an int"),
        (MultiverseRE(fast(R), n_jobs=0), "'n_jobs' parameter of MultiverseRE must be"),
        (MultiverseRE(fast(R), members=True), "'members' parameter of MultiverseRE"),
    ],
)
def test_bool_and_zero_parameters_are_refused_at_fit(est, match, regression_data):
    with pytest.raises(InvalidParameterError, match=match):
        est.fit(*regression_data)


def test_sample_weight_reaches_every_loss():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 3)).astype(np.float32)
    favoured = np.arange(300) < 150  # these rows follow y = x0, the others y = -x0
    y = np.where(favoured, X[:, 0], -X[:, 0])
    w = np.where(favoured, 1.0, 1e-3)
    for est in [
        fast(R, max_epochs=60),
        fast(R, max_epochs=60, early_stopping=True),
        fast(R, max_epochs=60, cv=2),
        MultiverseRE(fast(R, max_epochs=60), members=3),  # stacked
        MultiverseRE(fast(R, max_epochs=60, early_stopping=True), members=["mlp", "cnn"],
                     n_select=1),
    ]:
        weighted = clone(est).fit(X, y, sample_weight=w).score(X[favoured], y[favoured])
        plain = clone(est).fit(X, y).score(X[favoured], y[favoured])
        assert weighted > 0.95 and weighted - plain > 0.25, (est, weighted, plain)


def test_sample_weight_scores_rounds_and_members(classification_data):
    X, y = classification_data
    w = np.random.default_rng(1).uniform(0.5, 2, len(y))
    clf = fast(C, early_stopping=True).fit(X, y, sample_weight=w)
    ones = fast(C, early_stopping=True).fit(X, y, sample_weight=np.ones(len(y)))
    plain = fast(C, early_stopping=True).fit(X, y)
    assert [h["valid_loss"] for h in ones.history_] == pytest.approx(
        [h["valid_loss"] for h in plain.history_], rel=1e-5)
    assert [h["valid_loss"] for h in clf.history_] != pytest.approx(
        [h["valid_loss"] for h in plain.history_], rel=1e-5)


@pytest.mark.parametrize(
    "weight, match",
    [
        (-np.ones(120), "Negative values in data passed to `sample_weight`"),
        (np.zeros(120), "Sample weights must contain at least one non-zero number"),
        (np.ones(7), "sample_weight.shape == \\(7,\\), expected \\(120,\\)"),
    ],
)
def test_bad_sample_weight(weight, match, regression_data):
    with pytest.raises(ValueError, match=match):
        fast(R).fit(*regression_data, sample_weight=weight)


def test_torch_threads_of_the_caller_are_kept(regression_data, user_threads):
    X, y = regression_data
    MultiverseRE(fast(R), members=["mlp", "cnn"]).fit(X, y)
    assert torch.get_num_threads() == user_threads


def test_sample_weight_on_one_class_or_no_validation_row(classification_data):
    X, y = classification_data
    one_class = (y == "yes").astype(float)
    with pytest.raises(ValueError, match="rows of at least 2 classes; only class \\['yes'\\]"):
        fast(C).fit(X, y, sample_weight=one_class)
    # one weighted row (of 120); with random_state=0 it trains, and the 6 held-out
    # validation rows all weigh 0
    w = np.zeros(len(y))
    w[0] = 1.0
    with pytest.raises(ValueError, match="all of them have sample_weight 0"):
        fast(R, early_stopping=True, validation_fraction=0.05).fit(
            X, np.arange(len(y), dtype=float), sample_weight=w)


def test_expansion_stays_finite_for_rows_far_from_a_flat_component():
    from sklearn_recursive._expansion import ExpansionRound, Outputs, expand

    reg = fast(R)
    # a second map with a variance of 1e-50 on the training rows (not "constant"
    # for StandardScaler): a new row at 1e15 on it is 1e40 standard deviations away
    maps = np.c_[np.linspace(0, 1, 9), 1e-25 * np.arange(9)]
    agg = reg._make_aggregator(0).fit(maps)
    rnd = ExpansionRound(members=[], weights=np.ones(1), aggregator=agg)
    far = Outputs(yhat=np.zeros((1, 1)), maps=np.array([[0.5, 1e15]]))
    Z = expand(rnd, far)
    assert np.isfinite(Z).all() and np.abs(Z).max() <= 1e3


def test_cv_splitters_that_do_not_fit_the_training_rows_are_refused(regression_data):
    from sklearn.model_selection import PredefinedSplit, ShuffleSplit

    X, y = regression_data
    other = PredefinedSplit(np.arange(len(X) + 10) % 2)  # made for 130 rows
    with pytest.raises(ValueError, match="cv gives row index 129, but cross-fitting splits "
                                         "the 120 training rows"):
        fast(R, early_stopping=True, cv=other).fit(X, y)
    with pytest.raises(ValueError, match="hold out every training row exactly once"):
        fast(R, cv=ShuffleSplit(3, test_size=0.2, random_state=0)).fit(X, y)
    # with cv there is no separate validation split: a splitter of all rows fits
    fast(R, early_stopping=True, cv=PredefinedSplit(np.arange(len(X)) % 2)).fit(X, y)
