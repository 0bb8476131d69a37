"""MultiverseRE: several networks per round, in parallel, aggregated."""

from numbers import Integral

from sklearn.base import BaseEstimator, MetaEstimatorMixin, _fit_context, clone, is_classifier
from sklearn.metrics import accuracy_score, r2_score
from sklearn.utils import get_tags
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from ._members import MemberSpec, RoundPlan, builtin_spec
from ._modules import BUILTIN_MODULES
from ._recurrent_expansion import RecurrentExpansionRegressor, _BaseRecurrentExpansion

# Fitted attributes of the inner estimator that MultiverseRE exposes as its own.
_FITTED = ("rounds_", "history_", "best_round_", "n_rounds_", "interrupted_", "device_")


def _estimator_has(attr):
    def check(self):
        est = getattr(self, "estimator_", None)
        if est is None:
            est = self.estimator if self.estimator is not None else RecurrentExpansionRegressor()
        return hasattr(est, attr)

    return check


def _member_name(spec):
    if isinstance(spec, str):
        return spec
    name = getattr(spec, "__name__", None)
    if name is None and hasattr(spec, "func"):  # functools.partial
        name = getattr(spec.func, "__name__", None)
    return name or type(spec).__name__


def _resolve_members(members, estimator):
    """The list of `MemberSpec` that ``members`` describes."""
    if isinstance(members, Integral):
        base = estimator._default_spec()
        return [MemberSpec(f"{base.name}_{i}", base.build, base.stack_key) for i in range(members)]
    if isinstance(members, str) or not hasattr(members, "__len__") or len(members) == 0:
        raise ValueError(
            "members must be an int >= 1 or a non-empty list of architectures (names among "
            f"{sorted(BUILTIN_MODULES)}, module callables, or (name, spec) pairs); "
            f"got {members!r}."
        )
    specs = []
    for i, item in enumerate(members):
        label = None
        if isinstance(item, tuple):
            if len(item) != 2 or not isinstance(item[0], str):
                raise ValueError(
                    f"members[{i}] must be a name, a module callable or a (name, spec) pair "
                    f"with a str name; got {item!r}."
                )
            label, item = item
        if isinstance(item, str):
            if item not in BUILTIN_MODULES:
                raise ValueError(
                    f"members[{i}]: unknown architecture {item!r}; the built-in ones are "
                    f"{sorted(BUILTIN_MODULES)} (or pass a torch module callable)."
                )
            specs.append(builtin_spec(item, estimator._hidden_layer_sizes, label))
        elif callable(item):
            specs.append(MemberSpec(label or _member_name(item), item))
        else:
            raise ValueError(
                f"members[{i}] must be an architecture name, a module callable "
                f"module(n_features, n_expansion, n_outputs) or a (name, spec) pair; "
                f"got {item!r}."
            )
    # unique labels for history_ and plots: "mlp", "mlp" -> "mlp_0", "mlp_1"
    names = [spec.name for spec in specs]
    counts = {}
    out = []
    for spec in specs:
        if names.count(spec.name) > 1:
            k = counts.get(spec.name, 0)
            counts[spec.name] = k + 1
            spec = MemberSpec(f"{spec.name}_{k}", spec.build, spec.stack_key)
        out.append(spec)
    return out


