"""The estimators behave the way scikit-learn users expect."""

import functools
import pickle

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.decomposition import TruncatedSVD
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_recursive import (
    MLPModule,
    RecurrentExpansionClassifier,
    RecurrentExpansionRegressor,
)
from sklearn_recursive.datasets import make_sinusoid

from .conftest import fast


def test_types():
    assert is_regressor(RecurrentExpansionRegressor())
    assert is_classifier(RecurrentExpansionClassifier())


def test_fit_predict_shapes(estimator_and_data):
    est, (X, y) = estimator_and_data
    est.fit(X, y)
    pred = est.predict(X)
    assert pred.shape == (len(X),)
    assert est.n_features_in_ == X.shape[1]
    assert est.n_rounds_ == 2 and len(est.rounds_) == 2 and len(est.history_) == 2
    assert est.best_round_ == 1  # no early stopping: the last round
    assert est.rounds_[0].aggregator is not None and est.rounds_[-1].aggregator is None
    assert est.rounds_[0].aggregator.transform(np.zeros((1, 16))).shape == (1, 2)


def test_regressor_learns(regression_data):
    X, y = regression_data
    reg = fast(RecurrentExpansionRegressor, max_epochs=60).fit(X, y)
    assert reg.score(X, y) > 0.9
    assert reg.predict(X).dtype == np.float64


def test_classifier_learns_and_proba(classification_data):
    X, y = classification_data
    clf = fast(RecurrentExpansionClassifier, max_epochs=60).fit(X, y)
    assert set(clf.classes_) == {"maybe", "no", "yes"}
    assert clf.score(X, y) > 0.85
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-9)
    assert set(clf.predict(X)) <= set(clf.classes_)


def test_multioutput_regression(regression_data):
    X, y = regression_data
    Y = np.column_stack([y, -3 * y + 1])
    reg = fast(RecurrentExpansionRegressor, max_epochs=60).fit(X, Y)
    pred = reg.predict(X)
    assert pred.shape == Y.shape
    assert reg.score(X, Y) > 0.9


def test_history_records(estimator_and_data):
    est, (X, y) = estimator_and_data
    est.set_params(early_stopping=True, validation_fraction=0.25, n_rounds=3,
                   round_selection="best")
    est.fit(X, y)
    keys = {"round", "train_loss", "valid_loss", "train_score", "valid_score", "aulc",
            "epochs", "seconds", "curve", "best"}
    for i, record in enumerate(est.history_):
        assert keys <= set(record)
        assert record["round"] == i
        assert np.isfinite(record["valid_loss"]) and np.isfinite(record["aulc"])
        assert 1 <= record["epochs"] <= est.max_epochs
        assert len(record["curve"]) == record["epochs"]
        assert record["seconds"] > 0
    best = [r["round"] for r in est.history_ if r["best"]]
    assert best == [est.best_round_]
    losses = [r["valid_loss"] for r in est.history_]
    assert est.best_round_ == int(np.argmin(losses))


def test_staged_predict_matches_predict(estimator_and_data):
    est, (X, y) = estimator_and_data
    est.set_params(n_rounds=3).fit(X, y)
    staged = list(est.staged_predict(X))
    assert len(staged) == 3
    np.testing.assert_array_equal(staged[est.best_round_], est.predict(X))
    if is_classifier(est):
        probas = list(est.staged_predict_proba(X))
        np.testing.assert_allclose(probas[-1], est.predict_proba(X))


def test_predict_uses_best_round(regression_data):
    X, y = regression_data
    reg = fast(RecurrentExpansionRegressor, n_rounds=3).fit(X, y)
    staged = list(reg.staged_predict(X))
    reg.best_round_ = 0  # predict must follow best_round_, not the last round
    np.testing.assert_allclose(reg.predict(X), staged[0])
    assert not np.allclose(staged[0], staged[2])


def test_early_stopping_stops_rounds():
    # pure noise: nothing to improve on after a round or two
    rng = np.random.default_rng(0)
    X = rng.standard_normal((150, 3)).astype(np.float32)
    y = rng.standard_normal(150).astype(np.float32)
    reg = fast(RecurrentExpansionRegressor, n_rounds=30, early_stopping=True,
               n_iter_no_change=2, validation_fraction=0.3).fit(X, y)
    assert reg.n_rounds_ < 30
    assert reg.n_rounds_ == reg.best_round_ + 3  # best, then 2 stale rounds
    assert all(r["epochs"] <= 20 for r in reg.history_)


def test_expansion_improves_sinusoid():
    # the method's point: later rounds fit the sinusoid better than round 0
    X, y = make_sinusoid(600, noise=0.1, random_state=0)
    Xt, yt = make_sinusoid(300, noise=0.0, random_state=1)
    reg = RecurrentExpansionRegressor((32, 32), n_rounds=3, n_components=4, max_epochs=40,
                                      lr=3e-3, device="cpu", random_state=0).fit(X, y)
    mse = [np.mean((p - yt) ** 2) for p in reg.staged_predict(Xt)]
    assert mse[-1] < 0.5 * mse[0]


