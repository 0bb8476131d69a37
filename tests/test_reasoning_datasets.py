from collections import deque

import numpy as np
import pytest

from sklearn_recursive.datasets import (
    make_mazes,
    make_prefix_sums,
    make_sudoku,
    sudoku_is_solution,
)
from sklearn_recursive.datasets._reasoning import _count_solutions

# --------------------------------------------------------------------------- prefix sums


def test_make_prefix_sums_shapes_and_parity():
    X, y = make_prefix_sums(200, 24, random_state=0)
    assert X.shape == (200, 1, 24) and y.shape == (200, 24)
    assert X.dtype == np.float32 and y.dtype == np.int64
    assert set(np.unique(X)) == {0.0, 1.0}
    np.testing.assert_array_equal(y, np.cumsum(X[:, 0].astype(np.int64), axis=1) % 2)
    assert 0.4 < X.mean() < 0.6  # fair bits


def test_make_prefix_sums_is_reproducible():
    a = make_prefix_sums(20, 8, random_state=3)
    b = make_prefix_sums(20, 8, random_state=3)
    c = make_prefix_sums(20, 8, random_state=4)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_samples": 0}, "n_samples must be an int >= 1; got 0"),
        ({"n_bits": 0}, "n_bits must be an int >= 1; got 0"),
        ({"n_bits": 2.0}, "n_bits must be an int >= 1; got 2.0"),
        ({"n_samples": True}, "n_samples"),
    ],
)
def test_make_prefix_sums_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_prefix_sums(**kwargs)


# --------------------------------------------------------------------------- mazes


def _bfs(open_mask, source):
    """Distances in 4-connected steps over ``open_mask`` from ``source``; -1 if unreachable."""
    dist = np.full(open_mask.shape, -1)
    dist[source] = 0
    queue = deque([source])
    while queue:
        r, c = queue.popleft()
        for nr, nc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
            if (
                0 <= nr < open_mask.shape[0]
                and 0 <= nc < open_mask.shape[1]
                and open_mask[nr, nc]
                and dist[nr, nc] < 0
            ):
                dist[nr, nc] = dist[r, c] + 1
                queue.append((nr, nc))
    return dist


def _only_pixel(channel):
    (rows, cols) = np.nonzero(channel)
    assert len(rows) == 1
    return int(rows[0]), int(cols[0])


@pytest.mark.parametrize("size", [2, 3, 7])
def test_make_mazes_are_perfect_and_solved(size):
    X, y = make_mazes(15, size, random_state=size)
    side = 2 * size + 1
    assert X.shape == (15, 3, side, side) and y.shape == (15, side, side)
    assert X.dtype == np.float32 and y.dtype == np.int64
    assert set(np.unique(X)) <= {0.0, 1.0} and set(np.unique(y)) <= {0, 1}
    for x, path in zip(X, y):
        open_ = x[0] == 1
        # walls: the border and every corner pixel between cells; cells: all open
        assert not open_[0].any() and not open_[-1].any()
        assert not open_[:, 0].any() and not open_[:, -1].any()
        assert not open_[::2, ::2].any() and open_[1::2, 1::2].all()
        # perfect: size**2 - 1 passages (open gaps), all cells reachable -> a spanning tree
        n_passages = open_[1::2, 2::2].sum() + open_[2::2, 1::2].sum()
        assert n_passages == size * size - 1
        assert open_.sum() == 2 * size * size - 1
        start, goal = _only_pixel(x[1]), _only_pixel(x[2])
        assert start != goal and start[0] % 2 == 1 and start[1] % 2 == 1
        assert goal[0] % 2 == 1 and goal[1] % 2 == 1
        dist = _bfs(open_, start)
        assert (dist[open_] >= 0).all()
        # the path: on open pixels, from start to goal, as long as the shortest path
        on_path = path == 1
        assert (on_path <= open_).all()
        assert on_path[start] and on_path[goal]
        assert on_path.sum() == dist[goal] + 1
        # ... and connected: only walking on the path reaches the goal just as fast
        assert _bfs(on_path, start)[goal] == dist[goal]


