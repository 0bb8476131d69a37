"""The members of an expansion round: what they are and how they are fitted.

A round has one member (Recurrent Expansion) or several (a multiverse).  A
member is described by a `MemberSpec`; the fits of a round are grouped into
jobs -- one member, or several same-shaped MLPs trained stacked -- and every
job is the module-level function `fit_member_group`, so that joblib can send
it to a thread, a process or a Dask/Ray worker.
"""

from dataclasses import dataclass, replace
from functools import partial
from numbers import Integral

import numpy as np
import torch

from ._expansion import Outputs
from ._modules import BUILTIN_MODULES, MLPModule
from ._training import (
    SAMPLE_WEIGHT,
    DivergenceError,
    TensorDataset,
    TrainSettings,
    features_and_output,
    initialized_builder,
    release_caches,
    run_module,
    seeded_build,
    share_caches,
    train_network,
    windows_key,
)


@dataclass(frozen=True)
class MemberSpec:
    """One member of a round.

    Attributes
    ----------
    name : str
        Shown in ``history_`` and in error messages.
    build : callable
        ``build(n_features, n_expansion, n_outputs)`` returns the torch module.
    stack_key : hashable or None
        Members with the same non-None key have identical layer shapes and
        can be trained as one stacked model (`train_stacked`).
    """

    name: str
    build: object
    stack_key: object = None


def mlp_spec(hidden_layer_sizes, name="mlp"):
    build = partial(MLPModule, hidden_layer_sizes=hidden_layer_sizes)
    return MemberSpec(name, build, stack_key=("mlp", tuple(hidden_layer_sizes)))


def builtin_spec(name, hidden_layer_sizes, label=None):
    """The spec of a built-in architecture; ``"mlp"`` uses ``hidden_layer_sizes``."""
    if name == "mlp":
        return mlp_spec(hidden_layer_sizes, label or name)
    return MemberSpec(label or name, BUILTIN_MODULES[name])


def input_shape(X):
    """``n_features`` as the module contract gives it: int, or (channels, length)."""
    return int(X.shape[1]) if X.ndim == 2 else tuple(int(s) for s in X.shape[1:])


