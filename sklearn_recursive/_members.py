"""The members of an expansion round: what they are and how they are fitted.

A round has one member (Recurrent Expansion) or several (a multiverse).  A
member is described by a `MemberSpec`; the fits of a round are grouped into
jobs -- one member, or several same-shaped MLPs trained stacked -- and every
job is the module-level function `fit_member_group`, so that joblib can send
it to a thread, a process or a Dask/Ray worker.
"""

from dataclasses import dataclass
from functools import partial

import numpy as np
import torch

from ._modules import BUILTIN_MODULES, MLPModule
from ._training import DivergenceError, TensorDataset, infer, seeded_build, train_network


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
class TrainSettings:
    """What every member fit of an estimator shares; small and picklable."""

    criterion: type
    output_fn: object
    n_outputs: int
    max_epochs: int
    batch_size: int
    lr: float
    n_iter_no_change: int
    tol: float
    device: str
    verbose: int = 0
    out_of_fold_maps: bool = False

    def fit_kwargs(self):
        return dict(
            criterion=self.criterion,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            n_iter_no_change=self.n_iter_no_change,
            tol=self.tol,
            device=self.device,
            verbose=self.verbose,
        )


def _finite(out, feats, name):
    if not (np.isfinite(out).all() and np.isfinite(feats).all()):
        raise DivergenceError(f"member {name!r}: the outputs or feature maps are not finite")


def fit_member_group(settings, specs, seeds, X, Z, y, valid, folds, max_threads=None):
    """Fit the members of one job; return ``[(nets, yhat, maps)]``, one per member.

    One spec: one net, or one per fold.  Several specs: they share a
    ``stack_key`` and are trained as one stacked model (no folds).  ``yhat``
    and ``maps`` are the training rows' IMTs: in-sample, or out-of-fold
    predictions with the fold nets' mean maps.

    Parameters
    ----------
    settings : TrainSettings
    specs : list of MemberSpec
    seeds : list of int
        One per spec: initial weights (shared by a member's fold nets, so that
        their feature maps share coordinates) and shuffling.
    X, Z, y : ndarray
        Training rows: raw input, expansion, encoded targets.
    valid : tuple (X, Z, y) or None
        Validation rows for early stopping.
    folds : list of (train, held_out) index arrays or None
    max_threads : int or None
        Cap on torch's intra-op threads in this worker, so that workers x
        threads do not exceed the machine's cores.
    """
    if max_threads is not None and torch.get_num_threads() > max_threads:
        torch.set_num_threads(max_threads)
    y_dtype = torch.int64 if y.dtype.kind in "iu" else torch.float32
    device = settings.device
    valid_data = None
    if valid is not None:
        valid_data = TensorDataset(
            {"X": valid[0], "Z": valid[1]}, valid[2], device=device, y_dtype=y_dtype
        )
    builders = [
        partial(spec.build, input_shape(X), Z.shape[1], settings.n_outputs) for spec in specs
    ]
    names = ", ".join(repr(spec.name) for spec in specs)
    try:
        if len(specs) > 1:
            return _fit_stacked(settings, builders, seeds, X, Z, y, valid_data, y_dtype, specs)
        return [_fit_one(settings, builders[0], seeds[0], X, Z, y, valid_data, folds, y_dtype,
                         specs[0].name)]
    except DivergenceError as exc:
        if "member" in str(exc):
            raise
        raise DivergenceError(f"member {names}: {exc}") from None


def _fit_stacked(settings, builders, seeds, X, Z, y, valid_data, y_dtype, specs):
    from ._batched import train_stacked

    data = TensorDataset({"X": X, "Z": Z}, y, device=settings.device, y_dtype=y_dtype)
    nets = train_stacked(
        builders, data, valid_data, seeds=[int(s) for s in seeds], **settings.fit_kwargs()
    )
    results = []
    for spec, net in zip(specs, nets):
        out, feats = infer(net.module_, data.X)
        _finite(out, feats, spec.name)
        results.append(([net], settings.output_fn(out), feats))
    return results


