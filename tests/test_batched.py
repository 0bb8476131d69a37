"""Stacked training of same-shaped members: the same nets as one-by-one training."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.model_selection import KFold

from sklearn_recursive import MLPModule, RecurrentExpansionRegressor, _members
from sklearn_recursive._batched import train_stacked
from sklearn_recursive._members import ContinuedRound
from sklearn_recursive._training import (
    SAMPLE_WEIGHT,
    DivergenceError,
    FastNet,
    TensorDataset,
    TrainSettings,
    train_network,
)

from .conftest import requires_cuda

SEEDS = [0, 1, 2]
# lr and patience chosen so that, with validation, the members stop at
# different epochs before max_epochs.
SETTINGS = dict(max_epochs=15, batch_size=32, lr=3e-2, patience=2, tol=1e-3, device="cpu")


def _settings(criterion, **changes):
    return TrainSettings(criterion, **{**SETTINGS, **changes})


def _dataset(rng, n, criterion, x_shape, n_expansion, device):
    X = rng.standard_normal((n, *x_shape))
    flat = X.reshape(n, -1)
    Z = rng.standard_normal((n, n_expansion))
    if criterion is torch.nn.CrossEntropyLoss:
        y = (flat[:, 0] + flat[:, 1] > 0).astype(np.int64) + (flat[:, 2] > 1)
        return TensorDataset({"X": X, "Z": Z}, y, device, y_dtype=torch.int64), 3
    y = np.c_[flat[:, 0] - 2 * flat[:, 1], flat[:, 2]] + 0.3 * rng.standard_normal((n, 2))
    return TensorDataset({"X": X, "Z": Z}, y, device), 2


def _data(criterion, validation, x_shape=(4,), n_expansion=2, device="cpu"):
    rng = np.random.default_rng(0)
    # 150 rows: batches of 32 end with a partial one of 22.
    train, n_outputs = _dataset(rng, 150, criterion, x_shape, n_expansion, device)
    valid = _dataset(rng, 60, criterion, x_shape, n_expansion, device)[0] if validation else None
    n_features = x_shape[0] if len(x_shape) == 1 else x_shape

    def make_module():
        return MLPModule(n_features, n_expansion, n_outputs, hidden_layer_sizes=(8, 8))

    return train, valid, make_module


def _assert_same_fits(nets, criterion, train, valid, make_module):
    for net, seed in zip(nets, SEEDS):
        alone = train_network(make_module, train, valid, _settings(criterion), seed=seed)
        assert isinstance(net, FastNet) and net.train_split is None
        assert len(net.history) == len(alone.history)
        assert set(net.history[-1]) == set(alone.history[-1])
        for key in ["train_loss"] + (["valid_loss"] if valid is not None else []):
            np.testing.assert_allclose(
                net.history[:, key], alone.history[:, key], rtol=1e-5, atol=1e-6
            )
        np.testing.assert_allclose(
            net.history[0, "batches", 0, "train_loss"],
            alone.history[0, "batches", 0, "train_loss"],
            rtol=1e-6,
        )
        trained = dict(net.module_.named_parameters())
        for name, param in alone.module_.named_parameters():
            torch.testing.assert_close(trained[name], param, atol=1e-5, rtol=0)


@pytest.mark.parametrize("validation", [False, True], ids=["no_valid", "valid"])
@pytest.mark.parametrize("n_expansion", [2, 0])
@pytest.mark.parametrize("criterion", [torch.nn.MSELoss, torch.nn.CrossEntropyLoss])
def test_members_train_as_if_alone(criterion, n_expansion, validation):
    train, valid, make_module = _data(criterion, validation, n_expansion=n_expansion)
    rng_state = torch.get_rng_state()
    nets = train_stacked(
        [make_module] * len(SEEDS), train, valid, _settings(criterion), seeds=SEEDS
    )
    assert torch.equal(torch.get_rng_state(), rng_state)  # seeding leaves the global RNG
    assert len(nets) == len(SEEDS)
    epochs = [len(net.history) for net in nets]
    if validation:
        assert len(set(epochs)) > 1 and min(epochs) < SETTINGS["max_epochs"]
    else:
        assert epochs == [SETTINGS["max_epochs"]] * len(SEEDS)
    _assert_same_fits(nets, criterion, train, valid, make_module)


def _flattens_windows():
    try:
        MLPModule((2, 4), 0, 1)(torch.zeros(2, 2, 4), torch.zeros(2, 0))
    except (TypeError, ValueError, RuntimeError):
        return False
    return True


@pytest.mark.skipif(not _flattens_windows(), reason="MLPModule does not flatten 3-D X")
def test_window_inputs_are_flattened_as_mlp_module_does():
    criterion = torch.nn.MSELoss
    train, valid, make_module = _data(criterion, True, x_shape=(2, 3))
    nets = train_stacked(
        [make_module] * len(SEEDS), train, valid, _settings(criterion), seeds=SEEDS
    )
    _assert_same_fits(nets, criterion, train, valid, make_module)


def test_members_of_different_shapes_are_refused():
    train, _, make_module = _data(torch.nn.MSELoss, False)
    wider = lambda: MLPModule(4, 2, 2, hidden_layer_sizes=(8, 16))  # noqa: E731
    with pytest.raises(ValueError, match="one shape"):
        train_stacked(
            [make_module, wider], train, None, _settings(torch.nn.MSELoss), seeds=[0, 1]
        )
    with pytest.raises(ValueError, match="one length"):
        train_stacked(
            [make_module] * 2, train, None, _settings(torch.nn.MSELoss), seeds=[0]
        )
    with pytest.raises(TypeError, match="stacks MLPModule members"):
        train_stacked(
            [lambda: torch.nn.Linear(6, 2)],
            train,
            None,
            _settings(torch.nn.MSELoss),
            seeds=[0],
        )


def test_divergence_is_raised():
    train, _, make_module = _data(torch.nn.MSELoss, False)
    settings = _settings(torch.nn.MSELoss, lr=1e6)
    with pytest.raises(DivergenceError, match="training loss .*member"):
        train_stacked(
            [make_module] * 2, train, None, settings, seeds=[0, 1]
        )


def test_returned_nets_pickle():
    train, valid, make_module = _data(torch.nn.CrossEntropyLoss, True)
    nets = train_stacked(
        [make_module] * 2,
        train,
        valid,
        _settings(torch.nn.CrossEntropyLoss),
        seeds=[0, 1],
    )
    for net in nets:
        # Each member owns its weights: no view into the stacked tensors.
        weight = net.module_.head.weight
        assert weight.untyped_storage().nbytes() == weight.numel() * weight.element_size()
        loaded = pickle.loads(pickle.dumps(net))
        with torch.no_grad():
            torch.testing.assert_close(loaded.module_(**train.X), net.module_(**train.X))
        assert len(loaded.history) == len(net.history)


# --- members with rows of their own: the fold nets of a cross-fit ------------------------


def _fold_data(criterion, weighted, continued, n=103, n_expansion=3):
    """``n`` rows (5 folds of 21/20 rows: 82 or 83 training rows each) and a member builder."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((n, 4))
    if criterion is torch.nn.CrossEntropyLoss:
        n_outputs = 3
        y = ((X[:, 0] + X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 1), torch.int64)
        # a continued round's Z ends with the previous round's probabilities
        Z = np.c_[rng.standard_normal((n, 1)), rng.dirichlet(np.ones(n_outputs), n)]
    else:
        n_outputs = 2
        target = np.c_[X[:, 0] - 2 * X[:, 1], X[:, 2]] + 0.3 * rng.standard_normal((n, 2))
        y = (target, torch.float32)
        Z = np.c_[rng.standard_normal((n, 1)), target + 0.5 * rng.standard_normal((n, 2))]
    inputs = {"X": X, "Z": Z}
    if weighted:
        inputs[SAMPLE_WEIGHT] = rng.uniform(0.2, 2.0, n)
    data = TensorDataset(inputs, y[0], y_dtype=y[1])
    link = "log" if criterion is torch.nn.CrossEntropyLoss else "identity"

    def make_module():
        mlp = MLPModule(4, Z.shape[1], n_outputs, hidden_layer_sizes=(8, 8))
        return ContinuedRound(mlp, n_outputs, link) if continued else mlp

    return data, make_module