def check_member(spec, X, Z, n_outputs):
    """Build ``spec`` on the CPU and run it on two rows; raise a clear error if it fails.

    The global torch RNG is left untouched.
    """
    kind = "windows (n_samples, n_channels, length)" if X.ndim == 3 else "2-D input"
    context = (
        f"member {spec.name!r} ({{}}) failed on {kind} of shape {tuple(X.shape[1:])} with "
        f"n_features={input_shape(X)!r} and {Z.shape[1]} expansion columns"
    )
    try:
        module = seeded_build(partial(spec.build, input_shape(X), Z.shape[1], n_outputs))
    except (TypeError, ValueError, RuntimeError) as exc:
        name = getattr(spec.build, "__name__", type(spec.build).__name__)
        raise ValueError(
            context.format(name) + f" when built: {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(module, torch.nn.Module):
        raise TypeError(
            f"member {spec.name!r}: the module must be a callable "
            "module(n_features, n_expansion, n_outputs) returning a torch.nn.Module; "
            f"it returned {type(module).__name__}."
        )
    for method in ("features", "forward"):
        if not callable(getattr(module, method, None)):
            raise TypeError(
                f"member {spec.name!r}: module {type(module).__name__} has no method "
                f"{method}(X, Z); see the module contract in "
                "RecurrentExpansionRegressor's docstring."
            )
    probe = TensorDataset({"X": X[:2], "Z": Z[:2]}).X
    module.eval()
    try:
        with torch.no_grad():
            out = module(**probe)
            maps = module.features(**probe)
    except Exception as exc:  # the module's own error, re-raised with context
        raise ValueError(
            context.format(type(module).__name__) + f": {type(exc).__name__}: {exc}"
        ) from exc
    if out.ndim != 2 or out.shape[1] != n_outputs:
        raise ValueError(
            f"member {spec.name!r}: module.forward(X, Z) must return shape "
            f"(n_samples, {n_outputs}); it returned {tuple(out.shape)}."
        )
    if maps.ndim != 2:
        raise ValueError(
            f"member {spec.name!r}: module.features(X, Z) must return 2-D feature maps "
            f"(n_samples, n_maps); it returned shape {tuple(maps.shape)}."
        )


@dataclass(frozen=True)
class MemberTask:
    """What every member fit of an estimator shares; small and picklable.

    Attributes
    ----------
    settings : TrainSettings
        How each network trains (early stopping on the validation rows).
    output_fn : callable
        Network outputs -> the ``yhat`` fed forward (identity, softmax).
    n_outputs : int
    link : {"identity", "log"}
        ``yhat`` -> network outputs again (the inverse of ``output_fn`` up
        to a constant): how a `ContinuedRound` starts from the previous
        round's prediction.
    fold_stopping : bool
        With folds and no validation rows: each fold network stops early on
        its own held-out fold (and keeps its best epoch), so that every
        training row validates exactly one network and none is held out of
        training altogether.
    memo : InitMemo or None
        The fit's kept initialisations (`initialized_builder`): a member's
        data-dependent initialisation is computed in its first round and
        reused in the next ones.
    """

    settings: TrainSettings
    output_fn: object
    n_outputs: int
    link: str = "identity"
    fold_stopping: bool = False
    memo: object = None
    expansion_noise: float = 0.0


class ContinuedRound(torch.nn.Module):
    """A round's network that starts as exactly the previous round's function.

    ``forward(X, Z) = link(yhat_prev) + gate * network(X, Z)``, where
    ``yhat_prev`` is the previous round's prediction (the last ``n_outputs``
    columns of the expansion ``Z``), ``link`` turns it back into outputs
    (identity for regression, ``log`` of the probabilities for
    classification: its softmax is the previous probabilities) and ``gate``
    has one weight per output. The correction starts at zero: a network
    whose output layer is a linear ``head`` (every built-in one) gets that
    layer zeroed and the gate at 1, so that the correction learns at full
    speed; any other network gets the gate at 0 (as ReZero's residual gates,
    Bachlechner et al. 2020; slower to get going under Adam). Early stopping
    on validation rows (`keep_initial_if_better`) then keeps the round where
    validation improves. ``network`` is any module of the contract; its
    feature maps are the round's maps.

    ``noise`` > 0: in training, the expansion the network reads gets Gaussian
    noise of standard deviation ``noise * noise_std`` (``noise_std``: one
    value per column of ``Z``, its standard deviation over the training rows),
    drawn from the module's own generator (seeded when it is built); the
    previous prediction the output starts from is read without noise.
    """

    def __init__(self, network, n_outputs, link="identity", noise=0.0, noise_std=None):
        super().__init__()
        if link not in ("identity", "log"):
            raise ValueError(f"link must be 'identity' or 'log'; got {link!r}.")
        self.network = network
        self.n_outputs = int(n_outputs)
        self.link = link
        self.noise = float(noise)
        self._noise_generator = None  # built on first use, on Z's device; never pickled
        if self.noise:
            if noise_std is None:
                raise ValueError("noise > 0 needs noise_std, one value per column of Z.")
            self.register_buffer("noise_std", torch.as_tensor(noise_std, dtype=torch.float32))
            # from the generator the module is built under (`seeded_build`): reproducible
            self.noise_seed = int(torch.randint(0, 2**62, ()))
        head = getattr(network, "head", None)
        if isinstance(head, torch.nn.Linear) and head.out_features == self.n_outputs:
            # a zero output layer: the correction starts at 0 and learns at full speed
            with torch.no_grad():
                head.weight.zero_()
                if head.bias is not None:
                    head.bias.zero_()
            start = 1.0
        else:  # any other network: a gate at 0 (slower to get going under Adam)
            start = 0.0
        self.gate = torch.nn.Parameter(torch.full((self.n_outputs,), start))

    def base(self, Z):
        previous = Z[:, -self.n_outputs:]
        if self.link == "log":
            return torch.log(previous.clamp_min(torch.finfo(previous.dtype).tiny))
        return previous

    def _network_expansion(self, Z):
        """``Z`` as the network reads it: with the training noise while training."""
        if not (self.training and self.noise) or Z is None or not Z.shape[1]:
            return Z
        generator = self._noise_generator
        if generator is None or generator.device != Z.device:
            generator = torch.Generator(device=Z.device).manual_seed(self.noise_seed)
            self._noise_generator = generator
        eps = torch.randn(Z.shape, generator=generator, device=Z.device, dtype=Z.dtype)
        return Z + (self.noise * self.noise_std.to(Z.dtype)) * eps

    def __getstate__(self):  # pickles and copies start a fresh noise generator
        state = self.__dict__.copy()
        state["_noise_generator"] = None
        return state

    def forward(self, X, Z=None):
        return self.base(Z) + self.gate * self.network(X, self._network_expansion(Z))

    @torch.no_grad()
    def fit_closed_form(self, X, Z=None, y=None, sample_weight=None):
        """The network's closed-form fit (where it has one) on top of the previous round.

        The previous round's outputs are the network's ``offset``; the gate is
        set to 1.  False (gradient training) when the network has no
        ``fit_closed_form`` or declines.
        """
        fit = getattr(self.network, "fit_closed_form", None)
        if not callable(fit) or not fit(X, Z, y, sample_weight, offset=self.base(Z)):
            return False
        self.gate.fill_(1.0)
        return True

    def fits_closed_form(self, n_rows):
        return fits_closed_form(self.network, n_rows)

    def loo_outputs(self):
        """The network's leave-one-out outputs (the previous round's included: it was the
        closed-form fit's offset); None when it has none."""
        loo = getattr(self.network, "loo_outputs", None)
        return loo() if callable(loo) else None

    def features(self, X, Z=None):
        return self.network.features(X, Z)

    def features_and_output(self, X, Z=None):
        maps, out = features_and_output(self.network, X=X, Z=self._network_expansion(Z))
        return maps, self.base(Z) + self.gate * out


def build_continued(build, link, n_features, n_expansion, n_outputs, noise=0.0,
                    noise_std=None):
    """``ContinuedRound(build(n_features, n_expansion, n_outputs))``; picklable builder."""
    if n_expansion < n_outputs:
        raise ValueError(
            f"a continued round needs the previous prediction in Z ({n_outputs} columns); "
            f"Z has {n_expansion}."
        )
    return ContinuedRound(build(n_features, n_expansion, n_outputs), n_outputs, link,
                          noise=noise, noise_std=noise_std)


def expansion_std(Z):
    """Each column's standard deviation over the rows of ``Z`` (the noise's unit)."""
    return np.asarray(Z, dtype=np.float64).std(axis=0).astype(np.float32)


def _finite(out, feats, name):
    if not (np.isfinite(out).all() and np.isfinite(feats).all()):
        raise DivergenceError(f"member {name!r}: the outputs or feature maps are not finite")


def fit_member_group(task, specs, seeds, train, valid, folds, n_threads=None, continued=False,
                     first_seeds=None):
    """Fit the members of one job; return ``[(nets, Outputs)]``, one per member.

    One spec: one net, or one per fold.  Several specs: they share a
    ``stack_key`` and are trained as one stacked model (no folds).  ``yhat``
    and ``maps`` (`Outputs`) are the training rows' IMTs: in-sample, or
    out of fold (both from the fold net that did not train on the row).

    Parameters
    ----------
    task : MemberTask
    specs : list of MemberSpec
    seeds : list of int
        One per spec: initial weights (shared by a member's fold nets, so that
        their feature maps share coordinates) and shuffling.
    train : tuple (X, Z, y, sample_weight)
        Training rows: raw input, expansion, encoded targets, weights (or None).
    valid : tuple (X, Z, y, sample_weight) or None
        Validation rows for early stopping.
    folds : list of (train, held_out) index arrays or None
    n_threads : int or None
        torch's intra-op threads for this job, set wherever it runs (sequential,
        a thread, a process, a cluster worker): float32 reductions split over
        another number of threads round differently, so the same thread count
        everywhere is what makes every backend give the same model. The
        previous setting is restored afterwards.
    continued : bool
        Build every member as a `ContinuedRound` (rounds after the first
        with ``round_init="previous"``).
    first_seeds : list of int or None
        In rounds after the first: the members' seeds in round 0.  A member's
        data-dependent initialisation is the one of its round-0 module (built
        under that seed), whether it comes from ``task.memo`` or, where the
        memo is empty (another process), is computed again here: every
        backend gives the same model.
    """
    previous = torch.get_num_threads()
    if n_threads is not None and n_threads != previous:
        torch.set_num_threads(n_threads)
    try:
        return _fit_group(task, specs, seeds, train, valid, folds, continued, first_seeds)
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)


