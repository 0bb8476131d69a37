"""MultiverseRE: members, weighting, selection, windows, parallel backends."""

import functools
import pickle

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_recursive import (
    MLPModule,
    MultiverseRE,
    RecurrentExpansionClassifier,
    RecurrentExpansionRegressor,
)
from sklearn_recursive.timeseries import make_windows

from .conftest import fast

R, C = RecurrentExpansionRegressor, RecurrentExpansionClassifier
BUILTINS = ["mlp", "cnn", "gru", "lstm", "transformer"]


def mv(est_class=R, members=3, **params):
    """A multiverse over a fast inner estimator; MultiverseRE params in ``params``."""
    est_params = {k[len("estimator__"):]: v for k, v in params.items()
                  if k.startswith("estimator__")}
    own = {k: v for k, v in params.items() if not k.startswith("estimator__")}
    return MultiverseRE(fast(est_class, **est_params), members=members, **own)


@pytest.fixture
def windows():
    """Noisy sine windows (3 channels) with a regression and a class target."""
    rng = np.random.default_rng(0)
    t = np.arange(16)
    phase = rng.uniform(0, 2 * np.pi, size=(90, 1, 1))
    W = np.sin(t / 3 + phase) + 0.1 * rng.standard_normal((90, 3, 16))
    y = np.sin(16 / 3 + phase.ravel())
    return W.astype(np.float32), y.astype(np.float32), (y > 0).astype(int)


def test_task_follows_estimator():
    assert is_regressor(MultiverseRE()) and not is_classifier(MultiverseRE())
    assert is_classifier(MultiverseRE(RecurrentExpansionClassifier()))
    assert not hasattr(MultiverseRE(), "predict_proba")
    assert hasattr(MultiverseRE(RecurrentExpansionClassifier()), "predict_proba")


def test_regressor_members_and_history(regression_data):
    X, y = regression_data
    model = mv(members=3, estimator__max_epochs=40).fit(X, y)
    assert model.predict(X).shape == (len(X),)
    assert model.score(X, y) > 0.8
    assert model.n_features_in_ == 4 and model.n_rounds_ == 2
    for record in model.history_:
        names = [m["name"] for m in record["members"]]
        assert names == ["mlp_0", "mlp_1", "mlp_2"]
        assert len({m["seed"] for m in record["members"]}) == 3  # different seeds
        assert all(m["selected"] for m in record["members"])
        np.testing.assert_allclose([m["weight"] for m in record["members"]], 1 / 3)
    # three members' maps (16 each) go through the aggregator together
    assert model.rounds_[0].n_maps == 48
    staged = list(model.staged_predict(X))
    assert len(staged) == 2
    np.testing.assert_allclose(staged[-1], model.predict(X))


def test_classifier_proba(classification_data):
    X, y = classification_data
    model = mv(C, members=["mlp", "cnn"], estimator__max_epochs=30).fit(X, y)
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-9)
    assert set(model.predict(X)) <= set(model.classes_)
    assert model.score(X, y) > 0.6
    assert len(list(model.staged_predict_proba(X))) == 2


@pytest.mark.parametrize("member", BUILTINS)
def test_every_builtin_on_windows(member, windows):
    W, y, _ = windows
    model = mv(members=[member, "mlp"], estimator__max_epochs=5).fit(W, y)
    assert model.predict(W[:7]).shape == (7,)
    assert model.n_features_in_ == 3


def test_two_d_input_is_one_channel_for_sequence_members(regression_data):
    X, y = regression_data
    model = mv(members=["cnn", "gru"], estimator__max_epochs=3).fit(X, y)
    net = model.rounds_[0].members[0][0]
    assert type(net.module_).__name__ == "CNNModule"
    assert model.predict(X).shape == (len(X),)


@pytest.mark.parametrize("module", ["cnn", "gru", "transformer"])
def test_recurrent_expansion_takes_windows(module, windows):
    W, y, labels = windows
    reg = fast(R, module=module, max_epochs=5).fit(W, y)
    assert reg.predict(W).shape == (len(W),)
    clf = fast(C, module=module, max_epochs=5).fit(W, labels)
    assert clf.predict_proba(W).shape == (len(W), 2)


