"""The noisy sinusoid regression task of the Recurrent Expansion paper."""

import numpy as np
from sklearn.utils import check_random_state


def make_sinusoid(n_samples=1000, *, n_periods=2.0, noise=0.3, shuffle=True, random_state=None):
    """Generate a noisy sinusoid regression problem.

    ``X`` holds ``t``, drawn uniformly on ``[0, 2 pi n_periods]``, and
    ``y = sin(t) + noise * e`` with standard normal ``e``. A single smooth
    input with a periodic target: easy to see, hard to fit with few epochs,
    and the setting in which Recurrent Expansion's representation glitch was
    first described.

    Parameters
    ----------
    n_samples : int, default=1000
        Number of rows.
    n_periods : float, default=2.0
        Number of periods of the sine covered by ``t``.
    noise : float, default=0.3
        Standard deviation of the Gaussian noise added to ``y``.
    shuffle : bool, default=True
        Rows in random order; False sorts them by ``t`` (handy for plots).
    random_state : int, RandomState instance or None, default=None
        Seeds ``t`` and the noise.

    Returns
    -------
    X : ndarray of shape (n_samples, 1), float32
        The input ``t``.
    y : ndarray of shape (n_samples,), float32
        The noisy target.

    Examples
    --------
    >>> from sklearn_recursive.datasets import make_sinusoid
    >>> X, y = make_sinusoid(n_samples=5, random_state=0)
    >>> X.shape, y.shape
    ((5, 1), (5,))
    """
    if not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive int; got {n_samples!r}.")
    if not n_periods > 0:
        raise ValueError(f"n_periods must be > 0; got {n_periods!r}.")
    if not noise >= 0:
        raise ValueError(f"noise must be >= 0; got {noise!r}.")
    rng = check_random_state(random_state)
    t = rng.uniform(0.0, 2 * np.pi * n_periods, size=n_samples)
    if not shuffle:
        t = np.sort(t)
    y = np.sin(t) + noise * rng.standard_normal(n_samples)
    return t.reshape(-1, 1).astype(np.float32), y.astype(np.float32)
