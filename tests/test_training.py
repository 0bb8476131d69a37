"""The fast training path: tensors on the device, sliced batches, skorch around them."""

import pickle
import warnings

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback
from skorch.exceptions import DeviceWarning
from skorch.helper import predefined_split

from sklearn_recursive import MLPModule, RecurrentExpansionRegressor
from sklearn_recursive._training import (
    FastNet,
    SizeGroups,
    SliceIterator,
    TensorDataset,
    TrainSettings,
    make_net,
    resolve_device,
    train_network,
)

from .conftest import fast


def _data(n=50, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))  # float64 on purpose
    y = X[:, :1] * 2.0
    return X, y


def test_dataset_is_float32_and_copies_readonly_arrays():
    X, y = _data()
    X.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "non-writable array" warning from torch
        data = TensorDataset({"X": X, "Z": np.zeros((50, 0))}, y)
    assert data.X["X"].dtype == torch.float32 and data.y.dtype == torch.float32
    assert len(data) == 50
    assert TensorDataset(X, np.arange(50), y_dtype=torch.int64).y.dtype == torch.int64


@pytest.mark.parametrize("batch_size", [1, 7, 50, 64])
def test_slice_iterator_covers_every_row_once(batch_size):
    X, y = _data()
    y = np.arange(50, dtype=np.float32)
    data = TensorDataset({"X": X}, y)
    it = SliceIterator(data, batch_size=batch_size, shuffle=True, seed=3)
    epochs = [torch.cat([yb for _, yb in it]) for _ in range(2)]
    assert len(it) == -(-50 // batch_size)
    for seen in epochs:
        assert sorted(seen.tolist()) == list(range(50))
    if batch_size < 50:
        assert not torch.equal(epochs[0], epochs[1])  # reshuffled every epoch
    again = torch.cat([yb for _, yb in SliceIterator(data, batch_size, shuffle=True, seed=3)])
    assert torch.equal(again, epochs[0])  # the seed fixes the order
    # the inputs travel with their targets
    for xb, yb in SliceIterator(data, batch_size, shuffle=True, seed=1):
        torch.testing.assert_close(xb["X"], data.X["X"][yb.long()])


def test_slice_iterator_batches_size_groups_apart():
    # three sizes: 10 rows of length 4, 7 of length 6, 5 of length 9; y numbers the rows
    sizes = {4: 10, 6: 7, 9: 5}
    groups, start = [], 0
    for length, n in sizes.items():
        ids = np.arange(start, start + n, dtype=np.float32)
        groups.append(TensorDataset(np.repeat(ids[:, None], length, axis=1), ids))
        start += n
    data = SizeGroups(groups)
    assert len(data) == 22 and data[11][1] == 11  # row 11 is the second row of length 6
    it = SliceIterator(data, batch_size=3, shuffle=True, seed=0)
    assert len(it) == 4 + 3 + 2
    batches = list(it)
    assert len(batches) == len(it)
    seen = torch.cat([yb for _, yb in batches])
    assert sorted(seen.tolist()) == list(range(22))  # every row once
    for xb, yb in batches:
        assert xb.shape[1] in sizes  # one size a batch, the rows with their targets
        torch.testing.assert_close(xb, yb[:, None].expand_as(xb))
    lengths = [xb.shape[1] for xb, _ in batches]
    assert lengths != sorted(lengths, key=list(sizes).index)  # the sizes interleave
    again = [yb for _, yb in SliceIterator(data, 3, shuffle=True, seed=0)]
    assert all(torch.equal(a, b) for (_, a), b in zip(batches, again))  # seeded


def test_slice_iterator_transforms_every_batch_with_its_generator():
    X, _ = _data()
    data = TensorDataset(X, np.arange(50, dtype=np.float32))
    calls = []

    def negate_some(xb, yb, generator):
        calls.append(len(yb))
        flip = bool(torch.randint(2, (1,), generator=generator))
        return (-xb, -yb) if flip else (xb, yb)

    batches = list(SliceIterator(data, 16, transform=negate_some, seed=4))
    assert calls == [16, 16, 16, 2]
    signs = [float(torch.sign(yb[-1])) for _, yb in batches]
    assert set(signs) == {-1.0, 1.0}  # some batches transformed, some not
    again = list(SliceIterator(data, 16, transform=negate_some, seed=4))
    assert all(torch.equal(a[1], b[1]) for a, b in zip(batches, again))  # seeded
    plain = torch.cat([yb for _, yb in SliceIterator(data, 16)])
    assert torch.equal(torch.cat([yb.abs() for _, yb in batches]), plain)


def test_slice_iterator_without_shuffle_keeps_order():
    X, y = _data()
    data = TensorDataset(X, np.arange(50, dtype=np.float32))
    order = torch.cat([yb for _, yb in SliceIterator(data, 16)])
    assert order.tolist() == list(range(50))


def _train(valid=None, **kwargs):
    X, y = _data(200)
    data = TensorDataset({"X": X, "Z": np.zeros((200, 0))}, y)
    seed = kwargs.pop("seed", 0)
    params = dict(max_epochs=5, batch_size=32, lr=1e-2, patience=2, tol=0.0, device="cpu")
    settings = TrainSettings(torch.nn.MSELoss, **{**params, **kwargs})
    return train_network(lambda: MLPModule(3, 0, 1, (8,)), data, valid, settings, seed=seed)


def test_no_silent_validation_split():
    net = _train()
    assert isinstance(net, FastNet)
    assert net.train_split is None
    assert "valid_loss" not in net.history[-1]
    # every row trains: the batch sizes of an epoch add up to all 200 rows
    assert sum(net.history[-1, "batches", :, "train_batch_size"]) == 200


@pytest.mark.parametrize("restore_best", [True, False])
def test_early_stopping_with_validation_data_keeps_best_or_last(restore_best):
    """The same quiet stop; the best epoch's weights restored, or (``restore_best=False``)
    the last epoch's kept."""
    X, y = _data(60, seed=1)
    y = y + 3 * np.random.default_rng(2).standard_normal(y.shape)  # noise to overfit
    valid = TensorDataset({"X": X, "Z": np.zeros((60, 0))}, y)
    net = _train(valid, max_epochs=200, lr=5e-2, patience=3, restore_best=restore_best)
    losses = net.history[:, "valid_loss"]
    assert len(losses) < 200  # stopped early, quietly
    best = int(np.argmin(losses))
    assert len(losses) == best + 1 + 3
    with torch.no_grad():
        final = torch.nn.functional.mse_loss(
            net.module_(valid.X["X"], valid.X["Z"]), valid.y
        ).item()
    if restore_best:
        assert final == pytest.approx(losses[best], rel=1e-5)
    else:
        assert final == pytest.approx(losses[-1], rel=1e-5)
        assert final > losses[best] * (1 + 1e-4)


def test_same_seed_same_weights_and_different_seed_differs():
    a, b, c = _train(), _train(), _train(seed=1)
    wa, wb, wc = (n.module_.head.weight for n in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)


def test_user_keyboard_interrupt_is_not_swallowed():
    class Interrupt(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(3, 1)

        def forward(self, X, Z):
            raise KeyboardInterrupt

    X, y = _data()
    data = TensorDataset({"X": X, "Z": np.zeros((50, 0))}, y)
    with pytest.raises(KeyboardInterrupt):
        settings = TrainSettings(torch.nn.MSELoss, max_epochs=2, batch_size=8, lr=1e-3)
        train_network(Interrupt, data, None, settings, seed=0)


def test_one_dimensional_target_trains_without_broadcasting(recwarn):
    # skorch issue #972: a 1-D y against an (n, 1) output broadcasts silently
    X, y = _data()
    reg = fast(RecurrentExpansionRegressor).fit(X, y.ravel())
    assert not [w for w in recwarn if "broadcast" in str(w.message)]
    target = reg.rounds_[0].nets[0]
    assert target.history[-1, "train_loss"] < target.history[0, "train_loss"]


def test_resolve_device():
    assert resolve_device("cpu") == "cpu"
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto") == expected
    reg = fast(RecurrentExpansionRegressor, device="auto").fit(*_data())
    assert reg.device_ == expected


def test_model_marked_as_cuda_loads_on_a_machine_without_one():
    # What skorch does when a CUDA-fitted net is unpickled without a GPU, on
    # a CPU-fitted model whose nets claim to live on CUDA.
    if torch.cuda.is_available():
        pytest.skip("simulates a machine without CUDA")
    X, y = _data()
    reg = fast(RecurrentExpansionRegressor).fit(X, y.ravel())
    expected = reg.predict(X)
    for rnd in reg.rounds_:
        for net in rnd.nets:
            net.device = "cuda"
    reg.device_ = "cuda"
    with pytest.warns(DeviceWarning):
        restored = pickle.loads(pickle.dumps(reg))
    assert str(restored.rounds_[0].nets[0].device) == "cpu"
    np.testing.assert_allclose(restored.predict(X), expected)


def test_lean_train_step_keeps_skorch_callbacks_working():
    from skorch.callbacks import Callback

    class CountGradients(Callback):
        def initialize(self):
            self.calls, self.grad_norms = 0, []
            return self

        def on_grad_computed(self, net, named_parameters, **kwargs):
            self.calls += 1
            self.grad_norms.append(sum(float(p.grad.norm()) for _, p in named_parameters))

    X, y = _data(64)
    data = TensorDataset({"X": X, "Z": np.zeros((64, 0))}, y)
    counter = CountGradients()
    torch.manual_seed(0)
    net = FastNet(MLPModule(3, 0, 1, (4,)), criterion=torch.nn.MSELoss,
                  optimizer=torch.optim.Adam, lr=1e-2, max_epochs=2, batch_size=16,
                  iterator_train=SliceIterator, train_split=None, callbacks=[counter],
                  verbose=0)
    net.fit(data, None)
    assert counter.calls == 2 * 4 and all(g > 0 for g in counter.grad_norms)
    assert len(net.history) == 2
    assert net.history[-1, "train_loss"] < net.history[0, "train_loss"]


# FastNet replaces or wraps these skorch methods; their source as of the skorch
# release we test (1.4.0). A new skorch that changes one fails here: compare
# FastNet's version with the new one, then update the digest.
SKORCH_STEPS = {
    "train_step": "2ad8fed0c95d0dff",  # replaced: the same steps without a closure
    "_set_training": "a398870a0c03e9f5",  # replaced: only modules whose mode changes
    "infer": "3eefdb7b0c18c3d9",  # replaced: batches are device tensors already
    "get_loss": "5d51e67a3ad3884b",  # replaced: plus row weights
    "fit_loop": "923234bb20cfc26f",  # wrapped: early stopping / Ctrl-C signals
    "partial_fit": "fe221562edc98a8a",  # wrapped: swallows KeyboardInterrupt
    "run_single_epoch": "947082ec48f1395a",  # replaced: batch size from the target slice
}


@pytest.mark.parametrize("name", sorted(SKORCH_STEPS))
def test_skorch_steps_that_fastnet_relies_on_are_unchanged(name):
    import hashlib
    import inspect

    from skorch import NeuralNet

    digest = hashlib.sha1(inspect.getsource(getattr(NeuralNet, name)).encode()).hexdigest()
    assert digest[:16] == SKORCH_STEPS[name], (
        f"skorch changed NeuralNet.{name}: check FastNet.{name} against it, then update "
        "SKORCH_STEPS"
    )


def test_early_stopping_weights_are_restored_when_interrupted():
    X, y = _data(60, seed=1)
    y = y + 3 * np.random.default_rng(2).standard_normal(y.shape)  # noise to overfit
    data = TensorDataset({"X": X, "Z": np.zeros((60, 0))}, y)
    X_va, y_va = _data(60, seed=3)
    valid = TensorDataset({"X": X_va, "Z": np.zeros((60, 0))}, y_va)

    class InterruptAt(Callback):
        def on_epoch_end(self, net, **kwargs):
            if len(net.history) == 12:
                raise KeyboardInterrupt

    settings = TrainSettings(torch.nn.MSELoss, max_epochs=50, batch_size=16, lr=5e-2,
                             patience=100, callbacks=(("stop", InterruptAt()),))
    net = make_net(MLPModule(3, 0, 1, (8,)), settings, early_stopping=True,
                   train_split=predefined_split(valid)).initialize()
    with pytest.raises(KeyboardInterrupt):  # not swallowed by skorch's partial_fit
        net.partial_fit(data)
    losses = net.history[:, "valid_loss"]
    assert len(losses) == 12 and int(np.argmin(losses)) < 11
    with torch.no_grad():
        restored = torch.nn.functional.mse_loss(
            net.module_(valid.X["X"], valid.X["Z"]), valid.y).item()
    assert restored == pytest.approx(min(losses), rel=1e-5)  # on_train_end ran