def _dataset(arrays, device, rows=None):
    """A `TensorDataset` of ``(X, Z, y, sample_weight)`` arrays, or of ``rows`` of them."""
    X, Z, y, weight = arrays if rows is None else (
        None if a is None else a[rows] for a in arrays
    )
    inputs = {"X": X, "Z": Z}
    if weight is not None:
        inputs[SAMPLE_WEIGHT] = weight
    y_dtype = torch.int64 if y.dtype.kind in "iu" else torch.float32
    return TensorDataset(inputs, y, device=device, y_dtype=y_dtype)


def _fit_group(task, specs, seeds, train, valid, folds, continued=False, first_seeds=None):
    if continued:  # a continued round starts as the previous round: never leave it worse
        task = replace(task, settings=replace(task.settings, keep_initial=True))
    X, Z = train[:2]
    device = task.settings.device
    valid_data = None if valid is None else _dataset(valid, device)
    noise = task.expansion_noise if continued else 0.0
    noise_std = expansion_std(Z) if noise else None
    builds = [partial(build_continued, spec.build, task.link, noise=noise, noise_std=noise_std)
              if continued else spec.build for spec in specs]
    builders = [partial(build, input_shape(X), Z.shape[1], task.n_outputs) for build in builds]
    names = ", ".join(repr(spec.name) for spec in specs)
    try:
        if len(specs) > 1 and not noise:  # (the stacked model draws no expansion noise)
            return _fit_stacked(task, builders, seeds, train, valid_data, specs, folds)
        fitted = []
        for i, spec in enumerate(specs):
            first = None
            if first_seeds is not None:  # the member's round-0 module, as round 0 built it
                first = (partial(spec.build, input_shape(X), 0, task.n_outputs),
                         int(first_seeds[i]))
            fitted.append(_fit_one(task, builders[i], seeds[i], train, valid_data, folds,
                                   spec.name, first))
        return fitted
    except DivergenceError as exc:
        if "member" in str(exc):
            raise
        raise DivergenceError(f"member {names}: {exc}") from None