def test_make_mazes_path_is_a_simple_chain():
    X, y = make_mazes(10, 6, random_state=1)
    for x, path in zip(X, y):
        padded = np.pad(path, 1)
        degree = (
            padded[:-2, 1:-1] + padded[2:, 1:-1] + padded[1:-1, :-2] + padded[1:-1, 2:]
        ) * path
        ends = [_only_pixel(x[1]), _only_pixel(x[2])]
        assert all(degree[end] == 1 for end in ends)
        inner = path.astype(bool)
        for end in ends:
            inner[end] = False
        assert (degree[inner] == 2).all()


def test_make_mazes_pixel_scale_and_large_size():
    X1, y1 = make_mazes(3, 4, random_state=0)
    X2, y2 = make_mazes(3, 4, pixel_scale=3, random_state=0)
    assert X2.shape == (3, 3, 27, 27) and y2.shape == (3, 27, 27)
    block = np.ones((3, 3), dtype=np.int64)
    np.testing.assert_array_equal(y2, np.kron(y1, block))
    np.testing.assert_array_equal(X2, np.kron(X1, block.astype(np.float32)))
    # far beyond the recursion limit of a recursive depth-first search
    X, _ = make_mazes(1, 40, random_state=0)
    assert X[0, 0, 1::2, 2::2].sum() + X[0, 0, 2::2, 1::2].sum() == 40 * 40 - 1


def test_make_mazes_is_reproducible_and_varied():
    a = make_mazes(5, 5, random_state=0)
    b = make_mazes(5, 5, random_state=0)
    c = make_mazes(5, 5, random_state=1)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    assert len({x.tobytes() for x in a[0][:, 0]}) == 5  # five different mazes


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"size": 1}, "size must be an int >= 2; got 1"),
        ({"size": 9.0}, "size must be an int >= 2; got 9.0"),
        ({"n_samples": 0}, "n_samples must be an int >= 1; got 0"),
        ({"pixel_scale": 0}, "pixel_scale must be an int >= 1; got 0"),
    ],
)
def test_make_mazes_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_mazes(**kwargs)


# --------------------------------------------------------------------------- sudoku


def _is_valid_grid(grid, box_rows, box_cols):
    """Independent check of a 0-based grid: every row, column and box is 0..N-1."""
    n = box_rows * box_cols
    groups = [grid[r] for r in range(n)] + [grid[:, c] for c in range(n)]
    groups += [
        grid[r : r + box_rows, c : c + box_cols].ravel()
        for r in range(0, n, box_rows)
        for c in range(0, n, box_cols)
    ]
    return all(sorted(g.tolist()) == list(range(n)) for g in groups)


def test_count_solutions_is_exact():
    empty = np.zeros((4, 4), dtype=np.int64)
    assert _count_solutions(empty, (2, 2), limit=None) == 288  # the number of 4x4 grids
    assert _count_solutions(empty, (2, 2)) == 2
    full = np.array([[1, 2, 3, 4], [3, 4, 1, 2], [2, 1, 4, 3], [4, 3, 2, 1]])
    assert _count_solutions(full, (2, 2)) == 1
    clash = full.copy()
    clash[0, 0] = 2
    assert _count_solutions(clash, (2, 2)) == 0
    # a whole box emptied: its rows and columns still pin every cell
    box = full.copy()
    box[[0, 0, 1, 1], [0, 1, 0, 1]] = 0
    assert _count_solutions(box, (2, 2), limit=None) == 1
    # a "deadly pattern": 1 2 / 2 1 on rows 0 and 2 can be swapped
    deadly = full.copy()
    deadly[[0, 0, 2, 2], [0, 1, 0, 1]] = 0
    assert _count_solutions(deadly, (2, 2), limit=None) == 2


