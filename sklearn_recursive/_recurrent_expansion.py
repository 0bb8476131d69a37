"""Recurrent Expansion estimators: RecurrentExpansionRegressor and ...Classifier."""

import time
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from joblib import cpu_count, effective_n_jobs
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    RegressorMixin,
    _fit_context,
    clone,
    is_classifier,
)
from sklearn.decomposition import PCA
from sklearn.metrics import accuracy_score, log_loss, r2_score
from sklearn.model_selection import KFold, StratifiedKFold, check_cv, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, LabelEncoder, StandardScaler
from sklearn.random_projection import GaussianRandomProjection
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.parallel import Parallel, delayed
from sklearn.utils.validation import check_is_fitted, validate_data

from ._expansion import (
    ExpansionRound,
    aulc,
    combine_members,
    expand,
    member_outputs,
    round_inputs,
    staged_imts,
)
from ._members import (
    MemberSpec,
    RoundPlan,
    TrainSettings,
    builtin_spec,
    check_member,
    fit_member_group,
    member_weights,
    mlp_spec,
    select_members,
)
from ._modules import BUILTIN_MODULES
from ._training import DivergenceError, resolve_device

_AGGREGATORS = ("pca", "concat", "random")


def _softmax(logits):
    logits = logits - logits.max(axis=1, keepdims=True)
    expd = np.exp(logits)
    return expd / expd.sum(axis=1, keepdims=True)


