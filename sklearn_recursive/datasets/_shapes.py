"""Noisy synthetic shapes for segmentation: polygons on images, boxes on signals."""

from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions, validate_params


def _inside_polygon(rows, cols, vertices):
    """Even-odd point-in-polygon test of the pixel centres against ``vertices``.

    ``rows``, ``cols`` are broadcastable arrays of pixel centres and
    ``vertices`` an ``(m, 2)`` array of (row, col) corners in order.
    """
    inside = np.zeros(np.broadcast(rows, cols).shape, dtype=bool)
    m = len(vertices)
    for i in range(m):
        r1, c1 = vertices[i]
        r2, c2 = vertices[(i + 1) % m]
        if r1 == r2:  # a horizontal edge never crosses a horizontal ray
            continue
        crosses = (r1 > rows) != (r2 > rows)
        c_at = c1 + (rows - r1) * (c2 - c1) / (r2 - r1)
        inside ^= crosses & (cols < c_at)
    return inside


def _random_polygon(rng, height, width, n_vertices):
    """A convex-ish polygon: corners at jittered, evenly spread angles around a centre."""
    size = min(height, width)
    radius = rng.uniform(0.25, 0.45) * size
    centre = (
        rng.uniform(radius, height - radius),
        rng.uniform(radius, width - radius),
    )
    spread = np.arange(n_vertices) + rng.uniform(-0.25, 0.25, n_vertices)
    angles = rng.uniform(0, 2 * np.pi) + 2 * np.pi * spread / n_vertices
    radii = radius * rng.uniform(0.7, 1.0, n_vertices)
    return np.column_stack([centre[0] + radii * np.sin(angles), centre[1] + radii * np.cos(angles)])


def _image_masks(rng, n_samples, height, width, n_classes, n_shapes):
    rows = (np.arange(height) + 0.5)[:, None]
    cols = (np.arange(width) + 0.5)[None, :]
    masks = np.zeros((n_samples, height, width), dtype=np.int64)
    for i in range(n_samples):
        for _ in range(n_shapes):
            label = rng.integers(1, n_classes)
            n_vertices = 3 if label == 1 else int(rng.integers(4, 7))
            for _ in range(20):  # a thin triangle may cover no pixel centre: redraw
                inside = _inside_polygon(
                    rows, cols, _random_polygon(rng, height, width, n_vertices)
                )
                if inside.any():
                    break
            masks[i][inside] = label
    return masks


def _signal_masks(rng, n_samples, length, n_classes, n_shapes):
    masks = np.zeros((n_samples, length), dtype=np.int64)
    for i in range(n_samples):
        for _ in range(n_shapes):
            label = rng.integers(1, n_classes)
            width = int(rng.integers(max(1, length // 8), max(2, length // 3) + 1))
            start = int(rng.integers(0, length - width + 1))
            masks[i, start : start + width] = label
    return masks


@validate_params(
    {
        "n_samples": [Interval(Integral, 1, None, closed="left")],
        "kind": [StrOptions({"image", "signal"})],
        "size": [Interval(Integral, 4, None, closed="left"), tuple],
        "sigma": [Interval(Real, 0, None, closed="left")],
        "n_classes": [Interval(Integral, 2, None, closed="left")],
        "n_shapes": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_noisy_shapes(
    n_samples=100,
    *,
    kind="image",
    size=32,
    sigma=1.0,
    n_classes=2,
    n_shapes=1,
    random_state=None,
):
    """Noisy shapes to segment: polygons on 2-D images, boxes on 1-D signals.

    Each sample starts as a clean picture that is 0 on the background and 1
    on the shapes.  Gaussian noise of standard deviation ``sigma`` is added
    to it, and each sample is then min-max scaled to ``[0, 1]``, so ``sigma``
    is the noise level relative to the unit contrast of the clean shapes.

    The noise is drawn **once**, here: the returned data are fixed, and an
    estimator trained on them sees the same noisy pixels every epoch.  The
    same ``random_state`` gives the same data.

    Parameters
    ----------
    n_samples : int, default=100
        Number of images or signals.
    kind : {"image", "signal"}, default="image"
        ``"image"``: random polygons (triangles for class 1, polygons with 4
        to 6 corners for the other classes) on ``(H, W)`` images.
        ``"signal"``: random boxes (intervals) on signals of length ``L``.
    size : int or tuple of int, default=32
        ``H = W = size`` for images, or ``(H, W)``; ``L = size`` for signals
        (a 1-tuple ``(L,)`` also works).  At least 4 in every dimension.
    sigma : float, default=1.0
        Standard deviation of the additive Gaussian noise, before scaling.
    n_classes : int, default=2
        Number of classes, background (label 0) included.  Each shape gets a
        label drawn from ``1 .. n_classes - 1``; later shapes overwrite
        earlier ones where they overlap.
    n_shapes : int, default=1
        Shapes per sample.
    random_state : int, RandomState instance or None, default=None
        Seeds the shapes and the noise.

    Returns
    -------
    X : ndarray of shape (n_samples, 1, H, W) or (n_samples, 1, L), float32
        Noisy inputs, one channel, each sample scaled to ``[0, 1]``.
    y : ndarray of shape (n_samples, H, W) or (n_samples, L), int64
        The clean label masks.

    Examples
    --------
    >>> from sklearn_recursive.datasets import make_noisy_shapes
    >>> X, y = make_noisy_shapes(4, size=16, sigma=2.0, random_state=0)
    >>> X.shape, y.shape, X.dtype
    ((4, 1, 16, 16), (4, 16, 16), dtype('float32'))
    >>> X, y = make_noisy_shapes(4, kind="signal", size=50, random_state=0)
    >>> X.shape, y.shape
    ((4, 1, 50), (4, 50))
    """
    n_dims = 2 if kind == "image" else 1
    shape = (size,) * n_dims if isinstance(size, Integral) else tuple(size)
    if len(shape) != n_dims or not all(
        isinstance(s, Integral) and not isinstance(s, bool) and s >= 4 for s in shape
    ):
        raise ValueError(
            f"size must be an int >= 4 or a tuple of {n_dims} ints >= 4 for "
            f"kind={kind!r}; got {size!r}."
        )
    seed = check_random_state(random_state).randint(np.iinfo(np.int32).max)
    rng = np.random.default_rng(seed)
    if kind == "image":
        y = _image_masks(rng, n_samples, *shape, n_classes, n_shapes)
    else:
        y = _signal_masks(rng, n_samples, *shape, n_classes, n_shapes)
    return _noisy(y, sigma, rng), y


def _noisy(y, sigma, rng):
    """``(n, 1, ...)`` float32: the 0/1 picture of masks ``y`` plus noise, min-max scaled."""
    clean = (y > 0).astype(np.float64)
    noisy = clean + sigma * rng.standard_normal(clean.shape)
    axes = tuple(range(1, noisy.ndim))
    low = noisy.min(axis=axes, keepdims=True)
    span = noisy.max(axis=axes, keepdims=True) - low
    # a constant sample (no noise, no shape) stays at 0 instead of dividing by 0
    X = np.divide(noisy - low, span, out=np.zeros_like(noisy), where=span > 0)
    return X[:, None].astype(np.float32)
