"""Recurrent Expansion estimators: RecurrentExpansionRegressor and ...Classifier."""

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    RegressorMixin,
    _fit_context,
    clone,
    is_classifier,
)
from sklearn.decomposition import PCA
from sklearn.metrics import r2_score
from sklearn.model_selection import KFold, StratifiedKFold, check_cv, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, LabelEncoder, StandardScaler
from sklearn.random_projection import GaussianRandomProjection
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from ._expansion import identity, running_means, staged_outputs
from ._members import MemberSpec, MemberTask, RoundPlan, builtin_spec, mlp_spec
from ._modules import BUILTIN_MODULES
from ._rounds import Chain, Rows, fit_chain
from ._training import TrainSettings, resolve_device
from ._utils import IntInterval, softmax

_AGGREGATORS = ("pca", "concat", "random")


def _check_hidden_layer_sizes(hidden_layer_sizes):
    sizes = hidden_layer_sizes
    if isinstance(sizes, Integral):
        sizes = (sizes,)
    try:
        sizes = tuple(sizes)
    except TypeError:
        sizes = None
    if (
        not sizes
        or not all(isinstance(s, Integral) and not isinstance(s, bool) for s in sizes)
        or min(sizes) < 1
    ):
        raise ValueError(
            "hidden_layer_sizes must be a positive int or a non-empty tuple of "
            f"positive ints, e.g. (64, 64); got {hidden_layer_sizes!r}."
        )
    return tuple(int(s) for s in sizes)


