"""FeedbackSegmenter: a U-Net whose output is fed back to its input and refined.

The network (DESIGN.md §3) keeps a state ``h = [u, v]`` with ``u`` the
segmentation logits and ``v`` extra feedback channels.  It starts at zero and
each step the U-Net ``F`` sees the input next to the (softmaxed) feedback:

    d(t) = F([x, softmax(v(t-1))])
    h(t) = h(t-1) + exp(-t / tau) * d(t)
    loss = sum_t CE(u(t), y)

The loop is plain PyTorch, differentiated by autograd.  Images ``(n, C, H, W)``
use 2-D convolutions, signals ``(n, C, L)`` 1-D ones; the U-Net normalises
with GroupNorm (BatchNorm's running statistics would mix the steps).
"""

import copy
import math
import warnings
from numbers import Integral, Real

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_array, check_is_fitted
from torch import nn

from ._training import (
    DivergenceError,
    TensorDataset,
    TrainSettings,
    resolve_device,
    train_network,
)

__all__ = ["FeedbackSegmenter", "FeedbackUNet", "UNet"]

_PREDICT_BATCH = 64


# ----------------------------------------------------------------------------
# Network blocks


def _conv_class(dim):
    return nn.Conv1d if dim == 1 else nn.Conv2d


class ConvBlock(nn.Module):
    """Two 3-wide convolutions, each followed by GroupNorm and ReLU."""

    def __init__(self, in_channels, out_channels, dim):
        super().__init__()
        conv = _conv_class(dim)
        groups = math.gcd(out_channels, 8)
        self.layers = nn.Sequential(
            conv(in_channels, out_channels, 3, padding=1),
            nn.GroupNorm(groups, out_channels),
            nn.ReLU(inplace=True),
            conv(out_channels, out_channels, 3, padding=1),
            nn.GroupNorm(groups, out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x):
        return self.layers(x)


class UNet(nn.Module):
    """A U-Net for 1-D signals (``dim=1``) or 2-D images (``dim=2``).

    The encoder has ``depth + 1`` blocks of widths ``base_channels * 2**i``
    separated by 2x max pooling; each decoder block upsamples (nearest
    neighbour) to its skip connection's exact shape, so odd sizes work, and
    concatenates the skip.  A 1-wide convolution maps to ``out_channels``.

    Parameters
    ----------
    in_channels, out_channels : int
    base_channels : int, default=16
    depth : int, default=2
        Number of poolings; inputs need at least ``2**depth`` pixels per side.
    dim : {1, 2}, default=2
    """

    def __init__(self, in_channels, out_channels, *, base_channels=16, depth=2, dim=2):
        super().__init__()
        widths = [base_channels * 2**i for i in range(depth + 1)]
        inputs = [in_channels, *widths[:-1]]
        self.down = nn.ModuleList(ConvBlock(i, o, dim) for i, o in zip(inputs, widths))
        self.up = nn.ModuleList(
            ConvBlock(widths[i + 1] + widths[i], widths[i], dim) for i in reversed(range(depth))
        )
        self.pool = nn.MaxPool1d(2) if dim == 1 else nn.MaxPool2d(2)
        self.head = _conv_class(dim)(widths[0], out_channels, 1)

    def forward(self, x):
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else self.pool(x))
            skips.append(x)
        skips.pop()  # the bottleneck is x itself
        for block in self.up:
            skip = skips.pop()
            x = F.interpolate(x, size=skip.shape[2:], mode="nearest")
            x = block(torch.cat([x, skip], dim=1))
        return self.head(x)