def test_mlp_flattens_windows_and_expansion_sits_beside(windows):
    W, y, _ = windows
    reg = fast(R, max_epochs=3).fit(W, y)
    first = reg.rounds_[1].nets[0].module_.network.body[0]  # inside ContinuedRound
    # 3 x 16 window values + (2 compressed maps + 1 prediction)
    assert first.in_features == 48 + 3


def test_batched_matches_one_by_one(regression_data):
    X, y = regression_data
    batched = mv(members=3, batched=True, estimator__early_stopping=True).fit(X, y)
    single = mv(members=3, batched=False, estimator__early_stopping=True).fit(X, y)
    np.testing.assert_allclose(batched.predict(X), single.predict(X), atol=1e-4)
    for rb, rs in zip(batched.history_, single.history_):
        assert [m["epochs"] for m in rb["members"]] == [m["epochs"] for m in rs["members"]]


def test_selection_keeps_best_members(regression_data):
    X, y = regression_data
    model = mv(members=["mlp", "cnn", "gru", "lstm"], n_select=2, weighting="score",
               estimator__early_stopping=True, estimator__max_epochs=10).fit(X, y)
    for record, rnd in zip(model.history_, model.rounds_):
        members = record["members"]
        kept = [m for m in members if m["selected"]]
        dropped = [m for m in members if not m["selected"]]
        assert len(kept) == 2 and len(rnd.members) == 2
        assert max(m["valid_loss"] for m in kept) <= min(m["valid_loss"] for m in dropped)
        weights = np.array([m["weight"] for m in kept])
        inverse = 1 / np.array([m["valid_loss"] for m in kept])
        np.testing.assert_allclose(weights, inverse / inverse.sum())
        np.testing.assert_allclose(rnd.weights, weights)
        assert all(m["weight"] == 0 for m in dropped)


def test_aulc_weighting(regression_data):
    X, y = regression_data
    model = mv(members=2, weighting="aulc").fit(X, y)
    members = model.history_[0]["members"]
    inverse = 1 / np.array([m["aulc"] for m in members])
    np.testing.assert_allclose([m["weight"] for m in members], inverse / inverse.sum())


def test_user_module_members(regression_data):
    X, y = regression_data
    wide = functools.partial(MLPModule, hidden_layer_sizes=(8, 8))
    model = mv(members=[("wide", wide), MLPModule], estimator__max_epochs=3).fit(X, y)
    assert [m["name"] for m in model.history_[0]["members"]] == ["wide", "MLPModule"]


def test_reproducible_and_clone(regression_data):
    X, y = regression_data
    a = mv(members=["mlp", "gru"]).fit(X, y).predict(X)
    b = clone(mv(members=["mlp", "gru"])).fit(X, y).predict(X)
    np.testing.assert_array_equal(a, b)


def test_pickle_round_trip(classification_data, tmp_path):
    X, y = classification_data
    model = mv(C, members=["mlp", "transformer"]).fit(X, y)
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_allclose(again.predict_proba(X), model.predict_proba(X))
    joblib.dump(model, tmp_path / "model.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "model.joblib").predict(X),
                                  model.predict(X))


def test_pipeline_and_grid_search(regression_data):
    X, y = regression_data
    pipe = make_pipeline(StandardScaler(), mv(members=2))
    grid = GridSearchCV(
        pipe,
        {"multiversere__members": [1, 2], "multiversere__estimator__n_rounds": [1, 2]},
        cv=2,
    ).fit(X, y)
    assert set(grid.best_params_) == {"multiversere__members",
                                      "multiversere__estimator__n_rounds"}
    assert grid.predict(X).shape == (len(X),)