class _BaseRecurrentExpansion(BaseEstimator):
    """Shared fit/predict logic of the Recurrent Expansion estimators."""

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", IntInterval(1, None, closed="left")],
        "n_rounds": [IntInterval(1, None, closed="left")],
        "aggregator": [StrOptions(set(_AGGREGATORS)), HasMethods(["fit", "transform"])],
        "n_components": [IntInterval(1, None, closed="left")],
        "cv": ["cv_object", None],
        "module": [callable, StrOptions(set(BUILTIN_MODULES)), None],
        "max_epochs": [IntInterval(1, None, closed="left")],
        "batch_size": [IntInterval(1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "round_init": [StrOptions({"previous", "random"})],
        "round_selection": [StrOptions({"best", "one_se"})],
        "combine_rounds": [StrOptions({"last", "mean"})],
        "expansion_noise": [Interval(Real, 0, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [IntInterval(1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "restore_best_weights": ["boolean"],
        "standardize": ["boolean"],
        "device": [str],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        hidden_layer_sizes=(64, 64),
        *,
        n_rounds=10,
        aggregator="pca",
        n_components=8,
        cv=5,
        module=None,
        max_epochs=100,
        batch_size=128,
        lr=1e-3,
        weight_decay=0.0,
        round_init="previous",
        round_selection="one_se",
        combine_rounds="last",
        expansion_noise=0.0,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        restore_best_weights=True,
        standardize=True,
        device="auto",
        random_state=None,
        verbose=0,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.n_rounds = n_rounds
        self.aggregator = aggregator
        self.n_components = n_components
        self.cv = cv
        self.module = module
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.round_init = round_init
        self.round_selection = round_selection
        self.combine_rounds = combine_rounds
        self.expansion_noise = expansion_noise
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.restore_best_weights = restore_best_weights
        self.standardize = standardize
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------
    # Task-specific hooks (regression / classification)

    def _criterion(self):
        raise NotImplementedError

    # Network outputs -> the yhat fed to the next round: a module-level
    # function (it travels to joblib workers), set by each task.
    _output_fn = None

    @staticmethod
    def _row_loss(y_enc, yhat):
        raise NotImplementedError

    def _round_loss(self, y_enc, yhat, sample_weight=None):
        """The (weighted) mean of the per-row losses: what selects and stops the rounds."""
        return float(np.average(self._row_loss(y_enc, yhat), weights=sample_weight))

    def _round_score(self, y_enc, yhat, sample_weight=None):
        raise NotImplementedError

    # ------------------------------------------------------------------
    # Fitting

    def _validate_X(self, X):
        """Validate inference input against what fit saw; the networks' float32 input."""
        check_is_fitted(self)
        return self._network_input(check_input(self, X, reset=False), reset=False)

    def _network_input(self, X, reset):
        """X standardised per feature (per channel of windows) when asked, as float32.

        ``reset=True`` (fit) learns ``x_mean_`` and ``x_scale_``.
        """
        if not self.standardize:
            return to_float32(X, after_scaling=False)
        axes = (0,) if X.ndim == 2 else (0, 2)
        if reset:
            self.x_mean_ = X.mean(axis=axes, dtype=np.float64)
            scale = X.std(axis=axes, dtype=np.float64)
            self.x_scale_ = np.where(scale > 0, scale, 1.0)
        shape = (1, -1) if X.ndim == 2 else (1, -1, 1)
        scaled = (X - self.x_mean_.reshape(shape)) / self.x_scale_.reshape(shape)
        return to_float32(scaled, after_scaling=True)

    def _make_aggregator(self, seed):
        if self.aggregator == "pca":
            agg = PCA(n_components=self.n_components, random_state=seed)
        elif self.aggregator == "random":
            agg = GaussianRandomProjection(n_components=self.n_components, random_state=seed)
        elif self.aggregator == "concat":
            agg = FunctionTransformer()
        else:
            agg = clone(self.aggregator)
        check = FunctionTransformer(_finite_maps, kw_args={"aggregator": repr(agg)})
        return Pipeline([("aggregate", agg), ("check", check), ("scale", StandardScaler())])

    def _check_n_components(self, n_maps, n_rows):
        if self.aggregator not in ("pca", "random"):
            return
        limit = n_maps if self.aggregator == "random" else min(n_maps, n_rows)
        if self.n_components > limit:
            raise ValueError(
                f"n_components={self.n_components} is larger than the "
                f"{self.aggregator!r} aggregator can give: the networks have "
                f"{n_maps} feature maps"
                + (f" and there are {n_rows} training rows" if self.aggregator == "pca" else "")
                + f". Use n_components <= {limit}."
            )

    def _splits(self, X, y_enc, seed):
        """Training folds for cross-fitting, or None."""
        if self.cv is None:
            return None
        classifier = is_classifier(self)
        if isinstance(self.cv, Integral):  # >= 2, by the parameter constraints
            if len(X) < self.cv:
                raise ValueError(
                    f"cv={self.cv} cross-fits on {self.cv} folds of the training rows, but "
                    f"there are only n_samples={len(X)}; use more samples, a smaller cv, or "
                    "cv=None."
                )
            # stratified, unless no class has a row in every fold
            stratify = classifier and np.bincount(y_enc).max() >= self.cv
            kind = StratifiedKFold if stratify else KFold
            splitter = kind(n_splits=self.cv, shuffle=True, random_state=seed)
        else:
            splitter = check_cv(self.cv, y_enc, classifier=classifier)
        folds = list(splitter.split(X, y_enc if classifier else None))
        n = len(X)
        top = max(int(max(np.max(tr, initial=-1), np.max(te, initial=-1))) for tr, te in folds)
        if top >= n:
            raise ValueError(
                f"cv gives row index {top}, but cross-fitting splits the {n} training rows. "
                "Use an int or a splitter such as KFold that splits the rows it is given."
            )
        held = np.bincount(np.concatenate([te for _, te in folds]), minlength=n)
        if not np.all(held == 1):
            raise ValueError(
                "cv must hold out every training row exactly once (a K-fold partition), so "
                "that each row gets an out-of-fold prediction; "
                f"{int(np.sum(held != 1))} of {n} rows are held out {sorted(set(held) - {1})} "
                "times. Use an int, KFold or StratifiedKFold."
            )
        return folds

    def _default_spec(self, hidden_layer_sizes):
        """The member this estimator's own network is: its `module` or the MLP."""
        if self.module is None:
            return mlp_spec(hidden_layer_sizes)
        if isinstance(self.module, str):
            return builtin_spec(self.module, hidden_layer_sizes)
        name = getattr(self.module, "__name__", None) or type(self.module).__name__
        return MemberSpec(name, self.module)

    def _member_task(self, n_outputs, device):
        settings = TrainSettings(
            criterion=self._criterion(),
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            weight_decay=self.weight_decay,
            device=device,
            patience=self.n_iter_no_change,
            tol=self.tol,
            restore_best=self.restore_best_weights,
            verbose=self.verbose,
        )
        return MemberTask(settings, self._output_fn, n_outputs, self._link,
                          fold_stopping=self.early_stopping and self.cv is not None,
                          expansion_noise=float(self.expansion_noise))

    def _chain(self, n_outputs, device):
        return Chain(
            task=self._member_task(n_outputs, device),
            n_rounds=self.n_rounds,
            loss=self._round_loss,
            score=self._round_score,
            make_aggregator=self._make_aggregator,
            check_n_components=self._check_n_components,
            patience=self.n_iter_no_change,
            tol=self.tol,
            name=type(self).__name__,
            lr=self.lr,
            verbose=self.verbose,
            round_init=self.round_init,
            selection=self.round_selection,
            combine=self.combine_rounds,
            row_loss=self._row_loss,
            oof=self.cv is not None,
            stop_rounds=self.early_stopping,
        )

    def _split_rows(self, rows, seed):
        """``(train, valid)`` `Rows`: the held-out validation rows, or None.

        None without early stopping, and with ``cv``: every row trains, and
        the held-out folds validate.
        """
        if not self.early_stopping or self.cv is not None:
            return rows, None
        n_valid = int(np.ceil(self.validation_fraction * len(rows)))
        if n_valid < 1 or len(rows) - n_valid < 2:
            raise ValueError(
                f"early_stopping=True with validation_fraction={self.validation_fraction} "
                f"leaves no validation or too few training rows out of {len(rows)}; "
                "use more samples, another validation_fraction, or early_stopping=False."
            )
        index = np.arange(len(rows))
        stratify = rows.y if is_classifier(self) else None
        try:
            train, held = train_test_split(
                index, test_size=n_valid, random_state=seed, stratify=stratify
            )
        except ValueError:  # a class too rare to stratify
            train, held = train_test_split(index, test_size=n_valid, random_state=seed)

        def take(idx):
            w = rows.sample_weight
            return Rows(rows.X[idx], rows.y[idx], None if w is None else w[idx])

        valid = take(held)
        if valid.sample_weight is not None and not valid.sample_weight.sum() > 0:
            raise ValueError(
                f"early_stopping=True holds out {n_valid} validation rows, and all of them "
                "have sample_weight 0: they cannot score the rounds. Use early_stopping=False "
                "or a larger validation_fraction."
            )
        return take(train), valid

    @_fit_context(prefer_skip_nested_validation=True)
    def _fit_plan(self, X, y, plan=None, sample_weight=None):
        """Validate on ``self``, encode ``y`` and fit the rounds of ``plan``.

        The one entry point of every fit: ``fit`` runs the estimator's own
        network alone; `MultiverseRE` fits a clone of its estimator with its
        members as the `RoundPlan`.
        """
        hidden = _check_hidden_layer_sizes(self.hidden_layer_sizes)
        if self.expansion_noise and self.round_init != "previous":
            raise ValueError(
                f"expansion_noise={self.expansion_noise} needs round_init='previous' (the "
                "noise perturbs what a continued round's network reads, not the previous "
                f"prediction it starts from); got round_init={self.round_init!r}."
            )
        device = resolve_device(self.device)
        X, y = self._validate_fit_data(X, y)
        X = self._network_input(X, reset=True)
        sample_weight = _check_weights(sample_weight, X)
        y_enc, n_outputs = self._encode_y(y)
        if sample_weight is not None and is_classifier(self):
            weighted = np.unique(y_enc[sample_weight > 0])
            if len(weighted) < 2:
                raise ValueError(
                    f"{type(self).__name__} needs positive sample_weight on rows of at least "
                    f"2 classes; only class {self.classes_[weighted].tolist()} has any."
                )
        plan = (plan or RoundPlan()).resolved(self._default_spec(hidden), hidden)
        if plan.batched is True and self.expansion_noise:
            raise ValueError(
                f"batched=True cannot stack members with expansion_noise="
                f"{self.expansion_noise} (the stacked model draws no noise); use "
                "batched='auto' or False, or expansion_noise=0."
            )
        rng = check_random_state(self.random_state)
        # split and fold seeds first, so that they do not depend on n_rounds:
        # fits that differ only in n_rounds share their first rounds.
        split_seed, fold_seed = rng.randint(np.iinfo(np.int32).max, size=2)
        seeds = rng.randint(np.iinfo(np.int32).max, size=(self.n_rounds, len(plan.specs)))
        train, valid = self._split_rows(Rows(X, y_enc, sample_weight), split_seed)
        if len(plan.specs) == 1 and self.module is None:
            self._check_n_components(hidden[-1], len(train))
        folds = self._splits(train.X, train.y, fold_seed)
        plan.check(folds)
        result = fit_chain(self._chain(n_outputs, device), plan, train, valid, folds, seeds)
        self.rounds_ = result.rounds
        self.history_ = result.history
        self.best_round_ = result.best_round
        self.n_rounds_ = len(result.rounds)
        self.interrupted_ = result.interrupted
        self.device_ = device
        return self

    # ------------------------------------------------------------------
    # Inference

    def _staged_yhat(self, X, last=None):
        """Per-round yhat on validated input."""
        # the nets' own device: a model fitted on CUDA and unpickled on a machine
        # without one has been moved to the CPU by skorch.
        device = self.rounds_[0].nets[0].device
        staged = staged_outputs(self.rounds_, X, self._output_fn, device, last)
        if self.combine_rounds == "mean":
            staged = running_means(staged)
        yield from staged

    def _final_yhat(self, X):
        *_, yhat = self._staged_yhat(X, last=self.best_round_)
        return yhat

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.three_d_array = True
        return tags


_COMMON_PARAMS_DOC = """
    hidden_layer_sizes : int or tuple of int, default=(64, 64)
        Widths of the hidden ReLU layers of each round's network. The last
        hidden layer's activations are the feature maps passed on.

    n_rounds : int, default=10
        Maximum number of rounds (networks in the chain).

    aggregator : {"pca", "concat", "random"} or transformer, default="pca"
        ``rho``: how a round's feature maps are compressed before they join
        the next round's input. ``"pca"``: PCA to ``n_components``;
        ``"concat"``: the maps unchanged; ``"random"``: a Gaussian random
        projection to ``n_components``; or any scikit-learn transformer
        (cloned for each round). The result is always standardised.

    n_components : int, default=8
        Output width of the ``"pca"`` and ``"random"`` aggregators; at most
        the number of feature maps.

    cv : int, cross-validation splitter or None, default=5
        How the IMTs (maps and predictions) of the *training* rows are made,
        and which rows validate. An int k or a splitter: cross-fitted --
        each round trains one network per fold, all from the same initial
        weights, each on the rows of the other folds; a training row's IMTs
        come from the network that did not see it, so the next round never
        learns from predictions made on its own targets; new rows get the
        mean of the fold networks (a bagged prediction). No row is held
        out: with ``early_stopping`` each fold network stops early on its
        own held-out fold, and every round is scored on the out-of-fold
        predictions of all training rows (``history_[i]["valid_loss"]``),
        which choose ``best_round_``. An int gives a shuffled K-fold seeded
        by ``random_state``, stratified for classifiers (unless no class has
        k rows). Same-shaped MLP fold networks train as one stacked model.
        A network fitted in closed form with exact leave-one-out outputs (the
        ``"rocket"`` member's ridge head) fits once on all rows instead: its
        leave-one-out outputs are the out-of-fold predictions (n folds, for
        the price of one fit) and its maps read no target.
        None: in-sample IMTs, by the network that trained on them, as in the
        original method; ``early_stopping`` then holds out
        ``validation_fraction`` of the rows, and a round costs one fit
        instead of k (about 0.5× the time of ``cv=5``, with lower scores on
        the real-data suite: see the user guide).

    module : str, callable or None, default=None
        The round network. None: the MLP of ``hidden_layer_sizes``. A name:
        a built-in network, ``"mlp"``, ``"cnn"``, ``"gru"``, ``"lstm"``,
        ``"transformer"`` or, for time-series windows, ``"fcn"``,
        ``"resnet"``, ``"inception"``, ``"rocket"`` (see their classes in
        ``sklearn_recursive``). Or a custom network:
        ``module(n_features, n_expansion, n_outputs)`` returns a
        ``torch.nn.Module`` with ``forward(X, Z)`` (outputs,
        ``(n_samples, n_outputs)``; logits for classifiers) and
        ``features(X, Z)`` (the feature maps passed on, ``(n_samples,
        n_maps)``). ``X`` is the raw input, ``Z`` the expansion vector
        (``n_expansion`` columns, none in round 0). Optional:
        ``initialize(X)``, a data-dependent initialisation of buffers
        called once a fit with all training inputs before the member's
        first networks train (its fold networks start as copies; later
        rounds get the same buffers), ``share_cache(cache)`` /
        ``release_cache()`` (with ``cache_key()`` at prediction) to share
        per-window results between them, and ``fit_closed_form(X, Z, y,
        sample_weight)``, which fits the network on its training rows in
        place of gradient training when it returns True
        (``docs/multiverse.md``). Use
        ``functools.partial`` for extra arguments; the class must live in an
        importable module for pickling. ``hidden_layer_sizes`` is then unused.

    max_epochs : int, default=100
        Epochs per network (fewer with early stopping). For a trained
        time-series member (``"fcn"``, ``"resnet"``, ``"inception"``...) on
        fewer than about 100 series, ``max_epochs=300,
        n_iter_no_change=30``: on ArrowHead's 36 series it lifted fcn from
        0.573 to 0.728 and inception from 0.808 to 0.825
        (``docs/multiverse.md``).

    batch_size : int, default=128
        Mini-batch size; batches are slices of shuffled device tensors.

    lr : float, default=1e-3
        Adam learning rate.

    weight_decay : float, default=0.0
        Adam's L2 weight decay, for every network.

    round_init : {"previous", "random"}, default="previous"
        How the networks of rounds after the first start. ``"previous"``:
        each starts as exactly the previous round's function -- its output
        is the previous round's prediction (taken from the expansion) plus a
        correction network's output times a gate, one weight per output,
        that starts at zero -- and with early stopping it keeps its initial
        weights unless some epoch improves the validation loss, so a round
        never scores worse on the validation rows than the round before.
        ``"random"``: each round trains a network from random weights, as in
        the original method; on small noisy data its rounds are then often
        worse than round 0.

    round_selection : {"one_se", "best"}, default="one_se"
        How ``best_round_`` is chosen from the rows that score the rounds
        (the held-out rows with ``early_stopping``, every training row out
        of fold with ``cv``). ``"best"``: the round of lowest validation
        loss. ``"one_se"``: the earliest round whose validation loss is
        within one standard error of the lowest (the standard error of the
        per-row loss difference between the two rounds, on the same rows):
        the one-standard-error rule, which does not take a later round for an improvement that the
        validation rows cannot tell from noise. Rounds are fitted the same
        way either way.

    combine_rounds : {"last", "mean"}, default="last"
        What the chain up to round ``r`` predicts. ``"last"``: round ``r``'s
        own prediction. ``"mean"``: the mean of the predictions (values, or
        class probabilities) of rounds ``0..r`` -- the rounds as an ensemble,
        each network having seen the ones before. The rows that score the
        rounds score this prediction, so with ``"mean"`` they choose how many
        rounds to average; ``best_round_``, ``staged_predict`` and
        ``predict`` mean the same either way (``predict`` is the last
        staged prediction at ``best_round_``). Rounds vary most, and their
        mean gains most, with ``round_init="random"``.

    expansion_noise : float, default=0.0
        With ``round_init="previous"``: in training, Gaussian noise of standard
        deviation ``expansion_noise`` times each column's standard deviation
        over the training rows is added to the expansion ``Z`` that a round's
        network reads (feature maps and previous predictions); the previous
        prediction the round starts from, validation and prediction read ``Z``
        as it is. A regulariser against a round that copies what the
        expansion carries of ``y`` (the issue's lead 3; ``docs/real_data.md``
        has what it did). 0 turns it off. Members with noise train one by
        one, not stacked.

    early_stopping : bool, default=True
        Without ``cv``: hold out ``validation_fraction`` of the rows
        (stratified for classifiers) once, for the whole fit, and use them
        to detect the representation glitch: each round is scored on them
        (run through the chain like new data), rounds stop after
        ``n_iter_no_change`` rounds without improving, and ``best_round_``
        is chosen among the fitted rounds by ``round_selection``. Each
        network also stops after ``n_iter_no_change`` epochs without
        improving its validation loss and keeps its best weights. With
        ``cv``, the same, on the held-out folds instead (see ``cv``). With
        False, every network trains ``max_epochs`` and all ``n_rounds``
        rounds are fitted; without ``cv`` the last one is used -- on small
        noisy data the in-sample expansion then tends to overfit round after
        round -- and with ``cv`` the out-of-fold predictions still choose
        ``best_round_``.

    validation_fraction : float, default=0.1
        Fraction of rows held out when ``early_stopping=True`` and ``cv`` is
        None.

    n_iter_no_change : int, default=10
        Patience with ``early_stopping``: in epochs for each network and in
        rounds for the chain.

    tol : float, default=1e-4
        Minimum decrease of the validation loss that counts as improving.

    restore_best_weights : bool, default=True
        With ``early_stopping``: each network ends with the weights of its
        epoch of lowest validation loss (True), or with those of its last
        epoch, ``n_iter_no_change`` epochs later (False; a continued round
        that no epoch improved still returns to its start).  For the
        ``"rocket"`` member, whose head over about 10,000 features grows
        over-confident (its held-out cross-entropy rises) long before its
        accuracy stops improving, ``restore_best_weights=False,
        n_iter_no_change=30`` scored higher on the larger UCR sets
        (``docs/multiverse.md``); on the tabular suite's classification
        tasks it made no difference to the MLP.

    standardize : bool, default=True
        Standardise each input feature (each channel of windows, over rows
        and time) with the training rows' mean and standard deviation
        before the networks see it; new rows get the same transform.
        Networks train badly on unscaled inputs (features of size 1e7 give
        a useless model), and targets are always standardised for a
        regressor. False feeds X as given, e.g. when a Pipeline scales it.

    device : str, default="auto"
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``,
        ``"cuda:1"``...

    random_state : int, RandomState instance or None, default=None
        Seeds weights, shuffling, splits and aggregators. A fixed value makes
        a fit reproducible on the same device.

    verbose : int, default=0
        1 shows progress: on a terminal, bars over rounds and over the
        current round's epochs; elsewhere (files, logs) a line when a round
        starts and one with its losses when it ends. 2 also prints every
        network's epoch table, each line labelled with its member (and fold),
        without colour codes outside a terminal. Epoch progress is seen for
        networks trained in this process (not in other joblib workers).
"""

_COMMON_ATTRS_DOC = """
    rounds_ : list of ExpansionRound
        The fitted rounds: ``rounds_[i].nets`` (skorch nets, ``net.module_``
        is the torch module, ``net.history`` its learning curve) and
        ``rounds_[i].aggregator`` (the fitted ``rho``, None for the last).

    history_ : list of dict
        One dict per round: ``round``, ``train_loss`` and ``train_score``
        (on the training rows' IMTs: in-sample, or out-of-fold with ``cv``),
        ``valid_loss`` and ``valid_score`` (on the rows that validate and
        choose ``best_round_``: with ``cv``, every training row out of fold,
        the same as ``train_loss``; without, the held-out rows; NaN without
        either),
        ``selection_loss`` (the mean loss, on those rows, of what the chain
        up to the round predicts: ``valid_loss`` with
        ``combine_rounds="last"``, the loss of the rounds' mean with
        ``"mean"``; what stops the rounds and chooses ``best_round_``),
        ``aulc`` (area under the round's training loss curve divided by its
        epochs), ``epochs``, ``seconds``, ``curve`` (per-epoch training
        loss of the round's first network) and ``best``.

    best_round_ : int
        Index of the round used by ``predict`` (``round_selection``; the
        last round without early stopping).

    n_rounds_ : int
        Number of rounds fitted (fewer than ``n_rounds`` after early stop).

    interrupted_ : bool
        True when fit was stopped by ``KeyboardInterrupt`` after at least one
        finished round; the finished rounds are kept and usable.

    device_ : str
        The torch device the networks were trained on.

    x_mean_, x_scale_ : ndarray of shape (`n_features_in_`,)
        The standardisation of X (per feature, or per channel of windows);
        only with ``standardize=True``.

    n_features_in_ : int
        Number of features seen during fit.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Feature names, when X has string column names.
"""


class RecurrentExpansionRegressor(RegressorMixin, _BaseRecurrentExpansion):
    __doc__ = (
        """Recurrent Expansion regressor: networks that learn from earlier networks.

    Round 0 trains a network on ``X``. Round ``i`` trains a new network on
    ``X`` plus the previous round's compressed feature maps and predictions
    (its IMTs). ``predict`` runs the chain up to ``best_round_``. Targets are
    standardised internally; one or several outputs are supported.

    Parameters
    ----------"""
        + _COMMON_PARAMS_DOC
        + """
    Attributes
    ----------"""
        + _COMMON_ATTRS_DOC
        + """
    See Also
    --------
    RecurrentExpansionClassifier : The classification twin.
    sklearn.neural_network.MLPRegressor : A single network, no expansion.

    Notes
    -----
    A ``KeyboardInterrupt`` during fit after round 0 discards the round in
    progress, keeps the finished ones (``interrupted_`` is set, a warning is
    shown) and returns the fitted estimator. A diverging loss raises
    ``DivergenceError`` naming the round.

    Examples
    --------
    >>> from sklearn_recursive import RecurrentExpansionRegressor
    >>> from sklearn_recursive.datasets import make_sinusoid
    >>> X, y = make_sinusoid(n_samples=200, random_state=0)
    >>> reg = RecurrentExpansionRegressor((16,), n_rounds=2, n_components=2,
    ...                                   max_epochs=5, random_state=0).fit(X, y)
    >>> reg.predict(X[:3]).shape
    (3,)
    >>> len(reg.history_)
    2
    """
    )

    def _encode_y(self, y):
        """Standardised float32 targets of shape (n, n_outputs), and n_outputs."""
        y = np.asarray(y, dtype=np.float64)
        self._y_1d = y.ndim == 1
        y2 = y.reshape(len(y), -1)
        self.y_mean_ = y2.mean(axis=0)
        scale = y2.std(axis=0)
        self.y_scale_ = np.where(scale > 0, scale, 1.0)
        return ((y2 - self.y_mean_) / self.y_scale_).astype(np.float32), y2.shape[1]

    def _criterion(self):
        return torch.nn.MSELoss

    _output_fn = staticmethod(identity)
    _link = "identity"

    @staticmethod
    def _row_loss(y_enc, yhat):
        return np.mean((yhat - y_enc) ** 2, axis=1)

    def _round_score(self, y_enc, yhat, sample_weight=None):
        if len(y_enc) < 2:  # R^2 is undefined on a single row
            return np.nan
        return float(r2_score(y_enc, yhat, sample_weight=sample_weight))

    def fit(self, X, y, sample_weight=None):
        """Fit the chain of rounds.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or \
                (n_samples, n_channels, length)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative row weights: every network's training and
            validation loss is the weighted mean over its batch's rows, and
            the rounds' losses and scores (early stopping, ``best_round_``,
            member selection) are weighted too.

        Returns
        -------
        self : object
        """
        return self._fit_plan(X, y, sample_weight=sample_weight)

    def _validate_fit_data(self, X, y):
        y = _check_numeric_y(y, type(self).__name__)
        return check_input(self, X, y, reset=True, multi_output=True, y_numeric=True)

    def _decode(self, yhat):
        pred = yhat * self.y_scale_ + self.y_mean_
        return pred.ravel() if self._y_1d else pred

    def predict(self, X):
        """Predict with the chain up to ``best_round_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or \
                (n_samples, n_channels, length)

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        """
        return self._decode(self._final_yhat(self._validate_X(X)))

    def staged_predict(self, X):
        """Yield the prediction after each fitted round, round 0 first.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or \
                (n_samples, n_channels, length)

        Yields
        ------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        """
        for yhat in self._staged_yhat(self._validate_X(X)):
            yield self._decode(yhat)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags


class RecurrentExpansionClassifier(ClassifierMixin, _BaseRecurrentExpansion):
    __doc__ = (
        """Recurrent Expansion classifier: networks that learn from earlier networks.

    Like `RecurrentExpansionRegressor`, with a cross-entropy loss; the
    predicted class probabilities are the yhat that feeds the next round.

    Parameters
    ----------"""
        + _COMMON_PARAMS_DOC
        + """
    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels.
"""
        + _COMMON_ATTRS_DOC
        + """
    See Also
    --------
    RecurrentExpansionRegressor : The regression twin.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn_recursive import RecurrentExpansionClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = RecurrentExpansionClassifier((16,), n_rounds=2, n_components=2,
    ...                                    max_epochs=5, random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:2]).shape
    (2, 3)
    """
    )

    def _criterion(self):
        return torch.nn.CrossEntropyLoss

    _output_fn = staticmethod(softmax)
    _link = "log"

    @staticmethod
    def _row_loss(y_enc, yhat):
        # each row's term of scikit-learn's log_loss (probabilities clipped at the dtype's
        # eps), without its input validation: a few milliseconds a call, several a round
        eps = np.finfo(yhat.dtype).eps
        return -np.log(np.clip(yhat[np.arange(len(y_enc)), y_enc], eps, 1 - eps))

    def _round_score(self, y_enc, yhat, sample_weight=None):  # accuracy_score's value
        return float(np.average(yhat.argmax(axis=1) == y_enc, weights=sample_weight))

    def fit(self, X, y, sample_weight=None):
        """Fit the chain of rounds.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or \
                (n_samples, n_channels, length)
        y : array-like of shape (n_samples,)
            Class labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative row weights: every network's training and
            validation loss is the weighted mean over its batch's rows, and
            the rounds' losses and scores (early stopping, ``best_round_``,
            member selection) are weighted too.

        Returns
        -------
        self : object
        """
        return self._fit_plan(X, y, sample_weight=sample_weight)

    def _validate_fit_data(self, X, y):
        X, y = check_input(self, X, y, reset=True)
        check_classification_targets(y)
        classes = np.unique(y)
        if len(classes) < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes in y; "
                f"got 1 class: {classes[0]!r}."
            )
        return X, y

    def _encode_y(self, y):
        """Class indices ``0..n_classes-1``, and n_classes."""
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        return encoder.transform(y).astype(np.int64), len(self.classes_)

    def predict_proba(self, X):
        """Class probabilities of the chain up to ``best_round_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or \
                (n_samples, n_channels, length)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        return self._final_yhat(self._validate_X(X))

    def predict(self, X):
        """Predict class labels with the chain up to ``best_round_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or \
                (n_samples, n_channels, length)

        Returns
        -------
        y : ndarray of shape (n_samples,)
        """
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)]

    def staged_predict_proba(self, X):
        """Yield class probabilities after each fitted round.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or \
                (n_samples, n_channels, length)

        Yields
        ------
        proba : ndarray of shape (n_samples, n_classes)
        """
        yield from self._staged_yhat(self._validate_X(X))

    def staged_predict(self, X):
        """Yield class labels after each fitted round.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or \
                (n_samples, n_channels, length)

        Yields
        ------
        y : ndarray of shape (n_samples,)
        """
        for proba in self._staged_yhat(self._validate_X(X)):
            yield self.classes_[proba.argmax(axis=1)]


def _check_numeric_y(y, name):
    """Reject string or >2-D targets for a regressor with a message that says so."""
    arr = np.asarray(y) if not hasattr(y, "dtype") else y
    if np.ndim(arr) > 2:
        raise ValueError(
            f"y must be 1-D (n_samples,) or 2-D (n_samples, n_outputs); got shape "
            f"{np.shape(arr)}."
        )
    kind = getattr(arr, "dtype", np.dtype(float)).kind
    if kind in "USO":
        try:
            np.asarray(arr, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                f"{name} needs numeric y; got non-numeric values (dtype "
                f"{np.asarray(arr).dtype}). For class labels use "
                "RecurrentExpansionClassifier."
            ) from None
    return y


def check_input(owner, X, y="no_validation", *, reset, **kwargs):
    """Validate X (2-D tables or 3-D windows), and y when given, for ``owner``.

    Records ``n_features_in_`` (the columns, or the channels of windows) and
    the input's trailing shape at fit (``reset=True``), and checks them
    afterwards. Returns X as float32 or float64.
    """
    ndim = getattr(X, "ndim", None)
    if ndim is None:
        try:
            ndim = np.ndim(X)
        except (TypeError, ValueError):  # ragged lists and the like: check_array says why
            ndim = None
    name = type(owner).__name__
    if ndim is not None and ndim > 3:
        raise ValueError(
            "X must be 2-D (n_samples, n_features) or 3-D windows (n_samples, n_channels, "
            f"length); got a {ndim}-D array of shape {np.shape(X)}."
        )
    if not reset and ndim in (2, 3) and ndim != len(owner._input_shape) + 1:
        fitted = "windows (n_samples, n_channels, length)" if ndim == 2 else "2-D input"
        raise ValueError(
            f"{name} was fitted on {fitted} of trailing shape {owner._input_shape}; "
            f"got a {ndim}-D array of shape {np.shape(X)}."
        )
    # float64 for lists and other array-likes, as for float64 arrays: the
    # standardisation then sees the same numbers whatever container X came in
    kwargs = {"dtype": [np.float64, np.float32], "allow_nd": ndim == 3, **kwargs}
    if reset:
        kwargs.setdefault("ensure_min_samples", 2)
    if isinstance(y, str) and y == "no_validation":
        X = validate_data(owner, X, reset=reset, **kwargs)
    else:
        X, y = validate_data(owner, X, y, reset=reset, **kwargs)
    if reset:
        owner._input_shape = X.shape[1:]
    elif X.shape[1:] != owner._input_shape:
        raise ValueError(
            f"X has windows of shape {X.shape[1:]} (channels, length), but {name} was "
            f"fitted on windows of shape {owner._input_shape}."
        )
    return X if isinstance(y, str) and y == "no_validation" else (X, y)


def _check_weights(sample_weight, X):
    """float32 row weights, non-negative and not all zero, or None."""
    if sample_weight is None:
        return None
    weight = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
    return weight.astype(np.float32)


def _finite_maps(maps, aggregator):
    """The aggregator's output, passed on if finite; else a ValueError naming it."""
    if not np.isfinite(maps).all():
        raise ValueError(
            f"the aggregator {aggregator} returned non-finite values (NaN or inf) on the "
            "networks' feature maps; check the transformer passed as aggregator, or use "
            "aggregator='pca'."
        )
    return maps


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def to_float32(X, after_scaling):
    """``X`` as the networks' float32, or a ValueError if it does not fit in float32."""
    largest = float(np.max(np.abs(X))) if X.size else 0.0
    if largest > _FLOAT32_MAX:
        where = (
            "after standardisation with the training rows' mean and scale (values far "
            "outside the training range)"
            if after_scaling
            else "; the networks compute in float32: rescale X, e.g. standardize=True or "
            "a StandardScaler in a Pipeline"
        )
        raise ValueError(
            f"X has values up to {largest:.3g}, beyond float32's range "
            f"(±{_FLOAT32_MAX:.3g}){' ' if after_scaling else ''}{where}."
        )
    return X.astype(np.float32, copy=False)
