"""Train k same-shaped `MLPModule` members as one stacked network.

A multiverse round fits k members that differ only by their seed; a
cross-fitted member fits one network per fold, each on the other folds' rows.
Fitted one by one, each small network leaves most of the CPU's (or GPU's)
width unused; stacked, member ``m``'s layer weights become slice ``m`` of a
``(k, out, in)`` tensor and every layer is one batched product
(``torch.baddbmm``) over all members at once.

Each member keeps everything it would have had alone with `train_network`:

* its initial weights, built under its own seed;
* its own rows (``train_rows``, ``valid_rows``; all rows by default);
* its own shuffling: a generator seeded like `SliceIterator`'s, one
  permutation of its own rows per epoch, contiguous batches of the permuted
  rows;
* its own loss: the criterion's mean over the member's batch.  The sum over
  members is backpropagated; the parameters are disjoint, so each member's
  gradient is its own.  One Adam steps the stacked parameters: Adam works
  element by element, so it matches k separate Adams -- but for its step
  count, which `_StackedAdam` keeps per member;
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
When members stop (early stopping), the stack is rebuilt without them
(their slices of the parameters and of Adam's state), so that the members
still training do not pay for them.

Members with rows of their own (the folds of a cross-fit differ in size by one
row) line up in a padded ``(k, n_max)`` matrix of row indices: member ``m``'s
permuted rows first, then padding.  Batch ``j`` is the same columns for every
member; a member's padding rows carry weight 0 in its loss, so its loss is the
mean over its own rows, and the history records its true batch sizes.  Where
a member has no batch left (its rows ended on a batch boundary, another
member's did not), it is left out of that optimizer step, as it would have
had no such step alone.
"""


import torch

from ._modules import MLPModule
from ._training import (
    SAMPLE_WEIGHT,
    DivergenceError,
    _StopTraining,
    elementwise,
    initial_state,
    keep_initial_if_better,
    make_net,
    seeded_build,
    weighted_mean,
)


class _StackedAdam:
    """Adam over stacked parameters (first dimension: the member), step counts per member.

    ``torch.optim.Adam``'s algorithm (its default betas and eps, L2 weight
    decay added to the gradient) and its arithmetic, so that each member
    steps as a lone Adam would.  Unlike one ``torch.optim.Adam`` over the
    stacked tensors, a step may leave members out (``step(members)``) and
    each member's bias correction counts its own steps.
    """

    def __init__(self, params, lr, weight_decay=0.0, betas=(0.9, 0.999), eps=1e-8):
        self.params = params
        self.lr, self.weight_decay, self.betas, self.eps = lr, weight_decay, betas, eps
        self.exp_avgs = [torch.zeros_like(p) for p in params]
        self.exp_avg_sqs = [torch.zeros_like(p) for p in params]
        self.steps = [0] * len(params[0])

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def keep(self, members):
        """Keep only ``members`` (positions) in the stack; return the new stacked parameters."""
        index = torch.tensor(members, device=self.params[0].device)
        self.params = [torch.nn.Parameter(p[index]) for p in self.params]
        self.exp_avgs = [state[index] for state in self.exp_avgs]
        self.exp_avg_sqs = [state[index] for state in self.exp_avg_sqs]
        self.steps = [self.steps[m] for m in members]
        return self.params

    def _corrections(self, members, like):
        """``lr / bias_correction1`` and ``sqrt(bias_correction2)``: floats or per-member."""
        beta1, beta2 = self.betas
        counts = [self.steps[m] for m in members]
        if len(set(counts)) == 1:  # as torch computes them, in Python floats
            step = counts[0]
            return self.lr / (1 - beta1**step), (1 - beta2**step) ** 0.5
        step = torch.tensor(counts, dtype=torch.float64)
        step_size = (self.lr / (1 - beta1**step)).to(like.dtype).to(like.device)
        bias2_sqrt = ((1 - beta2**step) ** 0.5).to(like.dtype).to(like.device)
        return step_size, bias2_sqrt

    @torch.no_grad()
    def step(self, members=None):
        """One Adam step of ``members`` (indices; None: all of them)."""
        every = members is None
        members = range(len(self.steps)) if every else members
        for m in members:
            self.steps[m] += 1
        step_size, bias2_sqrt = self._corrections(members, self.params[0])
        index = None if every else torch.tensor(members, device=self.params[0].device)
        beta1, beta2 = self.betas
        for stacked in zip(self.params, self.exp_avgs, self.exp_avg_sqs):
            param, exp_avg, exp_avg_sq = stacked
            grad = param.grad
            if index is not None:  # copies of the stepping members' slices
                param, exp_avg, exp_avg_sq = (t[index] for t in stacked)
                grad = grad[index]
            if self.weight_decay != 0:
                grad = grad.add(param, alpha=self.weight_decay)
            exp_avg.lerp_(grad, 1 - beta1)
            exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            if isinstance(step_size, float):
                denom = (exp_avg_sq.sqrt() / bias2_sqrt).add_(self.eps)
                param.addcdiv_(exp_avg, denom, value=-step_size)
            else:  # one step count per member
                shape = (-1,) + (1,) * (param.dim() - 1)
                denom = (exp_avg_sq.sqrt() / bias2_sqrt.view(shape)).add_(self.eps)
                param.sub_(step_size.view(shape) * exp_avg / denom)
            if index is not None:
                for target, updated in zip(stacked, (param, exp_avg, exp_avg_sq)):
                    target[index] = updated


