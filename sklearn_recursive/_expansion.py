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

import numpy as np

from ._training import TensorDataset, infer


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


def member_outputs(nets, inputs, output_fn):
    """Mean over a member's fold nets of ``output_fn(outputs)`` and of maps."""
    yhat, maps = None, None
    for net in nets:
        out, feats = infer(net.module_, inputs)
        out = output_fn(out)
        yhat = out if yhat is None else yhat + out
        maps = feats if maps is None else maps + feats
    return yhat / len(nets), maps / len(nets)


def combine_members(per_member, weights):
    """Weighted mean of the members' yhat and concatenation of their maps."""
    yhats = [y for y, _ in per_member]
    yhat = sum(w * y for w, y in zip(weights, yhats)) / np.sum(weights)
    maps = np.hstack([m for _, m in per_member])
    return yhat, maps


def round_imts(rnd, inputs, output_fn):
    """Predictions and feature maps of a fitted round on new rows."""
    per_member = [member_outputs(nets, inputs, output_fn) for nets in rnd.members]
    return combine_members(per_member, rnd.weights)


def expand(rnd, yhat, maps):
    """The expansion vector ``[rho(maps), yhat]`` for the next round."""
    compressed = rnd.aggregator.transform(maps)
    return np.hstack([compressed, yhat]).astype(np.float32)


def staged_imts(rounds, X, output_fn, device, last=None):
    """Yield ``yhat`` of each round in turn, running the chain on ``X``.

    Parameters
    ----------
    rounds : list of ExpansionRound
    X : ndarray, float32
    last : int or None
        Index of the last round to run (all rounds when None).
    """
    last = len(rounds) - 1 if last is None else last
    Z = np.zeros((len(X), 0), dtype=np.float32)
    for i, rnd in enumerate(rounds[: last + 1]):
        inputs = round_inputs(X, Z, device)
        yhat, maps = round_imts(rnd, inputs, output_fn)
        yield yhat
        if i < last:
            Z = expand(rnd, yhat, maps)


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