def _identity(values):
    return values


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

    # With cv, training rows' *predictions* are out-of-fold but their feature
    # maps are the fold networks' mean, as for every other row: the hidden
    # units of different networks are different coordinates, and mixing them
    # across rows ruins the next round (measured in
    # benchmarks/bench_sinusoid.py, which sets this to True to show it).
    _out_of_fold_maps = False

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "n_rounds": [Interval(Integral, 1, None, closed="left")],
        "aggregator": [StrOptions(set(_AGGREGATORS)), HasMethods(["fit", "transform"])],
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "cv": ["cv_object", None],
        "module": [callable, StrOptions(set(BUILTIN_MODULES)), None],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
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
        cv=None,
        module=None,
        max_epochs=100,
        batch_size=128,
        lr=1e-3,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
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
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------
    # Task-specific hooks (regression / classification)

    def _criterion(self):
        raise NotImplementedError

    def _output_fn(self, outputs):
        """Network outputs -> the yhat fed to the next round."""
        raise NotImplementedError

    def _round_loss(self, y_enc, yhat):
        raise NotImplementedError

    def _round_score(self, y_enc, yhat):
        raise NotImplementedError

    # ------------------------------------------------------------------
    # Fitting

    def _validate_X(self, X, owner=None):
        """Validate inference input against what fit saw; cast to float32."""
        owner = self if owner is None else owner
        check_is_fitted(owner)
        return check_input(owner, X, reset=False)

    def _make_aggregator(self, seed):
        if self.aggregator == "pca":
            agg = PCA(n_components=self.n_components, random_state=seed)
        elif self.aggregator == "random":
            agg = GaussianRandomProjection(n_components=self.n_components, random_state=seed)
        elif self.aggregator == "concat":
            agg = FunctionTransformer()
        else:
            agg = clone(self.aggregator)
        return Pipeline([("aggregate", agg), ("scale", StandardScaler())])

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
            kind = StratifiedKFold if classifier else KFold
            splitter = kind(n_splits=self.cv, shuffle=True, random_state=seed)
        else:
            splitter = check_cv(self.cv, y_enc, classifier=classifier)
        return list(splitter.split(X, y_enc if classifier else None))

    def _default_spec(self):
        """The member this estimator's own network is: its `module` or the MLP."""
        if self.module is None:
            return mlp_spec(self._hidden_layer_sizes)
        if isinstance(self.module, str):
            return builtin_spec(self.module, self._hidden_layer_sizes)
        name = getattr(self.module, "__name__", None) or type(self.module).__name__
        return MemberSpec(name, self.module)

    def _train_settings(self, n_outputs, device):
        return TrainSettings(
            criterion=self._criterion(),
            output_fn=self._output_fn,
            n_outputs=n_outputs,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            n_iter_no_change=self.n_iter_no_change,
            tol=self.tol,
            device=device,
            verbose=self.verbose,
            out_of_fold_maps=self._out_of_fold_maps,
        )

    def _fit_round(self, X, Z, y, valid, folds, seeds, settings, plan, round_idx,
                   parallel):
        """Fit every member of a round, select and weight them, combine their IMTs."""
        specs = plan.specs
        if round_idx == 0:
            for spec in specs:
                check_member(spec, X, Z, settings.n_outputs)
        groups = plan.groups(folds)
        n_workers = min(effective_n_jobs(plan.n_jobs), len(groups))
        max_threads = max(1, cpu_count() // n_workers) if n_workers > 1 else None
        valid_arrays = None if valid is None else tuple(valid)
        jobs = (
            delayed(fit_member_group)(
                settings, [specs[i] for i in group], [int(seeds[i]) for i in group],
                X, Z, y, valid_arrays, folds, max_threads,
            )
            for group in groups
        )
        threads = torch.get_num_threads()
        try:
            results = parallel(jobs)
        finally:  # the threading backend caps this process's own torch threads
            if torch.get_num_threads() != threads:
                torch.set_num_threads(threads)
        fitted = [None] * len(specs)
        for group, result in zip(groups, results):
            for i, member in zip(group, result):
                fitted[i] = member

        valid_inputs = None if valid is None else round_inputs(valid[0], valid[1], settings.device)
        records, valid_imts = [], []
        for spec, seed, (nets, yhat_m, _) in zip(specs, seeds, fitted):
            curves = [np.asarray(net.history[:, "train_loss"], dtype=float) for net in nets]
            record = {
                "name": spec.name,
                "seed": int(seed),
                "train_loss": self._round_loss(y, yhat_m),
                "train_score": self._round_score(y, yhat_m),
                "valid_loss": np.nan,
                "valid_score": np.nan,
                "aulc": float(np.mean([aulc(c) for c in curves])),
                "epochs": int(np.mean([len(c) for c in curves])),
            }
            if valid is not None:
                imts = member_outputs(nets, valid_inputs, self._output_fn)
                valid_imts.append(imts)
                record["valid_loss"] = self._round_loss(valid[2], imts[0])
                record["valid_score"] = self._round_score(valid[2], imts[0])
            records.append(record)

        has_valid = valid is not None
        selected = select_members(records, plan.n_select, has_valid)
        weights = member_weights(plan.weighting, [records[i] for i in selected], has_valid)
        for i, record in enumerate(records):
            record["selected"] = i in selected
            record["weight"] = float(weights[selected.index(i)]) if i in selected else 0.0
        members = [fitted[i][0] for i in selected]
        train_imts = combine_members([fitted[i][1:] for i in selected], weights)
        if has_valid:
            valid_imts = combine_members([valid_imts[i] for i in selected], weights)
        else:
            valid_imts = None
        rnd = ExpansionRound(members=members, weights=weights, n_maps=train_imts[1].shape[1])
        return rnd, train_imts, valid_imts, records

    def _fit_rounds(self, X, y_enc, n_outputs, plan=None):
        """Fit the chain on validated arrays; ``plan`` says what the members are."""
        device = resolve_device(self.device)
        plan = plan or RoundPlan([self._default_spec()])
        rng = check_random_state(self.random_state)
        # split and fold seeds first, so that they do not depend on n_rounds:
        # fits that differ only in n_rounds share their first rounds.
        split_seed, fold_seed = rng.randint(np.iinfo(np.int32).max, size=2)
        seeds = rng.randint(np.iinfo(np.int32).max, size=(self.n_rounds, len(plan.specs)))
        classifier = is_classifier(self)

        valid = None
        if self.early_stopping:
            n_valid = int(np.ceil(self.validation_fraction * len(X)))
            if n_valid < 1 or len(X) - n_valid < 2:
                raise ValueError(
                    f"early_stopping=True with validation_fraction={self.validation_fraction} "
                    f"leaves no validation or too few training rows out of {len(X)}; "
                    "use more samples, another validation_fraction, or early_stopping=False."
                )
            stratify = y_enc if classifier else None
            try:
                X, X_va, y_enc, y_va = train_test_split(
                    X, y_enc, test_size=n_valid, random_state=split_seed, stratify=stratify
                )
            except ValueError:  # a class too rare to stratify
                X, X_va, y_enc, y_va = train_test_split(
                    X, y_enc, test_size=n_valid, random_state=split_seed
                )
            valid = [X_va, np.zeros((len(X_va), 0), np.float32), y_va]

        if len(plan.specs) == 1 and self.module is None:
            self._check_n_components(self._hidden_layer_sizes[-1], len(X))
        folds = self._splits(X, y_enc, fold_seed)
        plan.check(folds)
        settings = self._train_settings(n_outputs, device)
        Z = np.zeros((len(X), 0), np.float32)

        self.rounds_, self.history_ = [], []
        best_loss, best_round, stale = np.inf, 0, 0
        self.interrupted_ = False
        # one Parallel for all rounds: backends that start a pool per call (Ray's,
        # multiprocessing) keep their workers from round to round
        with Parallel(n_jobs=plan.n_jobs) as parallel:
            for r in range(self.n_rounds):
                start = time.perf_counter()
                try:
                    rnd, (yhat, maps), valid_imts, members = self._fit_round(
                        X, Z, y_enc, valid, folds, seeds[r], settings, plan, r, parallel
                    )
                except DivergenceError as exc:
                    raise DivergenceError(
                        f"{type(self).__name__}: training diverged in round {r} ({exc}). "
                        f"Lower lr (now {self.lr}), or standardise X (e.g. "
                        "Pipeline(StandardScaler(), ...))."
                    ) from None
                except KeyboardInterrupt:
                    if not self.rounds_:
                        raise
                    self._warn_interrupted(f"during round {r}: round {r} was discarded")
                    break
                record = self._record(r, rnd, y_enc, yhat, valid, valid_imts)
                record["members"] = members
                record["seconds"] = time.perf_counter() - start
                self.rounds_.append(rnd)
                self.history_.append(record)

                stop = False
                if valid is not None:
                    if record["valid_loss"] < best_loss - self.tol:
                        best_loss, best_round, stale = record["valid_loss"], r, 0
                    else:
                        stale += 1
                        stop = stale >= self.n_iter_no_change
                else:
                    best_round = r
                if self.verbose:
                    self._print_round(record)
                if stop or r == self.n_rounds - 1:
                    break
                if r == 0:
                    self._check_n_components(maps.shape[1], len(X))
                try:
                    rnd.aggregator = self._make_aggregator(int(seeds[r, 0])).fit(maps)
                    Z = expand(rnd, yhat, maps)
                    if valid is not None:
                        valid[1] = expand(rnd, *valid_imts)
                except KeyboardInterrupt:
                    rnd.aggregator = None
                    self._warn_interrupted(f"after round {r}")
                    break
        self.best_round_ = best_round
        self.n_rounds_ = len(self.rounds_)
        self.device_ = device
        for i, record in enumerate(self.history_):
            record["best"] = i == best_round
        if self.verbose and valid is not None:
            print(f"best round: {best_round}")
        return self

    def _warn_interrupted(self, when):
        self.interrupted_ = True
        warnings.warn(
            f"fit interrupted {when}; the {len(self.rounds_)} finished round(s) are kept "
            "and the estimator is usable.",
            UserWarning,
            stacklevel=4,
        )

    def _record(self, r, rnd, y_enc, yhat, valid, valid_imts):
        curves = [np.asarray(net.history[:, "train_loss"], dtype=float) for net in rnd.nets]
        record = {
            "round": r,
            "train_loss": self._round_loss(y_enc, yhat),
            "train_score": self._round_score(y_enc, yhat),
            "valid_loss": np.nan,
            "valid_score": np.nan,
            "aulc": float(np.mean([aulc(c) for c in curves])),
            "epochs": int(np.mean([len(c) for c in curves])),
            "curve": curves[0].tolist(),
        }
        if valid is not None:
            record["valid_loss"] = self._round_loss(valid[2], valid_imts[0])
            record["valid_score"] = self._round_score(valid[2], valid_imts[0])
        return record

    def _print_round(self, record):
        if record["round"] == 0:
            print(f"{'round':>5} {'train loss':>11} {'valid loss':>11} {'AULC':>9} "
                  f"{'epochs':>6} {'seconds':>8}")
        print(
            f"{record['round']:>5} {record['train_loss']:>11.5f} {record['valid_loss']:>11.5f} "
            f"{record['aulc']:>9.5f} {record['epochs']:>6d} {record['seconds']:>8.2f}"
        )
        members = record.get("members", [])
        if len(members) > 1:  # a multiverse: each member's loss, * if kept
            key = "valid_loss" if np.isfinite(record["valid_loss"]) else "train_loss"
            print("      members (" + key.replace("_", " ") + ", * kept): " + ", ".join(
                f"{m['name']} {m[key]:.4f}{'*' if m['selected'] else ''}" for m in members
            ))

    # ------------------------------------------------------------------
    # Inference

    def _staged_yhat(self, X, last=None):
        """Per-round yhat on validated input."""
        # the nets' own device: a model fitted on CUDA and unpickled on a machine
        # without one has been moved to the CPU by skorch.
        device = self.rounds_[0].nets[0].device
        yield from staged_imts(self.rounds_, X, self._output_fn, device, last)

    def _final_yhat(self, X):
        *_, yhat = self._staged_yhat(X, last=self.best_round_)
        return yhat

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.three_d_array = True
        return tags

    def _fit_common(self):
        self._hidden_layer_sizes = _check_hidden_layer_sizes(self.hidden_layer_sizes)
        resolve_device(self.device)


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

    cv : None, int or cross-validation splitter, default=None
        How the IMTs (maps and predictions) of the *training* rows are made.
        None: in-sample, by the network that trained on them, as in the
        original method. An int k or a splitter: cross-fitted -- each round
        trains one network per fold, all from the same initial weights, and a
        training row's IMTs come from the network that did not see it;
        other rows get the mean of the fold networks. An int gives a shuffled
        (stratified, for classifiers) K-fold seeded by ``random_state``.

    module : callable or None, default=None
        A custom network: ``module(n_features, n_expansion, n_outputs)``
        returns a ``torch.nn.Module`` with ``forward(X, Z)`` (outputs,
        ``(n_samples, n_outputs)``; logits for classifiers) and
        ``features(X, Z)`` (the feature maps passed on, ``(n_samples,
        n_maps)``). ``X`` is the raw input, ``Z`` the expansion vector
        (``n_expansion`` columns, none in round 0). Use
        ``functools.partial`` for extra arguments; the class must live in an
        importable module for pickling. ``hidden_layer_sizes`` is then unused.

    max_epochs : int, default=100
        Epochs per network (fewer with early stopping).

    batch_size : int, default=128
        Mini-batch size; batches are slices of shuffled device tensors.

    lr : float, default=1e-3
        Adam learning rate.

    early_stopping : bool, default=True
        Hold out ``validation_fraction`` of the rows (stratified for
        classifiers) once, for the whole fit, and use them to detect the
        representation glitch: each round is scored on them (run through the
        chain like new data), rounds stop after ``n_iter_no_change`` rounds
        without improving, and ``best_round_`` is the round of lowest
        validation loss. Each network also stops after ``n_iter_no_change``
        epochs without improving its validation loss and keeps its best
        weights. With False, every row trains, all ``n_rounds`` rounds are
        fitted and the last one is used -- on small noisy data the in-sample
        expansion then tends to overfit round after round.

    validation_fraction : float, default=0.1
        Fraction of rows held out when ``early_stopping=True``.

    n_iter_no_change : int, default=10
        Patience with ``early_stopping``: in epochs for each network and in
        rounds for the chain.

    tol : float, default=1e-4
        Minimum decrease of the validation loss that counts as improving.

    device : str, default="auto"
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``,
        ``"cuda:1"``...

    random_state : int, RandomState instance or None, default=None
        Seeds weights, shuffling, splits and aggregators. A fixed value makes
        a fit reproducible on the same device.

    verbose : int, default=0
        1 prints one line per round; 2 also every epoch.
"""

_COMMON_ATTRS_DOC = """
    rounds_ : list of ExpansionRound
        The fitted rounds: ``rounds_[i].nets`` (skorch nets, ``net.module_``
        is the torch module, ``net.history`` its learning curve) and
        ``rounds_[i].aggregator`` (the fitted ``rho``, None for the last).

    history_ : list of dict
        One dict per round: ``round``, ``train_loss`` and ``train_score``
        (on the training rows' IMTs: in-sample, or out-of-fold with ``cv``),
        ``valid_loss`` and ``valid_score`` (NaN without early stopping),
        ``aulc`` (area under the round's training loss curve divided by its
        epochs), ``epochs``, ``seconds``, ``curve`` (per-epoch training
        loss of the round's first network) and ``best``.

    best_round_ : int
        Index of the round used by ``predict``.

    n_rounds_ : int
        Number of rounds fitted (fewer than ``n_rounds`` after early stop).

    interrupted_ : bool
        True when fit was stopped by ``KeyboardInterrupt`` after at least one
        finished round; the finished rounds are kept and usable.

    device_ : str
        The torch device the networks were trained on.

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

    def _output_fn(self, outputs):
        return outputs

    def _round_loss(self, y_enc, yhat):
        return float(np.mean((yhat - y_enc) ** 2))

    def _round_score(self, y_enc, yhat):
        if len(y_enc) < 2:  # R^2 is undefined on a single row
            return np.nan
        return float(r2_score(y_enc, yhat))

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Fit the chain of rounds.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or \
                (n_samples, n_channels, length)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)

        Returns
        -------
        self : object
        """
        self._fit_common()
        return self._fit_arrays(*self._validate_fit_data(X, y))

    def _validate_fit_data(self, X, y, owner=None):
        owner = self if owner is None else owner
        y = _check_numeric_y(y, type(owner).__name__)
        return check_input(owner, X, y, reset=True, multi_output=True, y_numeric=True)

    def _fit_arrays(self, X, y, plan=None):
        y_enc, n_outputs = self._encode_y(y)
        return self._fit_rounds(X, y_enc, n_outputs, plan)

    def _to_prediction(self, yhat):
        return self._decode(yhat)

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

    def _output_fn(self, outputs):
        return _softmax(outputs)

    def _round_loss(self, y_enc, yhat):
        return float(log_loss(y_enc, yhat, labels=np.arange(yhat.shape[1])))

    def _round_score(self, y_enc, yhat):
        return float(accuracy_score(y_enc, yhat.argmax(axis=1)))

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Fit the chain of rounds.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or \
                (n_samples, n_channels, length)
        y : array-like of shape (n_samples,)
            Class labels.

        Returns
        -------
        self : object
        """
        self._fit_common()
        return self._fit_arrays(*self._validate_fit_data(X, y))

    def _validate_fit_data(self, X, y, owner=None):
        owner = self if owner is None else owner
        X, y = check_input(owner, X, y, reset=True)
        check_classification_targets(y)
        classes = np.unique(y)
        if len(classes) < 2:
            raise ValueError(
                f"{type(owner).__name__} needs samples of at least 2 classes in y; "
                f"got 1 class: {classes[0]!r}."
            )
        return X, y

    def _fit_arrays(self, X, y, plan=None):
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        y_enc = encoder.transform(y).astype(np.int64)
        return self._fit_rounds(X, y_enc, len(self.classes_), plan)

    def _to_prediction(self, yhat):
        return self.classes_[yhat.argmax(axis=1)]

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
            yield self._to_prediction(proba)


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
    afterwards. Returns float32 X.
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
    kwargs = {"dtype": [np.float32, np.float64], "allow_nd": ndim == 3, **kwargs}
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
    X = X.astype(np.float32, copy=False)
    return X if isinstance(y, str) and y == "no_validation" else (X, y)