def _fit_one(settings, make_module, seed, X, Z, y, valid_data, folds, y_dtype, name):
    index_sets = [(np.arange(len(X)), None)] if folds is None else folds
    # with folds, every fold net runs once on all rows: the held-out rows
    # give its out-of-fold predictions, all rows its share of the mean maps
    all_rows = None if folds is None else TensorDataset({"X": X, "Z": Z}, device=settings.device).X
    nets = []
    yhat = maps = None
    for train_idx, held_idx in index_sets:
        data = TensorDataset(
            {"X": X[train_idx], "Z": Z[train_idx]}, y[train_idx],
            device=settings.device, y_dtype=y_dtype,
        )
        net = train_network(make_module, data, valid_data, seed=int(seed), **settings.fit_kwargs())
        nets.append(net)
        out, feats = infer(net.module_, data.X if held_idx is None else all_rows)
        _finite(out, feats, name)
        out = settings.output_fn(out)
        if held_idx is None:  # in-sample IMTs
            yhat, maps = out, feats
            continue
        if yhat is None:
            yhat = np.empty_like(out)
            maps = np.zeros_like(feats)
        yhat[held_idx] = out[held_idx]
        if settings.out_of_fold_maps:
            maps[held_idx] = feats[held_idx]
        else:
            maps += feats / len(folds)
    return nets, yhat, maps


def member_weights(weighting, records, has_valid):
    """Weights of the members' predictions, normalised to sum to 1.

    ``"uniform"``: equal.  ``"score"``: inverse loss on the validation rows
    (on the training rows' IMTs without validation).  ``"aulc"``: inverse
    area under the learning curve.
    """
    if weighting == "uniform":
        raw = np.ones(len(records))
    elif weighting == "score":
        key = "valid_loss" if has_valid else "train_loss"
        raw = 1.0 / np.maximum([r[key] for r in records], 1e-12)
    else:  # "aulc"
        raw = 1.0 / np.maximum([r["aulc"] for r in records], 1e-12)
    return raw / raw.sum()


def select_members(records, n_select, has_valid):
    """Indices of the ``n_select`` members of lowest loss, in member order."""
    if n_select is None or n_select >= len(records):
        return list(range(len(records)))
    key = "valid_loss" if has_valid else "train_loss"
    order = np.argsort([r[key] for r in records], kind="stable")
    return sorted(int(i) for i in order[:n_select])


@dataclass
class RoundPlan:
    """What every round of a fit consists of.

    Attributes
    ----------
    specs : list of MemberSpec
    weighting : {"uniform", "score", "aulc"}
    n_select : int or None
        Keep only the best ``n_select`` members of each round.
    n_jobs : int or None
        joblib ``n_jobs`` for the member fits of a round.
    batched : {"auto", True, False}
        Train members with the same ``stack_key`` as one stacked model.
    """

    specs: list
    weighting: str = "uniform"
    n_select: int = None
    n_jobs: int = None
    batched: object = False

    def _stack_groups(self):
        by_key = {}
        for i, spec in enumerate(self.specs):
            if spec.stack_key is not None:
                by_key.setdefault(spec.stack_key, []).append(i)
        return [group for group in by_key.values() if len(group) > 1]

    def check(self, folds):
        """Raise if ``batched=True`` cannot be honoured."""
        if self.batched is True:
            if folds is not None:
                raise ValueError(
                    "batched=True cannot be combined with cross-fitting (the estimator's cv "
                    "is set): each fold trains on other rows. Use batched='auto' or False."
                )
            if not self._stack_groups():
                raise ValueError(
                    "batched=True needs at least two members that are the built-in MLP with "
                    "the same hidden_layer_sizes; the members are "
                    f"{[spec.name for spec in self.specs]}. Use batched='auto' or False."
                )

    def groups(self, folds):
        """The jobs of a round: lists of member indices, stacked groups first."""
        stacked = [] if self.batched is False or folds is not None else self._stack_groups()
        in_stack = {i for group in stacked for i in group}
        return stacked + [[i] for i in range(len(self.specs)) if i not in in_stack]
