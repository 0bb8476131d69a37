"""Stacked training of same-shaped members: the same nets as one-by-one training."""

import pickle

import numpy as np
import pytest
import torch

from sklearn_recursive import MLPModule
from sklearn_recursive._batched import train_stacked
from sklearn_recursive._training import (
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
