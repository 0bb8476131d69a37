"""Synthetic datasets for the experiments of the package."""

from ._sinusoid import make_sinusoid

__all__ = ["make_sinusoid"]
