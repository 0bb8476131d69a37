"""RecursiveReasoner: one weight-tied block iterated on a latent state, depth as a dial.

The DeepThinking recipe (Bansal et al. 2022; ``/work/shared/DESIGN.md`` section 6):
a projection ``P``, a recurrent block ``R`` with recall (the input ``x`` joins the
state at every step) and a head ``H``, all convolutions without normalisation:

    h(0) = P(x)
    h(t) = R([h(t-1), x])                    t = 1..T, R weight-tied
    logits(t) = H(h(t))

Training draws ``T`` per batch and mixes two cross-entropies, the **progressive
loss**: with ``n ~ U{0..T-1}`` steps run without gradient and then
``k ~ U{1..T-n}`` with gradient,

    loss = (1 - alpha) * CE(logits(T)) + alpha * CE(logits(n + k)).

The second term asks the block to improve whatever partial state it is given,
which keeps the state useful (and bounded) when it runs far past ``T`` at test
time, on larger instances than the training ones.

Training runs through skorch (`FastNet`, tensors sliced on the device): the
module's training ``forward`` draws the steps and returns the logits of each
loss term, and `ProgressiveLoss` weights them, so skorch's train step is used
as it is, with its callbacks (gradient-norm clipping, the divergence guard).

The TRM form (Tiny Recursive Models, Jolicoeur-Martineau 2025), `TinyRecursiveNet`,
keeps an answer state ``y`` and a latent ``z``; one shared network ``f`` does
both updates.  One step is one cycle:

    z = f(z + x_e + y)                       n_latent times, x_e = P(x)
    y = f(y + z)
    logits = H(y),  halt = min(K(y))         K: 1x1 conv; the min over positions

Training is deep supervision: each batch runs ``n_supervision`` segments of
``T`` cycles (the last ``backprop_steps`` with gradient), each with its own
loss ``CE(logits) + 0.5 * BCE(halt, exactly right)`` and optimizer step, the
state carried, detached, into the next segment; `DeepSupervisionNet` (a
`FastNet` whose ``train_step`` loops over the segments) runs it.
"""

import collections
import math
import warnings
from functools import partial
from numbers import Real

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight, check_is_fitted
from skorch.callbacks import GradientNormClipping, LRScheduler
from torch import nn

from ._feedback import PositionLabels, _describe, _finished_epochs, _train
from ._feedback_nets import _conv_class
from ._training import (
    DivergenceError,
    DivergenceGuard,
    FastNet,
    ModuleOnCPUPickle,
    SizeGroups,
    SliceIterator,
    TensorDataset,
    TrainSettings,
    fixed_chunks,
    resolve_device,
)
from ._utils import IntInterval, check_int, is_int, softmax

__all__ = [
    "DeepSupervisionLoss",
    "DeepSupervisionNet",
    "DeepThinkingNet",
    "ProgressiveLoss",
    "RecursiveReasoner",
    "TinyRecursiveNet",
]

# Prediction runs in chunks of at most this many samples and about this many
# input values; every chunk is padded to the same number of rows.
_PREDICT_BATCH = 64
_PREDICT_VALUES = 2**20


def _is_sample_list(X):
    """Whether X is a list (or tuple) of samples of several shapes: sizes to group."""
    if not isinstance(X, (list, tuple)) or len(X) < 2:
        return False
    try:
        return len({np.shape(x) for x in X}) > 1
    except ValueError:  # a ragged nested list inside one sample: the array path reports it
        return False


def _lr_factor(step, warmup, total, cosine):
    """The learning rate's factor at batch ``step`` (0-based) of ``total``.

    A linear rise to 1 over the first ``warmup`` batches, then 1, or with
    ``cosine`` a half cosine from 1 down towards 0 at the last batch.
    """
    if step < warmup:
        return (step + 1) / warmup
    if not cosine:
        return 1.0
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def _flip_batch(X, y, generator, transpose=False):
    """One random symmetry of a training batch, the same for inputs and labels.

    Each spatial axis is reversed with probability 1/2 and, with
    ``transpose``, the two axes of grids are swapped with probability 1/2
    (the eight symmetries of the square).  ``X`` is ``(n, C, *S)``, ``y``
    ``(n, *S)``.
    """
    dims = y.dim() - 1
    draws = torch.randint(2, (dims + transpose,), generator=generator).tolist()
    axes = [-1 - i for i in range(dims) if draws[i]]
    if axes:
        X, y = X.flip(axes), y.flip(axes)
    if transpose and draws[-1]:
        X, y = X.transpose(-1, -2).contiguous(), y.transpose(-1, -2).contiguous()
    return X, y


def _loss_weights(alpha):
    """The weights of the loss terms that ``alpha`` keeps: full unroll, progressive."""
    return [w for w in (1.0 - alpha, alpha) if w > 0]


class ResidualBlock(nn.Module):
    """Two 3-wide convolutions and a skip: ``relu(x + conv(relu(conv(x))))``; no bias."""

    def __init__(self, width, dim):
        super().__init__()
        conv = _conv_class(dim)
        self.conv1 = conv(width, width, 3, padding=1, bias=False)
        self.conv2 = conv(width, width, 3, padding=1, bias=False)

    def forward(self, x):
        return F.relu(x + self.conv2(F.relu(self.conv1(x))))


class ChannelRMSNorm(nn.Module):
    """Scale the channels of every position to a root mean square of 1; no parameters.

    TRM's post-norm (``rms_norm`` after every residual layer): it keeps the
    summed states of `TinyRecursiveNet` on one scale however many cycles run.
    """

    def __init__(self, eps=1e-5):
        super().__init__()
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + self.eps)