def _fit_stacked(task, builders, seeds, train, valid_data, specs, folds=None):
    """Same-shaped members as one stack; with folds, every (member, fold) net in it."""
    from ._batched import train_stacked

    if folds is None:
        data = _dataset(train, task.settings.device)
        nets = train_stacked(builders, data, valid_data, task.settings,
                             seeds=[int(s) for s in seeds], labels=[spec.name for spec in specs])
        results = []
        for spec, net in zip(specs, nets):
            feats, out = run_module(net.module_, data.X)
            _finite(out, feats, spec.name)
            results.append(([net], Outputs(task.output_fn(out), feats)))
        return results
    per_member, data = _train_folds(task, builders, seeds, [spec.name for spec in specs],
                                    train, valid_data, folds)
    return [(nets, _fold_outputs(task, nets, data.X, folds, spec.name))
            for spec, nets in zip(specs, per_member)]


def _fold_validation(task, data, valid_data, folds):
    """What fold nets stop early on: ``(valid, valid_rows)`` for `train_stacked`.

    The shared validation rows when given; else, with ``task.fold_stopping``,
    each fold net's own held-out fold; else none.
    """
    if valid_data is None and task.fold_stopping:
        return data, [held_idx for _, held_idx in folds]
    return valid_data, None


def _run_sharing(module, inputs, cache):
    """`run_module`, with the module reading (and filling) ``cache`` while it runs."""
    if cache is None:
        return run_module(module, inputs)
    share_caches(module, cache)
    try:
        return run_module(module, inputs)
    finally:
        release_caches(module)


