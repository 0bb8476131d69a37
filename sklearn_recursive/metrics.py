"""Scores of segmentations: label masks of images, label sequences of signals."""

import numpy as np

__all__ = ["foreground_dice"]


def foreground_dice(y_true, y_pred, n_classes):
    """Foreground Dice (F1) of every sample, for labels ``0..n_classes-1``.

    Class 0 is the background.  For each sample and each foreground class
    ``k >= 1`` present in the truth or the prediction, Dice is
    ``2 |P & T| / (|P| + |T|)`` with ``P`` and ``T`` the sample's pixels
    predicted and truly of class ``k``.  The sample's score is the mean over
    those classes, and 1 when neither the truth nor the prediction has any
    foreground.  With two classes this is the usual foreground F1.

    Parameters
    ----------
    y_true : array-like of shape (n_samples, ...)
        True labels: integers ``0..n_classes-1``, one per pixel.
    y_pred : array-like of shape (n_samples, ...)
        Predicted labels, of the shape of ``y_true``.
    n_classes : int
        Number of classes, background included.

    Returns
    -------
    scores : ndarray of shape (n_samples,)
        Each sample's Dice, in ``[0, 1]``.  `FeedbackSegmenter.score
        <sklearn_recursive.FeedbackSegmenter.score>` is their (weighted)
        mean.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_recursive.metrics import foreground_dice
    >>> y_true = np.array([[0, 1, 1, 0], [0, 0, 0, 0]])
    >>> y_pred = np.array([[0, 1, 0, 0], [0, 0, 0, 0]])
    >>> foreground_dice(y_true, y_pred, n_classes=2)  # 2*1 / (1 + 2); no foreground
    array([0.66666667, 1.        ])
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"y_true and y_pred must have the same shape; got {y_true.shape} and {y_pred.shape}."
        )
    n = len(y_true)
    y_true = y_true.reshape(n, -1)
    y_pred = y_pred.reshape(n, -1)
    scores = np.ones(n)
    totals = np.zeros(n)
    counts = np.zeros(n)
    for k in range(1, n_classes):
        t, p = y_true == k, y_pred == k
        size = t.sum(axis=1) + p.sum(axis=1)
        present = size > 0
        dice = np.divide(2 * (t & p).sum(axis=1), size, out=np.zeros(n), where=present)
        totals += np.where(present, dice, 0.0)
        counts += present
    np.divide(totals, counts, out=scores, where=counts > 0)
    return scores
