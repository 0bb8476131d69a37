"""Torch modules used as the networks of each expansion round.

The contract every round network follows (and a user module must follow):

* it is built as ``module(n_features, n_expansion, n_outputs)``: the raw
  input's shape, the width of the expansion vector (aggregated feature maps
  plus previous predictions; 0 in round 0) and the number of outputs.
  ``n_features`` is an int for 2-D input ``X`` of shape
  ``(n_samples, n_features)``, or the pair ``(n_channels, length)`` for 3-D
  input (time-series windows) of shape ``(n_samples, n_channels, length)``;
* ``forward(X, Z)`` returns the outputs, shape ``(n_samples, n_outputs)``:
  regression values, or class logits for classifiers (no softmax);
* ``features(X, Z)`` returns the feature maps that the next round sees,
  shape ``(n_samples, n_maps)``, always 2-D: by convention the activations
  of the last hidden layer;
* ``features_and_output(X, Z)`` returns ``(maps, outputs)`` from one pass.
  Every built-in module has it; a user module may leave it out, and
  ``features`` then ``forward`` are called instead.

``X`` is the raw input and ``Z`` the expansion vector, shape
``(n_samples, n_expansion)``, kept apart so that a network for windows can
treat them differently: the built-in window networks encode ``X`` and join
``Z`` beside the encoding, never inside the window.  When ``n_expansion`` is
0, ``Z`` has no columns or is None.

A sample's outputs must not depend on the other rows of its batch (no
BatchNorm): predictions are computed in batches of any size.

`BUILTIN_MODULES` maps the names ``"mlp"``, ``"cnn"``, ``"gru"``, ``"lstm"``
and ``"transformer"`` to callables ``f(n_features, n_expansion, n_outputs,
**kwargs)`` that build them.
"""

import functools
import math

import torch
from torch import nn
from torch.nn import functional as F

from ._utils import check_int, is_int

__all__ = [
    "BUILTIN_MODULES",
    "CNNModule",
    "MLPModule",
    "RecurrentModule",
    "TransformerModule",
]


def _check_n_features(n_features):
    """``n_features`` as given (int, or tuple of two ints) and as ``(C, L)``.

    An int ``L`` stands for 2-D input ``(n, L)``, read by window networks as
    one channel of length ``L``.
    """
    if is_int(n_features):
        if n_features >= 1:
            return int(n_features), (1, int(n_features))
    elif isinstance(n_features, tuple | list) and len(n_features) == 2:
        if all(is_int(v) and v >= 1 for v in n_features):
            shape = (int(n_features[0]), int(n_features[1]))
            return shape, shape
    raise ValueError(
        "n_features must be an int >= 1 (2-D input) or a pair of ints >= 1 "
        f"(n_channels, length) (3-D input); got {n_features!r}."
    )


def _expected_shape(n_features):
    if isinstance(n_features, int):
        return f"(n_samples, {n_features}) or (n_samples, 1, {n_features})"
    return f"(n_samples, {n_features[0]}, {n_features[1]})"


class MLPModule(nn.Module):
    """Fully connected ReLU network over ``[X, Z]``.

    3-D input (windows) is flattened first.

    Parameters
    ----------
    n_features : int or tuple of (int, int)
        Width of the raw input ``X``, or ``(n_channels, length)`` for 3-D
        input, which is flattened to ``n_channels * length`` columns.
    n_expansion : int
        Width of the expansion vector ``Z`` (0 in round 0).
    n_outputs : int
        Number of outputs (targets, or classes for a classifier).
    hidden_layer_sizes : tuple of int, default=(64, 64)
        Widths of the hidden layers; the last one's activations are the
        feature maps.
    """

    def __init__(self, n_features, n_expansion, n_outputs, hidden_layer_sizes=(64, 64)):
        super().__init__()
        self.n_features, self._window_shape = _check_n_features(n_features)
        widths = [math.prod(self._window_shape) + n_expansion, *hidden_layer_sizes]
        layers = []
        for n_in, n_out in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(n_in, n_out), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(widths[-1], n_outputs)

    def features(self, X, Z=None):
        if X.ndim != 2:
            if tuple(X.shape[1:]) != self._window_shape:
                raise ValueError(
                    f"X must have shape {_expected_shape(self.n_features)}; got {tuple(X.shape)}."
                )
            X = X.flatten(1)
        if Z is not None and Z.shape[1]:
            X = torch.cat([X, Z], dim=1)
        return self.body(X)

    def forward(self, X, Z=None):
        return self.head(self.features(X, Z))

    def features_and_output(self, X, Z=None):
        maps = self.features(X, Z)
        return maps, self.head(maps)


