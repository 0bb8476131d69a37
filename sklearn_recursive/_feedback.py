"""FeedbackSegmenter: a U-Net whose output is fed back to its input and refined.

The network (`FeedbackUNet` in ``_feedback_nets.py``; the user guide's page
``docs/feedback.md`` explains it) keeps a
state ``h = [u, v]`` with ``u`` the segmentation logits and ``v`` extra
feedback channels.  It starts at zero and each step the U-Net ``F`` sees the
input next to the (softmaxed) feedback:

    d(t) = F([x, softmax(v(t-1))])
    h(t) = h(t-1) + exp(-t / tau) * d(t)
    loss = sum_t CE(u(t), y)

This module holds the scikit-learn estimator around it: validation, training
through skorch, and prediction in fixed-shape chunks.
"""

import collections
import copy
import math
import warnings
from numbers import Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import _check_sample_weight, check_array, check_is_fitted
from skorch.callbacks import Callback

from ._feedback_nets import (
    ConvBlock,  # noqa: F401  (models pickled before the split name it here)
    FeedbackUNet,
    StepwiseCrossEntropy,
    UNet,
)
from ._training import (
    SAMPLE_WEIGHT,
    DivergenceError,
    ModuleOnCPUPickle,
    TensorDataset,
    TrainSettings,
    fixed_chunks,
    make_net,
    resolve_device,
    seeded_build,
)
from ._utils import IntInterval, check_int, is_int, softmax
from .metrics import foreground_dice

# FeedbackUNet, UNet, StepwiseCrossEntropy and foreground_dice lived here
# before the split: they are still importable from this module.
__all__ = ["FeedbackSegmenter", "FeedbackUNet", "UNet"]

# Prediction runs in chunks of at most this many samples, and of at most
# _PREDICT_PIXELS pixels; every chunk is padded to the same number of rows.
_PREDICT_BATCH = 64
_PREDICT_PIXELS = 2**20
# How many training samples the under-training check of `fit` predicts.
_CHECK_SAMPLES = 256


class _LastEpoch(Callback):
    """Keep a copy of the weights at the end of every epoch (for an interrupted fit)."""

    def on_epoch_end(self, net, **kwargs):
        self.weights_ = copy.deepcopy(net.module_.state_dict())


def _train(make_module, data, settings, seed, net_class=None):
    """``train_network(make_module, data, None, settings, seed=seed)``, interruptible.

    Returns ``(net, interrupted)``.  A user's ``KeyboardInterrupt`` ends the fit
    with the net kept: with early stopping its weights are the best finished
    epoch's (``load_best``), otherwise the last finished epoch's.  ``net_class``:
    as in `make_net`.
    """
    early = settings.early_stopping(False)
    net = make_net(
        seeded_build(make_module, seed),
        settings,
        early_stopping=early,
        seed=seed,
        net_class=net_class,
    )
    last = _LastEpoch()
    if not early:
        net.set_params(callbacks=[*net.callbacks, ("last_epoch", last)])
    net.initialize()
    try:
        net.partial_fit(data, None)
    except KeyboardInterrupt:
        if not early and getattr(last, "weights_", None) is not None:
            net.module_.load_state_dict(last.weights_)
        return net, True
    return net, False


def _finished_epochs(history):
    return [row for row in history if "train_loss" in row]


def _describe(X):
    return f"a {np.ndim(X)}-D array of shape {np.shape(X)}"


