"""Train k same-shaped `MLPModule` members as one stacked network.

A multiverse round fits k members that differ only by their seed.  Fitted one
by one, each small network leaves most of the CPU's (or GPU's) width unused;
stacked, member ``m``'s layer weights become slice ``m`` of a ``(k, out, in)``
tensor and every layer is one batched product (``torch.baddbmm``) over all
members at once.

Each member keeps everything it would have had alone with `train_network`:

* its initial weights, built under its own seed;
* its own shuffling: a generator seeded like `SliceIterator`'s, one
  permutation per epoch, contiguous batches of the permuted rows;
* its own loss: the criterion's mean over the member's batch.  The sum over
  members is backpropagated; the parameters are disjoint, so each member's
  gradient is its own.  One Adam steps the stacked parameters: Adam works
  element by element, so it matches k separate Adams;
* its own skorch net: a `FastNet` holding the member's module, with the
  callbacks `train_network` gives it (`DivergenceGuard`, `PatienceStopping`)
  and skorch's default ones, and its own ``history``.

Design: the batches run in a plain PyTorch loop, the bookkeeping in skorch.
A stacked module inside one skorch net would carry a single loss and a
single history, so per-member losses, early stopping and histories would
have to be rebuilt next to it, and skorch's per-batch work (``notify``, one
``.item()`` and two history records per batch) would be paid once per batch
for the whole stack.  Instead the loop keeps each batch's member losses on the
device and, once per epoch, writes them into every member's history and calls
that member's skorch callbacks (``on_epoch_begin``/``on_epoch_end``/
``on_train_end``).  The epoch losses, divergence test, patience, threshold
and best-weight restoring are therefore skorch's own code, not a copy of it.
Members that have stopped keep being updated inside the stack (cheaper than
reshaping it); their nets are no longer touched.
"""

import copy

import torch

from ._modules import MLPModule
from ._training import (
    SAMPLE_WEIGHT,
    DivergenceError,
    _StopTraining,
    elementwise,
    keep_initial_if_better,
    make_net,
    seeded_build,
    weighted_mean,
)


def _member_net(module, settings, valid, label):
    # The net `train_network` builds, less the data path (never used here).
    early = settings.early_stopping(valid)
    return make_net(module, settings, early_stopping=early, label=label).initialize()


def _mlp(module):
    """The `MLPModule` itself, or the one a `ContinuedRound` wraps (else None)."""
    from ._members import ContinuedRound

    if type(module) is ContinuedRound:
        module = module.network
    return module if type(module) is MLPModule else None


def _linears(module):
    """The (wrapped) `MLPModule`'s linear layers, input to output."""
    module = _mlp(module)
    return [layer for layer in module.body if isinstance(layer, torch.nn.Linear)] + [module.head]


def _check_members(modules):
    kinds = {type(module) for module in modules}
    for m, module in enumerate(modules):
        if _mlp(module) is None or len(kinds) > 1:
            raise TypeError(
                f"make_modules[{m}]() returned a {type(module).__name__}; train_stacked "
                "stacks MLPModule members (or ContinuedRound ones over an MLPModule), "
                "all of one kind."
            )
    shapes = [[tuple(p.shape) for p in module.parameters()] for module in modules]
    for m, shape in enumerate(shapes[1:], start=1):
        if shape != shapes[0]:
            raise ValueError(
                f"make_modules must build members of one shape; member 0 has parameter "
                f"shapes {shapes[0]}, member {m} has {shape}."
            )


def _inputs(data):
    """``cat([X flattened, Z])``: what `MLPModule`'s first layer sees."""
    X = data.X["X"]
    Z = data.X.get("Z")
    X = X.reshape(len(X), -1)
    if Z is not None and Z.shape[1]:
        X = torch.cat([X, Z], dim=1)
    return X


def _stacked_forward(weights, biases, x, continued=None):
    """Outputs of all members, shape ``(k, b, n_outputs)``, from ``x`` ``(k, b, d)``.

    ``continued``: ``(gates, module)`` for `ContinuedRound` members, ``gates``
    of shape ``(k, n_outputs)``: their base (the previous prediction, the last
    columns of ``x``) plus the gated MLP output.
    """
    inputs = x
    last = len(weights) - 1
    for i, (weight, bias) in enumerate(zip(weights, biases)):
        x = torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))
        if i < last:
            x = torch.relu(x)
    if continued is None:
        return x
    gates, module = continued
    return module.base(inputs.flatten(0, 1)).reshape(x.shape) + gates.unsqueeze(1) * x