class _WindowModule(nn.Module):
    """Encoder over the window ``X``, then a fusion layer over ``[h, Z]``.

    Subclasses build ``self.encoder`` and define ``encode(X)``, which takes
    windows ``(n, n_channels, length)`` and returns the pooled encoding ``h``
    of width ``encoding_size``.  The feature maps are
    ``ReLU(Linear([h, Z]))`` and the outputs a linear head over them.
    """

    def __init__(self, n_features, n_expansion, n_outputs, hidden):
        super().__init__()
        self.n_features, (self.n_channels, self.length) = _check_n_features(n_features)
        self.n_expansion = check_int("n_expansion", n_expansion, 0)
        self.n_outputs = check_int("n_outputs", n_outputs, 1)
        self.hidden = check_int("hidden", hidden, 1)

    def _build_fusion(self, encoding_size):
        self.fusion = nn.Sequential(
            nn.Linear(encoding_size + self.n_expansion, self.hidden), nn.ReLU()
        )
        self.head = nn.Linear(self.hidden, self.n_outputs)

    def _windows(self, X):
        if X.ndim == 2 and self.n_channels == 1:
            X = X.unsqueeze(1)
        if X.ndim != 3 or tuple(X.shape[1:]) != (self.n_channels, self.length):
            raise ValueError(
                f"X must have shape {_expected_shape(self.n_features)}; got {tuple(X.shape)}."
            )
        return X

    def features(self, X, Z=None):
        X = self._windows(X)
        h = self.encode(X)
        if self.n_expansion or (Z is not None and Z.shape[-1]):
            expected = (len(X), self.n_expansion)
            if Z is None or tuple(Z.shape) != expected:
                got = None if Z is None else tuple(Z.shape)
                raise ValueError(f"Z must have shape {expected}; got {got}.")
            h = torch.cat([h, Z], dim=1)
        return self.fusion(h)

    def forward(self, X, Z=None):
        return self.head(self.features(X, Z))

    def features_and_output(self, X, Z=None):
        maps = self.features(X, Z)
        return maps, self.head(maps)


class _SameConv1d(nn.Module):
    """``Conv1d`` then ReLU, zero-padded so that the length is kept.

    The padding is explicit (``(k - 1) // 2`` before, ``k // 2`` after)
    because ``padding="same"`` warns for even kernel sizes.
    """

    def __init__(self, in_channels, out_channels, kernel_size):
        super().__init__()
        self.padding = ((kernel_size - 1) // 2, kernel_size // 2)
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size)

    def forward(self, X):
        return F.relu(self.conv(F.pad(X, self.padding)))


class CNNModule(_WindowModule):
    """1-D convolutional network over windows, with ``Z`` joined after pooling.

    Convolution + ReLU blocks keep the window's length (zero padding), so any
    length works.  The last block's output is pooled over time three ways,
    concatenated: the mean, the max and the last time step (the most recent
    values matter most when forecasting, and global pooling alone forgets
    where they are).  Then ``maps = ReLU(Linear([pooled, Z]))`` and
    ``outputs = Linear(maps)``.

    Parameters
    ----------
    n_features : int or tuple of (int, int)
        ``(n_channels, length)`` for windows ``X`` of shape
        ``(n_samples, n_channels, length)``; an int ``length`` for 2-D ``X``
        of shape ``(n_samples, length)``, read as one channel.
    n_expansion : int
        Width of the expansion vector ``Z`` (0 in round 0).
    n_outputs : int
        Number of outputs (targets, or classes for a classifier).
    channels : tuple of int, default=(16, 32)
        Output channels of the convolution blocks, one block each.
    kernel_size : int, default=5
        Kernel size of every convolution.
    hidden : int, default=64
        Width of the fusion layer, i.e. the number of feature maps.
    """

    def __init__(
        self, n_features, n_expansion, n_outputs, *, channels=(16, 32), kernel_size=5, hidden=64
    ):
        super().__init__(n_features, n_expansion, n_outputs, hidden)
        if (
            not isinstance(channels, tuple | list)
            or not channels
            or not all(is_int(c) and c >= 1 for c in channels)
        ):
            raise ValueError(f"channels must be a non-empty tuple of ints >= 1; got {channels!r}.")
        self.channels = tuple(int(c) for c in channels)
        self.kernel_size = check_int("kernel_size", kernel_size, 1)
        widths = [self.n_channels, *self.channels]
        self.encoder = nn.ModuleList(
            _SameConv1d(c_in, c_out, self.kernel_size)
            for c_in, c_out in zip(widths[:-1], widths[1:])
        )
        self._build_fusion(3 * self.channels[-1])

    def encode(self, X):
        for block in self.encoder:
            X = block(X)
        return torch.cat([X.mean(dim=2), X.amax(dim=2), X[:, :, -1]], dim=1)


