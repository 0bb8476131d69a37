"""A fast, well-behaved training path for small networks on skorch.

skorch's default data path builds every batch sample by sample through a
``DataLoader`` and a collate function.  For the small tabular networks of this
package that costs several times the network's own work.  Here the data are
moved to the device once, as tensors, and each batch is a slice of them.  The
rest of skorch (callbacks, history, early stopping, checkpointing) is used as
is.

The helpers also fix what skorch leaves to the user: float32 inputs, targets
of the right shape, shuffling, no silent validation split, seeding, a
``device="auto"`` choice, a guard against a diverging loss, and a
``KeyboardInterrupt`` that reaches the caller instead of being swallowed.
"""

import copy
import hashlib
import math
import threading
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import Callback, EarlyStopping
from skorch.helper import predefined_split
from skorch.utils import TeeGenerator

from ._progress import print_log

__all__ = ["DivergenceError", "TrainSettings"]


class DivergenceError(FloatingPointError):
    """Raised when a network's training loss stops being finite.

    A diverging loss (usually a learning rate that is too high, or inputs on a
    very large scale) would otherwise leave a model that predicts NaN.
    """


def resolve_device(device):
    """Return the torch device string that ``device`` asks for.

    ``"auto"`` means CUDA when PyTorch sees a GPU, the CPU otherwise.
    """
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device must be 'auto', 'cpu', 'cuda' or a torch device string such "
            f"as 'cuda:1'; got {device!r}."
        ) from exc
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was asked for but PyTorch sees no CUDA device; "
            "use device='auto' or device='cpu'."
        )
    return str(parsed)


# Seeding goes through torch's global RNG, which all threads of a process share:
# with joblib's threading backend two members built at once would draw their
# initial weights from each other's seeds.  Builds hold this lock.
_BUILD_LOCK = threading.RLock()


def seeded_build(make_module, seed=None):
    """``make_module()`` under ``torch.manual_seed(seed)``, the CPU's RNG untouched.

    With ``seed=None`` the module is built from the current RNG state, which
    is then restored.  Thread-safe.  Without CUDA only the CPU generator is
    seeded: ``torch.manual_seed`` queues a seeding of every absent
    accelerator, with a stack trace each (about a millisecond a build).
    """
    with _BUILD_LOCK, torch.random.fork_rng(devices=[]):
        if seed is not None:
            if torch.cuda.is_available():
                torch.manual_seed(seed)
            else:
                torch.default_generator.manual_seed(seed)
        return make_module()


def _to_tensor(array, device, dtype):
    # torch.tensor copies: read-only or memory-mapped arrays are fine.
    return torch.tensor(np.asarray(array), dtype=dtype, device=device)


class TensorDataset(torch.utils.data.Dataset):
    """Tensors already on the device, sliced into batches by `SliceIterator`.

    Parameters
    ----------
    X : array or dict of arrays
        Network inputs; a dict is passed to ``module.forward`` as keyword
        arguments.  Floating arrays are stored as float32.
    y : array or None
        Targets, stored as given by ``y_dtype``.
    device : str
        Where the tensors live.
    """

    def __init__(self, X, y=None, device="cpu", y_dtype=torch.float32):
        if isinstance(X, Mapping):
            self.X = {k: _to_tensor(v, device, torch.float32) for k, v in X.items()}
        else:
            self.X = _to_tensor(X, device, torch.float32)
        self.y = None if y is None else _to_tensor(y, device, y_dtype)

    def __len__(self):
        first = next(iter(self.X.values())) if isinstance(self.X, dict) else self.X
        return len(first)

    def __getitem__(self, index):  # random access, for completeness
        return _take(self.X, index), None if self.y is None else self.y[index]


# Rows' weights travel in the input dict under this key; modules never see it.
SAMPLE_WEIGHT = "sample_weight"


def _module_inputs(X):
    """The dict of module inputs, without the rows' weights."""
    return {k: v for k, v in X.items() if k != SAMPLE_WEIGHT} if SAMPLE_WEIGHT in X else X


def elementwise(criterion):
    """A copy of ``criterion`` (a loss class or module) with ``reduction="none"``.

    Its mean is the criterion's default ``"mean"`` reduction.
    """
    if isinstance(criterion, torch.nn.Module):
        loss_fn = copy.deepcopy(criterion)
        loss_fn.reduction = "none"
        return loss_fn
    return criterion(reduction="none")