def _fold_outputs(task, nets, inputs, folds, name, cache=None):
    """`Outputs` of one member's fold nets on the training rows: all out of fold.

    Every fold net runs once on all rows (``inputs``); its held-out rows get
    its predictions and its feature maps. The maps are out of fold too: the
    mean over the fold nets would hold, for each row, the maps of the k - 1
    nets that trained on it, from which the next round reads the row's target
    back (and the out-of-fold scores that choose the round believe it). The
    fold nets share their initial weights, which keeps their hidden units
    comparable coordinates.
    """
    yhat = maps = None
    for net, (_, held_idx) in zip(nets, folds):
        feats, out = _run_sharing(net.module_, inputs, cache)
        _finite(out, feats, name)
        out = task.output_fn(out)
        if yhat is None:
            yhat = np.empty_like(out)
            maps = np.zeros_like(feats)
        yhat[held_idx] = out[held_idx]
        maps[held_idx] = feats[held_idx]
    return Outputs(yhat, maps)


def _stackable(make_module):
    """Whether the fold nets of ``make_module`` can train as one stack (`train_stacked`)."""
    from ._batched import _mlp

    return _mlp(seeded_build(make_module)) is not None


def _train_folds(task, builders, seeds, names, train, valid_data, folds):
    """Every fold net of every member as one stack, each as `train_network` would alone.

    Member ``m``'s fold nets all start from ``seeds[m]``; each stops early on
    `_fold_validation`. Returns one list of fold nets per member, and the
    training rows' `TensorDataset`.
    """
    from ._batched import train_stacked

    data = _dataset(train, task.settings.device)
    valid, valid_rows = _fold_validation(task, data, valid_data, folds)
    k = len(folds)
    nets = train_stacked(
        [build for build in builders for _ in folds], data, valid, task.settings,
        seeds=[int(seed) for seed in seeds for _ in folds],
        labels=[f"{name} fold {f}" for name in names for f in range(k)],
        train_rows=[train_idx for _ in builders for train_idx, _ in folds],
        valid_rows=None if valid_rows is None else valid_rows * len(builders),
    )
    return [nets[m * k:(m + 1) * k] for m in range(len(builders))], data


def _fit_one(task, make_module, seed, train, valid_data, folds, name, first=None):
    """One member: one net on all rows (in-sample IMTs), or one per fold (out of fold).

    A module with a data-dependent initialisation (``initialize``) is initialised
    once on all training rows, and its fold nets start as copies of it, sharing
    a cache of what it computes from a window and never trains (`initialized_builder`)
    until their out-of-fold outputs are computed.  With ``task.memo`` that
    initialisation and cache are the member's for the whole fit: computed in
    its first round, reused in the next.
    """
    device = task.settings.device
    all_rows = TensorDataset({"X": train[0], "Z": train[1]}, device=device).X
    key = None if task.memo is None else (name, windows_key(train[0]))
    make_module, cache = initialized_builder(make_module, int(seed), all_rows["X"],
                                             task.memo, key, first)
    try:
        return _fit_nets(task, make_module, seed, train, valid_data, folds, name, all_rows,
                         cache)
    finally:
        if cache is not None and task.memo is None:  # else kept for the next round
            cache.clear()


