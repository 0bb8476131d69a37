"""Bad input gets a clear error at the edge; failures during fit are handled."""

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError

from sklearn_recursive import (
    DivergenceError,
    RecurrentExpansionClassifier,
    RecurrentExpansionRegressor,
)

from .conftest import fast

R, C = RecurrentExpansionRegressor, RecurrentExpansionClassifier

rng = np.random.default_rng(0)
X = rng.standard_normal((40, 4)).astype(np.float32)
y_reg = X[:, 0].copy()
y_clf = (X[:, 0] > 0).astype(int)


def _with(array, index, value):
    out = np.array(array, dtype=object if isinstance(value, str) else None)
    out[index] = value
    return out


class WrongOutputModule(torch.nn.Module):
    def __init__(self, n_features, n_expansion, n_outputs):
        super().__init__()
        self.lin = torch.nn.Linear(n_features + n_expansion, n_outputs + 1)

    def features(self, X, Z):
        return self.lin(torch.cat([X, Z], 1))

    def forward(self, X, Z):
        return self.features(X, Z)


def _not_a_module(n_features, n_expansion, n_outputs):
    return "a network"


# (id, estimator class, params, X, y, expected error, message pattern)
FIT_CASES = [
    ("nan-X", R, {}, _with(X, (0, 0), np.nan), y_reg, ValueError, "Input X contains NaN"),
    ("inf-X", R, {}, _with(X, (3, 1), np.inf), y_reg, ValueError, "Input X contains infinity"),
    ("nan-y", R, {}, X, _with(y_reg, 2, np.nan), ValueError, "Input y contains NaN"),
    ("inf-y", R, {}, X, _with(y_reg, 2, -np.inf), ValueError, "Input y contains infinity"),
    ("string-X", R, {}, _with(X, (0, 0), "abc"), y_reg, ValueError,
     "could not convert string to float: 'abc'"),
    ("complex-X", R, {}, X + 1j, y_reg, ValueError, "Complex data not supported"),
    ("string-y-regressor", R, {}, X, np.array(["a", "b"] * 20), ValueError,
     "needs numeric y.*use RecurrentExpansionClassifier"),
    ("one-sample", R, {}, X[:1], y_reg[:1], ValueError, "1 sample"),
    ("empty", R, {}, X[:0], y_reg[:0], ValueError, "0 sample"),
    ("1d-X", R, {}, X[:, 0], y_reg, ValueError, "Expected 2D array, got 1D array"),
    ("4d-X", R, {}, X.reshape(40, 1, 2, 2), y_reg, ValueError,
     r"X must be 2-D .* or 3-D windows .* got a 4-D array of shape \(40, 1, 2, 2\)"),
    ("y-length", R, {}, X, y_reg[:-1], ValueError, "inconsistent numbers of samples"),
    ("y-3d", R, {}, X, y_reg.reshape(40, 1, 1), ValueError,
     r"y must be 1-D \(n_samples,\) or 2-D .* got shape \(40, 1, 1\)"),
    ("y-2d-classifier", C, {}, X, np.column_stack([y_clf, y_clf]), ValueError,
     "y should be a 1d array"),
    ("continuous-y-classifier", C, {}, X, y_reg, ValueError, "Unknown label type"),
    ("one-class", C, {}, X, np.zeros(40, int), ValueError, "at least 2 classes"),
    ("n_rounds=0", R, {"n_rounds": 0}, X, y_reg, ValueError,
     "'n_rounds' parameter of RecurrentExpansionRegressor must be an int in the range"),
    ("aggregator=foo", R, {"aggregator": "foo"}, X, y_reg, ValueError,
     "'aggregator' parameter .* must be a str among"),
    ("n_components-too-large", R, {"n_components": 17}, X, y_reg, ValueError,
     r"n_components=17 is larger .* 16 feature maps.*n_components <= 16"),
    ("n_components-random", C, {"aggregator": "random", "n_components": 40}, X, y_clf,
     ValueError, "n_components=40 is larger"),
    ("negative-lr", R, {"lr": -0.1}, X, y_reg, ValueError, "'lr' parameter"),
    ("zero-batch", R, {"batch_size": 0}, X, y_reg, ValueError, "'batch_size' parameter"),
    ("validation_fraction", R, {"validation_fraction": 1.5}, X, y_reg, ValueError,
     "'validation_fraction' parameter"),
    ("cv=1", R, {"cv": 1}, X, y_reg, ValueError, "'cv' parameter"),
    ("hidden_layer_sizes", R, {"hidden_layer_sizes": (16, 0)}, X, y_reg, ValueError,
     r"hidden_layer_sizes must be .* got \(16, 0\)"),
    ("hidden_layer_sizes-empty", C, {"hidden_layer_sizes": ()}, X, y_clf, ValueError,
     "hidden_layer_sizes must be"),
    ("device-unknown", R, {"device": "tpu"}, X, y_reg, ValueError,
     "device must be 'auto', 'cpu', 'cuda'"),
    ("too-few-for-validation", R, {"early_stopping": True, "validation_fraction": 0.5},
     X[:3], y_reg[:3], ValueError, "too few training rows"),
    ("module-wrong-output", R, {"module": WrongOutputModule}, X, y_reg, ValueError,
     r"module.forward\(X, Z\) must return shape \(n_samples, 1\); it returned \(2, 2\)"),
    ("module-not-a-module", C, {"module": _not_a_module}, X, y_clf, TypeError,
     "returning a torch.nn.Module; it returned str"),
]