class PositionLabels:
    """Input checks of estimators that label every position of signals or images.

    X is ``(n, C, L)`` / ``(n, L)`` or ``(n, C, H, W)`` / ``(n, H, W)``, y one
    integer label per position; the labels' shape tells which. The class
    defines ``_check_size(X, name)`` (what its network needs) and the wording
    of its y errors: ``_y_expected`` (what y to give) and ``_y_kinds`` (the
    shapes y may have).
    """

    def _check_X(self, X, n_spatial, name="X"):
        """Return float32 ``(n, C, *spatial)`` from X of ``n_spatial`` spatial dims."""
        kind = "images (n_samples, channels, H, W) or (n_samples, H, W)"
        if n_spatial == 1:
            kind = "signals (n_samples, channels, L) or (n_samples, L)"
        try:
            ndim = np.ndim(X)
        except (TypeError, ValueError):
            ndim = None
        if ndim not in (n_spatial + 1, n_spatial + 2):
            raise ValueError(f"{name} must be {kind}; got {_describe(X)}.")
        X = check_array(
            X,
            dtype=[np.float32, np.float64],
            allow_nd=True,
            ensure_min_samples=1,
            input_name=name,
        )
        if X.ndim == n_spatial + 1:
            X = X[:, None]
        return X.astype(np.float32, copy=False)

    def _check_y(self, y, X_shape, X_orig):
        """Integer labels, with the shape of X's samples and spatial dims."""
        y = np.asarray(y)
        expected = (X_shape[0], *X_shape[2:])
        if y.shape != expected:
            hint = ""
            shape = np.shape(X_orig)
            if len(shape) == y.ndim + 1 and shape[0] == y.shape[0] and shape[1:-1] == y.shape[1:]:
                axes = (0, y.ndim, *range(1, y.ndim))
                hint = (
                    f" X looks channels-last, with its {shape[-1]} channels on the last axis: "
                    f"channels come first here, X.transpose{axes}."
                )
            raise ValueError(
                f"y must hold one label per pixel, of shape {expected} for X of shape "
                f"{shape}; got y of shape {y.shape}.{hint}"
            )
        if y.dtype.kind == "b":
            y = y.astype(np.int64)
        elif y.dtype.kind == "f":
            if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
                raise ValueError(
                    "y must hold integer class labels; got non-integer values, e.g. "
                    f"{y[~np.isfinite(y) | (y != np.round(y))].flat[0]!r}."
                )
            y = y.astype(np.int64)
        elif y.dtype.kind not in "iu":
            raise ValueError(f"y must hold integer class labels; got dtype {y.dtype}.")
        if y.size and y.min() < 0:
            raise ValueError(f"y must hold non-negative integer class labels; got {int(y.min())}.")
        return y

    def _validate_fit_data(self, X, y):
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None: "
                f"give {self._y_expected}."
            )
        y_ndim = np.ndim(y)
        if y_ndim not in (2, 3):
            raise ValueError(f"y must be {self._y_kinds}; got {_describe(y)}.")
        n_spatial = y_ndim - 1
        X_checked = self._check_X(X, n_spatial)
        if len(X_checked) < 2:
            raise ValueError(f"fit needs at least 2 samples; got n_samples={len(X_checked)}.")
        y = self._check_y(y, X_checked.shape, X)
        self._check_size(X_checked)  # after y: a channels-last X is named as such first
        return X_checked, y, n_spatial

    def _validate_X(self, X):
        check_is_fitted(self)
        X = self._check_X(X, self.n_spatial_dims_)
        if X.shape[1] != self.n_features_in_:
            hint = ""
            if X.shape[-1] == self.n_features_in_ and self.n_features_in_ > 1:
                axes = (0, X.ndim - 1, *range(1, X.ndim - 1))
                hint = f" If its channels are on the last axis, use X.transpose{axes}."
            raise ValueError(
                f"X has {X.shape[1]} channels, but {type(self).__name__} was fitted on "
                f"{self.n_features_in_}; got {_describe(X)}.{hint}"
            )
        self._check_size(X)
        return X

    def _encode(self, y):
        unseen = np.setdiff1d(np.unique(y), self.classes_)
        if unseen.size:
            raise ValueError(
                f"y contains labels {unseen.tolist()} not seen in fit; the fitted labels "
                f"are {self.classes_.tolist()}."
            )
        return np.searchsorted(self.classes_, y)


