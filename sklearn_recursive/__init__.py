"""Scikit-learn estimators whose PyTorch networks learn from their own behaviour."""

from ._expansion import ExpansionRound
from ._modules import MLPModule
from ._recurrent_expansion import RecurrentExpansionClassifier, RecurrentExpansionRegressor
from ._training import DivergenceError

__version__ = "0.1.0.dev0"

__all__ = [
    "DivergenceError",
    "ExpansionRound",
    "MLPModule",
    "RecurrentExpansionClassifier",
    "RecurrentExpansionRegressor",
    "__version__",
]