class FeedbackUNet(nn.Module):
    """The feedback loop of DESIGN.md §3 around a `UNet`.

    The state ``h`` has ``n_classes + n_feedback`` channels: the logits ``u``
    first, then the feedback channels ``v``.  With ``feedback=False`` the U-Net
    sees ``x`` alone and runs once: the feed-forward baseline.

    In training mode ``forward`` runs ``T`` steps, ``T`` fixed or drawn per
    batch (``train_steps``), and returns the logits of the steps that carry
    gradient: the last ``backprop_steps`` of them (all when ``None``).  The
    steps before those run without gradient and their state enters the
    gradient steps detached, as a constant.  In eval mode it returns the
    logits of every one of ``n_steps`` steps.  Output: ``(steps, n,
    n_classes, *spatial)``.
    """

    def __init__(
        self,
        in_channels,
        n_classes,
        *,
        dim=2,
        feedback=True,
        feedback_channels=None,
        tau=3.0,
        softmax_feedback=True,
        decay=True,
        n_steps=5,
        train_steps=None,
        backprop_steps=None,
        base_channels=16,
        depth=2,
        seed=None,
    ):
        super().__init__()
        self.n_classes = n_classes
        self.n_feedback = (feedback_channels or n_classes) if feedback else 0
        self.feedback = feedback
        self.tau = tau
        self.softmax_feedback = softmax_feedback
        self.decay = decay
        self.n_steps = n_steps
        self.train_steps = train_steps
        self.backprop_steps = backprop_steps
        self.unet = UNet(
            in_channels + self.n_feedback,
            n_classes + self.n_feedback,
            base_channels=base_channels,
            depth=depth,
            dim=dim,
        )
        self.step_rng = np.random.RandomState(seed)

    def step_weight(self, t):
        """``exp(-t / tau)`` for step ``t = 1, 2, ...``, or 1 without decay."""
        return math.exp(-t / self.tau) if self.decay else 1.0

    def init_state(self, x):
        shape = (x.shape[0], self.n_classes + self.n_feedback, *x.shape[2:])
        return x.new_zeros(shape)

    def update(self, x, h, t):
        """The weighted update ``exp(-t / tau) * d(t)`` that step ``t`` adds to ``h``."""
        if not self.feedback:
            return self.unet(x)
        v = h[:, self.n_classes :]
        fed = torch.softmax(v, dim=1) if self.softmax_feedback else v
        return self.step_weight(t) * self.unet(torch.cat([x, fed], dim=1))

    def logits(self, h):
        return h[:, : self.n_classes]

    def sample_steps(self):
        """``(T, k)``: the steps of one training batch and how many carry gradient."""
        if not self.feedback:
            return 1, 1
        steps = self.train_steps if self.train_steps is not None else self.n_steps
        if isinstance(steps, tuple):
            steps = int(self.step_rng.randint(steps[0], steps[1] + 1))
        k = steps if self.backprop_steps is None else min(self.backprop_steps, steps)
        return steps, k

    def forward(self, X, n_steps=None):
        if self.training:
            total, n_grad = self.sample_steps()
        else:
            total = 1 if not self.feedback else (n_steps or self.n_steps)
            n_grad = total
        h = self.init_state(X)
        with torch.no_grad():
            for t in range(1, total - n_grad + 1):
                h = h + self.update(X, h, t)
        outputs = []
        for t in range(total - n_grad + 1, total + 1):
            h = h + self.update(X, h, t)
            outputs.append(self.logits(h))
        return torch.stack(outputs)


class StepwiseCrossEntropy(nn.Module):
    """Cross-entropy summed over the steps of ``(steps, n, classes, ...)`` logits."""

    def forward(self, step_logits, y):
        return sum(F.cross_entropy(logits, y) for logits in step_logits)


# ----------------------------------------------------------------------------
# Scoring


def foreground_dice(y_true, y_pred, n_classes):
    """Mean foreground Dice (F1) per sample, for encoded labels ``0..n_classes-1``.

    Class 0 is the background.  For each sample and each foreground class
    present in the truth or the prediction, Dice is ``2|P & T| / (|P| + |T|)``;
    the sample's score is their mean, and 1 when neither the truth nor the
    prediction has any foreground.  Returns an array of shape ``(n_samples,)``.
    """
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


# ----------------------------------------------------------------------------
# The estimator


def _describe(X):
    return f"a {np.ndim(X)}-D array of shape {np.shape(X)}"


