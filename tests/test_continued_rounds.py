"""Rounds that start where the last one ended (round_init="previous") and the
one-standard-error choice of the round (round_selection="one_se")."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.utils._param_validation import InvalidParameterError

from sklearn_recursive import (
    MultiverseRE,
    RecurrentExpansionClassifier,
    RecurrentExpansionRegressor,
)
from sklearn_recursive._members import ContinuedRound, build_continued
from sklearn_recursive._modules import CNNModule, MLPModule
from sklearn_recursive._rounds import one_se_round

from .conftest import fast


def noisy_regression(n=300, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 5))
    y = np.sin(2 * X[:, 0]) + X[:, 1] + 0.5 * rng.standard_normal(n)
    return X, y


def noisy_classification(n=300, seed=0):
    X, y = noisy_regression(n, seed)
    return X, np.digitize(y, [-0.5, 0.5])


# ----------------------------------------------------------------------------
# ContinuedRound: a network that starts as the previous round's function


@pytest.mark.parametrize("make", [lambda: MLPModule(4, 5, 2, (8,)),
                                  lambda: CNNModule((1, 4), 5, 2, channels=(3,), hidden=6)])
def test_continued_round_starts_as_the_previous_prediction(make):
    torch.manual_seed(0)
    module = ContinuedRound(make(), n_outputs=2, link="identity")
    X, Z = torch.randn(7, 4), torch.randn(7, 5)
    assert torch.equal(module(X, Z), Z[:, -2:])
    maps, out = module.features_and_output(X, Z)
    assert torch.equal(out, Z[:, -2:])
    assert torch.equal(maps, module.network.features(X, Z))
    assert torch.equal(module.features(X, Z), maps)


def test_continued_round_log_link_gives_back_the_probabilities():
    torch.manual_seed(0)
    p = torch.softmax(torch.randn(6, 3), dim=1)
    Z = torch.cat([torch.randn(6, 2), p], dim=1)
    module = build_continued(MLPModule, "log", 4, 5, 3)
    torch.testing.assert_close(torch.softmax(module(torch.randn(6, 4), Z), dim=1), p)
    # a probability of exactly 0 stays finite
    Z[0, -1] = 0.0
    assert torch.isfinite(module(torch.randn(6, 4), Z)).all()


def test_continued_round_moves_once_trained():
    torch.manual_seed(0)
    module = build_continued(MLPModule, "identity", 3, 2, 1)
    X, Z, y = torch.randn(32, 3), torch.randn(32, 2), torch.randn(32, 1)
    opt = torch.optim.Adam(module.parameters(), lr=1e-2)
    for _ in range(20):
        opt.zero_grad()
        torch.nn.functional.mse_loss(module(X, Z), y).backward()
        opt.step()
    assert module.gate.abs().item() > 0
    assert not torch.equal(module(X, Z), Z[:, -1:])


def test_build_continued_needs_the_prediction_in_z():
    with pytest.raises(ValueError, match="previous prediction in Z"):
        build_continued(MLPModule, "identity", 3, 1, 2)
    with pytest.raises(ValueError, match="link"):
        ContinuedRound(MLPModule(3, 2, 1), 1, link="logit")


# ----------------------------------------------------------------------------
# one_se_round


def test_one_se_picks_the_earliest_round_within_one_standard_error():
    rng = np.random.default_rng(0)
    base = rng.exponential(size=200)
    # round 1 clearly better than round 0; rounds 2-3 better than 1 only by noise
    losses = [base + 0.5, base + 0.01 * rng.standard_normal(200),
              base - 0.0001 + 0.01 * rng.standard_normal(200), base - 0.0002]
    assert one_se_round(losses, best=3) == 1
    # every round clearly better than the one before: the best
    clear = [base + 0.3 * (3 - r) for r in range(4)]
    assert one_se_round(clear, best=3) == 3
    # the best round itself is round 0
    assert one_se_round(clear[::-1], best=0) == 0


def test_one_se_weights_the_rows():
    base = np.ones(4)
    losses = [base + np.array([0.0, 0.0, -1.0, 4.0]), base]
    # unweighted, round 0 is worse by 0.75 ± 1.1: within one SE, round 0
    assert one_se_round(losses, best=1) == 0
    # the row that is much worse in round 0 carries most of the weight: 3.3 ± 1.3
    assert one_se_round(losses, best=1, sample_weight=np.array([1, 1, 0, 10.0])) == 1
    # equal weights are no weights
    assert one_se_round(losses, best=1, sample_weight=np.full(4, 3.0)) == 0


# ----------------------------------------------------------------------------
# The estimators


@pytest.mark.parametrize("Estimator, data", [
    (RecurrentExpansionRegressor, noisy_regression),
    (RecurrentExpansionClassifier, noisy_classification),
])
def test_a_round_never_scores_worse_on_validation_than_the_one_before(Estimator, data):
    X, y = data()
    est = fast(Estimator, early_stopping=True, n_rounds=6, max_epochs=30,
               round_selection="best").fit(X, y)
    losses = np.array([h["valid_loss"] for h in est.history_])
    assert len(losses) >= 3
    assert np.all(np.diff(losses) <= 1e-5 * losses[:-1]), losses


def test_random_rounds_can_score_worse_on_validation():
    # the design's point: fresh rounds often do (the same data as above)
    X, y = noisy_regression()
    est = fast(RecurrentExpansionRegressor, early_stopping=True, n_rounds=6, max_epochs=30,
               round_init="random", round_selection="best").fit(X, y)
    losses = np.array([h["valid_loss"] for h in est.history_])
    assert np.any(np.diff(losses) > 0), losses


def test_round_zero_is_the_same_whatever_round_init():
    X, y = noisy_regression()
    kwargs = dict(early_stopping=True, n_rounds=3, max_epochs=20)
    a = fast(RecurrentExpansionRegressor, round_init="previous", **kwargs).fit(X, y)
    b = fast(RecurrentExpansionRegressor, round_init="random", **kwargs).fit(X, y)
    np.testing.assert_array_equal(next(a.staged_predict(X)), next(b.staged_predict(X)))
    assert type(a.rounds_[1].nets[0].module_) is ContinuedRound
    assert type(b.rounds_[1].nets[0].module_) is MLPModule


@pytest.mark.parametrize("Estimator, data", [
    (RecurrentExpansionRegressor, noisy_regression),
    (RecurrentExpansionClassifier, noisy_classification),
])
def test_defaults_are_deterministic_pickle_and_stage_consistently(Estimator, data):
    X, y = data()
    kwargs = dict(early_stopping=True, n_rounds=4, max_epochs=20)
    a = fast(Estimator, **kwargs).fit(X, y)
    b = fast(Estimator, **kwargs).fit(X, y)
    method = "predict" if Estimator is RecurrentExpansionRegressor else "predict_proba"
    np.testing.assert_array_equal(getattr(a, method)(X), getattr(b, method)(X))
    loaded = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(getattr(loaded, method)(X), getattr(a, method)(X))
    staged = list(getattr(a, "staged_" + method)(X))
    assert len(staged) == a.n_rounds_
    np.testing.assert_array_equal(staged[a.best_round_], getattr(a, method)(X))
    assert [h["best"] for h in a.history_].index(True) == a.best_round_


def test_one_se_never_picks_a_later_round_than_best():
    X, y = noisy_regression()
    kwargs = dict(early_stopping=True, n_rounds=6, max_epochs=20)
    best = fast(RecurrentExpansionRegressor, round_selection="best", **kwargs).fit(X, y)
    one_se = fast(RecurrentExpansionRegressor, round_selection="one_se", **kwargs).fit(X, y)
    assert one_se.best_round_ <= best.best_round_
    assert one_se.n_rounds_ == best.n_rounds_  # the same rounds, another choice


def test_multiverse_members_continue_the_rounds_aggregate():
    X, y = noisy_classification()
    mv = MultiverseRE(fast(RecurrentExpansionClassifier, early_stopping=True, n_rounds=3,
                           max_epochs=15), members=["mlp", "mlp", "cnn"],
                      random_state=0).fit(X, y)
    later = mv.rounds_[1].nets
    assert len(later) == 3 and all(type(n.module_) is ContinuedRound for n in later)
    assert mv.predict_proba(X).shape == (len(X), 3)


@pytest.mark.parametrize("param, value", [("round_init", "warm"),
                                          ("round_selection", "1se"),
                                          ("weight_decay", -1.0)])
def test_bad_round_options(param, value, regression_data):
    X, y = regression_data
    with pytest.raises(InvalidParameterError, match=param):
        fast(RecurrentExpansionRegressor, **{param: value}).fit(X, y)


def test_weight_decay_shrinks_the_weights():
    X, y = noisy_regression()
    kwargs = dict(n_rounds=1, max_epochs=30)
    plain = fast(RecurrentExpansionRegressor, **kwargs).fit(X, y)
    decayed = fast(RecurrentExpansionRegressor, weight_decay=0.1, **kwargs).fit(X, y)

    def norm(est):
        return sum(float(p.detach().norm()) for p in est.rounds_[0].nets[0].module_.parameters())

    assert norm(decayed) < norm(plain)


def test_stacked_continued_members_train_as_one_by_one():
    X, y = noisy_regression()
    est = fast(RecurrentExpansionRegressor, early_stopping=True, n_rounds=3, max_epochs=15)
    stacked = MultiverseRE(est, members=3, batched=True, random_state=0).fit(X, y)
    alone = MultiverseRE(est, members=3, batched=False, random_state=0).fit(X, y)
    assert all(type(n.module_) is ContinuedRound for n in stacked.rounds_[1].nets)
    for a, b in zip(stacked.history_, alone.history_):
        assert [m["epochs"] for m in a["members"]] == [m["epochs"] for m in b["members"]]
    np.testing.assert_allclose(stacked.predict(X), alone.predict(X), rtol=1e-4, atol=1e-4)


class _NoHead(torch.nn.Module):
    """A contract network without a ``head`` attribute."""

    def __init__(self, n_features, n_expansion, n_outputs):
        super().__init__()
        self.body = torch.nn.Linear(n_features + n_expansion, 4)
        self.out = torch.nn.Linear(4, n_outputs, bias=False)

    def features(self, X, Z=None):
        return torch.relu(self.body(torch.cat([X, Z], dim=1)))

    def forward(self, X, Z=None):
        return self.out(self.features(X, Z))


@pytest.mark.parametrize("make, gate", [
    (lambda: _NoHead(3, 4, 2), 0.0),  # no head: the gate starts at 0
    (lambda: MLPModule(3, 4, 2, (5,)), 1.0),  # a zeroed head, the gate at 1
])
def test_the_correction_starts_at_zero_with_or_without_a_head(make, gate):
    torch.manual_seed(0)
    module = ContinuedRound(make(), n_outputs=2)
    assert module.gate.tolist() == [gate, gate]
    X, Z = torch.randn(5, 3), torch.randn(5, 4)
    assert torch.equal(module(X, Z), Z[:, -2:])


def test_a_head_without_bias_is_zeroed():
    net = MLPModule(3, 4, 2, (5,))
    net.head = torch.nn.Linear(5, 2, bias=False)
    module = ContinuedRound(net, n_outputs=2)
    X, Z = torch.randn(5, 3), torch.randn(5, 4)
    assert torch.equal(module(X, Z), Z[:, -2:])


# ----------------------------------------------------------------------------
# expansion_noise: noise on the expansion a continued round's network reads


def _noisy_round(seed=0, noise=0.5):
    torch.manual_seed(seed)
    std = np.array([1.0, 2.0, 0.0, 1.0, 1.0], dtype=np.float32)  # column 2: constant, no noise
    module = build_continued(lambda a, b, c: MLPModule(a, b, c, (8,)), "identity", 4, 5, 2,
                             noise=noise, noise_std=std)
    torch.nn.init.normal_(module.network.head.weight)  # a correction that reads Z
    return module


def test_expansion_noise_only_in_training_and_never_on_the_base():
    torch.manual_seed(1)
    X, Z = torch.randn(16, 4), torch.randn(16, 5)
    module = _noisy_round()
    clean = _noisy_round(noise=0.0)
    clean.load_state_dict({k: v for k, v in module.state_dict().items() if k != "noise_std"})
    module.eval(), clean.eval()
    torch.testing.assert_close(module(X, Z), clean(X, Z), rtol=0, atol=0)
    module.train(), clean.train()
    noisy = module._network_expansion(Z)
    assert not torch.equal(noisy, Z)
    torch.testing.assert_close(noisy[:, 2], Z[:, 2], rtol=0, atol=0)  # a zero-std column
    ratio = ((noisy - Z).std(dim=0) / torch.tensor([1.0, 2.0, 1.0, 1.0, 1.0]))[[0, 1, 3, 4]]
    assert ((ratio > 0.25) & (ratio < 1.0)).all()  # noise * std, with 16 draws a column
    assert not torch.equal(module(X, Z), clean(X, Z))
    torch.testing.assert_close(module.base(Z), Z[:, -2:], rtol=0, atol=0)


def test_expansion_noise_is_seeded_by_the_build_and_pickles():
    Z = torch.randn(8, 5)
    a, b = _noisy_round(seed=3), _noisy_round(seed=3)
    a.train(), b.train()
    torch.testing.assert_close(a._network_expansion(Z), b._network_expansion(Z), rtol=0, atol=0)
    copy = pickle.loads(pickle.dumps(a))  # a fresh generator: the first draw again
    assert copy._noise_generator is None
    fresh = _noisy_round(seed=3).train()
    torch.testing.assert_close(copy._network_expansion(Z), fresh._network_expansion(Z),
                               rtol=0, atol=0)
    assert not torch.equal(_noisy_round(seed=4).train()._network_expansion(Z),
                           _noisy_round(seed=3).train()._network_expansion(Z))


@pytest.mark.parametrize("Estimator, data", [
    (RecurrentExpansionRegressor, noisy_regression),
    (RecurrentExpansionClassifier, noisy_classification),
])
def test_expansion_noise_estimator_deterministic_pickles_and_stages(Estimator, data):
    X, y = data(n=200)
    kwargs = dict(n_rounds=3, max_epochs=15, cv=3, expansion_noise=0.5)
    a = fast(Estimator, **kwargs).fit(X, y)
    b = fast(Estimator, **kwargs).fit(X, y)
    plain = fast(Estimator, **{**kwargs, "expansion_noise": 0.0}).fit(X, y)
    method = "predict" if Estimator is RecurrentExpansionRegressor else "predict_proba"
    np.testing.assert_array_equal(getattr(a, method)(X), getattr(b, method)(X))
    later = a.rounds_[1].nets
    assert all(type(n.module_) is ContinuedRound and n.module_.noise == 0.5 for n in later)
    # round 0 reads no expansion: the same as without noise; round 1 differs
    np.testing.assert_array_equal(next(getattr(a, "staged_" + method)(X)),
                                  next(getattr(plain, "staged_" + method)(X)))
    assert a.history_[1]["valid_loss"] != plain.history_[1]["valid_loss"]
    loaded = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(getattr(loaded, method)(X), getattr(a, method)(X))
    staged = list(getattr(a, "staged_" + method)(X))
    np.testing.assert_array_equal(staged[a.best_round_], getattr(a, method)(X))


def test_expansion_noise_needs_continued_rounds_and_is_not_negative(regression_data):
    X, y = regression_data
    with pytest.raises(ValueError, match="expansion_noise=0.5 needs round_init='previous'"):
        fast(RecurrentExpansionRegressor, expansion_noise=0.5, round_init="random").fit(X, y)
    with pytest.raises(InvalidParameterError, match="expansion_noise"):
        fast(RecurrentExpansionRegressor, expansion_noise=-0.1).fit(X, y)


def test_multiverse_members_with_expansion_noise_train_one_by_one():
    X, y = noisy_regression(n=150)
    est = fast(RecurrentExpansionRegressor, n_rounds=2, max_epochs=10, expansion_noise=0.3)
    mv = MultiverseRE(est, members=2, batched="auto", random_state=0).fit(X, y)
    assert all(n.module_.noise == 0.3 for n in mv.rounds_[1].nets)
    again = MultiverseRE(est, members=2, batched="auto", random_state=0).fit(X, y)
    np.testing.assert_array_equal(mv.predict(X), again.predict(X))


def test_batched_true_refuses_expansion_noise(regression_data):
    X, y = regression_data
    est = fast(RecurrentExpansionRegressor, n_rounds=2, max_epochs=2, expansion_noise=0.3)
    with pytest.raises(ValueError, match="batched=True cannot stack members with expansion_noise"):
        MultiverseRE(est, members=2, batched=True, random_state=0).fit(X, y)