class MultiverseRE(MetaEstimatorMixin, BaseEstimator):
    """Multiverse Recurrent Expansion: several networks per round, aggregated.

    Each round trains k *members* on the same input -- the raw ``X`` plus the
    previous round's expansion vector -- and expands with their aggregate:
    their feature maps go through the aggregator together, their predictions
    are combined by ``weighting``::

        x_{i+1} = [ x, rho(maps_i^1 .. maps_i^k), agg(yhat_i^1 .. yhat_i^k) ]

    ``members=k`` gives MVRE (k copies of the estimator's network, different
    seeds); a list of architectures gives HMVRE; ``n_select`` gives Sc-HMVRE
    (only the best members of each round enter the aggregate).

    The round schedule, training settings and the task come from
    ``estimator``: the multiverse is a regressor or a classifier as its
    estimator is, the way a Pipeline takes the type of its last step.

    Parameters
    ----------
    estimator : RecurrentExpansionRegressor or RecurrentExpansionClassifier, \
            default=None
        Carries ``n_rounds``, ``aggregator``, ``n_components``, ``cv``,
        ``max_epochs``, ``batch_size``, ``lr``, ``early_stopping``, ``device``,
        ``random_state``... and, for ``members=k``, the network (its
        ``module`` or ``hidden_layer_sizes``). None means
        ``RecurrentExpansionRegressor()``. Tune its parameters with
        ``estimator__<name>``.

    members : int or list, default=5
        An int k: k copies of the estimator's network with different seeds.
        A list: one member per item, each an architecture name (``"mlp"``
        -- with the estimator's ``hidden_layer_sizes`` --, ``"cnn"``,
        ``"gru"``, ``"lstm"``, ``"transformer"``), a module callable
        ``module(n_features, n_expansion, n_outputs)`` following the module
        contract (see `RecurrentExpansionRegressor`), or a ``(name, spec)``
        pair naming either, e.g. ``("wide", functools.partial(MLPModule,
        hidden_layer_sizes=(256,)))``.

    weighting : {"uniform", "score", "aulc"}, default="uniform"
        How the members' predictions are averaged. ``"score"``: weights
        proportional to the inverse of each member's validation loss (of its
        training-row loss when the estimator has ``early_stopping=False``;
        out-of-fold with ``cv``); ``"aulc"``: to the inverse of the area under
        its learning curve.

    n_select : int or None, default=None
        Keep only the ``n_select`` members of lowest validation loss (training
        loss without early stopping) in each round's aggregate; the others are
        discarded after their scores are recorded. None keeps all.

    n_jobs : int or None, default=None
        Members of a round are fitted in parallel with joblib
        (``sklearn.utils.parallel.Parallel``); any joblib backend works,
        e.g. ``joblib.parallel_config(backend="dask")`` to use a Dask cluster.
        Each worker caps its torch threads so that workers x threads do not
        exceed the cores. None means 1 unless in a ``parallel_config`` context.

    batched : {"auto", True, False}, default="auto"
        Train same-shaped MLP members as one stacked model (batched matrix
        products; each member keeps its own seed, shuffling, loss and early
        stopping): one job instead of k. ``"auto"`` does so whenever two or
        more members are the built-in MLP with the same sizes and the
        estimator has no ``cv``; True requires it.

    Attributes
    ----------
    estimator_ : RecurrentExpansionRegressor or RecurrentExpansionClassifier
        The fitted inner estimator, holding the chain.

    rounds_ : list of ExpansionRound
        ``rounds_[i].members[m]`` are the nets of the ``m``-th kept member
        of round ``i``; ``rounds_[i].weights`` their prediction weights.

    history_ : list of dict
        As for `RecurrentExpansionRegressor` (the aggregate's losses and
        scores per round), plus ``members``: one dict per member with
        ``name``, ``seed``, ``train_loss``, ``train_score``, ``valid_loss``,
        ``valid_score``, ``aulc``, ``epochs``, ``selected`` and ``weight``.

    best_round_, n_rounds_, interrupted_, device_ : as for the estimator.

    classes_ : ndarray of shape (n_classes,)
        The class labels (classifier only).

    n_features_in_ : int
        Number of features (columns, or channels of windows) seen in fit.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Feature names, when X has string column names.

    See Also
    --------
    RecurrentExpansionRegressor, RecurrentExpansionClassifier : One member per round.
    sklearn_recursive.plotting.plot_rounds : Members' and aggregate's loss per round.

    Notes
    -----
    Members fitted in other processes (loky, Dask, Ray) must pickle: user
    modules must be defined in an importable module, not in ``__main__``.
    On CUDA, give each worker its own GPU (e.g. ``CUDA_VISIBLE_DEVICES`` per
    Dask worker); stacked members use one GPU best.

    Examples
    --------
    >>> from sklearn_recursive import MultiverseRE, RecurrentExpansionRegressor
    >>> from sklearn_recursive.datasets import make_sinusoid
    >>> X, y = make_sinusoid(n_samples=200, random_state=0)
    >>> re = RecurrentExpansionRegressor((16,), n_rounds=2, n_components=2,
    ...                                  max_epochs=5, random_state=0)
    >>> mv = MultiverseRE(re, members=3).fit(X, y)
    >>> mv.predict(X[:3]).shape
    (3,)
    >>> [m["name"] for m in mv.history_[0]["members"]]
    ['mlp_0', 'mlp_1', 'mlp_2']
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit", "predict"]), None],
        "members": [Interval(Integral, 1, None, closed="left"), list, tuple],
        "weighting": [StrOptions({"uniform", "score", "aulc"})],
        "n_select": [Interval(Integral, 1, None, closed="left"), None],
        "n_jobs": [Integral, None],
        "batched": [StrOptions({"auto"}), "boolean"],
    }

    def __init__(
        self,
        estimator=None,
        *,
        members=5,
        weighting="uniform",
        n_select=None,
        n_jobs=None,
        batched="auto",
    ):
        self.estimator = estimator
        self.members = members
        self.weighting = weighting
        self.n_select = n_select
        self.n_jobs = n_jobs
        self.batched = batched

    def _make_estimator(self):
        if self.estimator is None:
            return RecurrentExpansionRegressor()
        if not isinstance(self.estimator, _BaseRecurrentExpansion):
            raise TypeError(
                "estimator must be a RecurrentExpansionRegressor or "
                f"RecurrentExpansionClassifier; got {type(self.estimator).__name__}."
            )
        est = clone(self.estimator)
        est._validate_params()  # its fit is not called: check its parameters here
        return est

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y):
        """Fit the multiverse chain.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or \
                (n_samples, n_channels, length)
            Tabular rows, or windows: sequence members (``"cnn"``, ``"gru"``,
            ``"lstm"``, ``"transformer"``) read 2-D input as one channel.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets, or class labels for a classifier estimator.

        Returns
        -------
        self : object
        """
        est = self._make_estimator()
        est._fit_common()
        specs = _resolve_members(self.members, est)
        if self.n_select is not None and self.n_select > len(specs):
            raise ValueError(
                f"n_select={self.n_select} is larger than the number of members "
                f"({len(specs)}); use n_select <= {len(specs)} or None."
            )
        X, y = est._validate_fit_data(X, y, owner=self)
        plan = RoundPlan(
            specs=specs,
            weighting=self.weighting,
            n_select=self.n_select,
            n_jobs=self.n_jobs,
            batched=self.batched,
        )
        est._fit_arrays(X, y, plan)
        self.estimator_ = est
        for name in _FITTED:
            setattr(self, name, getattr(est, name))
        if hasattr(est, "classes_"):
            self.classes_ = est.classes_
        return self

    def _validate_X(self, X):
        check_is_fitted(self)
        return self.estimator_._validate_X(X, owner=self)

    def predict(self, X):
        """Predict with the chain up to ``best_round_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or \
                (n_samples, n_channels, length)

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            Values, or class labels for a classifier.
        """
        X = self._validate_X(X)
        return self.estimator_._to_prediction(self.estimator_._final_yhat(X))

    @available_if(_estimator_has("predict_proba"))
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
        X = self._validate_X(X)
        return self.estimator_._final_yhat(X)

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
        X = self._validate_X(X)
        for yhat in self.estimator_._staged_yhat(X):
            yield self.estimator_._to_prediction(yhat)

    @available_if(_estimator_has("staged_predict_proba"))
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
        X = self._validate_X(X)
        yield from self.estimator_._staged_yhat(X)

    def score(self, X, y, sample_weight=None):
        """R^2 for a regressor estimator, accuracy for a classifier.

        Parameters
        ----------
        X : array-like
        y : array-like
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        score : float
        """
        pred = self.predict(X)
        if is_classifier(self):
            return accuracy_score(y, pred, sample_weight=sample_weight)
        return r2_score(y, pred, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = get_tags(self.estimator if self.estimator is not None
                         else RecurrentExpansionRegressor())
        tags.estimator_type = inner.estimator_type
        tags.classifier_tags = inner.classifier_tags
        tags.regressor_tags = inner.regressor_tags
        tags.target_tags = inner.target_tags
        tags.input_tags = inner.input_tags
        return tags

