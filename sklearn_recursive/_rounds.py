"""The round loop of every Recurrent Expansion fit, written once.

RE and `MultiverseRE` run the same loop; only the `RoundPlan` differs (one
member per round, or several)::

    for r = 0, 1, ...:
        fit the round's members on [X, Z_r]          (jobs on any joblib backend)
        select and weight them, combine their IMTs   (training and validation rows)
        record round r; stop when validation stops improving
        Z_{r+1} = [rho_r(maps_r), yhat_r]

The loop knows nothing of the task: the estimator passes a `Chain` with its
loss, score and aggregator factory.
"""

import contextlib
import time
import warnings
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from sklearn.utils.parallel import Parallel, delayed

from ._expansion import (
    ExpansionRound,
    Outputs,
    aulc,
    combine_members,
    expand,
    member_outputs,
    round_inputs,
)
from ._members import MemberTask, check_member, fit_member_group
from ._progress import RoundProgress
from ._training import DivergenceError, InitMemo


@dataclass(frozen=True)
class Rows:
    """Rows of a fit: raw input, expansion vector, encoded targets, weights.

    ``Z`` starts empty (no expansion in round 0) and grows round by round.
    """

    X: np.ndarray
    y: np.ndarray
    sample_weight: np.ndarray = None
    Z: np.ndarray = None

    def __post_init__(self):
        if self.Z is None:
            object.__setattr__(self, "Z", np.zeros((len(self.X), 0), np.float32))

    def __len__(self):
        return len(self.X)

    def expanded(self, Z):
        return replace(self, Z=Z)

    def arrays(self):
        """``(X, Z, y, sample_weight)``: what a member job receives."""
        return self.X, self.Z, self.y, self.sample_weight


@dataclass
class FittedMember:
    """One member of a round after its fit.

    ``nets`` holds one skorch net, or one per fold with cross-fitting;
    ``train`` the training rows' IMTs (in-sample, or out-of-fold).
    """

    name: str
    seed: int
    nets: list
    train: Outputs
    valid: Outputs = None


@dataclass(frozen=True)
class Chain:
    """What the estimator tells the loop: its task and its round schedule.

    Attributes
    ----------
    task : MemberTask
    n_rounds : int
    loss, score : callable
        ``loss(y, yhat, sample_weight)`` (lower is better) and ``score``.
    make_aggregator : callable
        ``make_aggregator(seed)`` returns a fresh, unfitted ``rho``.
    check_n_components : callable
        ``check_n_components(n_maps, n_rows)`` raises if ``rho`` cannot
        give the asked width.
    patience, tol : int, float
        Rounds without improving the validation loss by more than ``tol``
        before the chain stops.
    name : str
        The estimator's name, for messages.
    lr : float
    verbose : int
    round_init : {"random", "previous"}
        ``"previous"``: rounds after the first are `ContinuedRound` networks
        that start as the previous round's function.
    selection : {"best", "one_se"}
        How ``best_round`` is chosen among the fitted rounds (`one_se_round`).
    combine : {"last", "mean"}
        What the chain up to round ``r`` predicts: round ``r``'s yhat, or the
        mean of rounds ``0..r``. The rows that score the rounds (stopping and
        ``best_round``) score that prediction.
    row_loss : callable or None
        ``row_loss(y, yhat)``: the per-row losses whose mean is ``loss``;
        they score the rounds (`selection_rows`).
    oof : bool
        The training rows' IMTs are out-of-fold (cross-fitting): they score
        the rounds too, beside any validation rows.
    stop_rounds : bool
        Stop the chain after ``patience`` rounds without improving; False
        fits every round (``best_round`` is still chosen).
    """

    task: MemberTask
    n_rounds: int
    loss: object
    score: object
    make_aggregator: object
    check_n_components: object
    patience: int
    tol: float
    name: str
    lr: float
    verbose: int = 0
    round_init: str = "random"
    selection: str = "best"
    combine: str = "last"
    row_loss: object = None
    oof: bool = False
    stop_rounds: bool = True


@dataclass
class ChainResult:
    rounds: list = field(default_factory=list)
    history: list = field(default_factory=list)
    best_round: int = 0
    interrupted: bool = False


