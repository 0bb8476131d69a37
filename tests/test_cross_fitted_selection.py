"""Rounds scored on out-of-fold rows with ``cv``: no held-out split, every row
trains once per fold net and validates one of them, and every training row scores
every round."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import KFold

from sklearn_recursive import RecurrentExpansionClassifier, RecurrentExpansionRegressor
from sklearn_recursive._expansion import Outputs
from sklearn_recursive._rounds import Chain, Rows, selection_rows

from .conftest import fast

R, C = RecurrentExpansionRegressor, RecurrentExpansionClassifier


def _chain(oof):
    return Chain(task=None, n_rounds=2, loss=None, score=None, make_aggregator=None,
                 check_n_components=None, patience=1, tol=0.0, name="RE", lr=1e-3,
                 row_loss=lambda y, yhat: np.mean((yhat - y) ** 2, axis=1), oof=oof)


def test_selection_rows_are_the_out_of_fold_rows_then_the_validation_rows():
    train = Rows(np.zeros((3, 1)), np.zeros((3, 1)), sample_weight=np.array([1.0, 2.0, 3.0]))
    valid = Rows(np.zeros((2, 1)), np.ones((2, 1)))
    train_out = Outputs(np.array([[1.0], [2.0], [0.0]]), np.zeros((3, 1)))
    valid_out = Outputs(np.array([[1.0], [3.0]]), np.zeros((2, 1)))
    losses, weights = selection_rows(_chain(True), train, train_out, valid, valid_out)
    np.testing.assert_array_equal(losses, [1.0, 4.0, 0.0, 0.0, 4.0])
    np.testing.assert_array_equal(weights, [1.0, 2.0, 3.0, 1.0, 1.0])
    # in-sample IMTs are not honest: only the validation rows score the round
    losses, weights = selection_rows(_chain(False), train, train_out, valid, valid_out)
    np.testing.assert_array_equal(losses, [0.0, 4.0])
    assert selection_rows(_chain(False), train, train_out) is None


@pytest.mark.parametrize("Est, data", [(R, "regression_data"), (C, "classification_data")])
def test_with_cv_every_row_trains_and_the_rounds_are_scored_out_of_fold(Est, data, request):
    X, y = request.getfixturevalue(data)
    est = fast(Est, early_stopping=True, cv=3, n_rounds=3, max_epochs=60).fit(X, y)
    for record in est.history_:
        # no held-out split: the out-of-fold predictions of all 120 rows score the round
        assert record["valid_loss"] == record["train_loss"]
        assert record["valid_score"] == record["train_score"]
        for member in record["members"]:
            assert member["valid_loss"] == member["train_loss"]
    losses = [r["valid_loss"] for r in est.history_]
    assert est.best_round_ <= int(np.argmin(losses))
    # each fold net trained on the 80 rows of the other folds and early-stopped on its own 40
    for net in est.rounds_[0].nets:
        assert np.isfinite(net.history[:, "valid_loss"]).all()
        assert net.history[-1, "train_batch_count"] == int(np.ceil(80 / 32))
    assert len(est.rounds_[0].nets) == 3


def test_without_early_stopping_cv_fits_every_round_and_still_chooses_one(regression_data):
    X, y = regression_data
    est = fast(R, early_stopping=False, cv=KFold(3), n_rounds=4, max_epochs=5).fit(X, y)
    assert est.n_rounds_ == 4
    losses = [r["valid_loss"] for r in est.history_]
    assert np.isfinite(losses).all()
    best = clone(est).set_params(round_selection="best").fit(X, y)
    assert best.best_round_ == int(np.argmin(losses))
    # without cv nothing honest scores the rounds: the last one is used
    plain = fast(R, early_stopping=False, n_rounds=4, max_epochs=5).fit(X, y)
    assert plain.best_round_ == 3
    assert np.isnan([r["valid_loss"] for r in plain.history_]).all()


def test_continued_rounds_with_cv_never_score_worse_out_of_fold_than_round_zero(
        regression_data):
    """Each fold net of a continued round keeps its initial weights unless its held-out
    fold improves, so the out-of-fold loss of round 1 is at most round 0's."""
    X, y = regression_data
    rng = np.random.default_rng(1)
    y = y + rng.standard_normal(len(y)).astype(np.float32)  # noisy: little to correct
    for seed in range(3):
        est = fast(R, early_stopping=True, cv=3, n_rounds=3, max_epochs=40,
                   random_state=seed).fit(X, y)
        losses = [r["valid_loss"] for r in est.history_]
        assert all(b <= a + 1e-6 for a, b in zip(losses, losses[1:])), losses


def test_cv_predictions_are_reproducible_and_consistent_with_staged(classification_data):
    X, y = classification_data
    a = fast(C, early_stopping=True, cv=3, n_rounds=3).fit(X, y)
    b = fast(C, early_stopping=True, cv=3, n_rounds=3).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    staged = list(a.staged_predict_proba(X))
    np.testing.assert_array_equal(staged[a.best_round_], a.predict_proba(X))


@pytest.mark.parametrize("module", [None, "cnn"])  # stacked fold nets (MLP), one by one
def test_restore_best_weights_false_keeps_each_fold_nets_last_epoch(regression_data, module):
    """Every fold network stops as before (same epochs) and keeps its last epoch's weights
    instead of its best: the same histories, other predictions."""
    X, y = regression_data
    if module == "cnn":
        X = X[:, None, :]
    fits = {
        restore: fast(R, module=module, cv=KFold(3), n_rounds=1, max_epochs=40, lr=3e-2,
                      early_stopping=True, n_iter_no_change=3,
                      restore_best_weights=restore).fit(X, y)
        for restore in (True, False)
    }
    for restore, est in fits.items():
        for net in est.rounds_[0].nets:
            assert dict(net.callbacks_)["early_stopping"].load_best is restore
    nets = {restore: est.rounds_[0].nets for restore, est in fits.items()}
    stopped_early = 0
    for kept, best in zip(nets[False], nets[True]):
        losses = best.history[:, "valid_loss"]
        assert kept.history[:, "valid_loss"] == pytest.approx(losses)
        stopped_early += int(np.argmin(losses)) < len(losses) - 1
    assert stopped_early  # some fold net's best epoch was not its last
    assert not np.allclose(fits[False].predict(X), fits[True].predict(X))