class _RecurrentNet(nn.Module):
    """The loops both networks share: staged steps, adaptive halting, drawn depths.

    A subclass defines ``init_state(x) -> (state, context)`` (``state`` a
    tuple of tensors, samples first; ``context`` what every step reads),
    ``advance(state, context) -> state`` (one step), ``answer(state)`` (the
    tensor ``head`` reads), the module ``head``, and for the learned halting
    rule ``halt_logit(answer)`` (one logit a sample).  It holds
    ``train_steps`` and the RNG ``step_rng``.
    """

    def steps(self, x, n_steps):
        """Yield the answer state after each step ``1..n_steps`` (the caller's gradient mode)."""
        state, context = self.init_state(x)
        for _ in range(n_steps):
            state = self.advance(state, context)
            yield self.answer(state)

    def _draw_total(self, default):
        """The steps ``T`` of one training batch: ``train_steps``, ``default`` when None."""
        total = default if self.train_steps is None else self.train_steps
        if isinstance(total, tuple):
            total = int(self.step_rng.randint(total[0], total[1] + 1))
        return total

    @torch.no_grad()
    def run_halting(self, x, n_steps, patience=None, tol=None, threshold=None):
        """Logits after ``n_steps`` steps, or earlier for the samples that halt.

        A sample halts after step ``t`` when every given rule holds: its
        predicted labels are those of the ``patience`` steps before (they
        have not changed for ``patience`` steps); the relative change of its
        answer state ``||h(t) - h(t-1)|| / ||h(t-1)||`` is at most ``tol``;
        the halting head's probability that its answer is right,
        ``sigmoid(halt_logit)``, is at least ``threshold`` (networks with a
        halting head only).  A halted sample keeps its logits and leaves the
        batch: only running samples are computed.

        Returns
        -------
        logits : Tensor of shape (n, n_classes, *spatial)
        n_used : Tensor of shape (n,), int64
            The steps each sample ran, ``1..n_steps``.
        """
        state, context = self.init_state(x)
        logits = self.head(self.answer(state))
        labels = logits.argmax(dim=1)
        stable = torch.zeros(len(x), dtype=torch.long, device=x.device)
        n_used = torch.zeros(len(x), dtype=torch.long, device=x.device)
        running = torch.arange(len(x), device=x.device)
        for t in range(1, n_steps + 1):
            old = tuple(part[running] for part in state)
            new = self.advance(old, context[running])
            answer = self.answer(new)
            out = self.head(answer)
            halt = torch.ones(len(running), dtype=torch.bool, device=x.device)
            if patience is not None:
                new_labels = out.argmax(dim=1)
                same = (new_labels == labels[running]).flatten(1).all(dim=1)
                if t == 1:  # the labels of the initial state are no prediction
                    same[:] = False
                stable[running] = torch.where(same, stable[running] + 1, 0)
                halt &= stable[running] >= patience
                labels[running] = new_labels
            if tol is not None:
                before = self.answer(old)
                change = (answer - before).flatten(1).norm(dim=1)
                halt &= change <= tol * before.flatten(1).norm(dim=1)
            if threshold is not None:
                halt &= torch.sigmoid(self.halt_logit(answer)) >= threshold
            for part, value in zip(state, new):
                part[running] = value
            logits[running], n_used[running] = out, t
            running = running[~halt]
            if not len(running):
                break
        return logits, n_used


