"""MultiverseRE: several networks per round, in parallel, aggregated.

A meta-estimator in scikit-learn's sense: ``fit`` fits ``clone(estimator)``
through its one fitting entry point with the members as its `RoundPlan`; the
fitted facts (``rounds_``, ``history_``, ``n_features_in_``...) are read
through ``estimator_`` and predictions delegate to its public methods.
"""

from sklearn.base import BaseEstimator, MetaEstimatorMixin, _fit_context, clone
from sklearn.utils import get_tags
from sklearn.utils._param_validation import HasMethods, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, validate_data

from ._members import PRESETS, RoundPlan
from ._recurrent_expansion import RecurrentExpansionRegressor, _BaseRecurrentExpansion
from ._utils import IntInterval


def _read_through(name):
    """A read-only property that is ``estimator_.<name>`` (AttributeError before fit)."""

    def get(self):
        return getattr(self.estimator_, name)

    get.__doc__ = f"``estimator_.{name}``: see the Attributes section."
    return property(get)


def _estimator_has(attr):
    def check(self):
        est = getattr(self, "estimator_", None)
        if est is None:
            est = self.estimator if self.estimator is not None else RecurrentExpansionRegressor()
        return hasattr(est, attr)

    return check


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

    members : int, "timeseries" or list, default=5
        An int k: k copies of the estimator's network with different seeds.
        ``"timeseries"``: the preset for windows ``(n, n_channels, length)``,
        three ``"rocket"`` members (MiniRocket's transform with a ridge head,
        each member its own random draws): the set the time-series suite
        found best, above the former preset (``"rocket"``, ``"inception"``,
        ``"fcn"``) at about a hundredth of its fit time
        (``docs/multiverse.md``).
        A list: one member per item, each an architecture name (``"mlp"``
        -- with the estimator's ``hidden_layer_sizes`` --, ``"cnn"``,
        ``"gru"``, ``"lstm"``, ``"transformer"``, ``"fcn"``, ``"resnet"``,
        ``"inception"``, ``"rocket"``), a module callable
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
        Every member's job runs on ``torch.get_num_threads() // jobs``
        torch threads (this process's threads shared among the round's
        jobs) wherever it runs, so that the same ``random_state`` gives the
        same model on every backend and ``n_jobs`` (on the same CPU). None
        means 1 unless in a ``parallel_config`` context.

    random_state : int, RandomState instance or None, default=None
        Seeds the fit (members' weights and shuffling, splits, aggregators).
        When not None it replaces the estimator's ``random_state``; None
        keeps the estimator's own.

    batched : {"auto", True, False}, default="auto"
        Train same-shaped MLP members as one stacked model (batched matrix
        products; each member keeps its own seed, shuffling, loss and early
        stopping): one job instead of k. With the estimator's ``cv``, every
        fold network of every such member joins the one stack. ``"auto"``
        does so whenever two or more members are the built-in MLP with the
        same sizes; True requires it.

    Attributes
    ----------
    estimator_ : RecurrentExpansionRegressor or RecurrentExpansionClassifier
        The fitted clone of ``estimator``, holding the chain; a complete
        estimator of its own (``estimator_.predict(X)`` works).

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

    # the fitted facts of the chain, read through the fitted estimator
    rounds_ = _read_through("rounds_")
    history_ = _read_through("history_")
    best_round_ = _read_through("best_round_")
    n_rounds_ = _read_through("n_rounds_")
    interrupted_ = _read_through("interrupted_")
    device_ = _read_through("device_")
    n_features_in_ = _read_through("n_features_in_")
    feature_names_in_ = _read_through("feature_names_in_")
    classes_ = _read_through("classes_")

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit", "predict"]), None],
        "members": [IntInterval(1, None, closed="left"), StrOptions(set(PRESETS)), list, tuple],
        "weighting": [StrOptions({"uniform", "score", "aulc"})],
        "n_select": [IntInterval(1, None, closed="left"), None],
        "n_jobs": [IntInterval(None, -1, closed="right"), IntInterval(1, None, closed="left"),
                   None],
        "random_state": ["random_state"],
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
        random_state=None,
        batched="auto",
    ):
        self.estimator = estimator
        self.members = members
        self.weighting = weighting
        self.n_select = n_select
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.batched = batched

    def _make_estimator(self):
        if self.estimator is None:
            est = RecurrentExpansionRegressor()
        elif not isinstance(self.estimator, _BaseRecurrentExpansion):
            raise TypeError(
                "estimator must be a RecurrentExpansionRegressor or "
                f"RecurrentExpansionClassifier; got {type(self.estimator).__name__}."
            )
        else:
            est = clone(self.estimator)
        if self.random_state is not None:
            est.set_params(random_state=self.random_state)
        return est

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, sample_weight=None):
        """Fit the multiverse chain.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or \
                (n_samples, n_channels, length)
            Tabular rows, or windows: sequence members (``"cnn"``, ``"gru"``,
            ``"lstm"``, ``"transformer"``) read 2-D input as one channel.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets, or class labels for a classifier estimator.
        sample_weight : array-like of shape (n_samples,), default=None
            Row weights, as for the estimator's ``fit`` (every member's loss,
            the rounds' and members' scores, selection and weighting).

        Returns
        -------
        self : object
        """
        plan = RoundPlan(
            members=self.members,
            weighting=self.weighting,
            n_select=self.n_select,
            n_jobs=self.n_jobs,
            batched=self.batched,
        )
        self.estimator_ = self._make_estimator()._fit_plan(X, y, plan, sample_weight)
        return self

    def _check_X(self, X):
        # errors that name this estimator, not its inner one: fitted, same
        # features (columns or channels) and feature names as in fit
        # (arrays and frames; the inner estimator checks other array-likes)
        check_is_fitted(self)
        if getattr(X, "ndim", None) in (2, 3):
            validate_data(self, X, reset=False, skip_check_array=True)

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
        self._check_X(X)
        return self.estimator_.predict(X)

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
        self._check_X(X)
        return self.estimator_.predict_proba(X)

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
        self._check_X(X)
        return self.estimator_.staged_predict(X)

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
        self._check_X(X)
        return self.estimator_.staged_predict_proba(X)

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
        self._check_X(X)
        return self.estimator_.score(X, y, sample_weight=sample_weight)

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
