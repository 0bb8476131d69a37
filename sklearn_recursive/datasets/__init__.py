"""Synthetic datasets for the experiments of the package."""

from ._shapes import make_noisy_shapes
from ._sinusoid import make_sinusoid

__all__ = ["make_noisy_shapes", "make_sinusoid"]