@pytest.mark.parametrize(
    "aggregator", ["pca", "concat", "random", TruncatedSVD(n_components=3, random_state=0)]
)
def test_aggregators(aggregator, regression_data):
    X, y = regression_data
    reg = fast(RecurrentExpansionRegressor, aggregator=aggregator).fit(X, y)
    width = {"pca": 2, "concat": 16, "random": 2}.get(aggregator, 3)
    Z = reg.rounds_[0].aggregator.transform(np.ones((4, 16)))
    assert Z.shape == (4, width)
    # the second network saw raw input + compressed maps + one prediction column
    first = reg.rounds_[1].nets[0].module_.network.body[0]  # inside ContinuedRound
    assert first.in_features == X.shape[1] + width + 1
    assert np.isfinite(reg.predict(X)).all()


@pytest.mark.parametrize("cv", [3, KFold(3, shuffle=True, random_state=0)])
def test_cross_fitting(cv, estimator_and_data):
    est, (X, y) = estimator_and_data
    est.set_params(cv=cv).fit(X, y)
    assert all(len(r.nets) == 3 for r in est.rounds_)
    # fold nets of a round share their initial weights but not their data
    w = [net.module_.head.weight.detach() for net in est.rounds_[0].nets]
    assert not torch.equal(w[0], w[1])
    assert est.predict(X).shape == (len(X),)


def test_cross_fitted_train_loss_is_out_of_fold(regression_data):
    X, y = regression_data
    y = y + np.random.default_rng(1).standard_normal(len(y)).astype(np.float32)
    insample = fast(RecurrentExpansionRegressor, max_epochs=80, hidden_layer_sizes=(64,))
    crossfit = clone(insample).set_params(cv=4)
    insample.fit(X, y)
    crossfit.fit(X, y)
    # out-of-fold errors are honest, so larger than in-sample ones on noisy data
    assert crossfit.history_[0]["train_loss"] > insample.history_[0]["train_loss"]


class TwoLayerModule(torch.nn.Module):
    """A user network following the module contract."""

    def __init__(self, n_features, n_expansion, n_outputs, width=8):
        super().__init__()
        self.inner = torch.nn.Linear(n_features + n_expansion, width)
        self.out = torch.nn.Linear(width, n_outputs)

    def features(self, X, Z):
        return torch.tanh(self.inner(torch.cat([X, Z], dim=1)))

    def forward(self, X, Z):
        return self.out(self.features(X, Z))


def test_custom_module(estimator_and_data):
    est, (X, y) = estimator_and_data
    est.set_params(module=functools.partial(TwoLayerModule, width=6)).fit(X, y)
    assert isinstance(est.rounds_[0].nets[0].module_, TwoLayerModule)
    assert est.rounds_[0].n_maps == 6
    restored = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(restored.predict(X), est.predict(X))


def test_mlp_module_contract():
    module = MLPModule(3, 2, 4, hidden_layer_sizes=(5, 7))
    X, Z = torch.zeros(6, 3), torch.zeros(6, 2)
    maps, out = module.features_and_output(X, Z)
    assert maps.shape == (6, 7) and out.shape == (6, 4)
    torch.testing.assert_close(module(X, Z), out)


def test_clone_and_params():
    est = RecurrentExpansionRegressor((8, 4), n_rounds=3, aggregator="random", cv=5)
    cloned = clone(est)
    assert cloned.get_params() == est.get_params()
    cloned.set_params(n_rounds=7)
    assert est.n_rounds == 3 and cloned.n_rounds == 7


def test_pipeline(regression_data):
    X, y = regression_data
    pipe = make_pipeline(StandardScaler(), fast(RecurrentExpansionRegressor))
    pipe.fit(X * 100 + 5, y)
    assert pipe.score(X * 100 + 5, y) > 0.5


def test_grid_search_parallel(regression_data):
    X, y = regression_data
    search = GridSearchCV(
        fast(RecurrentExpansionRegressor, max_epochs=5),
        {"n_rounds": [1, 2], "hidden_layer_sizes": [(8,), (16,)]},
        cv=2,
        n_jobs=2,
        error_score="raise",
    ).fit(X, y)
    assert len(search.cv_results_["params"]) == 4
    assert search.best_estimator_.n_rounds_ == search.best_params_["n_rounds"]


def test_cross_val_score(classification_data):
    X, y = classification_data
    scores = cross_val_score(fast(RecurrentExpansionClassifier, max_epochs=5), X, y, cv=3)
    assert scores.shape == (3,) and np.all((scores >= 0) & (scores <= 1))