class RoundStopper:
    """Early stopping over rounds, shaped like skorch's ``EarlyStopping``.

    ``step(loss)`` is called once per round with its validation loss (NaN
    without validation rows: then every round counts as the best, and the
    chain runs to the end; an infinite loss never improves) and returns
    whether to stop.
    """

    def __init__(self, patience, tol):
        self.patience = patience
        self.tol = tol
        self.best_loss = np.inf
        self.best_round = 0
        self.stale = 0
        self.rounds = 0

    def step(self, loss):
        r = self.rounds
        self.rounds += 1
        if np.isnan(loss):  # no validation rows: the last round is used
            self.best_round = r
            return False
        if loss < self.best_loss - self.tol:
            self.best_loss, self.best_round, self.stale = loss, r, 0
            return False
        self.stale += 1
        return self.stale >= self.patience


def scores(chain, nets, train_rows, train, valid_rows=None, valid=None):
    """The record every round and every member gets: losses, scores, AULC, epochs.

    ``valid_loss``/``valid_score`` are on the rows that validate: the held-out
    rows, or with cross-fitting (``chain.oof``, no held-out rows) every
    training row out of fold -- then the same as ``train_loss``/``train_score``.
    """
    curves = [np.asarray(net.history[:, "train_loss"], dtype=float) for net in nets]
    record = {
        "train_loss": chain.loss(train_rows.y, train.yhat, train_rows.sample_weight),
        "train_score": chain.score(train_rows.y, train.yhat, train_rows.sample_weight),
        "valid_loss": np.nan,
        "valid_score": np.nan,
        "aulc": float(np.mean([aulc(c) for c in curves])),
        "epochs": int(np.mean([len(c) for c in curves])),
    }
    if valid is not None:
        record["valid_loss"] = chain.loss(valid_rows.y, valid.yhat, valid_rows.sample_weight)
        record["valid_score"] = chain.score(valid_rows.y, valid.yhat, valid_rows.sample_weight)
    elif chain.oof:
        record["valid_loss"], record["valid_score"] = record["train_loss"], record["train_score"]
    return record, curves


def select_members(records, n_select, has_valid):
    """Indices of the ``n_select`` members of lowest loss, in member order.

    The loss is the validation loss, or the training rows' loss without
    validation rows. None keeps every member.
    """
    if n_select is None or n_select >= len(records):
        return list(range(len(records)))
    key = "valid_loss" if has_valid else "train_loss"
    order = np.argsort([r[key] for r in records], kind="stable")
    return sorted(int(i) for i in order[:n_select])


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


def selection_rows(chain, train, train_out, valid=None, valid_out=None):
    """Per-row losses and weights of the rows that score a round, or None.

    Honest rows only: the validation rows, and with cross-fitting
    (``chain.oof``) every training row through its out-of-fold prediction.
    The same rows score every round, so that their losses can be compared
    row by row (`one_se_round`).
    """
    parts = []
    if chain.oof:
        parts.append((train, train_out))
    if valid is not None:
        parts.append((valid, valid_out))
    if not parts:
        return None
    losses = np.concatenate([chain.row_loss(rows.y, out.yhat) for rows, out in parts])
    weights = np.concatenate([
        np.ones(len(rows)) if rows.sample_weight is None
        else np.asarray(rows.sample_weight, dtype=float) for rows, _ in parts
    ])
    return losses, weights


def one_se_round(row_losses, best, sample_weight=None):
    """The earliest round within one standard error of round ``best``.

    ``row_losses[r]`` are round ``r``'s per-row losses on the validation rows.
    Round ``r`` qualifies when its mean loss exceeds the best round's by at
    most the standard error of that difference, computed on the same rows
    (paired: the rounds' errors on one row are strongly correlated, so the
    difference's standard error is much smaller than either loss's). This is
    the one-standard-error rule of Breiman et al. (1984) for the number of
    rounds: where validation cannot tell later rounds from an earlier one,
    the earlier, simpler chain is used.
    """
    w = np.ones(len(row_losses[best])) if sample_weight is None else np.asarray(
        sample_weight, dtype=float)
    w = w / w.sum()
    # unbiased for reliability weights: n / (n - 1) with equal weights
    correction = 1.0 / max(1.0 - float(np.sum(w**2)), 1e-12)
    for r in range(best):
        diff = np.asarray(row_losses[r], dtype=float) - np.asarray(row_losses[best], dtype=float)
        mean = float(np.sum(w * diff))
        se = float(np.sqrt(correction * np.sum(w**2 * (diff - mean) ** 2)))
        if mean <= se:
            return r
    return best