@pytest.mark.parametrize("box_shape, n_samples", [((2, 2), 60), ((2, 3), 12), ((3, 2), 6)])
def test_make_sudoku_puzzles_are_unique_and_minimal(box_shape, n_samples):
    X, y = make_sudoku(n_samples, box_shape=box_shape, random_state=0)
    n = box_shape[0] * box_shape[1]
    assert X.shape == (n_samples, n, n) and y.shape == (n_samples, n, n)
    assert X.dtype == np.int64 and y.dtype == np.int64
    assert X.min() >= 0 and X.max() <= n and y.min() >= 0 and y.max() <= n - 1
    given = X > 0
    np.testing.assert_array_equal(X[given] - 1, y[given])
    assert sudoku_is_solution(X, y, box_shape).all()
    for puzzle, solution in zip(X, y):
        assert _is_valid_grid(solution, *box_shape)
        assert 0 < (puzzle == 0).sum() < n * n
        assert _count_solutions(puzzle, box_shape) == 1
        # minimal: emptying any remaining given lets a second solution in
        for r, c in zip(*np.nonzero(puzzle)):
            emptied = puzzle.copy()
            emptied[r, c] = 0
            assert _count_solutions(emptied, box_shape) == 2


def test_make_sudoku_n_holes():
    X, y = make_sudoku(20, n_holes=7, random_state=0)
    assert ((X == 0).sum(axis=(1, 2)) == 7).all()
    X, y = make_sudoku(5, box_shape=(2, 3), n_holes=22, random_state=0)
    assert ((X == 0).sum(axis=(1, 2)) == 22).all()
    assert all(_count_solutions(puzzle, (2, 3)) == 1 for puzzle in X)
    X, y = make_sudoku(3, n_holes=0, random_state=0)
    np.testing.assert_array_equal(X - 1, y)


def test_make_sudoku_is_reproducible_and_varied():
    a = make_sudoku(10, random_state=0)
    b = make_sudoku(10, random_state=0)
    c = make_sudoku(10, random_state=1)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    assert len({s.tobytes() for s in a[1]}) > 5  # many different solutions


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_samples": 0}, "n_samples must be an int >= 1; got 0"),
        ({"box_shape": (0, 2)}, r"box_shape must be a pair .* got \(0, 2\)"),
        ({"box_shape": (2,)}, r"box_shape must be a pair .* got \(2,\)"),
        ({"box_shape": (1, 1)}, r"box_shape .* got \(1, 1\)"),
        ({"box_shape": 4}, "box_shape .* got 4"),
        ({"n_holes": 16}, r"n_holes must be None or an int in \[0, 15\] .* got 16"),
        ({"n_holes": -1}, r"n_holes .* got -1"),
        ({"n_holes": 3.0}, "n_holes must be None or an int; got 3.0"),
        ({"n_holes": 15}, "n_holes=15 is out of reach"),
    ],
)
def test_make_sudoku_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_sudoku(**{"n_samples": 2, **kwargs})


def test_sudoku_is_solution_rejects_wrong_grids():
    X, y = make_sudoku(4, box_shape=(2, 3), random_state=2)
    assert sudoku_is_solution(X, y, (2, 3)).tolist() == [True] * 4
    assert not sudoku_is_solution(X, y + 1, (2, 3)).any()  # digits, not 0-based classes
    # a valid grid that contradicts a given: relabel two classes everywhere
    relabelled = np.where(y == 0, 1, np.where(y == 1, 0, y))
    assert _is_valid_grid(relabelled[0], 2, 3)
    assert not sudoku_is_solution(X, relabelled, (2, 3)).any()
    # rows and columns valid but the boxes broken: a cyclic Latin square
    latin = (np.arange(6)[:, None] + np.arange(6)[None, :]) % 6
    assert not sudoku_is_solution(np.zeros((1, 6, 6), int), latin[None], (2, 3))[0]
    # on an empty puzzle any valid grid counts, whatever the givens were
    assert sudoku_is_solution(np.zeros_like(X), y[::-1], (2, 3)).all()
    broken = y.copy()
    broken[2, 3, 4] = (broken[2, 3, 4] + 1) % 6
    assert sudoku_is_solution(X, broken, (2, 3)).tolist() == [True, True, False, True]


def test_sudoku_is_solution_bad_shapes():
    X, y = make_sudoku(2, random_state=0)
    with pytest.raises(ValueError, match=r"y_pred must have the shape of X, \(2, 4, 4\)"):
        sudoku_is_solution(X, y[:1])
    with pytest.raises(ValueError, match=r"X must have shape \(n_samples, 6, 6\)"):
        sudoku_is_solution(X, y, box_shape=(2, 3))
    with pytest.raises(ValueError, match="box_shape"):
        sudoku_is_solution(X, y, box_shape=(2, 0))
