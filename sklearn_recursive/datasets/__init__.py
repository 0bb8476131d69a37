"""Synthetic datasets for the experiments of the package."""

from ._reasoning import make_mazes, make_prefix_sums, make_sudoku, sudoku_is_solution
from ._shapes import make_noisy_shapes
from ._sinusoid import make_sinusoid

__all__ = [
    "make_mazes",
    "make_noisy_shapes",
    "make_prefix_sums",
    "make_sinusoid",
    "make_sudoku",
    "sudoku_is_solution",
]