class FeedbackSegmenter(BaseEstimator):
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
        fixed.  The steps each sample used are stored in ``n_steps_used_`` by
        `predict`, `predict_proba` and `score`.  ``None``: always ``n_steps``.
        Not used by `staged_predict_proba`.
    base_channels : int, default=16
        Width of the U-Net's first block; block ``i`` has
        ``base_channels * 2**i`` channels.
    depth : int, default=2
        Number of poolings of the U-Net; inputs need at least ``2**depth``
        pixels along each side.
    max_epochs : int, default=50
        Training epochs (Adam, shuffled mini-batches, no validation split).
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
        Training loss (summed over steps) of every epoch.
    device_ : str
        The device the network was trained on.
    n_steps_used_ : ndarray of shape (n_samples,)
        Set by prediction with ``tol``: the steps each sample ran.

    See Also
    --------
    sklearn_recursive.datasets.make_noisy_shapes : synthetic data to segment.

    Notes
    -----
    `score` is the mean over samples of the foreground Dice (F1): for each
    sample, Dice is computed for every non-background class present in the
    truth or the prediction and averaged; a sample with no foreground in
    either scores 1.  With two classes this is the usual foreground F1.

    Examples
    --------
    >>> from sklearn_recursive import FeedbackSegmenter
    >>> from sklearn_recursive.datasets import make_noisy_shapes
    >>> X, y = make_noisy_shapes(8, size=8, sigma=0.5, random_state=0)
    >>> seg = FeedbackSegmenter(n_steps=2, base_channels=4, depth=1, max_epochs=2,
    ...                         device="cpu", random_state=0).fit(X, y)
    >>> seg.predict_proba(X[:2]).shape
    (2, 2, 8, 8)
    >>> seg.predict(X[:2], n_steps=4).shape
    (2, 8, 8)
    """

    _parameter_constraints: dict = {
        "n_steps": [Interval(Integral, 1, None, closed="left")],
        "feedback": ["boolean"],
        "feedback_channels": [Interval(Integral, 1, None, closed="left"), None],
        "tau": [Interval(Real, 0, None, closed="neither")],
        "softmax_feedback": ["boolean"],
        "decay": ["boolean"],
        "train_steps": [Interval(Integral, 1, None, closed="left"), tuple, None],
        "backprop_steps": [Interval(Integral, 1, None, closed="left"), None],
        "tol": [Interval(Real, 0, None, closed="neither"), None],
        "base_channels": [Interval(Integral, 1, None, closed="left")],
        "depth": [Interval(Integral, 0, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
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
        max_epochs=50,
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
        self.max_epochs = max_epochs
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
            ok = (
                len(steps) == 2
                and all(isinstance(s, Integral) and not isinstance(s, bool) for s in steps)
                and 1 <= steps[0] <= steps[1]
            )
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

    def _check_size(self, X, name="X"):
        too_small = 2**self.depth
        if min(X.shape[2:]) < too_small:
            raise ValueError(
                f"{name} has spatial shape {X.shape[2:]}, too small for depth={self.depth}: "
                f"every side needs at least 2**depth = {too_small} pixels. Use a smaller depth."
            )

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
                "give label masks (n_samples, H, W) or labels (n_samples, L)."
            )
        y_ndim = np.ndim(y)
        if y_ndim not in (2, 3):
            raise ValueError(
                "y must be label masks of shape (n_samples, H, W) for images or labels of "
                f"shape (n_samples, L) for signals; got {_describe(y)}."
            )
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

    # ------------------------------------------------------------------
    # Fitting

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Train the network on images and masks, or signals and labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, C, H, W), (n_samples, H, W), \
(n_samples, C, L) or (n_samples, L)
            Images or signals; see the class docstring for how they are told
            apart.
        y : array-like of shape (n_samples, H, W) or (n_samples, L)
            Non-negative integer labels, one per pixel; at least 2 classes.

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
        device = resolve_device(self.device)
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        self.classes_ = classes
        self.n_features_in_ = X.shape[1]
        self.n_spatial_dims_ = n_spatial

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

        train_data = TensorDataset(
            X, np.searchsorted(classes, y), device=device, y_dtype=torch.long
        )
        try:
            settings = TrainSettings(
                criterion=StepwiseCrossEntropy,
                max_epochs=self.max_epochs,
                batch_size=self.batch_size,
                lr=self.lr,
                device=device,
                verbose=2 if self.verbose else 0,
            )
            net = train_network(make_module, train_data, None, settings, seed=seed)
        except DivergenceError as exc:
            raise DivergenceError(
                f"{type(self).__name__}: training diverged ({exc}). Lower lr (now "
                f"{self.lr}); without softmax_feedback or decay the fed-back state can grow "
                "without bound: fewer steps or a smaller tau help."
            ) from None
        self.module_ = net.module_.eval()
        self.history_ = [float(loss) for loss in net.history[:, "train_loss"]]
        self.device_ = device
        return self

    # ------------------------------------------------------------------
    # Inference

    def _batches(self, X):
        for start in range(0, len(X), _PREDICT_BATCH):
            yield torch.tensor(X[start : start + _PREDICT_BATCH], device=self.device_)

    def _steps(self, n_steps):
        if n_steps is None:
            return 1 if not self.feedback else self.n_steps
        if not isinstance(n_steps, Integral) or isinstance(n_steps, bool) or n_steps < 1:
            raise ValueError(f"n_steps must be a positive int or None; got {n_steps!r}.")
        return 1 if not self.feedback else int(n_steps)

    @torch.no_grad()
    def _final_logits(self, X, n_steps):
        module, tol = self.module_, self.tol
        module.eval()
        total = self._steps(n_steps)
        logits, used = [], []
        for x in self._batches(X):
            h = module.init_state(x)
            active = torch.ones(len(x), dtype=torch.bool, device=x.device)
            n_used = torch.zeros(len(x), dtype=torch.long, device=x.device)
            for t in range(1, total + 1):
                delta = module.update(x, h, t)
                if tol is None:
                    h = h + delta
                    continue
                mask = active.view(-1, *([1] * (h.ndim - 1)))
                h = h + delta * mask
                n_used += active
                change = delta.abs().flatten(1).amax(dim=1)
                active &= change >= tol
                if not active.any():
                    break
            logits.append(module.logits(h).double().cpu().numpy())
            used.append(n_used.cpu().numpy() if tol is not None else None)
        if tol is not None:
            self.n_steps_used_ = np.concatenate(used)
        return np.concatenate(logits)

    def predict_proba(self, X, n_steps=None):
        """Class probabilities of every pixel after the last step.

        Parameters
        ----------
        X : array-like
            Images or signals of the kind and channels seen in fit.
        n_steps : int or None, default=None
            Steps to run; ``None`` means ``self.n_steps``.  May exceed the
            trained steps.  Ignored with ``feedback=False`` (one pass).

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes, H, W) or \
(n_samples, n_classes, L)
        """
        X = self._validate_X(X)
        return _softmax(self._final_logits(X, n_steps))

    def predict(self, X, n_steps=None):
        """Label masks: the most probable class of every pixel.

        Parameters
        ----------
        X : array-like
        n_steps : int or None, default=None
            As in `predict_proba`.

        Returns
        -------
        y : ndarray of shape (n_samples, H, W) or (n_samples, L)
        """
        X = self._validate_X(X)
        return self.classes_[self._final_logits(X, n_steps).argmax(axis=1)]

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
        module = self.module_
        module.eval()
        batches = list(self._batches(X))
        with torch.no_grad():
            states = [module.init_state(x) for x in batches]
        for t in range(1, total + 1):
            with torch.no_grad():
                states = [h + module.update(x, h, t) for x, h in zip(batches, states)]
                logits = np.concatenate([module.logits(h).double().cpu().numpy() for h in states])
            yield _softmax(logits)

    def score(self, X, y, n_steps=None):
        """Mean foreground Dice (F1) over samples; see Notes.

        Parameters
        ----------
        X : array-like
        y : array-like of shape (n_samples, H, W) or (n_samples, L)
            True labels, all seen in fit.
        n_steps : int or None, default=None

        Returns
        -------
        score : float
        """
        X_checked = self._validate_X(X)
        y = self._encode(self._check_y(y, X_checked.shape, X))
        pred = self._final_logits(X_checked, n_steps).argmax(axis=1)
        return float(foreground_dice(y, pred, len(self.classes_)).mean())

    def __getstate__(self):
        # pickle the network on the CPU, so that a model fitted on CUDA loads
        # on a machine without one
        state = super().__getstate__()
        module = state.get("module_")
        if module is not None and next(module.parameters()).device.type != "cpu":
            state = {**state, "module_": copy.deepcopy(module).cpu()}
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        device = getattr(self, "device_", "cpu")
        if "module_" not in state or device == "cpu":
            return
        if torch.device(device).type == "cuda" and not torch.cuda.is_available():
            warnings.warn(
                f"{type(self).__name__} was fitted on {device!r}, but PyTorch sees no CUDA "
                "device here: it will predict on the CPU.",
                UserWarning,
                stacklevel=2,
            )
            self.device_ = "cpu"
        else:
            self.module_.to(device)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        tags.input_tags.allow_nan = False
        tags.target_tags.required = True
        tags.target_tags.single_output = False
        tags.target_tags.multi_output = True
        return tags


def _softmax(logits):
    logits = logits - logits.max(axis=1, keepdims=True)
    expd = np.exp(logits)
    return expd / expd.sum(axis=1, keepdims=True)