def weighted_mean(losses, weight):
    """Per-element ``losses`` of shape ``(..., b, ...)`` averaged per row, then weighted.

    ``weight`` has shape ``(..., b)``: one weight per row (leading dims are
    members, for stacked training). Returns ``sum(w * loss) / sum(w)`` over
    the rows.
    """
    per_row = losses.reshape(*weight.shape, -1).mean(dim=-1)
    return (per_row * weight).sum(dim=-1) / weight.sum(dim=-1).clamp_min(1e-12)


def _take(X, index):
    if isinstance(X, dict):
        return {k: v[index] for k, v in X.items()}
    return X[index]


class SizeGroups(torch.utils.data.Dataset):
    """Samples of several sizes: one `TensorDataset` per size, batched apart.

    `SliceIterator` slices each group on its own, so every batch holds samples
    of one size (tensors of one shape); with ``shuffle`` it interleaves the
    groups' batches in a random order.

    Parameters
    ----------
    groups : list of TensorDataset
    """

    def __init__(self, groups):
        self.groups = list(groups)

    def __len__(self):
        return sum(len(group) for group in self.groups)

    def __getitem__(self, index):  # random access, for completeness
        for group in self.groups:
            if index < len(group):
                return group[index]
            index -= len(group)
        raise IndexError(index)


def _groups(dataset):
    return dataset.groups if isinstance(dataset, SizeGroups) else [dataset]