class FeedbackSegmenter(PositionLabels, ModuleOnCPUPickle, BaseEstimator):
    """Segment images or signals with a feedback U-Net refined over steps.

    A U-Net ``F`` keeps a state ``h = [u, v]`` (``u``: class logits, ``v``:
    feedback channels), starting at 0.  Step ``t = 1..T`` adds
    ``exp(-t / tau) * F([x, softmax(v)])`` to ``h``; the training loss is the
    cross-entropy of ``u`` summed over the steps, back-propagated through the
    loop by autograd.  With ``feedback=False`` the same U-Net (without the
    feedback channels) runs once: the feed-forward baseline.

    Images or signals are told apart by the **labels** passed to ``fit``:
    masks ``y`` of shape ``(n, H, W)`` mean images, with ``X`` of shape
    ``(n, C, H, W)`` or ``(n, H, W)`` (one channel); labels of shape
    ``(n, L)`` mean signals, with ``X`` of shape ``(n, C, L)`` or ``(n, L)``.
    Prediction uses the kind that ``fit`` saw.  The network is fully
    convolutional: predicted images may have another size than the training
    ones, but the same channels.

    Parameters
    ----------
    n_steps : int, default=5
        Steps of the loop at prediction, and in training when
        ``train_steps=None``.  ``predict(X, n_steps=...)`` overrides it.
    feedback : bool, default=True
        Feed the state back.  ``False``: the U-Net runs once on ``x``.
    feedback_channels : int or None, default=None
        Channels of ``v``; ``None`` means as many as classes.  At least 2
        with ``softmax_feedback=True`` (a softmax over 1 channel is constant).
    tau : float, default=3.0
        Time constant of the decay ``exp(-t / tau)`` of the updates.
    softmax_feedback : bool, default=True
        Feed back ``softmax(v)`` (bounded); ``False`` feeds back the raw
        ``v`` (an ablation).
    decay : bool, default=True
        Weight step ``t`` by ``exp(-t / tau)``; ``False`` adds the updates
        unweighted (an ablation).
    train_steps : int, tuple (low, high) or None, default=None
        Steps in training: ``None`` uses ``n_steps``, an int a fixed number,
        a tuple a number drawn uniformly from ``low..high`` (inclusive) for
        each batch.
    backprop_steps : int or None, default=None
        How many of the last training steps carry gradient.  ``None``: all
        (exact back-propagation through the whole loop).  With ``k``, a batch
        of ``T`` steps runs steps ``1..T-k`` without gradient, and its loss is
        the cross-entropy summed over steps ``T-k+1..T`` only.
    tol : float or None, default=None
        Early halt at prediction: a sample stops once its step update
        ``max |exp(-t / tau) d(t)|`` falls below ``tol``; its state then stays
        fixed.  ``predict(X, return_steps=True)`` (and `predict_proba`) also
        return the steps each sample ran.  ``None``: always ``n_steps``.
        Not used by `staged_predict_proba`.
    base_channels : int, default=16
        Width of the U-Net's first block; block ``i`` has
        ``base_channels * 2**i`` channels.
    depth : int, default=2
        Number of poolings of the U-Net; inputs need at least ``2**depth``
        pixels along each side.
    max_updates : int, default=400
        Budget of Adam updates (mini-batches) when ``max_epochs=None``:
        training runs at most ``ceil(max_updates / batches per epoch)``
        epochs, so that a small training set gets as many updates as a large
        one.  Large sets may need more.
    max_epochs : int or None, default=None
        Budget in epochs; when set, it replaces ``max_updates``.
    n_iter_no_change : int or None, default=10
        Stop once the training loss has not improved by more than
        ``loss_tol`` for ``n_iter_no_change`` epochs, and keep the weights of
        the best epoch.  ``None``: train the whole budget and keep the last
        epoch's weights.
    loss_tol : float, default=1e-3
        The smallest decrease of the training loss (summed over the loss's
        steps) that counts as an improvement.
    batch_size : int, default=8
        Images per batch.
    lr : float, default=1e-3
        Adam's learning rate.
    device : str, default="auto"
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ...
    random_state : int, RandomState instance or None, default=None
        Seeds the initial weights, the shuffling and the drawn step counts:
        the same seed gives the same model on the same device.
    verbose : int, default=0
        Print the loss of every epoch when > 0.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The labels seen in ``y``, sorted; ``classes_[0]`` is the background.
    n_features_in_ : int
        Channels of the input.
    n_spatial_dims_ : int
        2 for images, 1 for signals.
    module_ : FeedbackUNet
        The trained network.
    history_ : list of float
        Training loss (summed over steps) of every finished epoch.
    interrupted_ : bool
        True when a ``KeyboardInterrupt`` ended fit after at least one epoch;
        the estimator then holds the best (with ``n_iter_no_change``) or the
        last finished epoch's weights.
    device_ : str
        The device the network was trained on.

    See Also
    --------
    sklearn_recursive.datasets.make_noisy_shapes : synthetic data to segment.
    sklearn_recursive.metrics.foreground_dice : the per-sample score.

    Notes
    -----
    `score` is the mean over samples of the foreground Dice (F1): for each
    sample, Dice is computed for every non-background class present in the
    truth or the prediction and averaged; a sample with no foreground in
    either scores 1.  With two classes this is the usual foreground F1.

    After training, ``fit`` predicts (up to 256 of) its training images and
    warns with a ``ConvergenceWarning`` when the model finds no foreground
    in any of them although their masks have some: an under-trained model.

    Prediction runs in chunks of equal shape (the last one padded with
    zeros), so a sample's prediction does not depend on which other samples
    are predicted with it.

    Examples
    --------
    >>> from sklearn_recursive import FeedbackSegmenter
    >>> from sklearn_recursive.datasets import make_noisy_shapes
    >>> X, y = make_noisy_shapes(8, size=8, sigma=0.5, random_state=0)
    >>> seg = FeedbackSegmenter(n_steps=2, base_channels=4, depth=1, max_epochs=2,
    ...                         lr=1e-2, device="cpu", random_state=0).fit(X, y)
    >>> seg.predict_proba(X[:2]).shape
    (2, 2, 8, 8)
    >>> seg.predict(X[:2], n_steps=4).shape
    (2, 8, 8)
    """

    _y_expected = "label masks (n_samples, H, W) or labels (n_samples, L)"
    _y_kinds = ("label masks of shape (n_samples, H, W) for images or labels of shape "
                "(n_samples, L) for signals")

    _parameter_constraints: dict = {
        "n_steps": [IntInterval(1, None, closed="left")],
        "feedback": ["boolean"],
        "feedback_channels": [IntInterval(1, None, closed="left"), None],
        "tau": [Interval(Real, 0, None, closed="neither")],
        "softmax_feedback": ["boolean"],
        "decay": ["boolean"],
        "train_steps": [IntInterval(1, None, closed="left"), tuple, None],
        "backprop_steps": [IntInterval(1, None, closed="left"), None],
        "tol": [Interval(Real, 0, None, closed="neither"), None],
        "base_channels": [IntInterval(1, None, closed="left")],
        "depth": [IntInterval(0, None, closed="left")],
        "max_updates": [IntInterval(1, None, closed="left")],
        "max_epochs": [IntInterval(1, None, closed="left"), None],
        "n_iter_no_change": [IntInterval(1, None, closed="left"), None],
        "loss_tol": [Interval(Real, 0, None, closed="left")],
        "batch_size": [IntInterval(1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "device": [str],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        n_steps=5,
        *,
        feedback=True,
        feedback_channels=None,
        tau=3.0,
        softmax_feedback=True,
        decay=True,
        train_steps=None,
        backprop_steps=None,
        tol=None,
        base_channels=16,
        depth=2,
        max_updates=400,
        max_epochs=None,
        n_iter_no_change=10,
        loss_tol=1e-3,
        batch_size=8,
        lr=1e-3,
        device="auto",
        random_state=None,
        verbose=0,
    ):
        self.n_steps = n_steps
        self.feedback = feedback
        self.feedback_channels = feedback_channels
        self.tau = tau
        self.softmax_feedback = softmax_feedback
        self.decay = decay
        self.train_steps = train_steps
        self.backprop_steps = backprop_steps
        self.tol = tol
        self.base_channels = base_channels
        self.depth = depth
        self.max_updates = max_updates
        self.max_epochs = max_epochs
        self.n_iter_no_change = n_iter_no_change
        self.loss_tol = loss_tol
        self.batch_size = batch_size
        self.lr = lr
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------
    # Validation

    def _check_params(self):
        steps = self.train_steps
        if isinstance(steps, tuple):
            ok = len(steps) == 2 and all(map(is_int, steps)) and 1 <= steps[0] <= steps[1]
            if not ok:
                raise ValueError(
                    "train_steps must be None, a positive int, or a tuple (low, high) of "
                    f"ints with 1 <= low <= high; got {steps!r}."
                )
            steps = (int(steps[0]), int(steps[1]))
        if self.feedback and self.softmax_feedback and self.feedback_channels == 1:
            raise ValueError(
                "feedback_channels=1 with softmax_feedback=True feeds back a constant "
                "(a softmax over one channel is 1); use feedback_channels >= 2 or None."
            )
        return steps
    def _check_size(self, X, name="X"):
        too_small = 2**self.depth
        if min(X.shape[2:]) < too_small:
            raise ValueError(
                f"{name} has spatial shape {X.shape[2:]}, too small for depth={self.depth}: "
                f"every side needs at least 2**depth = {too_small} pixels. Use a smaller depth."
            )

    # ------------------------------------------------------------------
    # Fitting

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Train the network on images and masks, or signals and labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, C, H, W), (n_samples, H, W), \
(n_samples, C, L) or (n_samples, L)
            Images or signals; see the class docstring for how they are told
            apart.
        y : array-like of shape (n_samples, H, W) or (n_samples, L)
            Non-negative integer labels, one per pixel; at least 2 classes.
        sample_weight : array-like of shape (n_samples,) or None, default=None
            Non-negative weight of each sample in the training loss: a
            batch's loss is the weighted mean over its samples of each
            sample's cross-entropy (mean over pixels, summed over steps), so
            that ``lr`` means the same with or without weights.  ``None``:
            every sample weighs the same.

        Returns
        -------
        self : FeedbackSegmenter
        """
        train_steps = self._check_params()
        X, y, n_spatial = self._validate_fit_data(X, y)
        classes = np.unique(y)
        if len(classes) < 2:
            raise ValueError(
                f"y must hold at least 2 classes to segment; got only label {classes[0]}."
            )
        if sample_weight is not None:
            sample_weight = _check_sample_weight(
                sample_weight, X, dtype=np.float64, ensure_non_negative=True
            )
        device = resolve_device(self.device)
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

        def make_module():
            return FeedbackUNet(
                X.shape[1],
                len(classes),
                dim=n_spatial,
                feedback=self.feedback,
                feedback_channels=self.feedback_channels,
                tau=self.tau,
                softmax_feedback=self.softmax_feedback,
                decay=self.decay,
                n_steps=self.n_steps,
                train_steps=train_steps,
                backprop_steps=self.backprop_steps,
                base_channels=self.base_channels,
                depth=self.depth,
                seed=seed,
            )

        y_enc = np.searchsorted(classes, y)
        if sample_weight is None:
            train_data = TensorDataset(X, y_enc, device=device, y_dtype=torch.long)
        else:  # the rows' weights travel with the inputs, as for every net (FastNet)
            inputs = {"X": X, SAMPLE_WEIGHT: sample_weight}
            train_data = TensorDataset(inputs, y_enc, device=device, y_dtype=torch.long)
        settings = TrainSettings(
            criterion=StepwiseCrossEntropy,
            max_epochs=self._epoch_budget(len(X)),
            batch_size=self.batch_size,
            lr=self.lr,
            device=device,
            patience=self.n_iter_no_change,
            tol=self.loss_tol,
            monitor="train_loss",
            verbose=2 if self.verbose else 0,
        )
        try:
            net, interrupted = _train(make_module, train_data, settings, seed)
        except DivergenceError as exc:
            raise DivergenceError(
                f"{type(self).__name__}: training diverged ({exc}). Lower lr (now "
                f"{self.lr}); without softmax_feedback or decay the fed-back state can grow "
                "without bound: fewer steps or a smaller tau help."
            ) from None
        finished = _finished_epochs(net.history)
        if interrupted and not finished:
            raise KeyboardInterrupt
        self.classes_ = classes
        self.n_features_in_ = X.shape[1]
        self.n_spatial_dims_ = n_spatial
        self.module_ = net.module_.eval()
        self.history_ = [float(row["train_loss"]) for row in finished]
        self.device_ = device
        self.interrupted_ = interrupted
        if interrupted:
            kept = "best" if settings.early_stopping(False) else "last"
            warnings.warn(
                f"{type(self).__name__}.fit was interrupted after {len(finished)} finished "
                f"epoch(s); the weights of the {kept} finished epoch are kept and the "
                "estimator is usable.",
                UserWarning,
                stacklevel=3,
            )
        self._check_trained(X, y_enc)
        return self

    def _epoch_budget(self, n_samples):
        """``max_epochs``, or the epochs that make ``max_updates`` updates."""
        if self.max_epochs is not None:
            return self.max_epochs
        return math.ceil(self.max_updates / math.ceil(n_samples / self.batch_size))

    def _check_trained(self, X, y_enc):
        """Warn when the model finds no foreground in training images that have some."""
        X, y_enc = X[:_CHECK_SAMPLES], y_enc[:_CHECK_SAMPLES]
        if not (y_enc > 0).any():
            return
        logits, _ = self._final_logits(X, None)
        if (logits.argmax(axis=1) > 0).any():
            return
        warnings.warn(
            f"{type(self).__name__} predicts only background on its training images, "
            "although their masks have foreground: the network is under-trained "
            f"({len(self.history_)} epochs). Train longer (max_updates={self.max_updates}, "
            f"max_epochs={self.max_epochs}, n_iter_no_change={self.n_iter_no_change}) or "
            f"raise lr (now {self.lr}), and check that X shows the foreground of y.",
            ConvergenceWarning,
            stacklevel=4,
        )

    # ------------------------------------------------------------------
    # Inference

    def _batches(self, X):
        """``(chunk, n_rows)`` of one fixed shape (`fixed_chunks`)."""
        return fixed_chunks(X, self.device_, _PREDICT_BATCH, _PREDICT_PIXELS)

    def _steps(self, n_steps):
        if n_steps is None:
            return 1 if not self.feedback else self.n_steps
        n_steps = check_int("n_steps", n_steps, 1)
        return 1 if not self.feedback else n_steps

    @torch.no_grad()
    def _final_logits(self, X, n_steps):
        """Logits after the last step (or the halt) and the steps each sample ran."""
        module = self.module_.eval()
        total = self._steps(n_steps)
        logits, used = [], []
        for x, rows in self._batches(X):
            (step,) = collections.deque(module.steps(x, total, tol=self.tol), maxlen=1)
            logits.append(step.logits[:rows].double().cpu().numpy())
            n_used = step.n_used if self.tol is not None else torch.full((len(x),), step.t)
            used.append(n_used[:rows].cpu().numpy())
        return np.concatenate(logits), np.concatenate(used).astype(np.int64)

    def predict_proba(self, X, n_steps=None, return_steps=False):
        """Class probabilities of every pixel after the last step.

        Parameters
        ----------
        X : array-like
            Images or signals of the kind and channels seen in fit.
        n_steps : int or None, default=None
            Steps to run; ``None`` means ``self.n_steps``.  May exceed the
            trained steps.  Ignored with ``feedback=False`` (one pass).
        return_steps : bool, default=False
            Also return the steps each sample ran: ``n_steps``, or fewer
            where ``tol`` halted it.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes, H, W) or \