@pytest.mark.parametrize("backend", ["loky", "threading"])
def test_parallel_backends_give_the_same_model(backend, user_threads):
    # with the user's torch threads (2 here, not the suite's 1): a sequential
    # fit and workers must train every member on the same number of threads
    rng = np.random.default_rng(0)
    W = rng.standard_normal((400, 2, 24)).astype(np.float32)
    y = W[:, 0, -1] + W[:, 1, :4].sum(axis=1)
    members = ["mlp", "cnn", "gru", "transformer"]
    params = dict(estimator__hidden_layer_sizes=(64, 64), estimator__max_epochs=5,
                  estimator__n_components=8)
    reference = mv(members=members, **params).fit(W, y).predict(W)
    with joblib.parallel_config(backend=backend):
        model = mv(members=members, n_jobs=2, **params).fit(W, y)
    assert torch.get_num_threads() == user_threads  # the parent's setting is restored
    assert np.array_equal(model.predict(W), reference)


class SlowInitModule(MLPModule):
    """An MLP whose construction pauses between drawing its two layers."""

    def __init__(self, n_features, n_expansion, n_outputs):
        import time

        super().__init__(n_features, n_expansion, n_outputs, hidden_layer_sizes=(8,))
        time.sleep(0.05)  # another thread seeding now must not change what comes next
        self.head = torch.nn.Linear(8, n_outputs)


def test_threads_do_not_share_seeds(regression_data):
    X, y = regression_data
    members = [SlowInitModule] * 4
    reference = mv(members=members, estimator__max_epochs=1).fit(X, y)
    with joblib.parallel_config(backend="threading"):
        model = mv(members=members, estimator__max_epochs=1, n_jobs=4).fit(X, y)
    for ref_nets, nets in zip(reference.rounds_[0].members, model.rounds_[0].members):
        for a, b in zip(ref_nets[0].module_.parameters(), nets[0].module_.parameters()):
            torch.testing.assert_close(a, b)


def test_dask_local_cluster(regression_data):
    distributed = pytest.importorskip("distributed")
    X, y = regression_data
    members = ["mlp", "cnn"]
    reference = mv(members=members).fit(X, y).predict(X)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
        joblib.parallel_config(backend="dask"),
    ):
        model = mv(members=members, n_jobs=2).fit(X, y)
    assert np.array_equal(model.predict(X), reference)


def test_forecasting_windows_end_to_end():
    t = np.arange(400)
    series = np.sin(t / 8) + 0.05 * np.random.default_rng(0).standard_normal(400)
    X, y = make_windows(series, window=24, horizon=1)
    train, test = slice(0, 300), slice(300, None)
    model = mv(members=["cnn", "mlp"], estimator__max_epochs=30).fit(X[train], y[train])
    assert model.score(X[test], y[test]) > 0.8


def test_plot_rounds(regression_data):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    from sklearn_recursive.plotting import plot_rounds

    X, y = regression_data
    model = mv(members=["mlp", "cnn", "gru"], n_select=2).fit(X, y)
    ax = plot_rounds(model)
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels[:4] == ["mlp", "cnn", "gru", "aggregate"]
    assert ax.get_ylabel() == "training loss"
    ax = plot_rounds(fast(R, early_stopping=True).fit(X, y))
    assert ax.get_ylabel() == "validation loss"
    with pytest.raises(ValueError, match="split='valid' needs validation losses"):
        plot_rounds(model, split="valid")
    matplotlib.pyplot.close("all")


class FlatOnly(torch.nn.Module):
    """A member that only takes flat rows."""

    def __init__(self, n_features, n_expansion, n_outputs):
        super().__init__()
        self.lin = torch.nn.Linear(n_features + n_expansion, n_outputs)

    def features(self, X, Z):
        return torch.cat([X, Z], 1)

    def forward(self, X, Z):
        return self.lin(self.features(X, Z))


rng = np.random.default_rng(0)
X_bad = rng.standard_normal((30, 4)).astype(np.float32)
y_bad = X_bad[:, 0]
W_bad = rng.standard_normal((30, 2, 5)).astype(np.float32)