@pytest.mark.parametrize(
    "est_class, params, X_bad, y_bad, error, match",
    [case[1:] for case in FIT_CASES],
    ids=[case[0] for case in FIT_CASES],
)
def test_bad_fit_input(est_class, params, X_bad, y_bad, error, match):
    with pytest.raises(error, match=match):
        fast(est_class, **params).fit(X_bad, y_bad)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_cuda_without_gpu():
    with pytest.raises(ValueError, match="PyTorch sees no CUDA device"):
        fast(R, device="cuda").fit(X, y_reg)


@pytest.mark.parametrize("est_class, y", [(R, y_reg), (C, y_clf)])
@pytest.mark.parametrize("method", ["predict", "staged_predict", "score"])
def test_predict_before_fit(est_class, y, method):
    est = fast(est_class)
    with pytest.raises(NotFittedError, match="not fitted yet"):
        out = getattr(est, method)(X) if method != "score" else est.score(X, y)
        list(out) if method == "staged_predict" else out


@pytest.mark.parametrize(
    "X_new, match",
    [
        (X[:, :3], "X has 3 features, but RecurrentExpansionRegressor is expecting 4"),
        (_with(X, (1, 1), np.nan), "Input X contains NaN"),
        (X[0], "Expected 2D array, got 1D array"),
        (X.reshape(40, 2, 2), r"fitted on 2-D input of trailing shape \(4,\); got a 3-D"),
    ],
    ids=["n-features", "nan", "1d", "3d-after-2d"],
)
def test_bad_predict_input(X_new, match):
    reg = fast(R).fit(X, y_reg)
    with pytest.raises(ValueError, match=match):
        reg.predict(X_new)


W = rng.standard_normal((40, 2, 6)).astype(np.float32)


@pytest.mark.parametrize(
    "W_new, match",
    [
        (W[:, :, :5], r"windows of shape \(2, 5\) .* fitted on windows of shape \(2, 6\)"),
        (W[:, :1], "X has 1 features, but RecurrentExpansionRegressor is expecting 2"),
        (W[:, 0], r"fitted on windows \(n_samples, n_channels, length\) of trailing shape"),
        (_with(W, (0, 1, 2), np.inf), "Input X contains infinity"),
    ],
    ids=["length", "channels", "2d-after-3d", "inf"],
)
def test_bad_window_predict_input(W_new, match):
    reg = fast(R).fit(W, y_reg)
    with pytest.raises(ValueError, match=match):
        reg.predict(W_new)


@pytest.mark.parametrize("est_class, y", [(R, y_reg), (C, y_clf)])
def test_diverging_loss_names_round_and_lr(est_class, y):
    est = fast(est_class, lr=1e3)
    with pytest.raises(DivergenceError, match=r"diverged in round 0 .*Lower lr \(now 1000\.0\)"):
        est.fit(X, y)
    assert not hasattr(est, "best_round_")


def test_nan_loss_is_caught():
    # inputs so large that the first forward pass overflows float32 (unless
    # standardised, as they are by default)
    est = fast(R, standardize=False)
    with pytest.raises(DivergenceError, match="training loss became nan"):
        est.fit(X * 1e30, y_reg)


class InterruptingModule(torch.nn.Module):
    """Raises KeyboardInterrupt while training in round ``interrupt_in`` (0, or 1 for any
    later round: a network with an expansion input); never in eval mode (the probe)."""

    interrupt_in = 1

    def __init__(self, n_features, n_expansion, n_outputs):
        super().__init__()
        self.lin = torch.nn.Linear(n_features + n_expansion, n_outputs)
        self.round = int(n_expansion > 0)

    def features(self, X, Z):
        return torch.cat([X, Z], 1)

    def forward(self, X, Z):
        if self.training and self.round == self.interrupt_in:
            raise KeyboardInterrupt
        return self.lin(self.features(X, Z))


def test_keyboard_interrupt_keeps_finished_rounds():
    reg = fast(R, module=InterruptingModule, n_rounds=4, aggregator="concat")
    match = "interrupted before round 1 finished: the 1 finished round"
    with pytest.warns(UserWarning, match=match):
        reg.fit(X, y_reg)
    assert reg.interrupted_ and reg.n_rounds_ == 1 and reg.best_round_ == 0
    assert reg.predict(X).shape == (40,)


def test_keyboard_interrupt_in_first_round_propagates(monkeypatch):
    reg = fast(R, module=InterruptingModule)
    monkeypatch.setattr(InterruptingModule, "interrupt_in", 0)
    with pytest.raises(KeyboardInterrupt):
        reg.fit(X, y_reg)
    assert not hasattr(reg, "rounds_") or not reg.rounds_


def test_keyboard_interrupt_between_rounds(monkeypatch):
    import sklearn_recursive._rounds as rounds_module

    def interrupted_expand(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(rounds_module, "expand", interrupted_expand)
    reg = fast(R, n_rounds=3)
    with pytest.warns(UserWarning, match="interrupted before round 1 finished: the 1 finished"):
        reg.fit(X, y_reg)
    assert reg.interrupted_ and reg.n_rounds_ == 1 and reg.rounds_[0].aggregator is None
    assert reg.predict(X).shape == (40,)