def _fit_members(chain, plan, train, valid, folds, seeds, parallel, continued=False,
                 first_seeds=None):
    """Fit every member of a round, in jobs on ``parallel``; `FittedMember` each."""
    specs = plan.specs
    groups = plan.groups(folds)
    # every job gets this process's torch threads shared among the round's
    # jobs, whatever backend and n_jobs run them: the same thread count, so the
    # same float32 rounding, so the same model (see fit_member_group)
    n_threads = max(1, torch.get_num_threads() // len(groups))
    valid_arrays = None if valid is None else valid.arrays()
    jobs = (
        delayed(fit_member_group)(
            chain.task, [specs[i] for i in group], [int(seeds[i]) for i in group],
            train.arrays(), valid_arrays, folds, n_threads, continued,
            None if first_seeds is None else [int(first_seeds[i]) for i in group],
        )
        for group in groups
    )
    threads = torch.get_num_threads()
    try:
        results = parallel(jobs)
    finally:  # jobs in threads of this process (threading backend) set its threads
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
    fitted = [None] * len(specs)
    for group, result in zip(groups, results):
        for i, (nets, outputs) in zip(group, result):
            fitted[i] = FittedMember(specs[i].name, int(seeds[i]), nets, outputs)
    return fitted


def fit_round(chain, plan, train, valid, folds, seeds, parallel, continued=False,
              first_seeds=None):
    """Fit, score, select and weight the members of one round.

    Returns the `ExpansionRound`, the combined IMTs of the training and
    validation rows (`Outputs`; None without validation) and the member
    records. ``continued``: the members are `ContinuedRound` networks.
    """
    fitted = _fit_members(chain, plan, train, valid, folds, seeds, parallel, continued,
                          first_seeds)
    if valid is not None:
        valid_inputs = round_inputs(valid.X, valid.Z, chain.task.settings.device)
    records = []
    for member in fitted:
        if valid is not None:
            member.valid = member_outputs(member.nets, valid_inputs, chain.task.output_fn)
        record, _ = scores(chain, member.nets, train, member.train, valid, member.valid)
        records.append({"name": member.name, "seed": member.seed, **record})

    has_valid = valid is not None
    selected = select_members(records, plan.n_select, has_valid)
    weights = member_weights(plan.weighting, [records[i] for i in selected], has_valid)
    for i, record in enumerate(records):
        record["selected"] = i in selected
        record["weight"] = float(weights[selected.index(i)]) if i in selected else 0.0
    kept = [fitted[i] for i in selected]
    train_out = combine_members([m.train for m in kept], weights)
    valid_out = combine_members([m.valid for m in kept], weights) if has_valid else None
    rnd = ExpansionRound(
        members=[m.nets for m in kept], weights=weights, n_maps=train_out.maps.shape[1]
    )
    return rnd, train_out, valid_out, records


def fit_chain(chain, plan, train, valid, folds, seeds):
    """Fit the rounds of ``plan`` on ``train`` rows; return a `ChainResult`.

    ``seeds[r, m]`` seeds member ``m`` of round ``r`` (and round ``r``'s
    aggregator, with ``m = 0``). A ``KeyboardInterrupt`` after round 0
    keeps the finished rounds (the round in progress is discarded) and
    warns; a diverging member raises `DivergenceError` naming the round.
    """
    for spec in plan.specs:
        check_member(spec, train.X, train.Z, chain.task.n_outputs)
    progress = None
    if chain.verbose:
        nets = len(plan.specs) * (1 if folds is None else len(folds))
        progress = RoundProgress(chain.n_rounds, nets, chain.task.settings.max_epochs)
        settings = replace(chain.task.settings, callbacks=(("progress", progress.callback),))
        chain = replace(chain, task=replace(chain.task, settings=settings))
    # the members' data-dependent initialisations, computed once for all rounds
    memo = InitMemo()
    chain = replace(chain, task=replace(chain.task, memo=memo))
    try:
        return _fit_rounds(chain, plan, train, valid, folds, seeds, progress)
    finally:
        memo.clear()


def _fit_rounds(chain, plan, train, valid, folds, seeds, progress):
    result = ChainResult()
    stopper = RoundStopper(chain.patience, chain.tol)
    row_losses = []  # per selection row, per round (selection="one_se")
    combined = _Combined(chain.combine)
    weights = None
    # one Parallel for all rounds: backends that start a pool per call (Ray's,
    # multiprocessing) keep their workers from round to round
    with Parallel(n_jobs=plan.n_jobs) as parallel, _closing(progress):
        try:
            for r in range(chain.n_rounds):
                start = time.perf_counter()
                if progress is not None:
                    progress.round_start(r)
                try:
                    rnd, train_out, valid_out, members = fit_round(
                        chain, plan, train, valid, folds, seeds[r], parallel,
                        continued=chain.round_init == "previous" and r > 0,
                        first_seeds=seeds[0] if r > 0 else None,
                    )
                except DivergenceError as exc:
                    raise DivergenceError(
                        f"{chain.name}: training diverged in round {r} ({exc}). "
                        f"Lower lr (now {chain.lr}); with standardize=False, also scale X "
                        "(e.g. Pipeline(StandardScaler(), ...))."
                    ) from None
                record, curves = scores(chain, rnd.nets, train, train_out, valid, valid_out)
                record = {"round": r, **record, "curve": curves[0].tolist(),
                          "members": members, "seconds": time.perf_counter() - start}
                result.rounds.append(rnd)
                result.history.append(record)
                # the rows that score the chain up to this round: for stopping,
                # "best" and "one_se" alike
                scored_train, scored_valid = combined.add(train_out, valid_out)
                selecting = selection_rows(chain, train, scored_train, valid, scored_valid)
                score_loss = np.nan
                if selecting is not None:
                    losses, weights = selecting
                    row_losses.append(losses)
                    score_loss = float(np.average(losses, weights=weights))
                record["selection_loss"] = score_loss
                stop = stopper.step(score_loss) and chain.stop_rounds
                if progress is not None:
                    progress.round_end(record)
                if stop or r == chain.n_rounds - 1:
                    break
                if r == 0:
                    chain.check_n_components(train_out.maps.shape[1], len(train))
                rnd.aggregator = chain.make_aggregator(int(seeds[r, 0])).fit(train_out.maps)
                train = train.expanded(expand(rnd, train_out))
                if valid is not None:
                    valid = valid.expanded(expand(rnd, valid_out))
        except KeyboardInterrupt:
            if not result.rounds:
                raise
            # the round in progress is discarded; the last kept one feeds no other
            result.rounds = result.rounds[: len(result.history)]
            result.rounds[-1].aggregator = None
            result.interrupted = True
            warnings.warn(
                f"fit interrupted before round {len(result.history)} finished: the "
                f"{len(result.rounds)} finished round(s) are kept and the estimator is usable.",
                UserWarning,
                stacklevel=4,
            )
    result.best_round = stopper.best_round
    if row_losses and chain.selection == "one_se":
        result.best_round = one_se_round(
            row_losses[: len(result.rounds)], stopper.best_round, weights
        )
    for i, record in enumerate(result.history):
        record["best"] = i == result.best_round
    if progress is not None and row_losses:
        progress.line(f"best round: {result.best_round}")
    return result


class _Combined:
    """What the chain up to each round predicts, for the rows that score it.

    ``add(train_out, valid_out)`` takes a round's `Outputs` and returns the
    chain's: the round's own (``"last"``), or the running mean of the
    rounds' yhat so far (``"mean"``; the maps are not used to score).
    """

    def __init__(self, combine):
        self.combine = combine
        self.sums = None
        self.n = 0

    def add(self, *outputs):
        if self.combine == "last":
            return outputs
        self.n += 1
        yhats = [None if out is None else out.yhat for out in outputs]
        if self.sums is None:
            self.sums = [None if y is None else y.astype(np.float64) for y in yhats]
        else:
            self.sums = [None if y is None else s + y for s, y in zip(self.sums, yhats)]
        return [None if out is None else Outputs(s / self.n, out.maps)
                for out, s in zip(outputs, self.sums)]


@contextlib.contextmanager
def _closing(progress):
    try:
        yield
    finally:
        if progress is not None:
            progress.close()