def test_pickle_and_joblib_round_trip(estimator_and_data, tmp_path):
    est, (X, y) = estimator_and_data
    est.fit(X, y)
    expected = est.predict(X)
    restored = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(restored.predict(X), expected)
    joblib.dump(est, tmp_path / "model.joblib")
    loaded = joblib.load(tmp_path / "model.joblib")
    np.testing.assert_array_equal(loaded.predict(X), expected)
    np.testing.assert_equal(loaded.history_, est.history_)


def test_pickle_where_builtins_print_was_replaced(regression_data, monkeypatch):
    """``ray.shutdown()`` leaves ``builtins.print`` replaced; skorch's default log
    sink then no longer pickles by name. Every network of the package must."""
    import builtins

    from sklearn_recursive import FeedbackSegmenter, MultiverseRE
    from sklearn_recursive.datasets import make_noisy_shapes

    X, y = regression_data
    images, masks = make_noisy_shapes(8, size=8, random_state=0)
    fitted = [
        fast(RecurrentExpansionRegressor).fit(X, y),
        MultiverseRE(fast(RecurrentExpansionRegressor), members=2).fit(X, y),  # stacked
        FeedbackSegmenter(2, base_channels=2, depth=1, max_epochs=1,
                          device="cpu", random_state=0).fit(images, masks),
    ]
    original = builtins.print
    monkeypatch.setattr(builtins, "print", lambda *a, **k: original(*a, **k))
    for est in fitted:
        restored = pickle.loads(pickle.dumps(est))
        assert type(restored) is type(est)


def test_pickle_does_not_carry_training_data(regression_data):
    X, y = regression_data
    reg = fast(RecurrentExpansionRegressor, early_stopping=True).fit(X, y)
    assert all(net.train_split is None for rnd in reg.rounds_ for net in rnd.nets)


def test_same_random_state_same_predictions(estimator_and_data):
    est, (X, y) = estimator_and_data
    first = clone(est).set_params(cv=2).fit(X, y)
    second = clone(est).set_params(cv=2).fit(X, y)
    np.testing.assert_array_equal(first.predict(X), second.predict(X))
    other = clone(est).set_params(cv=2, random_state=1).fit(X, y)
    if is_regressor(est):
        assert not np.array_equal(first.predict(X), other.predict(X))


def test_fit_does_not_touch_global_torch_rng(regression_data):
    X, y = regression_data
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    fast(RecurrentExpansionRegressor).fit(X, y)
    torch.testing.assert_close(torch.rand(3), expected)


def test_pandas_keeps_feature_names(regression_data):
    pd = pytest.importorskip("pandas")
    X, y = regression_data
    df = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    reg = fast(RecurrentExpansionRegressor).fit(df, pd.Series(y))
    np.testing.assert_array_equal(reg.feature_names_in_, ["a", "b", "c", "d"])
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        from_array = reg.predict(X)
    np.testing.assert_allclose(reg.predict(df), from_array)
    with pytest.raises(ValueError, match="feature names"):
        reg.predict(df.rename(columns={"a": "z"}))


def test_float64_and_int_inputs(regression_data):
    X, y = regression_data
    reg = fast(RecurrentExpansionRegressor).fit(X.astype(np.float64), y.astype(np.float64))
    assert np.isfinite(reg.predict(X.astype(np.int64))).all()


def test_verbose_prints_rounds(regression_data, capsys):
    X, y = regression_data
    fast(RecurrentExpansionRegressor, verbose=1, early_stopping=True).fit(X, y)
    out = capsys.readouterr().out
    assert "round" in out and "best round: " in out
    assert len([line for line in out.splitlines() if line.strip().startswith("1 ")]) == 1


def test_silent_by_default(regression_data, capsys):
    from sklearn_recursive import FeedbackSegmenter, MultiverseRE
    from sklearn_recursive.datasets import make_noisy_shapes

    X, y = regression_data
    fast(RecurrentExpansionRegressor, early_stopping=True).fit(X, y)
    MultiverseRE(fast(RecurrentExpansionRegressor), members=2).fit(X, y)  # stacked
    images, masks = make_noisy_shapes(8, size=8, random_state=0)
    FeedbackSegmenter(2, base_channels=2, depth=1, max_epochs=1, device="cpu",
                      random_state=0).fit(images, masks)
    assert capsys.readouterr().out == ""


def test_verbose_2_prints_epochs(regression_data, capsys):
    X, y = regression_data
    fast(RecurrentExpansionRegressor, verbose=2).fit(X, y)
    assert "train_loss" in capsys.readouterr().out


@pytest.mark.parametrize("params", [{}, {"cv": 3}, {"early_stopping": True}])
def test_more_rounds_extend_the_same_chain(regression_data, params):
    # splits and folds do not depend on n_rounds: the first rounds are shared
    X, y = regression_data
    short = fast(RecurrentExpansionRegressor, n_rounds=2, **params).fit(X, y)
    long = fast(RecurrentExpansionRegressor, n_rounds=3, **params).fit(X, y)
    for a, b in zip(short.staged_predict(X), long.staged_predict(X)):
        np.testing.assert_array_equal(a, b)