def _member_net(module, settings, valid, label):
    # The net `train_network` builds, less the data path (never used here).
    early = settings.early_stopping(valid)
    return make_net(module, settings, early_stopping=early, label=label).initialize()


def _mlp(module):
    """The `MLPModule` itself, or the one a `ContinuedRound` wraps (else None; also for a
    `ContinuedRound` with expansion noise, which the stacked forward does not draw)."""
    from ._members import ContinuedRound

    if type(module) is ContinuedRound:
        if module.noise:
            return None
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
    """Each member's mean loss over its batch (weighted by row): shape ``(k,)``.

    ``weight`` ``(k, b)``: the rows' weights, 0 on a member's padding rows.
    """
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


def _layout(lengths, batch_size, device):
    """How members of ``lengths`` rows batch together in a padded ``(k, max(lengths))`` matrix.

    Member ``m``'s rows fill the first ``lengths[m]`` columns; its batch
    ``j`` (of the sizes `SliceIterator` gives) is the columns of the stack's
    batch ``j``, less its padding.

    Returns
    -------
    steps : list of (slice, Tensor or None, list or None)
        Per stacked batch: its columns, the ``(k, b)`` float mask of the
        members' own rows (None: no padding) and the members that have a
        batch in it (None: all).
    """
    width = max(lengths) if batch_size == -1 else batch_size
    sizes = [_batches(n, batch_size)[1] for n in lengths]
    steps = []
    for j in range(max(len(member) for member in sizes)):
        counts = [member[j] if j < len(member) else 0 for member in sizes]
        b = max(counts)
        mask = None
        if min(counts) < b:
            mask = (torch.arange(b)[None, :] < torch.tensor(counts)[:, None]).float().to(device)
        members = None if min(counts) > 0 else [m for m, c in enumerate(counts) if c > 0]
        steps.append((slice(j * width, j * width + b), mask, members))
    return steps


def _member_rows(rows, k, n, what):
    """``rows`` as k CPU index tensors into ``n`` rows (None stays None)."""
    if rows is None:
        return None
    if len(rows) != k:
        raise ValueError(f"{what} must hold one index array per member ({k}); got {len(rows)}.")
    out = []
    for m, member in enumerate(rows):
        member = torch.as_tensor(member).reshape(-1).long().cpu()
        if len(member) == 0 or member.min() < 0 or member.max() >= n:
            raise ValueError(
                f"{what}[{m}] must be a non-empty array of row indices in [0, {n}); "
                f"got {len(member)} indices"
                + (f" in [{int(member.min())}, {int(member.max())}]." if len(member) else ".")
            )
        out.append(member)
    return out


def _padded(rows, device):
    """The ``(k, max length)`` index matrix of `_layout`: each member's rows, then row 0."""
    index = torch.zeros(len(rows), max(len(r) for r in rows), dtype=torch.long)
    for m, member in enumerate(rows):
        index[m, : len(member)] = member
    return index.to(device)


def _valid_stack(x, y, weight, rows, batch_size):
    """Validation inputs, targets, weights of the members in the stack, and their batches.

    ``rows[i]``: the ``i``-th member's validation rows (None: all rows).  The
    same rows for all are broadcast, without copies; else each member's rows
    are gathered once, padded as in `_layout`.
    """
    k = len(rows)
    if rows[0] is None:
        x, y = x.expand(k, *x.shape), y.expand(k, *y.shape)
        weight = None if weight is None else weight.expand(k, -1)
        return x, y, weight, _layout([len(x[0])] * k, batch_size, x.device)
    index = _padded(rows, x.device)
    weight = None if weight is None else weight[index]
    return (x[index], y[index], weight,
            _layout([len(r) for r in rows], batch_size, x.device))


