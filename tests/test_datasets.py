import numpy as np
import pytest

from sklearn_recursive.datasets import make_sinusoid


def test_make_sinusoid_shapes_and_signal():
    X, y = make_sinusoid(500, n_periods=3, noise=0.2, random_state=0)
    assert X.shape == (500, 1) and y.shape == (500,)
    assert X.dtype == np.float32 and y.dtype == np.float32
    assert 0 <= X.min() and X.max() <= 2 * np.pi * 3
    residual = y - np.sin(X[:, 0])
    assert residual.std() == pytest.approx(0.2, rel=0.15)


def test_make_sinusoid_is_reproducible_and_sortable():
    a = make_sinusoid(50, random_state=1)
    b = make_sinusoid(50, random_state=1)
    np.testing.assert_array_equal(a[0], b[0])
    X, _ = make_sinusoid(50, shuffle=False, random_state=1)
    assert np.all(np.diff(X[:, 0]) >= 0)
    X_clean, y_clean = make_sinusoid(50, noise=0.0, random_state=1)
    np.testing.assert_allclose(y_clean, np.sin(X_clean[:, 0]), atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"n_samples": 0}, "n_samples"), ({"noise": -1}, "noise"), ({"n_periods": 0}, "n_periods")],
)
def test_make_sinusoid_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_sinusoid(**kwargs)
