"""Time series as supervised windows, for the window networks.

A transformer in a `~sklearn.pipeline.Pipeline` cannot change ``y``, so
forecasting data are prepared up front by `make_windows`, whose ``X`` fits
the 3-D input of the built-in window networks (``module="cnn"``, ``"gru"``,
``"lstm"``, ``"transformer"``).
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ._utils import check_int, is_int

__all__ = ["make_windows"]


def _as_series_list(series):
    """The series as a list of float64 arrays of shape ``(T, n_channels)``."""
    if isinstance(series, list | tuple) and not series:
        raise ValueError("series is an empty list; give at least one series.")
    several = isinstance(series, list | tuple) and any(np.ndim(s) > 0 for s in series)
    items = list(series) if several else [series]
    arrays = []
    for i, item in enumerate(items):
        name = f"series[{i}]" if several else "series"
        try:
            array = np.asarray(item, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} must be a numeric array: {exc}") from exc
        if array.ndim not in (1, 2):
            raise ValueError(
                f"{name} must be 1-D (T,) or 2-D (T, n_channels); got {array.ndim}-D "
                f"with shape {array.shape}."
            )
        if array.ndim == 1:
            array = array[:, None]
        if array.shape[1] == 0:
            raise ValueError(f"{name} has no channels (shape {array.shape}).")
        if not np.isfinite(array).all():
            t = int(np.argwhere(~np.isfinite(array))[0, 0])
            raise ValueError(f"{name} contains NaN or infinite values (first at t={t}).")
        if arrays and array.shape[1] != arrays[0].shape[1]:
            raise ValueError(
                f"all series must have the same number of channels; series[0] has "
                f"{arrays[0].shape[1]} and {name} has {array.shape[1]}."
            )
        arrays.append(array)
    return arrays, several


def make_windows(series, window, horizon=1, *, target=0, step=1):
    """Cut one or several time series into windows and the values that follow.

    Window ``i`` of a series covers the time steps ``i*step`` to
    ``i*step + window - 1`` of all its channels; its target is the
    ``target`` channel at the ``horizon`` steps that follow, ``i*step +
    window`` to ``i*step + window + horizon - 1``.

    Parameters
    ----------
    series : array-like of shape (T,) or (T, n_channels), or list of them
        One series (a 1-D array is one channel), or a list of series, which
        must all have the same number of channels; windows never cross from
        one series into the next.  A list of numbers is one series.  pandas
        Series and DataFrames are accepted.
    window : int
        Length of each window, in time steps.
    horizon : int, default=1
        How many of the following values of the target channel to predict.
    target : int, default=0
        Index of the channel to forecast; negative indices count from the
        end.
    step : int, default=1
        Time steps between the starts of consecutive windows.

    Returns
    -------
    X : ndarray of shape (n_windows, n_channels, window), float32
        The windows, series after series, each series's in time order.
    y : ndarray of shape (n_windows,) or (n_windows, horizon), float32
        The target channel's next ``horizon`` values after each window;
        1-D when ``horizon == 1``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_recursive.timeseries import make_windows
    >>> X, y = make_windows(np.arange(6), window=3)
    >>> X.shape, y.shape
    ((3, 1, 3), (3,))
    >>> X[:, 0].tolist(), y.tolist()
    ([[0.0, 1.0, 2.0], [1.0, 2.0, 3.0], [2.0, 3.0, 4.0]], [3.0, 4.0, 5.0])
    """
    window = check_int("window", window, 1)
    horizon = check_int("horizon", horizon, 1)
    step = check_int("step", step, 1)
    if not is_int(target):
        raise ValueError(f"target must be an int channel index; got {target!r}.")
    arrays, several = _as_series_list(series)
    n_channels = arrays[0].shape[1]
    if not -n_channels <= target < n_channels:
        raise ValueError(
            f"target={target} is out of range for series with {n_channels} channel(s)."
        )
    span = window + horizon
    Xs, ys = [], []
    for i, array in enumerate(arrays):
        if len(array) < span:
            name = f"series[{i}]" if several else "series"
            raise ValueError(
                f"{name} has length {len(array)}, too short for one window: window + "
                f"horizon = {window} + {horizon} = {span} time steps are needed."
            )
        # (n_windows, n_channels, window + horizon), a view; then every step-th.
        spans = sliding_window_view(array, span, axis=0)[::step]
        Xs.append(spans[:, :, :window])
        ys.append(spans[:, target, window:])
    X = np.concatenate(Xs).astype(np.float32)
    y = np.concatenate(ys).astype(np.float32)
    return X, (y[:, 0] if horizon == 1 else y)
