"""Torch modules used as the networks of each expansion round.

The contract every round network follows (and a user module must follow):

* it is built as ``module(n_features, n_expansion, n_outputs)``: the raw
  input's width, the width of the expansion vector (aggregated feature maps
  plus previous predictions; 0 in round 0) and the number of outputs;
* ``forward(X, Z)`` returns the outputs, shape ``(n_samples, n_outputs)``:
  regression values, or class logits for classifiers (no softmax);
* ``features(X, Z)`` returns the feature maps that the next round sees,
  shape ``(n_samples, n_maps)``: by convention the activations of the last
  hidden layer;
* optionally ``features_and_output(X, Z)`` returns both from one pass.

``X`` is the raw input and ``Z`` the expansion vector, kept apart so that a
network for windows ``(n, channels, length)`` can treat them differently.
"""

import torch
from torch import nn


class MLPModule(nn.Module):
    """Fully connected ReLU network over ``[X, Z]``.

    Parameters
    ----------
    n_features : int
        Width of the raw input ``X``.
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
        widths = [n_features + n_expansion, *hidden_layer_sizes]
        layers = []
        for n_in, n_out in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(n_in, n_out), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(widths[-1], n_outputs)

    def features(self, X, Z=None):
        if Z is not None and Z.shape[1]:
            X = torch.cat([X, Z], dim=1)
        return self.body(X)

    def forward(self, X, Z=None):
        return self.head(self.features(X, Z))

    def features_and_output(self, X, Z=None):
        maps = self.features(X, Z)
        return maps, self.head(maps)