def _masked(weight, mask):
    """Row weights (or None) times the padding mask (or None)."""
    if mask is None:
        return weight
    return mask if weight is None else weight * mask


def _record_epoch(history, prefix, losses, sizes):
    # What skorch's ``run_single_epoch`` records, batch by batch.
    for loss, size in zip(losses, sizes):
        history.new_batch()
        history.record_batch(prefix + "_loss", loss)
        history.record_batch(prefix + "_batch_size", size)
    history.record(prefix + "_batch_count", len(sizes))


def train_stacked(
    make_modules,
    train_data,
    valid_data,
    settings,
    *,
    seeds,
    labels=None,
    train_rows=None,
    valid_rows=None,
):
    """Train k `MLPModule` members at once, each as `train_network` would.

    Parameters
    ----------
    make_modules : list of callable
        ``make_modules[m]()`` returns member ``m``'s `MLPModule` (or a
        `ContinuedRound` over one); it is called under ``seeds[m]``.  All
        members must have the same layer shapes.
    train_data, valid_data : TensorDataset or None
        Inputs ``{"X": ..., "Z": ...}`` (and ``"sample_weight"``) and
        targets, on ``device``.  ``valid_data`` enables each member's early
        stopping on its loss.
    settings : TrainSettings
        As for `train_network`, shared by all members. Its criterion (e.g.
        ``torch.nn.MSELoss``, ``torch.nn.CrossEntropyLoss``) must give
        per-element losses with ``reduction="none"`` whose mean is its
        ``"mean"`` reduction.
    seeds : list of int
        ``seeds[m]`` seeds member ``m``'s initial weights and shuffling.
    labels : list of str or None
        ``labels[m]`` prefixes member ``m``'s epoch log lines (``verbose >= 2``)
        and names it in a `DivergenceError`; default ``"member m"``.
    train_rows, valid_rows : list of array of int, or None
        ``train_rows[m]``: the rows of ``train_data`` member ``m`` trains on,
        in this order (as if ``train_data`` held only them); likewise
        ``valid_rows[m]`` of ``valid_data``.  None: all rows, for every
        member.

    Returns
    -------
    nets : list of FastNet
        One fitted net per member, as `train_network` with ``seeds[m]`` would
        return it (on its rows): ``net.module_`` holds the member's trained
        module (its best epoch's weights under early stopping) and
        ``net.history`` the epochs it trained.

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
    valid = valid_data is not None
    if valid_rows is not None and not valid:
        raise ValueError("valid_rows needs valid_data.")
    train_rows = _member_rows(train_rows, k, len(train_data), "train_rows")
    valid_rows = _member_rows(valid_rows, k, len(valid_data), "valid_rows") if valid else None
    modules = [seeded_build(make_module, seed) for make_module, seed in zip(make_modules, seeds)]
    _check_members(modules)
    labels = labels or [f"member {m}" for m in range(k)]
    nets = [_member_net(module, settings, valid, label) for module, label in zip(modules, labels)]
    max_epochs, batch_size = settings.max_epochs, settings.batch_size
    member_layers = [_linears(net.module_) for net in nets]
    n_layers = len(member_layers[0])
    with torch.no_grad():
        params = [
            torch.nn.Parameter(torch.stack([getattr(layers[i], name) for layers in member_layers]))
            for i in range(n_layers)
            for name in ("weight", "bias")
        ]
        if _mlp(modules[0]) is not modules[0]:  # ContinuedRound members: their gates too
            params.append(torch.nn.Parameter(torch.stack([net.module_.gate for net in nets])))
    optimizer = _StackedAdam(params, lr=settings.lr, weight_decay=settings.weight_decay)
    loss_fn = elementwise(settings.criterion)

    for data in (train_data, valid_data):
        if data is not None:
            with torch.no_grad():  # the module's own checks of X and Z, on one row
                nets[0].module_(**{key: value[:1] for key, value in data.X.items()
                                   if key != SAMPLE_WEIGHT})
    x_train, y_train = _inputs(train_data), train_data.y
    w_train = train_data.X.get(SAMPLE_WEIGHT)
    device = x_train.device
    lengths = [len(x_train)] * k if train_rows is None else [len(rows) for rows in train_rows]
    train_sizes = [_batches(n, batch_size)[1] for n in lengths]
    if valid:
        x_valid, y_valid = _inputs(valid_data), valid_data.y
        w_valid = valid_data.X.get(SAMPLE_WEIGHT)
        if valid_rows is None:
            valid_rows = [None] * k
            valid_sizes = [_batches(len(x_valid), batch_size)[1]] * k
        else:
            valid_sizes = [_batches(len(rows), batch_size)[1] for rows in valid_rows]
    generators = [torch.Generator().manual_seed(int(seed)) for seed in seeds]
    epoch_kwargs = {"dataset_train": train_data, "dataset_valid": valid_data}
    early = settings.early_stopping(valid)

    # What depends on which members are in the stack: rebuilt when members stop.
    stack = weights = biases = continued = train_steps = valid_batches = None

    def restack(members):
        nonlocal stack, params, weights, biases, continued, train_steps, valid_batches
        if stack is not None:  # leave the stopped members out
            params = optimizer.keep([stack.index(m) for m in members])
        stack = list(members)
        weights, biases = params[0 : 2 * n_layers : 2], params[1 : 2 * n_layers : 2]
        continued = (params[-1], nets[0].module_) if len(params) > 2 * n_layers else None
        train_steps = _layout([lengths[m] for m in stack], batch_size, device)
        if valid:
            valid_batches = _valid_stack(x_valid, y_valid, w_valid,
                                         [valid_rows[m] for m in stack], batch_size)

    def copy_into(m):
        at = stack.index(m)
        with torch.no_grad():
            for layer, weight, bias in zip(member_layers[m], weights, biases):
                layer.weight.copy_(weight[at])
                layer.bias.copy_(bias[at])
            if continued is not None:
                nets[m].module_.gate.copy_(continued[0][at])

    def valid_epoch():
        x, y, w, steps = valid_batches
        losses = []
        with torch.no_grad():
            for cols, mask, _ in steps:
                y_pred = _stacked_forward(weights, biases, x[:, cols], continued)
                wb = _masked(None if w is None else w[:, cols], mask)
                losses.append(_member_losses(loss_fn, y_pred, y[:, cols], wb))
        return torch.stack(losses).cpu().numpy().tolist()  # (batches, members in the stack)

    def member_batches(losses, sizes, m):
        """Member ``m``'s batch losses (of its batches only) from the stacked ones."""
        at = stack.index(m)
        return [batch[at] for batch in losses[: len(sizes[m])]]

    restack(range(k))
    initial = None
    if settings.keep_initial and valid:
        start = valid_epoch()
        initial = []
        for m, net in enumerate(nets):
            sizes = valid_sizes[m]
            batches = member_batches(start, valid_sizes, m)
            loss = sum(b * s for b, s in zip(batches, sizes)) / sum(sizes)  # skorch's mean
            initial.append((loss, initial_state(net.module_)))

    active = list(range(k))
    for net in nets:
        net.notify("on_train_begin", X=train_data, y=None)
    for _ in range(max_epochs):
        if not active:
            break
        if active != stack:
            restack(active)
        for m in active:
            nets[m].notify("on_epoch_begin", **epoch_kwargs)

        perms = [torch.randperm(lengths[m], generator=generators[m]) for m in stack]
        if train_rows is None:
            index = torch.stack(perms).to(device)
        else:
            index = _padded([train_rows[m][perm] for m, perm in zip(stack, perms)], device)
        train_losses = []
        for cols, mask, members in train_steps:
            batch = index[:, cols]
            optimizer.zero_grad()
            y_pred = _stacked_forward(weights, biases, x_train[batch], continued)
            weight = _masked(None if w_train is None else w_train[batch], mask)
            losses = _member_losses(loss_fn, y_pred, y_train[batch], weight)
            losses.sum().backward()
            optimizer.step(members)
            train_losses.append(losses.detach())
        # One transfer per epoch; ``.tolist()`` gives the floats ``.item()`` would.
        train_losses = torch.stack(train_losses).cpu().numpy().tolist()
        if valid:
            valid_losses = valid_epoch()

        for m in list(active):
            net = nets[m]
            _record_epoch(net.history, "train", member_batches(train_losses, train_sizes, m),
                          train_sizes[m])
            if valid:
                _record_epoch(net.history, "valid", member_batches(valid_losses, valid_sizes, m),
                              valid_sizes[m])
            if early:
                copy_into(m)  # early stopping may keep these weights
            try:
                net.notify("on_epoch_end", **epoch_kwargs)
            except _StopTraining:
                active.remove(m)
                net.notify("on_train_end", X=train_data, y=None)
            except DivergenceError as exc:
                raise DivergenceError(f"{exc} ({labels[m]}, seed {seeds[m]})") from exc
    for m in active:
        copy_into(m)
        nets[m].notify("on_train_end", X=train_data, y=None)
    if initial is not None:
        for net, (loss, state) in zip(nets, initial):
            keep_initial_if_better(net, loss, state)
    return nets