def fits_closed_form(module, n_rows):
    """Whether ``module`` fits ``n_rows`` rows in closed form with exact leave-one-out
    outputs (`RocketModule`'s ridge head; its ``fits_closed_form``)."""
    fits = getattr(module, "fits_closed_form", None)
    return callable(fits) and bool(fits(n_rows))


def _fit_nets(task, make_module, seed, train, valid_data, folds, name, all_rows, cache):
    device = task.settings.device
    # with folds, a module fitted in closed form on all rows gives exact leave-one-out
    # outputs, out of fold (n folds); its maps read no target (no layer under them trains)
    # (make_module copies an initialised module, `initialized_builder`: asking costs a copy)
    loo_fit = (folds is not None and valid_data is None and cache is not None  # initialised
               and fits_closed_form(make_module(), len(train[0])))
    if folds is None or loo_fit:
        data = _dataset(train, device)
        try:
            net = train_network(make_module, data, valid_data, task.settings, seed=int(seed),
                                label=name)
        except DivergenceError as exc:
            raise DivergenceError(f"member {name!r}: {exc}") from None
        loo = net.module_.loo_outputs() if loo_fit else None
        if folds is None or loo is not None:
            feats, out = _run_sharing(net.module_, data.X, cache)
            out = task.output_fn(out if loo is None else np.asarray(loo, dtype=float))
            _finite(out, feats, name)
            return [net], Outputs(out, feats)
    if len(folds) > 1 and _stackable(make_module):
        try:
            nets = _train_folds(task, [make_module], [seed], [name], train, valid_data,
                                folds)[0][0]
        except DivergenceError as exc:  # names the fold and seed already
            raise DivergenceError(f"member {name!r}: {exc}") from None
    else:
        nets = []
        for fold, (train_idx, held_idx) in enumerate(folds):
            stop_on = valid_data
            if valid_data is None and task.fold_stopping:
                stop_on = _dataset(train, device, rows=held_idx)
            try:
                nets.append(train_network(make_module, _dataset(train, device, rows=train_idx),
                                          stop_on, task.settings, seed=int(seed),
                                          label=f"{name} fold {fold}"))
            except DivergenceError as exc:
                raise DivergenceError(f"member {name!r} fold {fold}: {exc}") from None
    return nets, _fold_outputs(task, nets, all_rows, folds, name, cache)


def _member_name(spec):
    if isinstance(spec, str):
        return spec
    name = getattr(spec, "__name__", None)
    if name is None and hasattr(spec, "func"):  # functools.partial
        name = getattr(spec.func, "__name__", None)
    return name or type(spec).__name__


# members="<preset>" -> the architectures it stands for; "timeseries" was chosen by the
# time-series suite (docs/multiverse.md): three rocket members (each its own random
# kernels' channels and bias windows, from its seed)
PRESETS = {"timeseries": ("rocket", "rocket", "rocket")}