def _head(conv, width, n_classes):
    """The head: ``conv(width -> width)``, ReLU, ``conv(-> width // 2)``, ReLU, ``conv(-> C)``."""
    half = max(width // 2, 1)
    return nn.Sequential(
        conv(width, width, 3, padding=1, bias=False),
        nn.ReLU(),
        conv(width, half, 3, padding=1, bias=False),
        nn.ReLU(),
        conv(half, n_classes, 3, padding=1, bias=False),
    )


class DeepThinkingNet(_RecurrentNet):
    """Projection, weight-tied recurrent block with recall, head (DeepThinking).

    Convolutions are 1-D for sequences (``dim=1``) and 2-D for grids
    (``dim=2``), 3 wide with zero padding, without bias or normalisation, so
    the network runs on any size.

    * projection: ``conv(in -> width)``, ReLU; ``h(0) = P(x)``;
    * block: with ``recall``, ``conv(width + in -> width)`` on ``cat(h, x)``
      and ReLU, then ``n_blocks`` `ResidualBlock`; without, the residual
      blocks alone (``x`` enters through ``h(0)`` only: an ablation);
    * head: ``conv(width -> width)``, ReLU, ``conv(width -> width // 2)``,
      ReLU, ``conv(width // 2 -> n_classes)``.

    In training mode ``forward`` draws the steps of the batch and returns the
    logits of the loss terms ``alpha`` keeps, stacked: the full unroll, then
    the progressive term (`ProgressiveLoss` weights them).  Which steps carry
    gradient: the draws are ``T`` (``train_steps``), ``n ~ U{0..T-1}`` and
    ``k ~ U{1..T-n}``.  The full unroll runs ``T`` steps, the progressive term
    ``n + k``; in each, only the last ``backprop_steps`` steps (all when
    ``None``) carry gradient, and of the progressive term at most the last
    ``k``.  The steps before run under ``torch.no_grad()`` and their state
    enters as a constant; the projection carries gradient only when no step
    before it is frozen.  In eval mode ``forward(X, n_steps)`` returns the
    logits after ``n_steps`` steps.
    """

    def __init__(
        self,
        in_channels,
        n_classes,
        *,
        dim=1,
        width=64,
        n_blocks=2,
        recall=True,
        alpha=1.0,
        n_steps=20,
        train_steps=None,
        backprop_steps=None,
        seed=None,
    ):
        super().__init__()
        conv = _conv_class(dim)
        self.recall = recall
        self.alpha = alpha
        self.n_steps = n_steps
        self.train_steps = train_steps
        self.backprop_steps = backprop_steps
        self.projection = nn.Sequential(
            conv(in_channels, width, 3, padding=1, bias=False), nn.ReLU()
        )
        layers = []
        if recall:
            layers += [conv(width + in_channels, width, 3, padding=1, bias=False), nn.ReLU()]
        layers += [ResidualBlock(width, dim) for _ in range(n_blocks)]
        self.block = nn.Sequential(*layers)
        self.head = _head(conv, width, n_classes)
        self.step_rng = np.random.RandomState(seed)

    def step(self, h, x):
        """``h(t)`` from ``h(t-1)``: the recurrent block, on ``cat(h, x)`` with recall."""
        return self.block(torch.cat([h, x], dim=1) if self.recall else h)

    def init_state(self, x):
        """``((h(0),), x)``: the state is ``h`` alone, every step reads ``x``."""
        return (self.projection(x),), x

    def advance(self, state, x):
        return (self.step(state[0], x),)

    @staticmethod
    def answer(state):
        return state[0]

    def unroll(self, x, n_steps, n_frozen=0):
        """The state after ``n_steps`` steps; the first ``n_frozen`` (and P) without gradient."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and n_frozen == 0):
            h = self.projection(x)
        with torch.no_grad():
            for _ in range(n_frozen):
                h = self.step(h, x)
        for _ in range(n_steps - n_frozen):
            h = self.step(h, x)
        return h

    def draw_steps(self):
        """``(T, n, k)`` of one training batch: see the class docstring."""
        total = self._draw_total(self.n_steps)
        n = int(self.step_rng.randint(0, total))
        k = int(self.step_rng.randint(1, total - n + 1))
        return total, n, k

    def _grad_steps(self, n_steps):
        return n_steps if self.backprop_steps is None else min(self.backprop_steps, n_steps)

    def forward(self, X, n_steps=None):
        if not self.training:
            return self.head(self.unroll(X, n_steps or self.n_steps))
        total, n, k = self.draw_steps()
        terms = []
        if self.alpha < 1:  # the full unroll
            terms.append(self.unroll(X, total, total - self._grad_steps(total)))
        if self.alpha > 0:  # the progressive term
            terms.append(self.unroll(X, n + k, n + k - self._grad_steps(k)))
        return torch.stack([self.head(h) for h in terms])


class ProgressiveLoss(nn.Module):
    """``(1 - alpha) * CE(full unroll) + alpha * CE(progressive)`` of stacked logits.

    The input holds the terms `DeepThinkingNet` computes for this ``alpha``
    (one when ``alpha`` is 0 or 1, both otherwise); ``y`` holds integer
    labels ``(n, *spatial)``; each cross-entropy is the mean over positions
    and samples.
    """

    def __init__(self, alpha=1.0):
        super().__init__()
        self.alpha = alpha

    def forward(self, terms, y):
        weights = _loss_weights(self.alpha)
        return sum(w * F.cross_entropy(logits, y) for w, logits in zip(weights, terms))


class TinyRecursiveNet(_RecurrentNet):
    """An answer state ``y`` and a latent ``z`` refined by one shared network (TRM).

    The Tiny Recursive Model (Jolicoeur-Martineau 2025) with the convolutions
    of `DeepThinkingNet` (1-D for ``dim=1``, 2-D for ``dim=2``, 3 wide, zero
    padding, no bias), so it runs on any size:

    * embedding: ``x_e = P(x)``, ``conv(in -> width)`` and ReLU (the
      projection of `DeepThinkingNet`);
    * initial states ``y(0)``, ``z(0)``: learned vectors of ``width``
      channels (zeros at first), the same at every position;
    * ``f``: ``n_blocks`` times a `ResidualBlock` followed by a
      `ChannelRMSNorm` (TRM's post-norm), shared by both updates, which sum
      their inputs;
    * one step, a **cycle**: ``z = f(z + x_e + y)`` ``n_latent`` times, then
      ``y = f(y + z)``;
    * head: that of `DeepThinkingNet`, on ``y``; halting head: a 1x1
      ``conv(width -> 1)`` on ``y`` (weight 0 and bias -5 at first, as TRM's),
      one logit a position for "this position is right", and its **minimum**
      over positions, one logit a sample for "the answer is right": a sample
      is right only where every position is, and one wrong cell must be able
      to veto the halt (a mean over positions cannot tell a grid with one
      wrong cell from a solved one: measured on 4x4 Sudoku, it deemed every
      puzzle right after the first segment).

    The input enters every latent update: recall is intrinsic, and
    ``recall=False`` is refused.  ``alpha`` is accepted (the constructor of
    `DeepThinkingNet`) and not used.

    Training goes through `supervise` (deep supervision, run by
    `DeepSupervisionNet`).  ``forward(X, n_steps)`` returns the logits after
    ``n_steps`` cycles (``self.n_steps`` when None), in either mode.
    """

    def __init__(
        self,
        in_channels,
        n_classes,
        *,
        dim=1,
        width=64,
        n_blocks=2,
        recall=True,
        alpha=1.0,
        n_steps=20,
        train_steps=None,
        backprop_steps=None,
        seed=None,
        n_latent=6,
        n_supervision=8,
    ):
        super().__init__()
        if not recall:
            raise ValueError(
                "TinyRecursiveNet re-injects the input at every latent update: recall is "
                "part of the TRM form, and recall=False is only for the DeepThinking form."
            )
        conv = _conv_class(dim)
        self.n_steps = n_steps
        self.train_steps = train_steps
        self.backprop_steps = backprop_steps
        self.n_latent = n_latent
        self.n_supervision = n_supervision
        self.projection = nn.Sequential(
            conv(in_channels, width, 3, padding=1, bias=False), nn.ReLU()
        )
        shape = (1, width) + (1,) * dim
        self.y_init = nn.Parameter(torch.zeros(shape))
        self.z_init = nn.Parameter(torch.zeros(shape))
        self.net = nn.Sequential(
            *[m for _ in range(n_blocks) for m in (ResidualBlock(width, dim), ChannelRMSNorm())]
        )
        self.head = _head(conv, width, n_classes)
        self.halt = conv(width, 1, 1)
        nn.init.zeros_(self.halt.weight)
        nn.init.constant_(self.halt.bias, -5.0)
        self.step_rng = np.random.RandomState(seed)

    def initial(self, x_e):
        """``(y(0), z(0))`` for the embedded batch ``x_e`` (fresh tensors)."""
        return tuple(v.expand_as(x_e).contiguous() for v in (self.y_init, self.z_init))

    def init_state(self, x):
        """``((y(0), z(0)), x_e)``: every cycle reads the embedded input."""
        x_e = self.projection(x)
        return self.initial(x_e), x_e

    def advance(self, state, x_e):
        """One cycle: ``n_latent`` latent updates, then the answer update."""
        y, z = state
        for _ in range(self.n_latent):
            z = self.net(z + x_e + y)
        return self.net(y + z), z

    @staticmethod
    def answer(state):
        return state[0]

    def halt_logit(self, y):
        """One logit a sample: does the answer read from ``y`` hold no error?"""
        return self.halt(y).flatten(1).amin(dim=1)

    def forward(self, X, n_steps=None):
        (y,) = collections.deque(self.steps(X, n_steps or self.n_steps), maxlen=1)
        return self.head(y)

    def segment_steps(self):
        """``(T, g)`` of one training batch: cycles a segment, the last ``g`` with gradient.

        ``T`` is ``train_steps`` (drawn from ``(low, high)`` when a tuple), or
        with ``None`` ``max(1, ceil(n_steps / n_supervision))``, so that the
        last segment ends about ``n_steps`` cycles deep; ``g`` is
        ``backprop_steps`` (1 when None: the full last cycle), at most ``T``.
        """
        total = self._draw_total(max(1, -(-self.n_steps // self.n_supervision)))
        return total, min(total, self.backprop_steps or 1)

    def supervise(self, x):
        """Deep supervision of one batch: yield each segment's outputs.

        Each of the ``n_supervision`` segments embeds ``x`` afresh (the
        weights changed since the last one), runs ``T - g`` cycles without
        gradient and ``g`` with it from the state the last segment left,
        detached (`segment_steps` draws ``T`` and ``g``), and yields ``(rows,
        logits, halt_logit)``: the batch rows it ran and their outputs.  The
        caller computes the loss and steps the optimizer before resuming.  A
        sample whose halting logit is above 0 (the head deems its answer
        right) is not supervised again in this batch (TRM's early exit);
        when none is left the batch ends early.
        """
        total, grad = self.segment_steps()
        rows = torch.arange(len(x), device=x.device)
        state = None
        for _ in range(self.n_supervision):
            x_e = self.projection(x[rows])
            if state is None:
                state = self.initial(x_e)
            with torch.no_grad():
                for _ in range(total - grad):
                    state = self.advance(state, x_e)
            for _ in range(grad):
                state = self.advance(state, x_e)
            y = self.answer(state)
            halt = self.halt_logit(y)
            yield rows, self.head(y), halt
            keep = halt.detach() <= 0
            rows = rows[keep]
            if not len(rows):
                return
            state = tuple(part.detach()[keep] for part in state)


def exactly_right(logits, y):
    """Per sample: is the argmax of ``logits`` ``(n, C, *spatial)`` right at every position?"""
    return (logits.argmax(dim=1) == y).flatten(1).all(dim=1)


class DeepSupervisionLoss(nn.Module):
    """``CE(logits, y) + halt_weight * BCE(halt_logit, exactly right)`` of one segment.

    The input is ``(logits, halt_logit)`` from `TinyRecursiveNet.supervise`:
    logits ``(n, n_classes, *spatial)`` and one halting logit a sample; ``y``
    holds integer labels ``(n, *spatial)``.  The halting target of a sample is
    1 when its predicted labels are all right (`exactly_right`, no gradient),
    0 otherwise.  Both terms are means over the samples (the cross-entropy
    also over the positions).
    """

    def __init__(self, halt_weight=0.5):
        super().__init__()
        self.halt_weight = halt_weight

    def forward(self, output, y):
        logits, halt = output
        right = exactly_right(logits, y).to(halt.dtype)
        return F.cross_entropy(logits, y) + self.halt_weight * (
            F.binary_cross_entropy_with_logits(halt, right)
        )


class DeepSupervisionNet(FastNet):
    """`FastNet` whose train step is deep supervision: one optimizer step a segment.

    For each batch the module's ``supervise`` yields the segments; each gets
    its own loss (the criterion, `DeepSupervisionLoss`), backward pass,
    ``on_grad_computed`` notice (gradient-norm clipping) and optimizer step.
    The batch's ``loss`` (what the history records as ``train_loss``, and
    the divergence guard watches) is the mean over its segments; ``y_pred``
    holds the last segment's logits, for the rows it ran.

    The divergence guard compares each epoch's loss with the first batch's,
    which here already holds segments trained on: a first batch that blows
    up and collapses would set a reference it never exceeds.  So every
    batch's segment losses are also checked against the very first segment's
    (before any update), with the guard's factor ``max_growth``.
    """

    max_growth = DivergenceGuard().max_growth

    def train_step(self, batch, **fit_params):
        Xb, yb = batch
        self._set_training(True)
        losses = []
        for rows, logits, halt in self.module_.supervise(Xb):
            self._zero_grad_optimizer()
            loss = self.get_loss((logits, halt), yb[rows], X=Xb, training=True)
            loss.backward()
            self._apply_gradients(batch)
            losses.append(loss.detach())
        losses = torch.stack(losses)
        self._check_growth(losses)
        return {"loss": losses.mean(), "y_pred": logits}

    def _check_growth(self, losses):
        """Raise `DivergenceError` for a segment loss not finite or grown too much."""
        values = losses.tolist()
        # the very first segment's loss of the fit, before any update: the reference
        first = self.__dict__.setdefault("_first_segment_loss", values[0])
        for value in values:
            if not np.isfinite(value):
                raise DivergenceError(f"a supervision segment's loss became {value}")
        if max(values) > self.max_growth * max(first, 1e-12):
            raise DivergenceError(
                f"a supervision segment's loss grew from {first:.3g} to {max(values):.3g}"
            )


class RecursiveReasoner(PositionLabels, ModuleOnCPUPickle, BaseEstimator):
    """Solve reasoning tasks by iterating one weight-tied block: depth as a dial.

    A `DeepThinkingNet` (DeepThinking, Bansal et al. 2022) projects the input
    to a state ``h(0) = P(x)``, updates it with one weight-tied block ``h(t) =
    R([h(t-1), x])`` (the input is re-injected at every step: "recall") and
    reads labels with a head.  Trained with a random number of steps and the
    progressive loss (see ``alpha``), it can run for more steps at prediction
    and solve larger instances than it was trained on: prefix sums learned on
    16 bits are solved on 64, 128 or 256 bits with proportionally more steps.

    With ``form="trm"`` the network is a `TinyRecursiveNet` (Tiny Recursive
    Models, Jolicoeur-Martineau 2025): an answer state ``y`` and a latent
    ``z``, one shared network refining ``z`` ``n_latent`` times from ``(z, x,
    y)`` and then ``y`` from ``(y, z)``; one such cycle is a step.  It trains
    by deep supervision: each batch runs ``n_supervision`` segments of
    cycles, each with its own loss and optimizer step, the state carried
    (detached) from one segment to the next, and a halting head learns
    whether the current answer is already exactly right, which
    ``halt_threshold`` can use to stop a sample at prediction.

    The data are one label per position: sequences ``X`` of shape
    ``(n, C, L)`` or ``(n, L)`` with labels ``y`` of shape ``(n, L)``, or
    grids ``X`` of shape ``(n, C, H, W)`` or ``(n, H, W)`` with labels
    ``(n, H, W)``; the labels' shape tells which (as for
    `FeedbackSegmenter`).  The network is fully convolutional: prediction
    accepts any length or grid size, with the channels seen in fit.

    Samples of several sizes go in a list (or tuple), one array per sample
    (``(C, L)`` or ``(L,)``; ``(C, H, W)`` or ``(H, W)``), with a list of their
    label arrays, as aeon takes unequal-length collections: ``fit`` trains on
    batches of one size each, in a random order of sizes, and ``predict``,
    ``predict_proba`` and ``staged_predict_proba`` return lists, ``score``
    scores every sample (unequal-length sequences, grids of several sizes).
    A list whose samples all share one shape is read as one array.

    Parameters
    ----------
    n_steps : int, default=20
        Steps of the loop at prediction (with ``form="trm"``: cycles), and
        the depth trained around (``train_steps="auto"``) or to
        (``train_steps=None``).
        ``predict(X, n_steps=...)`` overrides it, with any number of steps.
    form : {"deepthinking", "trm"}, default="deepthinking"
        The network and its training: ``"deepthinking"`` a
        `DeepThinkingNet` with the progressive loss (``alpha``),
        ``"trm"`` a `TinyRecursiveNet` with deep supervision
        (``n_latent``, ``n_supervision``, ``halt_threshold``).  On 4x4 Sudoku at a CPU
        budget the DeepThinking form solved the most puzzles, and the TRM
        form learned only with ``n_supervision=1`` (``docs/reasoner.md``).
    train_steps : "auto", int, tuple (low, high) or None, default="auto"
        DeepThinking: the most steps ``T`` of a training batch, ``None``
        meaning ``n_steps``.  TRM: the cycles ``T`` of each supervision
        segment, ``None`` meaning ``max(1, ceil(n_steps / n_supervision))``
        (the last segment then ends about ``n_steps`` cycles deep).  An int
        is a fixed ``T``, a tuple a ``T`` drawn uniformly from ``low..high``
        (inclusive) for each batch.  ``"auto"``: DeepThinking draws ``T``
        from ``(n_steps // 2, n_steps + n_steps // 2)`` for each batch
        (on prefix sums, 4 seeds: no overthinking on any, against two of
        four with a fixed ``T``; ``docs/reasoner.md``); TRM as ``None``.
    backprop_steps : int or None, default=None
        Truncated back-propagation.  DeepThinking: how many of the last steps
        of each loss term carry gradient, ``None`` all of them (see
        `DeepThinkingNet` for which steps those are).  TRM: how many of the
        last cycles of each segment carry gradient, ``None`` meaning 1 (TRM's
        choice: the full last cycle, its ``n_latent + 1`` updates).
    alpha : float in [0, 1], default=1.0
        DeepThinking only (not used by TRM).  Weight of the progressive term
        of the loss: ``loss = (1 - alpha) * CE(logits after T steps) + alpha
        * CE(logits after n + k steps)``, where ``n ~ U{0..T-1}`` steps run
        without gradient and then ``k ~ U{1..T-n}`` with it.  ``0`` is plain
        back-propagation through ``T`` steps; ``1`` (the measured default)
        the progressive term alone.
    width : int, default=128
        Channels of the state (with TRM: of ``y``, ``z`` and the embedding).
        With the default optimiser (a warmup and a cosine decay), width 128
        extrapolated prefix sums to 16x the training length on every seed
        tried and width 64 on two of four (`docs/reasoner.md`); width 64
        costs about 0.43x the fit time on a CPU.
    n_blocks : int, default=2
        Residual blocks (two 3-wide convolutions each) in the recurrent block
        (with TRM: in the shared network ``f``).
    recall : bool, default=True
        DeepThinking: concatenate the input to the state at every step;
        ``False`` (an ablation) lets the input in through ``h(0)`` only.
        TRM re-injects the input at every latent update and refuses
        ``False``.
    n_latent : int, default=6
        TRM only: latent updates ``z = f(z + x_e + y)`` per cycle (TRM's
        ``n``).
    n_supervision : int, default=8
        TRM only: deep-supervision segments per training batch, each with
        its own loss and optimizer step (TRM's ``N_sup``, 16 there; lower
        here for CPUs).  A sample whose halting head deems its answer right
        (logit > 0) leaves the remaining segments of its batch.
    halt_threshold : float in (0, 1) or None, default=None
        TRM only: adaptive halting at prediction on the learned rule: a
        sample stops once the halting head's probability that its answer is
        already exactly right reaches ``halt_threshold``.  ``None``: off.
        Set with ``form="deepthinking"``, fit and prediction raise a
        ValueError.
    halt_patience : int or None, default=None
        Adaptive halting at prediction: a sample stops once its predicted
        labels have not changed for ``halt_patience`` steps.
    halt_tol : float or None, default=None
        Adaptive halting at prediction: a sample stops once the relative
        change of its state, ``||h(t) - h(t-1)|| / ||h(t-1)||``, is at most
        ``halt_tol`` (with TRM, ``h`` is the answer state ``y``).  A sample
        stops when every rule given (``halt_patience``, ``halt_tol``,
        ``halt_threshold``) holds; with none, every sample runs
        ``n_steps``.  `predict(X, return_steps=True) <predict>` returns the
        steps each sample ran.  Not used by `staged_predict_proba`.
    max_epochs : int, default=30
        Training epochs.  The defaults were measured on 4000 training
        samples, 1200 batches; on 2000 prefix-sum strings two seeds of two
        had not learned after 30 epochs, where ``lr_schedule="constant",
        warmup_epochs=0`` learned on both (`docs/reasoner.md`, "Less data").
    batch_size : int, default=100
        Samples per batch.
    lr : float, default=1e-3
        Adam's learning rate.
    weight_decay : float, default=0.0
        Adam's (L2) weight decay.
    clip_grad_norm : float or None, default=1.0
        Clip the gradient's norm to this value before every update (skorch's
        `GradientNormClipping`); ``None``: no clipping.
    warmup_epochs : int or "auto", default="auto"
        Learning-rate warmup: the rate rises linearly from ``lr / w`` to
        ``lr`` over the first ``warmup_epochs`` epochs' ``w`` batches (a
        `~torch.optim.lr_scheduler.LambdaLR` stepped every batch by skorch's
        `LRScheduler`), as DeepThinking trains its maze networks.
        ``"auto"``: a tenth of the training, ``max_epochs // 10`` epochs (3
        of the default 30); ``0``: ``lr`` from the first batch.
    lr_schedule : {"cosine", "constant"}, default="cosine"
        The rate after the warmup: a half cosine from ``lr`` down towards 0
        at the last batch (stepped every batch), or ``lr`` to the end.
        Until 2026-12-04 the defaults were ``width=64, warmup_epochs=0,
        lr_schedule="constant"``; pass them to train as then.  A narrow
        network on a short budget (width 32, 15-60 epochs on prefix sums)
        learned less often with the decay than at a constant rate: it found
        the algorithm late, after the rate had fallen.
    augment : {None, "flips", "dihedral"}, default=None
        Random symmetries of the training batches, one drawn per batch for
        its inputs and labels together: ``"flips"`` reverses each spatial
        axis with probability 1/2 (sequences: the whole sequence), and
        ``"dihedral"`` (grids only) also swaps the two axes, the eight
        symmetries of the square.  Use it only where a symmetry of the input
        maps its labels the same way: a maze's shortest path does, running
        parity does not (it reads left to right), and Sudoku with boxes of
        2x3 does not survive a swap of the axes.
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
        The labels seen in ``y``, sorted.
    n_features_in_ : int
        Channels of the input.
    n_spatial_dims_ : int
        1 for sequences, 2 for grids.
    module_ : DeepThinkingNet or TinyRecursiveNet
        The trained network.
    history_ : list of float
        Training loss of every finished epoch.
    interrupted_ : bool
        True when a ``KeyboardInterrupt`` ended fit after at least one epoch;
        the estimator then holds the last finished epoch's weights.
    device_ : str
        The device the network was trained on.

    See Also
    --------
    sklearn_recursive.datasets.make_prefix_sums : running parity of bit strings.
    sklearn_recursive.datasets.make_mazes : mazes and their shortest paths.
    sklearn_recursive.datasets.make_sudoku : small Sudoku puzzles, TRM's task.
    FeedbackSegmenter : a feedback U-Net whose updates decay over the steps.

    Notes
    -----
    `score` is the exact-match rate: the fraction of samples whose every
    position is right, the metric of the field.  ``score(X, y,
    per_position=True)`` is the fraction of positions right instead.

    A state that stops being finite stops training, and prediction, with a
    `DivergenceError` that says what to change; it never yields a model that
    predicts from NaN.

    Prediction runs in chunks of equal shape (the last one padded with
    zeros), so a sample's prediction does not depend on which other samples
    are predicted with it (halting aside, which computes running samples
    only).

    Examples
    --------
    >>> from sklearn_recursive import RecursiveReasoner
    >>> from sklearn_recursive.datasets import make_prefix_sums
    >>> X, y = make_prefix_sums(64, n_bits=8, random_state=0)
    >>> model = RecursiveReasoner(n_steps=4, width=8, max_epochs=1, device="cpu",
    ...                           random_state=0).fit(X, y)
    >>> model.predict_proba(X[:2]).shape
    (2, 2, 8)
    >>> X_long, _ = make_prefix_sums(2, n_bits=32, random_state=1)
    >>> model.predict(X_long, n_steps=16).shape
    (2, 32)
    """

    # the wording of y errors (`PositionLabels`)
    _y_expected = "labels (n_samples, L) or (n_samples, H, W)"
    _y_kinds = "labels of shape (n_samples, L) for sequences or (n_samples, H, W) for grids"

    # the network fit builds for form="deepthinking": a subclass may swap in another
    # of the same constructor and contract (the reasoning benchmark's unshared
    # baseline does); form="trm" builds a TinyRecursiveNet
    _network_class = DeepThinkingNet

    _parameter_constraints: dict = {
        "n_steps": [IntInterval(1, None, closed="left")],
        "form": [StrOptions({"deepthinking", "trm"})],
        "train_steps": [IntInterval(1, None, closed="left"), tuple, StrOptions({"auto"}), None],
        "backprop_steps": [IntInterval(1, None, closed="left"), None],
        "alpha": [Interval(Real, 0, 1, closed="both")],
        "width": [IntInterval(1, None, closed="left")],
        "n_blocks": [IntInterval(1, None, closed="left")],
        "recall": ["boolean"],
        "n_latent": [IntInterval(1, None, closed="left")],
        "n_supervision": [IntInterval(1, None, closed="left")],
        "halt_threshold": [Interval(Real, 0, 1, closed="neither"), None],
        "halt_patience": [IntInterval(1, None, closed="left"), None],
        "halt_tol": [Interval(Real, 0, None, closed="neither"), None],
        "max_epochs": [IntInterval(1, None, closed="left")],
        "batch_size": [IntInterval(1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "clip_grad_norm": [Interval(Real, 0, None, closed="neither"), None],
        "warmup_epochs": [IntInterval(0, None, closed="left"), StrOptions({"auto"})],
        "lr_schedule": [StrOptions({"constant", "cosine"})],
        "augment": [StrOptions({"flips", "dihedral"}), None],
        "device": [str],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        n_steps=20,
        *,
        form="deepthinking",
        train_steps="auto",
        backprop_steps=None,
        alpha=1.0,
        width=128,
        n_blocks=2,
        recall=True,
        n_latent=6,
        n_supervision=8,
        halt_threshold=None,
        halt_patience=None,
        halt_tol=None,
        max_epochs=30,
        batch_size=100,
        lr=1e-3,
        weight_decay=0.0,
        clip_grad_norm=1.0,
        warmup_epochs="auto",
        lr_schedule="cosine",
        augment=None,
        device="auto",
        random_state=None,
        verbose=0,
    ):
        self.n_steps = n_steps
        self.form = form
        self.train_steps = train_steps
        self.backprop_steps = backprop_steps
        self.alpha = alpha
        self.width = width
        self.n_blocks = n_blocks
        self.recall = recall
        self.n_latent = n_latent
        self.n_supervision = n_supervision
        self.halt_threshold = halt_threshold
        self.halt_patience = halt_patience
        self.halt_tol = halt_tol
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.clip_grad_norm = clip_grad_norm
        self.warmup_epochs = warmup_epochs
        self.lr_schedule = lr_schedule
        self.augment = augment
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------
    # Validation

    def _check_train_steps(self):
        """``train_steps`` as the network takes it: None, an int or a ``(low, high)`` tuple."""
        steps = self.train_steps
        if isinstance(steps, str):  # "auto": T drawn around n_steps (DeepThinking), TRM's own
            if self.form == "trm":
                return None
            return (max(1, self.n_steps // 2), self.n_steps + self.n_steps // 2)
        if isinstance(steps, tuple):
            if not (len(steps) == 2 and all(map(is_int, steps)) and 1 <= steps[0] <= steps[1]):
                raise ValueError(
                    "train_steps must be 'auto', None, a positive int, or a tuple (low, high) of "
                    f"ints with 1 <= low <= high; got {steps!r}."
                )
            steps = (int(steps[0]), int(steps[1]))
        return steps

    def _check_halt_threshold(self, trm):
        """``halt_threshold`` reads TRM's halting head: refused unless ``trm``."""
        if self.halt_threshold is not None and not trm:
            raise ValueError(
                f"halt_threshold={self.halt_threshold!r} needs form='trm' (the halting head "
                "it reads is TRM's); with form='deepthinking' halt with halt_patience or "
                "halt_tol, or set halt_threshold=None."
            )

    @staticmethod
    def _check_size(X, name="X"):
        if min(X.shape[2:]) < 1:
            raise ValueError(
                f"{name} has spatial shape {X.shape[2:]}, too small for the network: every "
                "side needs at least 1 position."
            )

    def _steps(self, n_steps):
        return self.n_steps if n_steps is None else check_int("n_steps", n_steps, 1)

    # ------------------------------------------------------------------
    # Samples of several sizes

    def _group_samples(self, X, n_spatial):
        """``[(rows, X_g)]``: a list of samples as one checked array per shape."""
        kind = ("sequences (C, L) or (L,)", "grids (C, H, W) or (H, W)")[n_spatial - 1]
        rows = {}
        for i, x in enumerate(X):
            shape = np.shape(x)
            if len(shape) not in (n_spatial, n_spatial + 1):
                raise ValueError(
                    f"X is a list of samples of different sizes, each one of the {kind}; "
                    f"got X[{i}] of shape {shape}."
                )
            rows.setdefault(shape, []).append(i)
        groups = []
        for index in rows.values():
            stacked = np.stack([np.asarray(X[i]) for i in index])
            groups.append((np.asarray(index), self._check_X(stacked, n_spatial, name="X")))
        channels = sorted({Xg.shape[1] for _, Xg in groups})
        if len(channels) > 1:
            raise ValueError(
                "X's samples must all have the same number of channels; got samples with "
                f"{channels} channels."
            )
        return groups

    @staticmethod
    def _check_label_list(y, n_samples):
        """y of a list X of ``n_samples`` samples: a list of as many label arrays."""
        if not isinstance(y, (list, tuple)) or len(y) != n_samples:
            got = f"a list of {len(y)}" if isinstance(y, (list, tuple)) else _describe(y)
            raise ValueError(
                f"X is a list of {n_samples} samples of different sizes, so y must be a list "
                f"of their {n_samples} label arrays, one per sample; got {got}."
            )

    def _group_labels(self, y, groups, n_samples):
        """The labels of each group of `_group_samples`, checked against its samples."""
        self._check_label_list(y, n_samples)
        labels = []
        for index, Xg in groups:
            for i in index:
                if np.shape(y[i]) != Xg.shape[2:]:
                    raise ValueError(
                        f"y[{i}] must hold one label per position of X[{i}], of shape "
                        f"{Xg.shape[2:]}; got shape {np.shape(y[i])}."
                    )
            labels.append(self._check_y(np.stack([np.asarray(y[i]) for i in index]), Xg.shape, Xg))
        return labels

    def _validate_fit_groups(self, X, y):
        """``([(rows, X_g, y_g)], n_spatial)`` of lists X and y of several sizes."""
        self._check_label_list(y, len(X))
        ndims = sorted({np.ndim(v) for v in y})
        if ndims not in ([1], [2]):
            raise ValueError(
                "y must be a list of label arrays, all sequences (L,) or all grids (H, W); "
                f"got label arrays of {ndims} dimensions."
            )
        n_spatial = ndims[0]
        groups = self._group_samples(X, n_spatial)
        labels = self._group_labels(y, groups, len(X))
        for _, Xg in groups:
            self._check_size(Xg)
        return [(index, Xg, yg) for (index, Xg), yg in zip(groups, labels)], n_spatial

    def _validate_groups(self, X):
        """`_group_samples` at prediction: each group checked as `_validate_X` checks X."""
        check_is_fitted(self)
        return [(index, self._validate_X(Xg)) for index, Xg in self._group_samples(
            X, self.n_spatial_dims_)]

    def _by_size(self, X, method, **kwargs):
        """``method(X_g, **kwargs)`` on each size of a list X, back in X's order.

        A per-sample result comes back as a list of arrays; the steps of
        ``return_steps=True`` as one array.
        """
        results = None
        for index, Xg in self._validate_groups(X):
            out = method(Xg, **kwargs)
            out = out if isinstance(out, tuple) else (out,)
            if results is None:
                results = [[None] * len(X) for _ in out]
            for result, part in zip(results, out):
                for i, row in zip(index, part):
                    result[i] = row
        first, *rest = results
        return (first, *map(np.asarray, rest)) if rest else first

    # ------------------------------------------------------------------
    # Fitting

    def _warmup_epochs(self):
        """``warmup_epochs`` as a number of epochs (``"auto"``: a tenth of ``max_epochs``)."""
        if self.warmup_epochs == "auto":
            return self.max_epochs // 10
        return self.warmup_epochs

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Train the network on inputs and their per-position labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, C, L), (n_samples, L), \
(n_samples, C, H, W) or (n_samples, H, W)
            Sequences or grids; the shape of ``y`` tells which.  Or a list of
            samples of several sizes, one ``(C, L)`` / ``(L,)`` or
            ``(C, H, W)`` / ``(H, W)`` array each: every batch then holds
            samples of one size.
        y : array-like of shape (n_samples, L) or (n_samples, H, W)
            Non-negative integer labels, one per position; at least 2 classes.
            For a list X, a list of one label array per sample.

        Returns
        -------
        self : RecursiveReasoner
        """
        train_steps = self._check_train_steps()
        trm = self.form == "trm"
        self._check_halt_threshold(trm)
        if trm and not self.recall:
            raise ValueError(
                "recall=False is an ablation of form='deepthinking': form='trm' re-injects "
                "the input at every latent update; set recall=True."
            )
        if _is_sample_list(X):
            groups, n_spatial = self._validate_fit_groups(X, y)
            classes = np.unique(np.concatenate([yg.ravel() for _, _, yg in groups]))
            n_channels = groups[0][1].shape[1]
        else:
            X, y, n_spatial = self._validate_fit_data(X, y)
            groups = [(None, X, y)]
            classes = np.unique(y)
            n_channels = X.shape[1]
        if len(classes) < 2:
            raise ValueError(f"y must hold at least 2 classes; got only label {classes[0]}.")
        device = resolve_device(self.device)
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

        network = self._network_class
        if trm:
            network = partial(
                TinyRecursiveNet, n_latent=self.n_latent, n_supervision=self.n_supervision
            )

        def make_module():
            return network(
                n_channels,
                len(classes),
                dim=n_spatial,
                width=self.width,
                n_blocks=self.n_blocks,
                recall=self.recall,
                alpha=self.alpha,
                n_steps=self.n_steps,
                train_steps=train_steps,
                backprop_steps=self.backprop_steps,
                seed=seed,
            )

        data = [
            TensorDataset(Xg, np.searchsorted(classes, yg), device=device, y_dtype=torch.long)
            for _, Xg, yg in groups
        ]
        data = data[0] if len(data) == 1 else SizeGroups(data)
        callbacks = ()
        if self.clip_grad_norm is not None:
            callbacks += (("clip", GradientNormClipping(gradient_clip_value=self.clip_grad_norm)),)
        warmup_epochs = self._warmup_epochs()
        if warmup_epochs or self.lr_schedule != "constant":
            per_epoch = len(SliceIterator(data, self.batch_size))  # batches an epoch
            factor = partial(
                _lr_factor,
                warmup=warmup_epochs * per_epoch,
                total=self.max_epochs * per_epoch,
                cosine=self.lr_schedule == "cosine",
            )
            callbacks += (
                (
                    "lr_schedule",
                    LRScheduler(
                        policy=torch.optim.lr_scheduler.LambdaLR,
                        step_every="batch",
                        event_name=None,
                        lr_lambda=factor,
                    ),
                ),
            )
        transform = None
        if self.augment is not None:
            if self.augment == "dihedral" and n_spatial != 2:
                raise ValueError(
                    "augment='dihedral' swaps the axes of grids; X holds sequences: use "
                    "augment='flips' (reversed sequences) or None."
                )
            transform = partial(_flip_batch, transpose=self.augment == "dihedral")
        settings = TrainSettings(
            criterion=DeepSupervisionLoss() if trm else ProgressiveLoss(self.alpha),
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            weight_decay=self.weight_decay,
            device=device,
            verbose=2 if self.verbose else 0,
            callbacks=callbacks,
            transform=transform,
        )
        try:
            net_class = DeepSupervisionNet if trm else None
            net, interrupted = _train(make_module, data, settings, seed, net_class=net_class)
        except DivergenceError as exc:
            raise DivergenceError(
                f"{type(self).__name__}: training diverged ({exc}). Lower lr (now {self.lr}), "
                f"clip the gradient (clip_grad_norm, now {self.clip_grad_norm}), warm the rate "
                f"up (warmup_epochs, now {warmup_epochs}), or train "
                f"fewer steps (train_steps, now {self.train_steps}) or with truncated "
                f"back-propagation (backprop_steps, now {self.backprop_steps})."
            ) from None
        finished = _finished_epochs(net.history)
        if interrupted and not finished:
            raise KeyboardInterrupt
        self.classes_ = classes
        self.n_features_in_ = n_channels
        self.n_spatial_dims_ = n_spatial
        self.module_ = net.module_.eval()
        self.history_ = [float(row["train_loss"]) for row in finished]
        self.device_ = device
        self.interrupted_ = interrupted
        if interrupted:
            warnings.warn(
                f"{type(self).__name__}.fit was interrupted after {len(finished)} finished "
                "epoch(s); the weights of the last finished epoch are kept and the estimator "
                "is usable.",
                UserWarning,
                stacklevel=3,
            )
        return self

    # ------------------------------------------------------------------
    # Inference

    def _check_finite(self, logits, n_steps):
        if not torch.isfinite(logits).all():
            refit = (
                "refit with more of the progressive loss "
                f"(alpha, now {self.alpha}), which keeps the state stable past the "
                "trained depth"
            )
            halting = "halt_patience, halt_tol"
            if isinstance(self.module_, TinyRecursiveNet):
                refit, halting = (
                    f"refit with a lower lr (now {self.lr})",
                    "halt_threshold, " + halting,
                )
            raise DivergenceError(
                f"{type(self).__name__}: the state diverged (non-finite logits) within "
                f"{n_steps} steps. Predict with fewer n_steps, let samples halt "
                f"({halting}), or {refit}."
            )
        return logits

    @torch.no_grad()
    def _final_logits(self, X, n_steps):
        """Logits after the last step (or the halt) and the steps each sample ran."""
        module = self.module_.eval()
        total = self._steps(n_steps)
        self._check_halt_threshold(isinstance(module, TinyRecursiveNet))
        rules = {
            "patience": self.halt_patience,
            "tol": self.halt_tol,
            "threshold": self.halt_threshold,
        }
        halting = any(rule is not None for rule in rules.values())
        logits, used = [], []
        for x, rows in fixed_chunks(X, self.device_, _PREDICT_BATCH, _PREDICT_VALUES):
            if halting:
                z, n_used = module.run_halting(x, total, **rules)
            else:
                z, n_used = module(x, total), torch.full((len(x),), total)
            logits.append(self._check_finite(z[:rows], total).double().cpu().numpy())
            used.append(n_used[:rows].cpu().numpy())
        return np.concatenate(logits), np.concatenate(used).astype(np.int64)

    def predict_proba(self, X, n_steps=None, return_steps=False):
        """Class probabilities of every position after the last step.

        Parameters
        ----------
        X : array-like
            Sequences or grids of the kind and channels seen in fit, of any size.
        n_steps : int or None, default=None
            Steps to run; ``None`` means ``self.n_steps``.  May exceed the
            trained steps (larger instances need more).
        return_steps : bool, default=False
            Also return the steps each sample ran: ``n_steps``, or fewer
            where ``halt_patience``, ``halt_tol`` or ``halt_threshold``
            halted it.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes, L) or \
