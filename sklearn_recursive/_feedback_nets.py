"""The networks of `FeedbackSegmenter`: a U-Net and the feedback loop around it.

The loop (the user guide, ``docs/feedback.md``) keeps a state ``h = [u, v]``, ``u`` the segmentation
logits and ``v`` extra feedback channels, and refines it step by step:

    h(0) = 0
    d(t) = F([x, softmax(v(t-1))])          F: the U-Net
    h(t) = h(t-1) + exp(-t / tau) * d(t)

`FeedbackUNet.steps` is that loop, written once; training, prediction (with
or without an early halt), staged prediction and the benchmark's state
measurements all iterate over it.  Images ``(n, C, H, W)`` use 2-D
convolutions, signals ``(n, C, L)`` 1-D ones; the U-Net normalises with
GroupNorm (BatchNorm's running statistics would mix the steps).
"""

import contextlib
import math
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ConvBlock", "FeedbackUNet", "Step", "StepwiseCrossEntropy", "UNet"]


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


class Step(NamedTuple):
    """One step of `FeedbackUNet.steps`.

    Attributes
    ----------
    t : int
        The step, ``1..n_steps``.
    state : Tensor of shape (n, n_classes + n_feedback, *spatial)
        ``h(t)``.
    logits : Tensor of shape (n, n_classes, *spatial)
        ``u(t)``, the first channels of the state (a view).
    n_used : Tensor of shape (n,) or None
        With ``tol``: the steps each sample has run so far (a halted sample
        stops counting); ``None`` without ``tol``.
    """

    t: int
    state: torch.Tensor
    logits: torch.Tensor
    n_used: torch.Tensor | None


class FeedbackUNet(nn.Module):
    """The feedback loop around a `UNet` (the user guide: ``docs/feedback.md``).

    The state ``h`` has ``n_classes + n_feedback`` channels: the logits ``u``
    first, then the feedback channels ``v``.  With ``feedback=False`` the U-Net
    sees ``x`` alone and runs once: the feed-forward baseline.

    `steps` runs the loop.  In training mode ``forward`` runs ``T`` steps,
    ``T`` fixed or drawn per batch (``train_steps``), and returns the logits of
    the steps that carry gradient: the last ``backprop_steps`` of them (all
    when ``None``).  In eval mode it returns the logits of every one of
    ``n_steps`` steps.  Output: ``(steps, n, n_classes, *spatial)``.
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

    def steps(self, x, n_steps, *, n_grad=None, tol=None):
        """Run the loop on ``x`` for ``n_steps`` steps; yield a `Step` after each.

        ``h(0) = 0`` and step ``t`` adds ``update(x, h, t)``.  With
        ``feedback=False`` there is one step whatever ``n_steps`` is.

        Parameters
        ----------
        x : Tensor of shape (n, in_channels, *spatial)
        n_steps : int
        n_grad : int or None, default=None
            How many of the last steps carry gradient.  ``None``: every step
            does (when the caller has gradient enabled).  With ``k``, steps
            ``1..n_steps-k`` run under ``torch.no_grad()`` and their state
            enters step ``n_steps-k+1`` as a constant.  The caller's gradient
            mode applies to the other steps, and to its own code between steps.
        tol : float or None, default=None
            Early halt: a sample stops once its update ``max |update|`` falls
            below ``tol``; its state then stays fixed (it still takes the
            step in which it fell below).  The loop ends when every sample has
            stopped, so it may yield fewer than ``n_steps`` steps.  ``n_used``
            of each `Step` counts the steps every sample ran.

        Yields
        ------
        step : Step
        """
        if not self.feedback:
            n_steps = 1
        first_grad = 1 if n_grad is None else n_steps - min(n_grad, n_steps) + 1
        h = self.init_state(x)
        n_used = active = None
        if tol is not None:
            active = torch.ones(len(x), dtype=torch.bool, device=x.device)
            n_used = torch.zeros(len(x), dtype=torch.long, device=x.device)
        for t in range(1, n_steps + 1):
            grad = contextlib.nullcontext() if t >= first_grad else torch.no_grad()
            with grad:
                delta = self.update(x, h, t)
                if tol is None:
                    h = h + delta
                else:
                    h = h + delta * active.view(-1, *([1] * (h.ndim - 1)))
                    n_used = n_used + active
                    active = active & (delta.abs().flatten(1).amax(dim=1) >= tol)
            yield Step(t, h, self.logits(h), n_used)
            if tol is not None and not active.any():
                return

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
            steps = self.steps(X, total, n_grad=n_grad)
            return torch.stack([s.logits for s in steps if s.t > total - n_grad])
        return torch.stack([s.logits for s in self.steps(X, n_steps or self.n_steps)])


class StepwiseCrossEntropy(nn.Module):
    """Cross-entropy summed over the steps of ``(steps, n, classes, ...)`` logits.

    ``y`` holds integer labels ``(n, *spatial)``.  With ``reduction="mean"``
    each step's loss is the mean over pixels and samples; with ``"none"`` the
    per-pixel losses summed over steps, ``(n, *spatial)`` (what a net's row
    weights are applied to, see ``FastNet.get_loss``).
    """

    def __init__(self, reduction="mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, step_logits, y):
        return sum(F.cross_entropy(logits, y, reduction=self.reduction) for logits in step_logits)