def _rows(data, index):
    """``data`` restricted to ``index``: the dataset a lone fold net trains on."""
    index = torch.as_tensor(index)
    out = TensorDataset.__new__(TensorDataset)
    out.X = {key: value[index] for key, value in data.X.items()}
    out.y = data.y[index]
    return out


def _batch_sizes(net, prefix="train"):
    key = prefix + "_batch_size"
    return [[batch[key] for batch in epoch["batches"] if key in batch] for epoch in net.history]


def _assert_fold_fits(nets, alone_nets, data, valid):
    for net, alone in zip(nets, alone_nets):
        assert len(net.history) == len(alone.history)
        assert _batch_sizes(net) == _batch_sizes(alone)
        keys = ["train_loss"] + (["valid_loss"] if valid else [])
        if valid:
            assert _batch_sizes(net, "valid") == _batch_sizes(alone, "valid")
        for key in keys:
            np.testing.assert_allclose(net.history[:, key], alone.history[:, key], rtol=1e-4)
        with torch.no_grad():
            inputs = {key: value for key, value in data.X.items() if key != SAMPLE_WEIGHT}
            torch.testing.assert_close(net.module_(**inputs), alone.module_(**inputs),
                                       atol=1e-4, rtol=0)


@pytest.mark.parametrize("batch_size", [32, 41, -1], ids=["bs32", "bs41_empty_last", "bs_all"])
@pytest.mark.parametrize("continued", [False, True], ids=["mlp", "continued"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("criterion", [torch.nn.MSELoss, torch.nn.CrossEntropyLoss])
def test_fold_members_train_as_if_alone_on_their_rows(criterion, weighted, continued,
                                                       batch_size):
    """Stacked fold nets, each on its own rows and stopping on its held-out fold, equal
    fold nets fitted one by one with `train_network` (same seed, as `_fit_one` does)."""
    data, make_module = _fold_data(criterion, weighted, continued)
    folds = list(KFold(5, shuffle=True, random_state=0).split(np.zeros(len(data))))
    train_rows = [train for train, _ in folds]
    valid_rows = [held for _, held in folds]
    # folds of 21 and 20 rows: 82 and 83 training rows; batches of 41 leave the
    # 83-row members a last batch of one row that the 82-row members do not have
    assert sorted({len(rows) for rows in train_rows}) == [82, 83]
    settings = _settings(criterion, batch_size=batch_size, keep_initial=continued,
                         max_epochs=12, patience=2)
    seeds = [3] * len(folds)
    nets = train_stacked([make_module] * len(folds), data, data, settings, seeds=seeds,
                         train_rows=train_rows, valid_rows=valid_rows)
    alone = [
        train_network(make_module, _rows(data, train), _rows(data, held), settings, seed=3)
        for train, held in folds
    ]
    if batch_size == 41:
        assert {len(net.history[0, "batches"]) - 1 for net in nets} == {2, 3}  # + 1 valid
    _assert_fold_fits(nets, alone, data, valid=True)


@pytest.mark.parametrize("shared_valid", [False, True], ids=["no_valid", "shared_valid"])
def test_fold_members_with_a_shared_or_no_validation_set(shared_valid):
    criterion = torch.nn.MSELoss
    data, make_module = _fold_data(criterion, True, False)
    valid, _ = _fold_data(criterion, True, False, n=37)
    valid = valid if shared_valid else None
    folds = list(KFold(5).split(np.zeros(len(data))))
    settings = _settings(criterion, batch_size=41)
    nets = train_stacked([make_module] * 5, data, valid, settings, seeds=[0, 1, 2, 3, 4],
                         train_rows=[train for train, _ in folds])
    alone = [train_network(make_module, _rows(data, train), valid, settings, seed=seed)
             for seed, (train, _) in enumerate(folds)]
    if not shared_valid:
        assert [len(net.history) for net in nets] == [settings.max_epochs] * 5
    _assert_fold_fits(nets, alone, data, valid=shared_valid)


def test_fold_members_stopping_on_their_training_loss():
    """Early stopping without validation data (``monitor="train_loss"``) keeps each
    member's best epoch, as alone."""
    criterion = torch.nn.MSELoss
    data, make_module = _fold_data(criterion, False, False)
    folds = list(KFold(5).split(np.zeros(len(data))))
    settings = _settings(criterion, monitor="train_loss", patience=1, tol=0.05, max_epochs=30)
    nets = train_stacked([make_module] * 5, data, None, settings, seeds=[0] * 5,
                         train_rows=[train for train, _ in folds])
    alone = [train_network(make_module, _rows(data, train), None, settings, seed=0)
             for train, _ in folds]
    epochs = [len(net.history) for net in nets]
    assert len(set(epochs)) > 1 and max(epochs) < settings.max_epochs
    _assert_fold_fits(nets, alone, data, valid=False)


def test_member_rows_are_checked():
    data, make_module = _fold_data(torch.nn.MSELoss, False, False)
    settings = _settings(torch.nn.MSELoss)
    with pytest.raises(ValueError, match="one index array per member"):
        train_stacked([make_module] * 2, data, None, settings, seeds=[0, 0],
                      train_rows=[np.arange(10)])
    with pytest.raises(ValueError, match=r"train_rows\[1\] must be a non-empty"):
        train_stacked([make_module] * 2, data, None, settings, seeds=[0, 0],
                      train_rows=[np.arange(10), np.array([5, 103])])
    with pytest.raises(ValueError, match="valid_rows needs valid_data"):
        train_stacked([make_module] * 2, data, None, settings, seeds=[0, 0],
                      valid_rows=[np.arange(10)] * 2)


def test_a_diverging_fold_is_named():
    data, make_module = _fold_data(torch.nn.MSELoss, False, False)
    folds = list(KFold(3).split(np.zeros(len(data))))
    with pytest.raises(DivergenceError, match=r"training loss .*\(mlp fold 0, seed 0\)"):
        train_stacked([make_module] * 3, data, None, _settings(torch.nn.MSELoss, lr=1e6),
                      seeds=[0] * 3, labels=[f"mlp fold {f}" for f in range(3)],
                      train_rows=[train for train, _ in folds])


def _cv_regressor():
    return RecurrentExpansionRegressor(
        cv=3, early_stopping=True, hidden_layer_sizes=(16,), n_rounds=2, max_epochs=20,
        batch_size=32, lr=1e-2, device="cpu", random_state=0,
    )


def test_cross_fitted_estimator_stacks_its_fold_nets_as_if_one_by_one(monkeypatch):
    """Through the estimator: the stacked fold nets give the sequential loop's model."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 5))
    y = X[:, 0] - 2 * X[:, 1] ** 2 + 0.1 * rng.standard_normal(120)
    calls = []
    train_folds = _members._train_folds
    monkeypatch.setattr(_members, "_train_folds",
                        lambda *args, **kwargs: calls.append(1) or train_folds(*args, **kwargs))
    stacked = _cv_regressor().fit(X, y)
    assert len(calls) == 2  # each round's fold nets were stacked
    monkeypatch.setattr(_members, "_stackable", lambda make_module: False)
    sequential = _cv_regressor().fit(X, y)  # the loop of `train_network` fits
    assert len(calls) == 2
    assert stacked.best_round_ == sequential.best_round_
    np.testing.assert_allclose(stacked.predict(X), sequential.predict(X), atol=1e-4, rtol=0)


@requires_cuda
def test_members_train_as_if_alone_on_cuda():
    criterion = torch.nn.CrossEntropyLoss
    train, valid, make_module = _data(criterion, True, device="cuda")
    settings = _settings(criterion, device="cuda")
    nets = train_stacked(
        [make_module] * len(SEEDS), train, valid, settings, seeds=SEEDS
    )
    for net, seed in zip(nets, SEEDS):
        alone = train_network(make_module, train, valid, settings, seed=seed)
        assert net.module_.head.weight.is_cuda
        assert len(net.history) == len(alone.history)
        for a, b in zip(net.module_.parameters(), alone.module_.parameters()):
            torch.testing.assert_close(a, b, atol=1e-4, rtol=0)


def test_multiverse_members_and_their_folds_train_in_one_stack(monkeypatch):
    """A seed multiverse with cv: its k members x f folds are one stack, and the same
    model as each member's fold nets trained one by one."""
    from sklearn_recursive import MultiverseRE

    rng = np.random.default_rng(1)
    X = rng.standard_normal((90, 4))
    y = X[:, 0] * X[:, 1] + 0.1 * rng.standard_normal(90)
    sizes = []
    stack = _members._train_folds
    monkeypatch.setattr(_members, "_train_folds", lambda task, builders, *args, **kwargs:
                        sizes.append(len(builders)) or stack(task, builders, *args, **kwargs))
    stacked = MultiverseRE(_cv_regressor(), members=3, random_state=0).fit(X, y)
    assert sizes == [3, 3]  # every round: the 3 members' 3 fold nets, one stack
    monkeypatch.setattr(_members, "_stackable", lambda make_module: False)
    alone = MultiverseRE(_cv_regressor(), members=3, batched=False, random_state=0).fit(X, y)
    assert stacked.best_round_ == alone.best_round_
    np.testing.assert_allclose(stacked.predict(X), alone.predict(X), atol=1e-4, rtol=0)