class SliceIterator:
    """Iterate over a `TensorDataset` (or `SizeGroups`) in contiguous slices.

    With ``shuffle=True`` the rows are permuted once per epoch (one gather)
    and then sliced, which is what a hand-written PyTorch loop does.  The
    groups of a `SizeGroups` are sliced one by one; with ``shuffle=True``
    their batches then come in a random order.  ``transform(X, y, generator)``,
    when given, maps every batch to the one yielded (random augmentation,
    drawn from the iterator's seeded generator).
    """

    def __init__(self, dataset, batch_size, shuffle=False, seed=None, transform=None):
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.transform = transform
        self.generator = None
        if shuffle or transform is not None:
            self.generator = torch.Generator()
            self.generator.manual_seed(0 if seed is None else int(seed))

    def __len__(self):
        size = self.batch_size
        return sum((len(group) + size - 1) // size for group in _groups(self.dataset))

    def _slices(self, dataset):
        X, y = dataset.X, dataset.y
        n = len(dataset)
        if self.shuffle:
            perm = torch.randperm(n, generator=self.generator)
            device = y.device if y is not None else None
            if device is not None and device.type != "cpu":
                perm = perm.to(device)
            X, y = _take(X, perm), (None if y is None else y[perm])
        for start in range(0, n, self.batch_size):
            stop = start + self.batch_size
            yield _take(X, slice(start, stop)), (None if y is None else y[start:stop])

    def __iter__(self):
        groups = _groups(self.dataset)
        if len(groups) == 1:
            batches = self._slices(groups[0])
        else:
            batches = [batch for group in groups for batch in self._slices(group)]
            if self.shuffle:
                order = torch.randperm(len(batches), generator=self.generator).tolist()
                batches = [batches[i] for i in order]
        if self.transform is None:
            return iter(batches)
        return (self.transform(X, y, self.generator) for X, y in batches)


class DivergenceGuard(Callback):
    """Stop training with a `DivergenceError` when the loss diverges.

    Diverging means: the epoch's training loss is NaN or infinite, or it grew
    to more than ``max_growth`` times the loss of the very first batch (an
    exploded model with finite but meaningless weights).

    Parameters
    ----------
    max_growth : float, default=1e4
    """

    def __init__(self, max_growth=1e4):
        self.max_growth = max_growth

    def on_epoch_end(self, net, **kwargs):
        loss = net.history[-1, "train_loss"]
        epoch = len(net.history)
        if not np.isfinite(loss):
            raise DivergenceError(f"the training loss became {loss} at epoch {epoch}")
        first = net.history[0, "batches", 0, "train_loss"]
        if loss > self.max_growth * max(first, 1e-12):
            raise DivergenceError(
                f"the training loss grew from {first:.3g} to {loss:.3g} by epoch {epoch}"
            )


class _StopTraining(Exception):
    """Early stopping's signal; unlike ``KeyboardInterrupt``, not a user's."""


class _UserInterrupt(BaseException):
    """A user's ``KeyboardInterrupt`` on its way through skorch's ``partial_fit``."""


class PatienceStopping(EarlyStopping):
    """skorch's `EarlyStopping`, stopping with `_StopTraining`.

    skorch's callback stops by raising ``KeyboardInterrupt``, which
    ``NeuralNet.partial_fit`` swallows -- as it swallows a user's Ctrl-C.
    A distinct signal lets `FastNet` tell the two apart.
    """

    def on_epoch_end(self, net, **kwargs):
        try:
            super().on_epoch_end(net, **kwargs)
        except KeyboardInterrupt:
            raise _StopTraining from None


class FastNet(NeuralNet):
    """skorch's ``NeuralNet`` for small networks fed by `SliceIterator`.

    What it changes, and why:

    * a user's ``KeyboardInterrupt`` reaches the caller (skorch's
      ``partial_fit`` swallows it and returns as if training had finished; a
      multi-round fit must know it was stopped); early stopping
      (`PatienceStopping`) still ends training quietly;
    * per-batch work trimmed for batches that are tensors already on the
      device: no conversions in ``infer``/``get_loss``, modules switched
      between train and eval only when their mode changes, and the optimizer
      stepped without a closure (which suits Adam and SGD, not LBFGS);
    * row weights (``X["sample_weight"]``) weight the loss.

    ``tests/test_training.py`` fails when skorch changes a method replaced here.
    """

    def _set_training(self, training=True):
        # skorch calls this once per batch; ``Module.train`` walks every
        # submodule each time.  Only walk when a mode actually changes.
        for name in self._modules + self._criteria:
            module = getattr(self, name + "_")
            if isinstance(module, torch.nn.Module) and module.training != training:
                module.train(training)

    # Batches come from `SliceIterator`: tensors already on the device, so
    # skorch's per-batch conversions (``to_tensor``, fit-param merging) are
    # skipped.
    def infer(self, x, **fit_params):
        if isinstance(x, dict):
            return self.module_(**_module_inputs(x), **fit_params)
        return self.module_(x, **fit_params)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        weight = X.get(SAMPLE_WEIGHT) if isinstance(X, dict) else None
        if weight is None:
            return self.criterion_(y_pred, y_true)
        # per-element losses from the criterion itself (torch losses read
        # ``reduction`` when called); skorch allows no second criterion here
        criterion, reduction = self.criterion_, self.criterion_.reduction
        criterion.reduction = "none"
        try:
            losses = criterion(y_pred, y_true)
        finally:
            criterion.reduction = reduction
        return weighted_mean(losses, weight)

    def train_step(self, batch, **fit_params):
        # skorch passes a closure to ``optimizer.step`` so that LBFGS can
        # re-evaluate the loss; Adam needs none, and the closure machinery
        # (accumulator, enable_grad wrapper) costs time on every small batch.
        self._zero_grad_optimizer()
        step = self.train_step_single(batch, **fit_params)
        self._apply_gradients(batch)
        return step

    def _apply_gradients(self, batch):
        """After a backward pass: the ``on_grad_computed`` notice (clipping), then a step."""
        self.notify(
            "on_grad_computed",
            named_parameters=TeeGenerator(self.get_all_learnable_params()),
            batch=batch,
            training=True,
        )
        self._step_optimizer(None)

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        # skorch's loop, except that the batch size is read off the target
        # slice: skorch's get_len walks every input of a dict batch, which
        # measured 1.18x a hand-written loop against 1.06x with this
        # (benchmarks/bench_training_overhead.py, 2-core CPU).
        if iterator is None:
            return
        batch_count = 0
        for batch in iterator:
            self.notify("on_batch_begin", batch=batch, training=training)
            step = step_fn(batch, **fit_params)
            self.history.record_batch(prefix + "_loss", step["loss"].item())
            self.history.record_batch(prefix + "_batch_size", len(batch[1]))
            self.notify("on_batch_end", batch=batch, training=training, **step)
            batch_count += 1
        self.history.record(prefix + "_batch_count", batch_count)

    # skorch's partial_fit swallows KeyboardInterrupt, the signal of its own
    # EarlyStopping and of a user's Ctrl-C alike. Early stopping here signals
    # with `_StopTraining` (a quiet end); a user's Ctrl-C crosses partial_fit as
    # `_UserInterrupt`, after on_train_end (which restores the best weights of
    # early stopping), and leaves it as KeyboardInterrupt again.
    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        try:
            return super().fit_loop(X, y, epochs, **fit_params)
        except _StopTraining:
            return self
        except KeyboardInterrupt:
            self.notify("on_train_end", X=X, y=y)
            raise _UserInterrupt from None

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        try:
            return super().partial_fit(X, y, classes, **fit_params)
        except _UserInterrupt:
            raise KeyboardInterrupt from None


@dataclass(frozen=True)
class TrainSettings:
    """How a network trains: the one argument of `train_network` and `train_stacked`.

    Small and picklable, so that joblib can send it to a worker.

    Attributes
    ----------
    criterion : loss class or module
        E.g. ``torch.nn.MSELoss``; the mean over a batch is minimised.
    max_epochs, batch_size, lr : int, int, float
        Adam's budget, mini-batch size and learning rate.
    weight_decay : float
        Adam's (L2) weight decay.
    device : str
        Where the data and the network live.
    patience : int or None
        Early stopping: stop after ``patience`` epochs without improving
        ``monitor`` by more than ``tol``, and keep the best epoch's weights
        (``restore_best``; else the last epoch's).  None trains
        ``max_epochs`` epochs.
    tol : float
        Minimum (absolute) improvement of ``monitor`` that counts.
    monitor : {"valid_loss", "train_loss"}
        What early stopping watches; ``"valid_loss"`` applies only where
        validation data are given.
    verbose : int
        From 2 on, skorch's per-epoch log.
    callbacks : tuple of (name, skorch callback)
        Added to every net, e.g. the fit's epoch progress bar.
    keep_initial : bool
        With validation data: the initial weights count as an epoch 0, and
        are restored when no epoch's validation loss is lower (a network that
        starts as a good function is then never left worse on validation).
    transform : callable or None
        ``transform(X, y, generator)`` of every training batch (`SliceIterator`).
    """

    criterion: object
    max_epochs: int
    batch_size: int
    lr: float
    weight_decay: float = 0.0
    device: str = "cpu"
    patience: int = None
    tol: float = 0.0
    monitor: str = "valid_loss"
    restore_best: bool = True
    verbose: int = 0
    callbacks: tuple = ()
    keep_initial: bool = False
    transform: object = None

    def early_stopping(self, has_valid):
        """Whether a fit with (``has_valid``) or without validation data stops early."""
        return self.patience is not None and (self.monitor != "valid_loss" or has_valid)


def make_net(
    module,
    settings,
    *,
    early_stopping=False,
    seed=0,
    train_split=None,
    label=None,
    net_class=None,
):
    """The `FastNet` every network of the package trains in (not yet initialized).

    Adam, slice iterators (training batches shuffled with ``seed``), a
    `DivergenceGuard`, and with ``early_stopping`` a `PatienceStopping` on
    ``settings.monitor`` that restores the best weights (unless
    ``settings.restore_best`` is False). ``label`` prefixes
    the lines of its epoch log (``verbose >= 2``).  ``net_class``: a
    `FastNet` subclass to build instead (e.g. with its own ``train_step``).
    """
    callbacks = [("divergence", DivergenceGuard())]
    if early_stopping:
        callbacks.append(
            (
                "early_stopping",
                PatienceStopping(
                    monitor=settings.monitor,
                    patience=settings.patience,
                    threshold=settings.tol,
                    threshold_mode="abs",
                    load_best=settings.restore_best,
                ),
            )
        )
    callbacks.extend(settings.callbacks)
    verbose = settings.verbose
    sink = partial(print_log, label=label)
    return (net_class or FastNet)(
        module=module,
        criterion=settings.criterion,
        optimizer=torch.optim.Adam,
        lr=settings.lr,
        optimizer__weight_decay=settings.weight_decay,
        max_epochs=settings.max_epochs,
        batch_size=settings.batch_size,
        iterator_train=SliceIterator,
        iterator_train__shuffle=True,
        iterator_train__seed=seed,
        **({"iterator_train__transform": settings.transform} if settings.transform else {}),
        iterator_valid=SliceIterator,
        train_split=train_split,
        callbacks=callbacks,
        # skorch calls a sink other than `print` whatever the verbosity: off unless asked
        **({"callbacks__print_log__sink": sink} if verbose >= 2
           else {"callbacks__print_log": None}),
        device=settings.device,
        verbose=int(verbose >= 2),
    )


def train_network(make_module, train_data, valid_data, settings, *, seed, label=None):
    """Train ``module`` with skorch on tensors already on ``settings.device``.

    Parameters
    ----------
    make_module : callable
        ``make_module()`` returns the torch module to train; it is called
        under ``seed`` so that the initial weights are reproducible.
    train_data, valid_data : TensorDataset or None
        ``valid_data`` is scored every epoch (and watched by early stopping
        with ``settings.monitor="valid_loss"``).
    settings : TrainSettings
    seed : int
        Seeds the module's initial weights (without touching the global
        torch RNG state) and the shuffling.
    label : str or None
        Prefix of the epoch log's lines.

    Returns
    -------
    net : FastNet
        The fitted net; ``net.module_`` holds the trained module.
    """
    module = seeded_build(make_module, seed)
    net = make_net(
        module,
        settings,
        early_stopping=settings.early_stopping(valid_data is not None),
        seed=seed,
        train_split=None if valid_data is None else predefined_split(valid_data),
        label=label,
    )
    net.initialize()
    initial = None
    if settings.keep_initial and valid_data is not None:
        initial = (_loss_on(net, valid_data), initial_state(net.module_))
    try:
        if not fit_closed_form(net, train_data, valid_data):
            net.partial_fit(train_data, None)
    finally:
        # The validation tensors are not needed after fit: do not pickle them.
        net.train_split = None
        release_caches(net.module_)
    if initial is not None:
        keep_initial_if_better(net, *initial)
    return net


def fit_closed_form(net, train_data, valid_data=None):
    """Fit ``net.module_`` by its own ``fit_closed_form``, where it has one; whether it did.

    A module may fit itself in closed form (`RocketModule`'s ridge head):
    ``module.fit_closed_form(X, Z, y, sample_weight)`` on the training rows,
    True when it did.  The net's history then holds one epoch, with the
    losses of the fitted module on the training (and validation) rows, so
    that every net has a learning curve; a loss that is not finite raises
    `DivergenceError`.
    """
    fit = getattr(net.module_, "fit_closed_form", None)
    if not callable(fit):
        return False
    inputs = train_data.X if isinstance(train_data.X, dict) else {"X": train_data.X}
    net.module_.train()
    if not fit(**_module_inputs(inputs), y=train_data.y,
               sample_weight=inputs.get(SAMPLE_WEIGHT)):
        return False
    losses = {"train_loss": _loss_on(net, train_data)}
    if valid_data is not None:
        losses["valid_loss"] = _loss_on(net, valid_data)
    net.history.new_epoch()
    net.history.record("epoch", 1)
    for key, loss in losses.items():
        if not np.isfinite(loss):
            raise DivergenceError(f"the closed-form fit's {key} is {loss}")
        net.history.record(key, loss)
    return True


def release_caches(module):
    """Call ``release_cache()`` on every submodule of ``module`` that has one.

    A module may cache what does not change while it trains (`RocketModule`
    caches its fixed transform of each window); training ends with this call.
    """
    for sub in module.modules():
        if callable(getattr(sub, "release_cache", None)):
            sub.release_cache()


def share_caches(module, cache):
    """Call ``share_cache(cache)`` on every submodule of ``module`` that has one."""
    for sub in module.modules():
        if callable(getattr(sub, "share_cache", None)):
            sub.share_cache(cache)


class InitMemo(dict):
    """Initialisations kept for the rounds of one fit: ``{key: (buffers, cache)}``.

    `initialized_builder` reads and fills it.  It lives in the fitting
    process only: a pickled memo (sent to another process or a cluster
    worker with a job) arrives empty, and the job there initialises its
    module from the round-0 module itself (`initialized_builder`'s ``first``).
    """

    def __reduce__(self):
        return (type(self), ())


def windows_key(X):
    """A key of the windows ``X`` (an array): shape, dtype and a hash of the bytes."""
    X = np.ascontiguousarray(X)
    return X.shape, X.dtype.str, hashlib.blake2b(X.view(np.uint8), digest_size=16).digest()


def share_caches_by_key(modules, pool):
    """Give every submodule with ``share_cache`` and ``cache_key`` the cache ``pool[key]``.

    Submodules whose ``cache_key()`` is equal compute the same function of a
    window (`RocketModule`: the same transform), so that they can share what
    they cache; ``release_caches`` ends it.  Returns the submodules given one.
    """
    shared = []
    for module in modules:
        for sub in module.modules():
            key = getattr(sub, "cache_key", None)
            if callable(getattr(sub, "share_cache", None)) and callable(key):
                sub.share_cache(pool.setdefault(key(), {}))
                shared.append(sub)
    return shared


def initialized_builder(make_module, seed, X, memo=None, key=None, first=None):
    """A builder of ``make_module``'s module initialised from the windows ``X``; and its cache.

    A module whose submodules have ``initialize(X)`` (a data-dependent
    initialisation from the training inputs, as `RocketModule`'s biases) is
    built once under ``seed`` and initialised on ``X``, all the rows it will
    train on (for fold networks: all the training rows, unsupervised); the
    builder returned makes copies of it, so that every network built from it
    (e.g. a member's fold networks) starts from the same initialisation and
    shares one cache dict (``share_cache``), which the initialisation fills
    first.  Returns ``(builder, cache)``; for other modules
    ``(builder, None)``, a builder whose first call returns the module built
    here (the same module that call would build under ``seed``) and later
    calls ``make_module()``.

    With a ``memo`` (`InitMemo`) and a ``key`` (the member, and the windows:
    `windows_key`), the first call initialises and keeps the initialised
    submodules' buffers and the cache under ``key``; a later call with that
    key (the member's next round) copies those buffers into its freshly
    built module instead of initialising it again, and shares the same
    cache.  An initialisation sets buffers only (never trained weights), so
    the copy is the whole initialisation: a member's random features and
    their statistics are then drawn and computed once per fit, while every
    round's trained weights start afresh.  ``first``, a pair ``(make_first,
    first_seed)`` for rounds after the first, says which module's
    initialisation that is (the member's round-0 module): where the memo
    does not hold it (a job in another process gets an empty memo), that
    module is built and initialised again, and its buffers copied, so that
    the result does not depend on where the job ran.
    """
    module = seeded_build(make_module, seed)
    initialize = _initialized_parts(module)
    if not initialize:
        return _BuiltOnce(make_module, module), None
    module.to(X.device)  # initialised where it trains (a GPU's windows: no cache)
    kept = None if memo is None or key is None else memo.get(key)
    if kept is not None and _load_buffers(initialize, kept[0]):
        cache = kept[1]
        share_caches(module, cache)
    else:
        cache = {}
        share_caches(module, cache)
        source = module if first is None else seeded_build(*first).to(X.device)
        share_caches(source, cache)
        with torch.no_grad():
            for sub in _initialized_parts(source):
                sub.initialize(X)
        if source is not module:
            release_caches(source)
            if not _load_buffers(initialize, _own_buffers(_initialized_parts(source))):
                raise ValueError("the member's round-0 module has other buffers than this "
                                 "round's; an initialisation must set the same buffers")
        if memo is not None and key is not None:
            memo[key] = (_own_buffers(initialize, clone=True), cache)
    return partial(_copy_sharing, module, cache), cache


def _initialized_parts(module):
    """The submodules of ``module`` that have ``initialize``."""
    return [sub for sub in module.modules() if callable(getattr(sub, "initialize", None))]


def _own_buffers(subs, clone=False):
    """``{name: buffer}`` of each of ``subs`` (not of their children); copies with ``clone``."""
    return [{name: buf.clone() if clone else buf for name, buf in sub.named_buffers(recurse=False)}
            for sub in subs]


def _load_buffers(subs, buffers):
    """Copy ``buffers`` (one dict per submodule) into ``subs``; False if they do not fit."""
    owns = _own_buffers(subs)
    if len(owns) != len(buffers):
        return False
    for own, kept in zip(owns, buffers):
        if own.keys() != kept.keys() or any(own[n].shape != kept[n].shape for n in own):
            return False
    with torch.no_grad():
        for own, kept in zip(owns, buffers):
            for name, buf in own.items():
                buf.copy_(kept[name])
    return True


class _BuiltOnce:
    """``make_module``, whose first call returns ``module``, built already."""

    def __init__(self, make_module, module):
        self.make_module = make_module
        self.module = module

    def __call__(self):
        module, self.module = self.module, None
        return self.make_module() if module is None else module


def _copy_sharing(module, cache):
    copied = copy.deepcopy(module)
    share_caches(copied, cache)
    return copied


def initial_state(module):
    """A copy of ``module``'s state for `keep_initial_if_better` (cloned tensors: cheaper
    than a deep copy of the state dict, the same values)."""
    return {name: value.clone() for name, value in module.state_dict().items()}


def keep_initial_if_better(net, initial_loss, initial_state):
    """Restore ``initial_state`` in ``net.module_`` if no epoch beat ``initial_loss``.

    ``initial_loss`` is the validation loss before the first epoch (as
    skorch computes an epoch's); with ``keep_initial`` it counts as epoch 0.
    """
    if initial_loss <= min(net.history[:, "valid_loss"]):
        net.module_.load_state_dict(initial_state)


@torch.no_grad()
def _loss_on(net, data):
    """``net``'s loss on ``data`` as skorch's ``valid_loss`` computes it (batch-size weighted)."""
    total, count = 0.0, 0
    net.module_.eval()
    for batch in net.get_iterator(data, training=False):
        Xb, yb = batch
        loss = net.get_loss(net.infer(Xb), yb, X=Xb, training=False)
        total += loss.item() * len(yb)
        count += len(yb)
    return total / count


def features_and_output(module, **inputs):
    """Feature maps and output of ``module`` in one call.

    Modules may define ``features_and_output`` to share the forward pass;
    otherwise ``features`` and ``forward`` are called one after the other.
    """
    if hasattr(module, "features_and_output"):
        return module.features_and_output(**inputs)
    return module.features(**inputs), module(**inputs)


@torch.no_grad()
def run_module(module, X, batch_size=4096):
    """Run ``module`` in eval mode on a `TensorDataset`'s inputs.

    Returns
    -------
    maps : ndarray of shape (n_samples, n_maps), float64
        What ``module.features`` returns: the feature maps fed forward.
    outputs : ndarray of shape (n_samples, n_outputs), float64
        What ``module.forward`` returns.
    """
    was_training = module.training
    module.eval()
    outputs, maps = [], []
    try:
        n = len(X) if not isinstance(X, dict) else len(next(iter(X.values())))
        for start in range(0, n, batch_size):
            batch = _take(X, slice(start, start + batch_size))
            kwargs = _module_inputs(batch) if isinstance(batch, dict) else {"X": batch}
            feats, out = features_and_output(module, **kwargs)
            outputs.append(out.double().cpu().numpy())
            maps.append(feats.double().cpu().numpy())
    finally:
        module.train(was_training)
    return np.concatenate(maps), np.concatenate(outputs)


def fixed_chunks(X, device, max_rows, max_values):
    """``(chunk, n_rows)``: tensors of one shape, the last chunk padded with zeros.

    The chunk size depends on the sample's size only (at most ``max_rows``
    samples and about ``max_values`` input values), so every sample is
    computed in a batch of the same shape whatever else is predicted with it.
    """
    size = max(1, min(max_rows, max_values // math.prod(X.shape[1:])))
    for start in range(0, len(X), size):
        chunk = X[start : start + size]
        rows = len(chunk)
        if rows < size:
            chunk = np.concatenate([chunk, np.zeros((size - rows, *X.shape[1:]), X.dtype)])
        yield torch.tensor(chunk, device=device), rows


class ModuleOnCPUPickle:
    """Pickling for estimators holding a torch ``module_`` trained on ``device_``.

    The module is pickled on the CPU, so that a model fitted on CUDA loads on
    a machine without one (with a warning; it then predicts on the CPU).
    """

    def __getstate__(self):
        state = super().__getstate__()
        module = state.get("module_")
        if module is not None and next(module.parameters()).device.type != "cpu":
            state = {**state, "module_": copy.deepcopy(module).cpu()}
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        device = getattr(self, "device_", "cpu")
        if "module_" not in state or device == "cpu":
            return
        if torch.device(device).type == "cuda" and not torch.cuda.is_available():
            warnings.warn(
                f"{type(self).__name__} was fitted on {device!r}, but PyTorch sees no CUDA "
                "device here: it will predict on the CPU.",
                UserWarning,
                stacklevel=2,
            )
            self.device_ = "cpu"
        else:
            self.module_.to(device)