def _member_losses(loss_fn, y_pred, y_true, weight=None):
    """Each member's mean loss over its batch (weighted by row): shape ``(k,)``."""
    k, b = y_pred.shape[:2]
    losses = loss_fn(
        y_pred.reshape(k * b, *y_pred.shape[2:]), y_true.reshape(k * b, *y_true.shape[2:])
    )
    if weight is None:
        return losses.reshape(k, -1).mean(dim=1)
    return weighted_mean(losses.reshape(k, b, -1), weight)


def _batches(n, batch_size):
    """`SliceIterator`'s slices of ``n`` rows, and their sizes."""
    size = n if batch_size == -1 else batch_size  # -1: one batch, as in skorch
    slices = [slice(start, start + size) for start in range(0, n, size)]
    return slices, [len(range(n)[rows]) for rows in slices]


def _record_epoch(history, prefix, losses, sizes):
    # What skorch's ``run_single_epoch`` records, batch by batch.
    for loss, size in zip(losses, sizes):
        history.new_batch()
        history.record_batch(prefix + "_loss", loss)
        history.record_batch(prefix + "_batch_size", size)
    history.record(prefix + "_batch_count", len(sizes))


def train_stacked(make_modules, train_data, valid_data, settings, *, seeds, labels=None):
    """Train k `MLPModule` members at once, each as `train_network` would.

    Parameters
    ----------
    make_modules : list of callable
        ``make_modules[m]()`` returns member ``m``'s `MLPModule`; it is
        called under ``seeds[m]``.  All members must have the same layer
        shapes.
    train_data, valid_data : TensorDataset or None
        Inputs ``{"X": ..., "Z": ...}`` and targets, on ``device``.
        ``valid_data`` enables each member's early stopping on its loss.
    settings : TrainSettings
        As for `train_network`, shared by all members. Its criterion (e.g.
        ``torch.nn.MSELoss``, ``torch.nn.CrossEntropyLoss``) must give
        per-element losses with ``reduction="none"`` whose mean is its
        ``"mean"`` reduction.
    seeds : list of int
        ``seeds[m]`` seeds member ``m``'s initial weights and shuffling.
    labels : list of str or None
        ``labels[m]`` prefixes member ``m``'s epoch log lines (``verbose >= 2``).

    Returns
    -------
    nets : list of FastNet
        One fitted net per member, as `train_network` with ``seeds[m]`` would
        return it: ``net.module_`` holds the member's trained module (its best
        epoch's weights under early stopping) and ``net.history`` the epochs
        it trained.

    Raises
    ------
    DivergenceError
        When a member's training loss diverges before that member stopped.
    """
    k = len(make_modules)
    if k == 0 or len(seeds) != k:
        raise ValueError(
            f"make_modules and seeds must be non-empty and of one length; got {k} and {len(seeds)}."
        )
    modules = [seeded_build(make_module, seed) for make_module, seed in zip(make_modules, seeds)]
    _check_members(modules)
    valid = valid_data is not None
    labels = labels or [f"member {m}" for m in range(k)]
    nets = [_member_net(module, settings, valid, label) for module, label in zip(modules, labels)]
    max_epochs, batch_size = settings.max_epochs, settings.batch_size
    member_layers = [_linears(net.module_) for net in nets]
    with torch.no_grad():
        weights = [
            torch.nn.Parameter(torch.stack([layers[i].weight for layers in member_layers]))
            for i in range(len(member_layers[0]))
        ]
        biases = [
            torch.nn.Parameter(torch.stack([layers[i].bias for layers in member_layers]))
            for i in range(len(member_layers[0]))
        ]
    params = [p for pair in zip(weights, biases) for p in pair]
    continued = None
    if _mlp(modules[0]) is not modules[0]:  # ContinuedRound members: their gates too
        with torch.no_grad():
            gates = torch.nn.Parameter(torch.stack([net.module_.gate for net in nets]))
        continued = (gates, nets[0].module_)
        params.append(gates)
    optimizer = torch.optim.Adam(params, lr=settings.lr, weight_decay=settings.weight_decay)
    loss_fn = elementwise(settings.criterion)

    for data in (train_data, valid_data):
        if data is not None:
            with torch.no_grad():  # the module's own checks of X and Z, on one row
                nets[0].module_(**{key: value[:1] for key, value in data.X.items()
                                   if key != SAMPLE_WEIGHT})
    x_train, y_train = _inputs(train_data), train_data.y
    w_train = train_data.X.get(SAMPLE_WEIGHT)
    n = len(x_train)
    train_slices, train_sizes = _batches(n, batch_size)
    if valid:
        x_valid, y_valid = _inputs(valid_data), valid_data.y
        w_valid = valid_data.X.get(SAMPLE_WEIGHT)
        valid_slices, valid_sizes = _batches(len(x_valid), batch_size)
    generators = [torch.Generator().manual_seed(int(seed)) for seed in seeds]
    epoch_kwargs = {"dataset_train": train_data, "dataset_valid": valid_data}

    def copy_into(m):
        with torch.no_grad():
            for layer, weight, bias in zip(member_layers[m], weights, biases):
                layer.weight.copy_(weight[m])
                layer.bias.copy_(bias[m])
            if continued is not None:
                nets[m].module_.gate.copy_(continued[0][m])

    def valid_epoch():
        losses = []
        with torch.no_grad():
            for rows in valid_slices:
                xb, yb = x_valid[rows], y_valid[rows]
                y_pred = _stacked_forward(weights, biases, xb.expand(k, *xb.shape), continued)
                wb = None if w_valid is None else w_valid[rows].expand(k, -1)
                losses.append(_member_losses(loss_fn, y_pred, yb.expand(k, *yb.shape), wb))
        return losses

    initial = None
    if settings.keep_initial and valid:
        sizes = torch.tensor(valid_sizes, dtype=torch.float64)
        start = torch.stack(valid_epoch()).double().cpu()  # (batches, k)
        start = (start * sizes[:, None]).sum(0) / sizes.sum()  # skorch's epoch mean
        initial = [(float(start[m]), copy.deepcopy(net.module_.state_dict()))
                   for m, net in enumerate(nets)]

    active = list(range(k))
    for net in nets:
        net.notify("on_train_begin", X=train_data, y=None)
    for _ in range(max_epochs):
        if not active:
            break
        for m in active:
            nets[m].notify("on_epoch_begin", **epoch_kwargs)

        perms = torch.stack([torch.randperm(n, generator=g) for g in generators])
        if perms.device != x_train.device:
            perms = perms.to(x_train.device)
        train_losses = []
        for rows in train_slices:
            index = perms[:, rows]
            optimizer.zero_grad()
            y_pred = _stacked_forward(weights, biases, x_train[index], continued)
            weight = None if w_train is None else w_train[index]
            losses = _member_losses(loss_fn, y_pred, y_train[index], weight)
            losses.sum().backward()
            optimizer.step()
            train_losses.append(losses.detach())
        # One transfer per epoch; ``.tolist()`` gives the floats ``.item()`` would.
        train_losses = torch.stack(train_losses).cpu().numpy().tolist()

        if valid:
            valid_losses = torch.stack(valid_epoch()).cpu().numpy().tolist()

        for m in list(active):
            net = nets[m]
            _record_epoch(net.history, "train", [losses[m] for losses in train_losses], train_sizes)
            if valid:
                _record_epoch(
                    net.history, "valid", [losses[m] for losses in valid_losses], valid_sizes
                )
                copy_into(m)  # early stopping may keep these weights
            try:
                net.notify("on_epoch_end", **epoch_kwargs)
            except _StopTraining:
                active.remove(m)
                net.notify("on_train_end", X=train_data, y=None)
            except DivergenceError as exc:
                raise DivergenceError(f"{exc} (member {m}, seed {seeds[m]})") from exc
    for m in active:
        copy_into(m)
        nets[m].notify("on_train_end", X=train_data, y=None)
    if initial is not None:
        for net, (loss, state) in zip(nets, initial):
            keep_initial_if_better(net, loss, state)
    return nets