(n_samples, n_classes, H, W)
            For a list X of samples of several sizes, a list of one
            ``(n_classes, ...)`` array per sample.
        steps : ndarray of shape (n_samples,), int
            Only with ``return_steps=True``.
        """
        if _is_sample_list(X):
            return self._by_size(X, self.predict_proba, n_steps=n_steps, return_steps=return_steps)
        X = self._validate_X(X)
        logits, steps = self._final_logits(X, n_steps)
        proba = softmax(logits, axis=1)
        return (proba, steps) if return_steps else proba

    def predict(self, X, n_steps=None, return_steps=False):
        """Labels of every position: the most probable class.

        Parameters
        ----------
        X : array-like
        n_steps : int or None, default=None
            As in `predict_proba`.
        return_steps : bool, default=False
            As in `predict_proba`.

        Returns
        -------
        y : ndarray of shape (n_samples, L) or (n_samples, H, W)
            For a list X of samples of several sizes, a list of one array
            per sample.
        steps : ndarray of shape (n_samples,), int
            Only with ``return_steps=True``.
        """
        if _is_sample_list(X):
            return self._by_size(X, self.predict, n_steps=n_steps, return_steps=return_steps)
        X = self._validate_X(X)
        logits, steps = self._final_logits(X, n_steps)
        y = self.classes_[logits.argmax(axis=1)]
        return (y, steps) if return_steps else y

    def staged_predict_proba(self, X, n_steps=None):
        """Yield the class probabilities after each step ``1..n_steps``.

        Halting does not apply: every step is yielded for every sample.

        Parameters
        ----------
        X : array-like
        n_steps : int or None, default=None
            Steps to run; ``None`` means ``self.n_steps``.

        Yields
        ------
        proba : ndarray of shape (n_samples, n_classes, ...)
            For a list X of samples of several sizes, a list of one
            ``(n_classes, ...)`` array per sample.
        """
        # X is checked here, not at the first step: errors come at the call
        if _is_sample_list(X):
            groups = self._validate_groups(X)
            return self._staged_groups(groups, len(X), self._steps(n_steps))
        X = self._validate_X(X)
        return self._staged(X, self._steps(n_steps))

    def _staged_groups(self, groups, n_samples, total):
        loops = [(index, self._staged(Xg, total)) for index, Xg in groups]
        for _ in range(total):
            proba = [None] * n_samples
            for index, loop in loops:
                for i, row in zip(index, next(loop)):
                    proba[i] = row
            yield proba

    def _staged(self, X, total):
        module = self.module_.eval()
        chunks = list(fixed_chunks(X, self.device_, _PREDICT_BATCH, _PREDICT_VALUES))
        loops = [module.steps(x, total) for x, _ in chunks]
        for t in range(1, total + 1):
            with torch.no_grad():
                logits = [
                    self._check_finite(module.head(next(loop))[:rows], t)
                    for loop, (_, rows) in zip(loops, chunks)
                ]
                logits = np.concatenate([z.double().cpu().numpy() for z in logits])
            yield softmax(logits, axis=1)

    def score(self, X, y, n_steps=None, sample_weight=None, per_position=False):
        """Exact-match rate: the fraction of samples whose every position is right.

        Parameters
        ----------
        X : array-like
        y : array-like of shape (n_samples, L) or (n_samples, H, W)
            True labels, all seen in fit; for a list X of samples of several
            sizes, a list of one label array per sample.
        n_steps : int or None, default=None
            Steps to run; ``None`` means ``self.n_steps``.  Samples halt early
            as in `predict` when ``halt_patience``, ``halt_tol`` or
            ``halt_threshold`` is set.
        sample_weight : array-like of shape (n_samples,) or None, default=None
            Weights of the samples in the mean.
        per_position : bool, default=False
            Score each sample by the fraction of its positions that are
            right instead (per-position accuracy).

        Returns
        -------
        score : float
        """
        if _is_sample_list(X):
            groups = self._validate_groups(X)
            labels = self._group_labels(y, groups, len(X))
        else:
            X_checked = self._validate_X(X)
            groups = [(np.arange(len(X_checked)), X_checked)]
            labels = [self._check_y(y, X_checked.shape, X)]
        labels = [self._encode(yg) for yg in labels]
        n_samples = sum(len(index) for index, _ in groups)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(
                sample_weight, np.empty((n_samples, 1)), dtype=np.float64,
                ensure_non_negative=True,
            )
        per_sample = np.empty(n_samples)
        for (index, Xg), yg in zip(groups, labels):
            pred = self._final_logits(Xg, n_steps)[0].argmax(axis=1)
            right = (pred == yg).reshape(len(yg), -1)
            per_sample[index] = right.mean(axis=1) if per_position else right.all(axis=1)
        return float(np.average(per_sample, weights=sample_weight))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        tags.input_tags.allow_nan = False
        tags.target_tags.required = True
        tags.target_tags.single_output = False
        tags.target_tags.multi_output = True
        return tags
