import numpy as np
import pytest
from sklearn.utils._param_validation import InvalidParameterError

from sklearn_recursive.datasets._shapes import _inside_polygon, make_noisy_shapes


@pytest.mark.parametrize(
    "kwargs, x_shape, y_shape",
    [
        (dict(kind="image", size=16), (5, 1, 16, 16), (5, 16, 16)),
        (dict(kind="image", size=(13, 11)), (5, 1, 13, 11), (5, 13, 11)),
        (dict(kind="signal", size=29), (5, 1, 29), (5, 29)),
        (dict(kind="signal", size=(30,)), (5, 1, 30), (5, 30)),
    ],
)
def test_shapes_and_dtypes(kwargs, x_shape, y_shape):
    X, y = make_noisy_shapes(5, sigma=1.0, random_state=0, **kwargs)
    assert X.shape == x_shape and X.dtype == np.float32
    assert y.shape == y_shape and y.dtype.kind == "i"
    # per-sample min-max scaling
    flat = X.reshape(len(X), -1)
    np.testing.assert_allclose(flat.min(axis=1), 0.0, atol=1e-6)
    np.testing.assert_allclose(flat.max(axis=1), 1.0, atol=1e-6)
    # every sample has foreground and background
    assert (y.reshape(5, -1) > 0).any(axis=1).all()
    assert (y.reshape(5, -1) == 0).any(axis=1).all()


@pytest.mark.parametrize("kind", ["image", "signal"])
def test_no_noise_gives_the_clean_mask(kind):
    X, y = make_noisy_shapes(4, kind=kind, size=16, sigma=0.0, random_state=1)
    np.testing.assert_array_equal(X[:, 0], (y > 0).astype(np.float32))


@pytest.mark.parametrize("kind", ["image", "signal"])
def test_deterministic_given_random_state(kind):
    a = make_noisy_shapes(3, kind=kind, size=12, random_state=7)
    b = make_noisy_shapes(3, kind=kind, size=12, random_state=7)
    c = make_noisy_shapes(3, kind=kind, size=12, random_state=8)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_multiclass_labels():
    _, y = make_noisy_shapes(40, size=16, n_classes=4, n_shapes=2, random_state=0)
    assert set(np.unique(y)) == {0, 1, 2, 3}


def test_more_noise_means_lower_contrast():
    _, y = make_noisy_shapes(20, size=16, random_state=0)
    contrasts = []
    for sigma in (0.0, 1.0, 6.0):
        X, y2 = make_noisy_shapes(20, size=16, sigma=sigma, random_state=0)
        np.testing.assert_array_equal(y, y2)  # same shapes, only the noise differs
        fg, bg = X[:, 0][y > 0].mean(), X[:, 0][y == 0].mean()
        contrasts.append(fg - bg)
    assert contrasts[0] > contrasts[1] > contrasts[2] > 0


def test_point_in_polygon_square():
    square = np.array([[1.0, 1.0], [1.0, 3.0], [3.0, 3.0], [3.0, 1.0]])
    rows = (np.arange(4) + 0.5)[:, None]
    cols = (np.arange(4) + 0.5)[None, :]
    expected = np.zeros((4, 4), bool)
    expected[1:3, 1:3] = True
    np.testing.assert_array_equal(_inside_polygon(rows, cols, square), expected)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(kind="image", size=(16,)), ValueError, "tuple of 2 ints >= 4"),
        (dict(kind="signal", size=(16, 16)), ValueError, "tuple of 1 ints >= 4"),
        (dict(kind="image", size=(16, 3)), ValueError, "size must be"),
        (dict(kind="volume"), InvalidParameterError, "kind"),
        (dict(sigma=-1.0), InvalidParameterError, "sigma"),
        (dict(n_classes=1), InvalidParameterError, "n_classes"),
        (dict(size=2), InvalidParameterError, "size"),
    ],
)
def test_bad_parameters(kwargs, error, match):
    with pytest.raises(error, match=match):
        make_noisy_shapes(2, **kwargs)
