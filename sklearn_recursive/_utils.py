"""Small helpers shared by the estimators: one definition each."""

from numbers import Integral

import numpy as np
from sklearn.utils._param_validation import Interval

__all__ = ["IntInterval", "check_int", "is_int", "softmax"]


def softmax(logits, axis=1):
    """Numerically stable softmax of a NumPy array along ``axis``."""
    logits = logits - logits.max(axis=axis, keepdims=True)
    expd = np.exp(logits)
    return expd / expd.sum(axis=axis, keepdims=True)


def is_int(value):
    """True for ints (Python or NumPy), False for bools: ``True`` is not 1 step."""
    return isinstance(value, Integral) and not isinstance(value, bool)


def check_int(name, value, minimum):
    """``int(value)``, or a ``ValueError`` naming ``name`` if it is not an int >= minimum."""
    if not is_int(value) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; got {value!r}.")
    return int(value)


class IntInterval(Interval):
    """scikit-learn's ``Interval(Integral, ...)`` constraint, refusing bools.

    ``bool`` is an ``Integral`` subclass, so ``Interval(Integral, 1, None)``
    lets ``n_rounds=True`` through as one round; parameter validation then
    says "must be an int in the range [1, inf). Got True instead."
    """

    def __init__(self, left, right, *, closed):
        super().__init__(Integral, left, right, closed=closed)

    def is_satisfied_by(self, val):
        return not isinstance(val, bool) and super().is_satisfied_by(val)