BAD = [
    ("unknown-member", {"members": ["mlp", "resnet50"]}, X_bad, ValueError,
     r"members\[1\]: unknown architecture 'resnet50'; the built-in ones are"),
    ("n_select-too-large", {"members": 2, "n_select": 3}, X_bad, ValueError,
     r"n_select=3 is larger than the number of members \(2\)"),
    ("members-0", {"members": 0}, X_bad, ValueError, "'members' parameter of MultiverseRE"),
    ("members-empty", {"members": []}, X_bad, ValueError, "non-empty list of architectures"),
    ("members-str", {"members": "cnn"}, X_bad, ValueError, "'members' parameter"),
    ("member-not-callable", {"members": ["mlp", 3]}, X_bad, ValueError,
     r"members\[1\] must be an architecture name"),
    ("bad-pair", {"members": [("a", "mlp", 1)]}, X_bad, ValueError,
     r"members\[0\] must be a name, a module callable or a \(name, spec\) pair"),
    ("window-to-flat-module", {"members": ["cnn", FlatOnly]}, W_bad, ValueError,
     r"member 'FlatOnly' \(FlatOnly\) failed on windows \(n_samples, n_channels, length\) "
     r"of shape \(2, 5\)"),
    ("weighting", {"weighting": "best"}, X_bad, ValueError, "'weighting' parameter"),
    ("batched-not-stackable", {"members": ["mlp", "cnn"], "batched": True}, X_bad,
     ValueError, "batched=True needs at least two members that are the built-in MLP"),
    ("inner-params-checked", {"estimator__n_rounds": 0}, X_bad, ValueError,
     "'n_rounds' parameter of RecurrentExpansionRegressor"),
]


@pytest.mark.parametrize(
    "params, X, error, match", [case[1:] for case in BAD], ids=[case[0] for case in BAD]
)
def test_bad_input(params, X, error, match):
    params = {"members": 2, **params}
    with pytest.raises(error, match=match):
        mv(**params).fit(X, y_bad)


def test_estimator_must_be_recurrent_expansion():
    from sklearn.linear_model import Ridge

    with pytest.raises(TypeError, match="estimator must be a RecurrentExpansionRegressor"):
        MultiverseRE(Ridge()).fit(X_bad, y_bad)


def test_predict_checks_against_the_multiverse(regression_data):
    X, y = regression_data
    model = mv(members=2).fit(X, y)
    with pytest.raises(ValueError, match="X has 3 features, but MultiverseRE is expecting 4"):
        model.predict(X[:, :3])


def test_ray_backend(regression_data):
    """Ray's joblib backend (not installed in CI: the ``ray`` extra is large)."""
    ray = pytest.importorskip("ray")
    from ray.util.joblib import register_ray

    X, y = regression_data
    members = ["mlp", "cnn"]
    reference = mv(members=members).fit(X, y).predict(X)
    register_ray()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        with joblib.parallel_config(backend="ray"):
            model = mv(members=members, n_jobs=2).fit(X, y)
    finally:
        ray.shutdown()
    np.testing.assert_allclose(model.predict(X), reference, atol=1e-5)


def test_one_worker_pool_for_all_rounds(regression_data):
    """Backends that start a pool per Parallel call (Ray's, multiprocessing) keep it
    over the rounds: the backend is configured once per fit, not once per round."""
    from joblib import parallel_config, register_parallel_backend
    from joblib._parallel_backends import ThreadingBackend

    calls = []

    class CountingBackend(ThreadingBackend):
        def configure(self, *args, **kwargs):
            calls.append(1)
            return super().configure(*args, **kwargs)

    register_parallel_backend("counting", CountingBackend)
    X, y = regression_data
    est = fast(RecurrentExpansionRegressor, n_rounds=3, early_stopping=False)
    with parallel_config(backend="counting"):
        mv = MultiverseRE(est, members=["mlp", "cnn"], n_jobs=2, batched=False).fit(X, y)
    assert mv.n_rounds_ == 3
    assert len(calls) == 1