def resolve_members(members, default_spec, hidden_layer_sizes):
    """The list of `MemberSpec` that ``members`` describes.

    ``members``: None (the estimator's own network, ``default_spec``), an
    int k (k copies of it), a preset name of `PRESETS`, or a list of
    architecture names, module callables and ``(name, spec)`` pairs;
    ``"mlp"`` uses ``hidden_layer_sizes``.
    """
    if members is None:
        return [default_spec]
    if isinstance(members, Integral):
        base = default_spec
        return [MemberSpec(f"{base.name}_{i}", base.build, base.stack_key) for i in range(members)]
    if isinstance(members, str) and members in PRESETS:
        members = PRESETS[members]
    if isinstance(members, str) or not hasattr(members, "__len__") or len(members) == 0:
        raise ValueError(
            f"members must be an int >= 1, a preset ({', '.join(map(repr, PRESETS))}) or a "
            "non-empty list of architectures (names among "
            f"{sorted(BUILTIN_MODULES)}, module callables, or (name, spec) pairs); "
            f"got {members!r}."
        )
    specs = []
    for i, item in enumerate(members):
        label = None
        if isinstance(item, tuple):
            if len(item) != 2 or not isinstance(item[0], str):
                raise ValueError(
                    f"members[{i}] must be a name, a module callable or a (name, spec) pair "
                    f"with a str name; got {item!r}."
                )
            label, item = item
        if isinstance(item, str):
            if item not in BUILTIN_MODULES:
                raise ValueError(
                    f"members[{i}]: unknown architecture {item!r}; the built-in ones are "
                    f"{sorted(BUILTIN_MODULES)} (or pass a torch module callable)."
                )
            specs.append(builtin_spec(item, hidden_layer_sizes, label))
        elif callable(item):
            specs.append(MemberSpec(label or _member_name(item), item))
        else:
            raise ValueError(
                f"members[{i}] must be an architecture name, a module callable "
                f"module(n_features, n_expansion, n_outputs) or a (name, spec) pair; "
                f"got {item!r}."
            )
    # unique labels for history_ and plots: "mlp", "mlp" -> "mlp_0", "mlp_1",
    # skipping numbers that another member is already called
    names = [spec.name for spec in specs]
    taken = set(names)
    counts = {}
    out = []
    for spec in specs:
        if names.count(spec.name) > 1:
            k = counts.get(spec.name, 0)
            while f"{spec.name}_{k}" in taken:
                k += 1
            counts[spec.name] = k + 1
            taken.add(f"{spec.name}_{k}")
            spec = MemberSpec(f"{spec.name}_{k}", spec.build, spec.stack_key)
        out.append(spec)
    return out


@dataclass
class RoundPlan:
    """What every round of a fit consists of.

    Attributes
    ----------
    members : None, int or list
        What the members are, as `resolve_members` reads it; None: the
        estimator's own network, alone.
    weighting : {"uniform", "score", "aulc"}
    n_select : int or None
        Keep only the best ``n_select`` members of each round.
    n_jobs : int or None
        joblib ``n_jobs`` for the member fits of a round.
    batched : {"auto", True, False}
        Train members with the same ``stack_key`` as one stacked model.
    specs : list of MemberSpec or None
        The resolved members; set by the estimator (`resolved`).
    """

    members: object = None
    weighting: str = "uniform"
    n_select: int = None
    n_jobs: int = None
    batched: object = False
    specs: list = None

    def resolved(self, default_spec, hidden_layer_sizes):
        """This plan with ``specs`` set; raises if ``n_select`` exceeds the members."""
        specs = resolve_members(self.members, default_spec, hidden_layer_sizes)
        if self.n_select is not None and self.n_select > len(specs):
            raise ValueError(
                f"n_select={self.n_select} is larger than the number of members "
                f"({len(specs)}); use n_select <= {len(specs)} or None."
            )
        return replace(self, specs=specs)

    def _stack_groups(self):
        by_key = {}
        for i, spec in enumerate(self.specs):
            if spec.stack_key is not None:
                by_key.setdefault(spec.stack_key, []).append(i)
        return [group for group in by_key.values() if len(group) > 1]

    def check(self, folds):
        """Raise if ``batched=True`` cannot be honoured."""
        if self.batched is True:
            if not self._stack_groups():
                raise ValueError(
                    "batched=True needs at least two members that are the built-in MLP with "
                    "the same hidden_layer_sizes; the members are "
                    f"{[spec.name for spec in self.specs]}. Use batched='auto' or False."
                )

    def groups(self, folds):
        """The jobs of a round: lists of member indices, stacked groups first.

        A stacked group trains its members (and with ``folds`` every fold net
        of each) as one stacked model.
        """
        stacked = [] if self.batched is False else self._stack_groups()
        in_stack = {i for group in stacked for i in group}
        return stacked + [[i] for i in range(len(self.specs)) if i not in in_stack]
