"""make_windows: exact windows and targets, and every error a user may see."""

import numpy as np
import pandas as pd
import pytest

from sklearn_recursive.timeseries import make_windows


def test_one_channel_horizon_one():
    X, y = make_windows(np.arange(6), window=3)
    assert X.shape == (3, 1, 3) and X.dtype == np.float32
    assert y.shape == (3,) and y.dtype == np.float32
    np.testing.assert_array_equal(X[:, 0], [[0, 1, 2], [1, 2, 3], [2, 3, 4]])
    np.testing.assert_array_equal(y, [3, 4, 5])


def test_horizon_and_step():
    X, y = make_windows(np.arange(10), window=3, horizon=3, step=2)
    # starts 0, 2, 4: the last window ends at 6 and its target at 9.
    np.testing.assert_array_equal(X[:, 0], [[0, 1, 2], [2, 3, 4], [4, 5, 6]])
    np.testing.assert_array_equal(y, [[3, 4, 5], [5, 6, 7], [7, 8, 9]])


def test_step_drops_an_incomplete_last_window():
    X, y = make_windows(np.arange(9), window=3, step=2)
    np.testing.assert_array_equal(X[:, 0, 0], [0, 2, 4])
    np.testing.assert_array_equal(y, [3, 5, 7])


def test_several_channels_and_target():
    series = np.stack([np.arange(7), 10 * np.arange(7), 100 * np.arange(7)], axis=1)
    X, y = make_windows(series, window=4, horizon=2, target=1)
    assert X.shape == (2, 3, 4) and y.shape == (2, 2)
    np.testing.assert_array_equal(X[1], [[1, 2, 3, 4], [10, 20, 30, 40], [100, 200, 300, 400]])
    np.testing.assert_array_equal(y, [[40, 50], [50, 60]])
    _, y_last = make_windows(series, window=4, target=-1)
    np.testing.assert_array_equal(y_last, [400, 500, 600])


def test_list_of_series_never_crosses_boundaries():
    first = np.stack([np.arange(5), -np.arange(5)], axis=1)
    second = np.stack([np.arange(100, 106), -np.arange(100, 106)], axis=1)
    X, y = make_windows([first, second], window=3)
    assert X.shape == (2 + 3, 2, 3)
    np.testing.assert_array_equal(X[:, 0, 0], [0, 1, 100, 101, 102])
    np.testing.assert_array_equal(X[2, 1], [-100, -101, -102])
    np.testing.assert_array_equal(y, [3, 4, 103, 104, 105])


def test_pandas_and_plain_lists():
    frame = pd.DataFrame({"a": np.arange(5.0), "b": np.arange(5.0) ** 2})
    X, y = make_windows(frame, window=2, target=1)
    np.testing.assert_array_equal(X[0], [[0, 1], [0, 1]])
    np.testing.assert_array_equal(y, [4, 9, 16])
    X_series, y_series = make_windows(pd.Series(np.arange(5.0)), window=2)
    X_list, y_list = make_windows([0, 1, 2, 3, 4], window=2)  # a list of numbers: one series
    np.testing.assert_array_equal(X_series, X_list)
    np.testing.assert_array_equal(y_series, y_list)
    X_two, _ = make_windows([[0, 1, 2], [5, 6, 7, 8]], window=2)  # a list of lists: two series
    np.testing.assert_array_equal(X_two[:, 0, 0], [0, 5, 6])


def test_exactly_one_window():
    X, y = make_windows(np.arange(4), window=2, horizon=2)
    np.testing.assert_array_equal(X, [[[0, 1]]])
    np.testing.assert_array_equal(y, [[2, 3]])


ERRORS = [
    (dict(window=0), "window must be an int >= 1; got 0"),
    (dict(window=2.0), "window must be an int"),
    (dict(window=True), "window must be an int"),
    (dict(window=2, horizon=0), "horizon must be an int >= 1; got 0"),
    (dict(window=2, horizon="1"), "horizon must be an int"),
    (dict(window=2, step=0), "step must be an int >= 1; got 0"),
    (dict(window=2, step=1.5), "step must be an int"),
    (dict(window=2, target=1), r"target=1 is out of range for series with 1 channel"),
    (dict(window=2, target=-2), r"target=-2 is out of range"),
    (dict(window=2, target=0.0), "target must be an int"),
    (dict(window=5), r"series has length 5, too short.*5 \+ 1 = 6 time steps"),
    (dict(window=4, horizon=2), r"series has length 5, too short.*4 \+ 2 = 6 time steps"),
]


@pytest.mark.parametrize("kwargs, match", ERRORS)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_windows(np.arange(5), **kwargs)


BAD_SERIES = [
    ([], "empty list"),
    (np.zeros((5, 2, 2)), r"series must be 1-D \(T,\) or 2-D.*got 3-D"),
    (np.float64(3.0), "got 0-D"),
    (np.zeros((5, 0)), "no channels"),
    (np.array([0.0, 1.0, np.nan, 3.0]), r"NaN or infinite values \(first at t=2\)"),
    (np.array([[0.0, 1.0], [2.0, np.inf], [0.0, 1.0]]), r"first at t=1"),
    ([np.zeros((5, 2)), np.zeros((5, 3))], "same number of channels.*series\\[1\\] has 3"),
    ([np.zeros(5), np.zeros(1)], r"series\[1\] has length 1, too short"),
    ([np.zeros(5), np.array([1.0, np.nan, 2.0])], r"series\[1\] contains NaN"),
    (np.array(["a", "b", "c"]), "must be a numeric array"),
    (np.zeros(0), "series has length 0"),
]


@pytest.mark.parametrize("series, match", BAD_SERIES)
def test_bad_series(series, match):
    with pytest.raises(ValueError, match=match):
        make_windows(series, window=1)
