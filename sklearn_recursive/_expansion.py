"""The expansion engine shared by every Recurrent Expansion estimator.

A fitted model is a list of `ExpansionRound` objects.  Round ``i`` holds one
or more *members* (RE has one; a multiverse has several), each fitted once on
all training rows or, with cross-fitting, once per fold.  Its ``aggregator``
(``rho``) compresses the members' feature maps into the expansion vector of
round ``i + 1``:

    Z_0 = []                                    (no expansion in round 0)
    yhat_i, maps_i = round_i(X, Z_i)            (IMTs: Inputs, Maps, Targets)
    Z_{i+1} = [ rho_i(maps_i), yhat_i ]

``yhat`` is what the task feeds forward: standardised values for regression,
class probabilities for classification.
"""

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from ._training import TensorDataset, run_module, share_caches_by_key


class Outputs(NamedTuple):
    """What a round (or one member) makes of some rows: its IMTs less the input.

    ``yhat`` is what the task feeds forward (standardised values, or class
    probabilities), ``(n_samples, n_outputs)``; ``maps`` the feature maps,
    ``(n_samples, n_maps)``.
    """

    yhat: np.ndarray
    maps: np.ndarray


@dataclass
class ExpansionRound:
    """One fitted round.

    Attributes
    ----------
    members : list of list of skorch nets
        ``members[m][f]`` is member ``m``'s net fitted without fold ``f``
        (a single net per member when cross-fitting is off).
    weights : ndarray of shape (n_members,)
        Weights of the members' predictions in the round's aggregate.
    aggregator : transformer or None
        ``rho``, fitted on this round's training maps; None for the last
        round, which feeds no further round.
    """

    members: list
    weights: np.ndarray
    aggregator: object = None
    n_maps: int = field(default=0)

    @property
    def nets(self):
        """All nets of the round, member by member."""
        return [net for member in self.members for net in member]


def round_inputs(X, Z, device):
    """The network input of a round: raw input and expansion, kept apart."""
    return TensorDataset({"X": X, "Z": Z}, device=device).X


def identity(outputs):
    """The regressor's ``yhat``: its network outputs as they are."""
    return outputs


def member_outputs(nets, inputs, output_fn):
    """`Outputs` of one member: the mean over its fold nets of yhat and of maps."""
    yhat, maps = None, None
    for net in nets:
        feats, out = run_module(net.module_, inputs)
        out = output_fn(out)
        yhat = out if yhat is None else yhat + out
        maps = feats if maps is None else maps + feats
    return Outputs(yhat / len(nets), maps / len(nets))


def combine_members(per_member, weights):
    """`Outputs` of a round: weighted mean of the members' yhat, their maps side by side."""
    yhat = sum(w * out.yhat for w, out in zip(weights, per_member)) / np.sum(weights)
    maps = np.hstack([out.maps for out in per_member])
    return Outputs(yhat, maps)


def round_outputs(rnd, inputs, output_fn):
    """`Outputs` of a fitted round on new rows."""
    per_member = [member_outputs(nets, inputs, output_fn) for nets in rnd.members]
    return combine_members(per_member, rnd.weights)


# The standardised compressed maps are clipped to this many standard
# deviations: a component with almost no variance on the training rows (a few
# rows, dead units) would otherwise send other rows to 1e38 and beyond -- inf
# in float32, then NaN. Rows of ordinary data are far inside the limit.
Z_LIMIT = 1e3


def expand(rnd, outputs):
    """The expansion vector ``[rho(maps), yhat]`` for the next round."""
    compressed = np.clip(rnd.aggregator.transform(outputs.maps), -Z_LIMIT, Z_LIMIT)
    return np.hstack([compressed, outputs.yhat]).astype(np.float32)


# Prediction runs the chain on chunks of this many rows, the last one padded
# with zero rows: every row is then computed in products of one shape, so its
# prediction does not depend on which other rows, or how many, came with it
# (float32 matrix products of other shapes round differently in the last bits).
PREDICT_CHUNK = 256


def _chain_on_chunk(rounds, X, output_fn, device):
    """``yhat`` of each of ``rounds`` on the rows ``X`` (one chunk).

    Networks that compute the same fixed function of a window (a rocket
    member's fold networks and rounds: `share_caches_by_key`) share a cache
    of it while the chunk runs: it is computed once per window, not once
    per network.
    """
    shared = share_caches_by_key([net.module_ for rnd in rounds for net in rnd.nets], {})
    try:
        Z = np.zeros((len(X), 0), dtype=np.float32)
        yhats = []
        for i, rnd in enumerate(rounds):
            outputs = round_outputs(rnd, round_inputs(X, Z, device), output_fn)
            yhats.append(outputs.yhat)
            if i < len(rounds) - 1:
                Z = expand(rnd, outputs)
        return yhats
    finally:
        for sub in shared:
            sub.release_cache()


def staged_outputs(rounds, X, output_fn, device, last=None):
    """Yield ``yhat`` of each round in turn, running the chain on ``X``.

    The chain runs on fixed-size chunks of rows (`PREDICT_CHUNK`), so that
    a row's prediction is the same whatever rows it comes with.

    Parameters
    ----------
    rounds : list of ExpansionRound
    X : ndarray, float32
    last : int or None
        Index of the last round to run (all rounds when None).
    """
    rounds = rounds[: (len(rounds) if last is None else last + 1)]
    per_chunk = []
    for start in range(0, len(X), PREDICT_CHUNK):
        chunk = X[start : start + PREDICT_CHUNK]
        n = len(chunk)
        if n < PREDICT_CHUNK:
            pad = np.zeros((PREDICT_CHUNK - n, *X.shape[1:]), dtype=X.dtype)
            chunk = np.concatenate([chunk, pad])
        per_chunk.append([yhat[:n] for yhat in _chain_on_chunk(rounds, chunk, output_fn, device)])
    for r in range(len(rounds)):
        yield np.concatenate([yhats[r] for yhats in per_chunk])


def running_means(arrays):
    """Yield the mean of the first 1, 2, ... of ``arrays`` (an iterable)."""
    total = None
    for i, array in enumerate(arrays, start=1):
        total = array.copy() if total is None else total + array
        yield total / i


def aulc(curve):
    """Area under a per-epoch loss curve, normalised by its length in epochs.

    The trapezoid area over ``len(curve) - 1`` epoch intervals divided by
    that number of intervals: the curve's mean height.  A single epoch's
    AULC is its loss.
    """
    curve = np.asarray(curve, dtype=float)
    if curve.size == 1:
        return float(curve[0])
    return float(np.trapezoid(curve) / (curve.size - 1))
