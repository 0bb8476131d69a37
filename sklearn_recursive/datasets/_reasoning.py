"""Algorithmic reasoning tasks: prefix sums, mazes and small Sudoku (issue 14, section 2).

Generated here, never downloaded: the prefix-sum and maze tasks of DeepThinking
(Schwarzschild et al. 2021, "Can You Learn an Algorithm?"; Bansal et al. 2022,
"End-to-end Algorithm Synthesis with Recurrent Networks") and small Sudoku in the
form of the Tiny Recursive Model (TRM): a grid of digits in, the solved grid out.
"""

from collections import deque
from numbers import Integral

import numpy as np
from sklearn.utils import check_random_state


def _check_int(name, value, low):
    """Raise a ValueError unless ``value`` is an int (not a bool) >= ``low``."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
        raise ValueError(f"{name} must be an int >= {low}; got {value!r}.")


# --------------------------------------------------------------------------- prefix sums


def make_prefix_sums(n_samples=1000, n_bits=16, *, random_state=None):
    """Generate random bit strings and their running parity (prefix sums mod 2).

    Each bit is 0 or 1 with probability 1/2, independently.  The label of
    position ``j`` is the parity of the bits ``0 .. j``, ``y[:, j] =
    X[:, 0, : j + 1].sum(axis=1) % 2``, as in the prefix-sum task of
    DeepThinking (Schwarzschild et al. 2021; Bansal et al. 2022).  Inputs are
    laid out as one-channel sequences ``(n, C, L)`` with ``C = 1``, one label
    per position, so a 1-D convolutional network reads them as they are.

    Parameters
    ----------
    n_samples : int, default=1000
        Number of bit strings.
    n_bits : int, default=16
        Length ``L`` of each string.
    random_state : int, RandomState instance or None, default=None
        Seeds the bits.

    Returns
    -------
    X : ndarray of shape (n_samples, 1, n_bits), float32
        The bits, 0.0 or 1.0.
    y : ndarray of shape (n_samples, n_bits), int64
        The running parity at every position, 0 or 1.

    See Also
    --------
    make_mazes : Mazes to solve, the other DeepThinking task.
    make_sudoku : Small Sudoku puzzles with a unique solution.

    Examples
    --------
    >>> from sklearn_recursive.datasets import make_prefix_sums
    >>> X, y = make_prefix_sums(n_samples=2, n_bits=6, random_state=0)
    >>> X.shape, y.shape, X.dtype, y.dtype
    ((2, 1, 6), (2, 6), dtype('float32'), dtype('int64'))
    >>> X[0, 0].astype(int).tolist(), y[0].tolist()
    ([0, 1, 1, 0, 1, 1], [0, 1, 0, 0, 1, 0])
    """
    _check_int("n_samples", n_samples, 1)
    _check_int("n_bits", n_bits, 1)
    rng = check_random_state(random_state)
    bits = rng.randint(0, 2, size=(n_samples, n_bits)).astype(np.int64)
    y = np.cumsum(bits, axis=1) % 2
    return bits[:, None, :].astype(np.float32), y.astype(np.int64)


# --------------------------------------------------------------------------- mazes


def _maze_passages(size, draws):
    """Passages of a perfect maze on ``size x size`` cells, by randomised depth-first search.

    Iterative (an explicit stack, so no recursion limit whatever the size).
    ``draws`` holds ``size * size`` uniform numbers in ``[0, 1)``: the first
    picks the root cell, each next one the unvisited neighbour to carve
    towards.  Cells are numbered ``r * size + c``.  Returns the ``size * size
    - 1`` passages as an ``(m, 2)`` int array of (from, to) cells: the edges of
    a spanning tree of the grid.
    """
    n_cells = size * size
    visited = bytearray(n_cells)
    root = int(draws[0] * n_cells)
    visited[root] = 1
    stack = [root]
    passages = []
    k = 1
    while stack:
        cell = stack[-1]
        r, c = divmod(cell, size)
        free = []
        if r > 0 and not visited[cell - size]:
            free.append(cell - size)
        if r < size - 1 and not visited[cell + size]:
            free.append(cell + size)
        if c > 0 and not visited[cell - 1]:
            free.append(cell - 1)
        if c < size - 1 and not visited[cell + 1]:
            free.append(cell + 1)
        if not free:
            stack.pop()
            continue
        nxt = free[int(draws[k] * len(free))]
        k += 1
        visited[nxt] = 1
        passages.append((cell, nxt))
        stack.append(nxt)
    return np.array(passages, dtype=np.int64).reshape(-1, 2)


def _tree_path(n_cells, passages, start, goal):
    """Cells of the shortest path from ``start`` to ``goal``, both included, by BFS."""
    neighbours = [[] for _ in range(n_cells)]
    for a, b in passages.tolist():
        neighbours[a].append(b)
        neighbours[b].append(a)
    parent = [-1] * n_cells
    parent[start] = start
    queue = deque([start])
    while queue:
        cell = queue.popleft()
        if cell == goal:
            break
        for nxt in neighbours[cell]:
            if parent[nxt] < 0:
                parent[nxt] = cell
                queue.append(nxt)
    path = [goal]
    while path[-1] != start:
        path.append(parent[path[-1]])
    return np.array(path[::-1], dtype=np.int64)


def make_mazes(n_samples=100, size=9, *, pixel_scale=1, random_state=None):
    """Generate random perfect mazes drawn as images, with their solution path.

    Each maze lives on a grid of ``size x size`` cells and is carved by
    randomised depth-first search (the recursive backtracker, written with an
    explicit stack so any size works).  The result is a *perfect* maze: its
    ``size * size - 1`` passages form a spanning tree of the cells, so every
    cell is reachable and any two cells are joined by exactly one path.  The
    start and the goal are two distinct cells drawn uniformly at random.

    The maze is drawn as DeepThinking's maze data are (Schwarzschild et al.
    2021): every cell and every wall is one pixel, walls are one pixel thick,
    and the picture has a wall border, so its side is ``2 * size + 1`` pixels
    (then multiplied by ``pixel_scale``).  Cell ``(r, c)`` is pixel ``(2 r + 1,
    2 c + 1)``; the pixel between two neighbouring cells is open when a
    passage joins them.  DeepThinking draws the same layout as an RGB picture
    (walls black, open pixels white, start red, goal green); the three
    channels here are instead one binary map each: open, start, goal.

    Parameters
    ----------
    n_samples : int, default=100
        Number of mazes.
    size : int, default=9
        Cells per side, at least 2.
    pixel_scale : int, default=1
        Side of the square block of pixels that draws each cell and each wall;
        the image side is ``H = W = (2 * size + 1) * pixel_scale``.
    random_state : int, RandomState instance or None, default=None
        Seeds the mazes, the starts and the goals.

    Returns
    -------
    X : ndarray of shape (n_samples, 3, H, W), float32
        Channel 0 is 1 on open pixels (cells and the gaps of the passages) and
        0 on walls; channel 1 is 1 on the start cell only, channel 2 on the
        goal cell only (both also open in channel 0).
    y : ndarray of shape (n_samples, H, W), int64
        1 on the pixels of the unique path from start to goal (found by
        breadth-first search), both end cells and the open gaps between
        consecutive cells of the path included; 0 elsewhere.

    See Also
    --------
    make_prefix_sums : Running parity of bit strings, the other DeepThinking task.

    Examples
    --------
    >>> from sklearn_recursive.datasets import make_mazes
    >>> X, y = make_mazes(n_samples=2, size=3, random_state=0)
    >>> X.shape, y.shape, X.dtype, y.dtype
    ((2, 3, 7, 7), (2, 7, 7), dtype('float32'), dtype('int64'))
    >>> bool(((y == 1) <= (X[:, 0] == 1)).all())  # the path runs on open pixels
    True
    >>> make_mazes(n_samples=1, size=3, pixel_scale=2, random_state=0)[0].shape
    (1, 3, 14, 14)
    """
    _check_int("n_samples", n_samples, 1)
    _check_int("size", size, 2)
    _check_int("pixel_scale", pixel_scale, 1)
    rng = check_random_state(random_state)
    n_cells = size * size
    side = 2 * size + 1
    draws = rng.random_sample((n_samples, n_cells))
    start = rng.randint(0, n_cells, size=n_samples)
    goal = rng.randint(0, n_cells - 1, size=n_samples)
    goal += goal >= start  # two distinct cells, uniformly among the pairs

    X = np.zeros((n_samples, 3, side, side), dtype=np.float32)
    y = np.zeros((n_samples, side, side), dtype=np.int64)
    X[:, 0, 1::2, 1::2] = 1.0  # every cell is open
    for i in range(n_samples):
        passages = _maze_passages(size, draws[i].tolist())
        rows, cols = np.divmod(passages, size)
        X[i, 0, rows.sum(axis=1) + 1, cols.sum(axis=1) + 1] = 1.0  # the gap between the two
        s_row, s_col = divmod(int(start[i]), size)
        g_row, g_col = divmod(int(goal[i]), size)
        X[i, 1, 2 * s_row + 1, 2 * s_col + 1] = 1.0
        X[i, 2, 2 * g_row + 1, 2 * g_col + 1] = 1.0
        path_rows, path_cols = np.divmod(_tree_path(n_cells, passages, start[i], goal[i]), size)
        y[i, 2 * path_rows + 1, 2 * path_cols + 1] = 1
        y[i, path_rows[:-1] + path_rows[1:] + 1, path_cols[:-1] + path_cols[1:] + 1] = 1
    if pixel_scale > 1:
        X = X.repeat(pixel_scale, axis=-2).repeat(pixel_scale, axis=-1)
        y = y.repeat(pixel_scale, axis=-2).repeat(pixel_scale, axis=-1)
    return X, y


# --------------------------------------------------------------------------- sudoku


def _check_box_shape(box_shape):
    """``(box_rows, box_cols)`` as two ints, or a ValueError naming ``box_shape``."""
    if (
        not isinstance(box_shape, (tuple, list))
        or len(box_shape) != 2
        or not all(isinstance(b, Integral) and not isinstance(b, bool) for b in box_shape)
        or min(box_shape) < 1
        or box_shape[0] * box_shape[1] < 2
    ):
        raise ValueError(
            "box_shape must be a pair (box_rows, box_cols) of ints >= 1 whose product, "
            f"the side of the grid, is >= 2; got {box_shape!r}."
        )
    return int(box_shape[0]), int(box_shape[1])


def _count_solutions(grid, box_shape, limit=2):
    """Number of ways to complete ``grid``, counting no further than ``limit``.

    ``grid`` is an ``(N, N)`` array-like with 0 for an empty cell and 1..N for
    a given digit.  An exact backtracking search on bit masks, always filling
    the empty cell with the fewest candidates first.  ``limit=None`` counts
    every solution.  Givens that already clash give 0.
    """
    box_rows, box_cols = box_shape
    n = box_rows * box_cols
    rows, cols, boxes = [0] * n, [0] * n, [0] * n
    empty = []
    for r, line in enumerate(np.asarray(grid).tolist()):
        for c, value in enumerate(line):
            b = (r // box_rows) * box_rows + c // box_cols
            if value == 0:
                empty.append((r, c, b))
                continue
            bit = 1 << (value - 1)
            if (rows[r] | cols[c] | boxes[b]) & bit:
                return 0
            rows[r] |= bit
            cols[c] |= bit
            boxes[b] |= bit
    full = (1 << n) - 1
    limit = float("inf") if limit is None else limit

    def search(todo, wanted):
        """Solutions of the cells ``todo``, counting no further than ``wanted``."""
        if not todo:
            return 1
        best, best_free, best_count = 0, 0, n + 1
        for k, (r, c, b) in enumerate(todo):
            free = full & ~(rows[r] | cols[c] | boxes[b])
            count = free.bit_count()
            if count < best_count:
                best, best_free, best_count = k, free, count
                if count <= 1:
                    break
        if best_count == 0:
            return 0
        r, c, b = todo[best]
        rest = todo[:best] + todo[best + 1 :]
        found = 0
        free = best_free
        while free:
            bit = free & -free
            free ^= bit
            rows[r] |= bit
            cols[c] |= bit
            boxes[b] |= bit
            found += search(rest, wanted - found)
            rows[r] ^= bit
            cols[c] ^= bit
            boxes[b] ^= bit
            if found >= wanted:
                break
        return found

    return search(empty, limit)


def _random_solution(rng, box_rows, box_cols):
    """A random complete grid, digits 1..N: a canonical pattern under random symmetries.

    The digits are relabelled, the rows shuffled within their bands and the
    bands among themselves, the columns within their stacks and the stacks,
    and the grid transposed half of the time when the boxes are square.
    """
    n = box_rows * box_cols
    r = np.arange(n)[:, None]
    c = np.arange(n)[None, :]
    grid = (box_cols * (r % box_rows) + r // box_rows + c) % n  # a valid grid, digits 0..N-1
    grid = rng.permutation(n)[grid]
    # box_cols bands of box_rows rows; box_rows stacks of box_cols columns
    row_order = np.concatenate(
        [band * box_rows + rng.permutation(box_rows) for band in rng.permutation(box_cols)]
    )
    col_order = np.concatenate(
        [stack * box_cols + rng.permutation(box_cols) for stack in rng.permutation(box_rows)]
    )
    grid = grid[row_order][:, col_order]
    if box_rows == box_cols and rng.random_sample() < 0.5:
        grid = grid.T
    return grid + 1


def _dig_holes(rng, solution, box_shape, n_holes):
    """Empty cells of ``solution`` one by one in random order while the solution stays unique.

    Stops once ``n_holes`` cells are empty (``None``: after trying every cell
    once).  Returns the puzzle, 0 for the empty cells.
    """
    n = solution.shape[0]
    puzzle = solution.copy()
    holes = 0
    for k in rng.permutation(n * n):
        if n_holes is not None and holes == n_holes:
            break
        r, c = divmod(int(k), n)
        value = puzzle[r, c]
        puzzle[r, c] = 0
        if _count_solutions(puzzle, box_shape, limit=2) == 1:
            holes += 1
        else:
            puzzle[r, c] = value
    return puzzle, holes


_MAX_SUDOKU_ATTEMPTS = 100


def make_sudoku(n_samples=100, *, box_shape=(2, 2), n_holes=None, random_state=None):
    """Generate small Sudoku puzzles with a unique solution, for TRM-style reasoning.

    The grid has side ``N = box_rows * box_cols`` (4 x 4 for ``(2, 2)``,
    6 x 6 for ``(2, 3)``), and every row, column and ``box_rows x box_cols``
    box holds each digit once.  A random complete grid is drawn (a canonical
    pattern with its digits relabelled, rows shuffled within bands, bands
    shuffled, columns within stacks, stacks, and a transposition when the
    boxes are square); its cells are then emptied one by one in random order,
    each removal kept only if an exact backtracking solver still finds exactly
    one solution.  Every puzzle therefore has a unique solution.

    Meant for small grids; ``(3, 3)`` (9 x 9) works too, at about 25 ms a
    puzzle instead of well under 1 ms for 4 x 4.

    Parameters
    ----------
    n_samples : int, default=100
        Number of puzzles.
    box_shape : tuple of (int, int), default=(2, 2)
        ``(box_rows, box_cols)``, the shape of a box; the grid has
        ``box_cols`` bands of ``box_rows`` rows and ``box_rows`` stacks of
        ``box_cols`` columns.
    n_holes : int or None, default=None
        Empty cells per puzzle, from 0 to ``N * N - 1``.  None empties every
        cell it can: each cell is tried once, so the puzzles are *minimal*
        (emptying any remaining given would allow a second solution), and the
        number of holes varies from puzzle to puzzle.  With an int, a puzzle
        whose pass over the cells ends with fewer holes is drawn again from a
        new grid, up to 100 times; a ValueError says when ``n_holes`` is out
        of reach (for 4 x 4 grids at most 12 holes are possible).
    random_state : int, RandomState instance or None, default=None
        Seeds the grids and the order in which cells are emptied.

    Returns
    -------
    X : ndarray of shape (n_samples, N, N), int64
        The puzzles: 0 for an empty cell, ``1 .. N`` for a given digit.
    y : ndarray of shape (n_samples, N, N), int64
        The solutions as **0-based class labels**, ``0 .. N - 1``: the digit
        ``d`` is the class ``d - 1``, so ``y`` feeds a classifier directly
        and ``y + 1`` is the solved grid in digits.  Where a digit is given,
        ``y == X - 1``.

    See Also
    --------
    sudoku_is_solution : Check predicted grids against the rules and the givens.

    Examples
    --------
    >>> from sklearn_recursive.datasets import make_sudoku, sudoku_is_solution
    >>> X, y = make_sudoku(n_samples=3, random_state=0)
    >>> X.shape, y.shape, X.dtype, y.dtype
    ((3, 4, 4), (3, 4, 4), dtype('int64'), dtype('int64'))
    >>> int(X.max()) <= 4, int(y.min()), int(y.max())
    (True, 0, 3)
    >>> sudoku_is_solution(X, y).tolist()
    [True, True, True]
    >>> X, y = make_sudoku(n_samples=2, box_shape=(2, 3), n_holes=20, random_state=0)
    >>> X.shape, (X == 0).sum(axis=(1, 2)).tolist()
    ((2, 6, 6), [20, 20])
    """
    _check_int("n_samples", n_samples, 1)
    box_rows, box_cols = _check_box_shape(box_shape)
    n = box_rows * box_cols
    if n_holes is not None:
        if isinstance(n_holes, bool) or not isinstance(n_holes, Integral):
            raise ValueError(f"n_holes must be None or an int; got {n_holes!r}.")
        if not 0 <= n_holes <= n * n - 1:
            raise ValueError(
                f"n_holes must be None or an int in [0, {n * n - 1}] for box_shape "
                f"{(box_rows, box_cols)}; got {n_holes!r}."
            )
    rng = check_random_state(random_state)
    X = np.empty((n_samples, n, n), dtype=np.int64)
    y = np.empty((n_samples, n, n), dtype=np.int64)
    for i in range(n_samples):
        most = -1
        for _ in range(_MAX_SUDOKU_ATTEMPTS):
            solution = _random_solution(rng, box_rows, box_cols)
            puzzle, holes = _dig_holes(rng, solution, (box_rows, box_cols), n_holes)
            most = max(most, holes)
            if n_holes is None or holes == n_holes:
                break
        else:
            raise ValueError(
                f"n_holes={n_holes} is out of reach for box_shape {(box_rows, box_cols)}: "
                f"{_MAX_SUDOKU_ATTEMPTS} puzzles kept a unique solution with at most "
                f"{most} holes; ask for fewer."
            )
        X[i] = puzzle
        y[i] = solution - 1
    return X, y


def sudoku_is_solution(X, y_pred, box_shape=(2, 2)):
    """Whether each predicted grid solves its puzzle.

    A prediction solves the puzzle when it is a complete valid grid (every
    row, column and box holds each class ``0 .. N - 1`` once) and it agrees
    with every given digit of ``X`` (``y_pred == X - 1`` where ``X > 0``).
    Since the puzzles of `make_sudoku` have a unique solution, this is the
    same as ``(y_pred == y).all(axis=(1, 2))``, but it also holds for puzzles
    with several solutions.

    Parameters
    ----------
    X : array-like of shape (n_samples, N, N)
        The puzzles, as `make_sudoku` returns them: 0 for an empty cell,
        ``1 .. N`` for a given digit.
    y_pred : array-like of shape (n_samples, N, N)
        The predicted grids as 0-based class labels ``0 .. N - 1``, the
        convention of `make_sudoku`'s ``y``.
    box_shape : tuple of (int, int), default=(2, 2)
        ``(box_rows, box_cols)``, with ``N = box_rows * box_cols``.

    Returns
    -------
    solved : ndarray of shape (n_samples,), bool
        True where the prediction solves the puzzle.

    See Also
    --------
    make_sudoku : The puzzles and their solutions.

    Examples
    --------
    >>> from sklearn_recursive.datasets import make_sudoku, sudoku_is_solution
    >>> X, y = make_sudoku(n_samples=2, random_state=0)
    >>> wrong = y.copy()
    >>> wrong[1, 0, [0, 1]] = wrong[1, 0, [1, 0]]  # swap two cells: the columns break
    >>> sudoku_is_solution(X, wrong).tolist()
    [True, False]
    """
    box_rows, box_cols = _check_box_shape(box_shape)
    n = box_rows * box_cols
    X = np.asarray(X)
    y_pred = np.asarray(y_pred)
    if X.ndim != 3 or X.shape[1:] != (n, n):
        raise ValueError(
            f"X must have shape (n_samples, {n}, {n}) for box_shape {(box_rows, box_cols)}; "
            f"got {X.shape}."
        )
    if y_pred.shape != X.shape:
        raise ValueError(f"y_pred must have the shape of X, {X.shape}; got {y_pred.shape}.")
    n_samples = X.shape[0]
    classes = np.arange(n)
    boxes = (
        y_pred.reshape(n_samples, box_cols, box_rows, box_rows, box_cols)
        .transpose(0, 1, 3, 2, 4)
        .reshape(n_samples, n, n)
    )
    valid = (
        (np.sort(y_pred, axis=2) == classes).all(axis=(1, 2))
        & (np.sort(y_pred, axis=1) == classes[:, None]).all(axis=(1, 2))
        & (np.sort(boxes, axis=2) == classes).all(axis=(1, 2))
    )
    given = X > 0
    agrees = np.where(given, y_pred == X - 1, True).all(axis=(1, 2))
    return valid & agrees