class RecurrentModule(_WindowModule):
    """GRU or LSTM over the time steps of a window, with ``Z`` joined after.

    The recurrent network reads the window step by step (``n_channels``
    values per step); its last hidden state ``h`` is the encoding.  Then
    ``maps = ReLU(Linear([h, Z]))`` and ``outputs = Linear(maps)``.

    Parameters
    ----------
    n_features : int or tuple of (int, int)
        ``(n_channels, length)`` for windows ``X`` of shape
        ``(n_samples, n_channels, length)``; an int ``length`` for 2-D ``X``
        of shape ``(n_samples, length)``, read as one channel.
    n_expansion : int
        Width of the expansion vector ``Z`` (0 in round 0).
    n_outputs : int
        Number of outputs (targets, or classes for a classifier).
    cell : {"gru", "lstm"}, default="gru"
        The recurrent layer.
    hidden_size : int, default=32
        Width of the recurrent state.
    num_layers : int, default=1
        Number of stacked recurrent layers.
    hidden : int, default=64
        Width of the fusion layer, i.e. the number of feature maps.
    """

    def __init__(
        self,
        n_features,
        n_expansion,
        n_outputs,
        *,
        cell="gru",
        hidden_size=32,
        num_layers=1,
        hidden=64,
    ):
        super().__init__(n_features, n_expansion, n_outputs, hidden)
        if cell not in ("gru", "lstm"):
            raise ValueError(f"cell must be 'gru' or 'lstm'; got {cell!r}.")
        self.cell = cell
        self.hidden_size = check_int("hidden_size", hidden_size, 1)
        self.num_layers = check_int("num_layers", num_layers, 1)
        self.encoder = (nn.GRU if cell == "gru" else nn.LSTM)(
            self.n_channels, self.hidden_size, self.num_layers, batch_first=True
        )
        self._build_fusion(self.hidden_size)

    def encode(self, X):
        out, _ = self.encoder(X.transpose(1, 2))  # (n, length, n_channels) in
        return out[:, -1]


class TransformerModule(_WindowModule):
    """Small transformer encoder over the time steps of a window.

    Each time step's ``n_channels`` values are embedded linearly into
    ``d_model`` dimensions, a learned positional embedding is added, a
    pre-norm ``nn.TransformerEncoder`` (no dropout) runs over the steps and
    its outputs are averaged over time into ``h``.  Then
    ``maps = ReLU(Linear([h, Z]))`` and ``outputs = Linear(maps)``.

    Parameters
    ----------
    n_features : int or tuple of (int, int)
        ``(n_channels, length)`` for windows ``X`` of shape
        ``(n_samples, n_channels, length)``; an int ``length`` for 2-D ``X``
        of shape ``(n_samples, length)``, read as one channel.
    n_expansion : int
        Width of the expansion vector ``Z`` (0 in round 0).
    n_outputs : int
        Number of outputs (targets, or classes for a classifier).
    d_model : int, default=32
        Width of the token embeddings; a multiple of ``nhead``.
    nhead : int, default=4
        Number of attention heads.
    num_layers : int, default=2
        Number of encoder layers.
    dim_feedforward : int, default=64
        Width of each encoder layer's feed-forward block.
    hidden : int, default=64
        Width of the fusion layer, i.e. the number of feature maps.
    """

    def __init__(
        self,
        n_features,
        n_expansion,
        n_outputs,
        *,
        d_model=32,
        nhead=4,
        num_layers=2,
        dim_feedforward=64,
        hidden=64,
    ):
        super().__init__(n_features, n_expansion, n_outputs, hidden)
        self.d_model = check_int("d_model", d_model, 1)
        self.nhead = check_int("nhead", nhead, 1)
        if self.d_model % self.nhead:
            raise ValueError(
                f"d_model must be a multiple of nhead; got d_model={d_model}, nhead={nhead}."
            )
        self.num_layers = check_int("num_layers", num_layers, 1)
        self.dim_feedforward = check_int("dim_feedforward", dim_feedforward, 1)
        self.embedding = nn.Linear(self.n_channels, self.d_model)
        self.position = nn.Parameter(torch.empty(self.length, self.d_model))
        nn.init.normal_(self.position, std=0.02)
        layer = nn.TransformerEncoderLayer(
            self.d_model,
            self.nhead,
            self.dim_feedforward,
            dropout=0.0,
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(
            layer, self.num_layers, norm=nn.LayerNorm(self.d_model), enable_nested_tensor=False
        )
        self._build_fusion(self.d_model)

    def encode(self, X):
        tokens = self.embedding(X.transpose(1, 2)) + self.position
        return self.encoder(tokens).mean(dim=1)


BUILTIN_MODULES = {
    "mlp": MLPModule,
    "cnn": CNNModule,
    "gru": functools.partial(RecurrentModule, cell="gru"),
    "lstm": functools.partial(RecurrentModule, cell="lstm"),
    "transformer": TransformerModule,
}
