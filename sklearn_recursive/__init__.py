"""Scikit-learn estimators whose PyTorch networks learn from their own behaviour."""

from ._expansion import ExpansionRound
from ._feedback import FeedbackSegmenter
from ._modules import (
    CNNModule,
    FCNModule,
    InceptionModule,
    MLPModule,
    RecurrentModule,
    ResNetModule,
    RocketModule,
    TransformerModule,
)
from ._multiverse import MultiverseRE
from ._reasoner import RecursiveReasoner
from ._recurrent_expansion import RecurrentExpansionClassifier, RecurrentExpansionRegressor
from ._training import DivergenceError

__version__ = "0.1.0.dev0"

__all__ = [
    "CNNModule",
    "DivergenceError",
    "ExpansionRound",
    "FCNModule",
    "FeedbackSegmenter",
    "InceptionModule",
    "MLPModule",
    "MultiverseRE",
    "RecurrentExpansionClassifier",
    "RecurrentExpansionRegressor",
    "RecurrentModule",
    "RecursiveReasoner",
    "ResNetModule",
    "RocketModule",
    "TransformerModule",
    "__version__",
]