(n_samples, n_classes, L)
        steps : ndarray of shape (n_samples,), int
            Only with ``return_steps=True``.
        """
        X = self._validate_X(X)
        logits, steps = self._final_logits(X, n_steps)
        proba = softmax(logits, axis=1)
        return (proba, steps) if return_steps else proba

    def predict(self, X, n_steps=None, return_steps=False):
        """Label masks: the most probable class of every pixel.

        Parameters
        ----------
        X : array-like
        n_steps : int or None, default=None
            As in `predict_proba`.
        return_steps : bool, default=False
            As in `predict_proba`.

        Returns
        -------
        y : ndarray of shape (n_samples, H, W) or (n_samples, L)
        steps : ndarray of shape (n_samples,), int
            Only with ``return_steps=True``.
        """
        X = self._validate_X(X)
        logits, steps = self._final_logits(X, n_steps)
        y = self.classes_[logits.argmax(axis=1)]
        return (y, steps) if return_steps else y

    def staged_predict_proba(self, X, n_steps=None):
        """Yield the class probabilities after each step ``1..n_steps``.

        ``tol`` does not apply: every step is yielded.  With
        ``feedback=False`` there is one step.

        Parameters
        ----------
        X : array-like
        n_steps : int or None, default=None
            Steps to run; ``None`` means ``self.n_steps``.

        Yields
        ------
        proba : ndarray of shape (n_samples, n_classes, ...)
        """
        X = self._validate_X(X)  # here, not at the first step: errors come at the call
        return self._staged(X, self._steps(n_steps))

    def _staged(self, X, total):
        module = self.module_.eval()
        chunks = list(self._batches(X))
        loops = [module.steps(x, total) for x, _ in chunks]
        for _ in range(total):
            with torch.no_grad():
                logits = [next(loop).logits[:rows] for loop, (_, rows) in zip(loops, chunks)]
                logits = np.concatenate([z.double().cpu().numpy() for z in logits])
            yield softmax(logits, axis=1)

    def score(self, X, y, n_steps=None, sample_weight=None):
        """Mean foreground Dice (F1) over samples; see Notes.

        Parameters
        ----------
        X : array-like
        y : array-like of shape (n_samples, H, W) or (n_samples, L)
            True labels, all seen in fit.
        n_steps : int or None, default=None
        sample_weight : array-like of shape (n_samples,) or None, default=None
            Weights of the samples' Dice in the mean.

        Returns
        -------
        score : float
        """
        X_checked = self._validate_X(X)
        y = self._encode(self._check_y(y, X_checked.shape, X))
        if sample_weight is not None:
            sample_weight = _check_sample_weight(
                sample_weight, X_checked, dtype=np.float64, ensure_non_negative=True
            )
        pred = self._final_logits(X_checked, n_steps)[0].argmax(axis=1)
        dice = foreground_dice(y, pred, len(self.classes_))
        return float(np.average(dice, weights=sample_weight))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        tags.input_tags.allow_nan = False
        tags.target_tags.required = True
        tags.target_tags.single_output = False
        tags.target_tags.multi_output = True
        return tags
