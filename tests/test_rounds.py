"""The round loop's pure parts: member selection, weighting, early stopping over
rounds, and how a round's members are resolved and grouped into jobs (no training)."""

import re
from functools import partial

import numpy as np
import pytest

from sklearn_recursive import RecurrentExpansionClassifier
from sklearn_recursive._members import (
    PRESETS,
    MemberSpec,
    RoundPlan,
    mlp_spec,
    resolve_members,
)
from sklearn_recursive._modules import BUILTIN_MODULES
from sklearn_recursive._rounds import RoundStopper, member_weights, select_members


def records(valid=None, train=None, aulc=None):
    """Member records with the given losses (one list per key, same length)."""
    n = len(next(v for v in (valid, train, aulc) if v is not None))
    keys = {"valid_loss": valid, "train_loss": train, "aulc": aulc}
    return [{key: (np.nan if values is None else values[i]) for key, values in keys.items()}
            for i in range(n)]


# ----------------------------------------------------------------------------
# select_members


@pytest.mark.parametrize(
    "valid, train, n_select, has_valid, expected",
    [
        ([3.0, 1.0, 2.0], [1.0, 2.0, 3.0], None, True, [0, 1, 2]),  # None keeps all
        ([3.0, 1.0, 2.0], [1.0, 2.0, 3.0], 3, True, [0, 1, 2]),  # as many as members
        ([3.0, 1.0, 2.0], [1.0, 2.0, 3.0], 5, True, [0, 1, 2]),  # more than members
        ([3.0, 1.0, 2.0], [1.0, 2.0, 3.0], 1, True, [1]),  # lowest validation loss
        ([3.0, 1.0, 2.0], [1.0, 2.0, 3.0], 1, False, [0]),  # lowest training loss
        ([3.0, 1.0, 2.0], [1.0, 2.0, 3.0], 2, True, [1, 2]),
        ([3.0, 1.0, 2.0], [1.0, 2.0, 3.0], 2, False, [0, 1]),
        ([1.0, 0.5, 2.0, 0.1], None, 2, True, [1, 3]),  # in member order, not loss order
        ([1.0, 1.0, 1.0], None, 2, True, [0, 1]),  # ties: the earlier members
        (None, [2.0, np.nan, 1.0], 2, False, [0, 2]),  # NaN loss: last
    ],
)
def test_select_members(valid, train, n_select, has_valid, expected):
    selected = select_members(records(valid, train), n_select, has_valid)
    assert selected == expected
    assert all(type(i) is int for i in selected)


# ----------------------------------------------------------------------------
# member_weights


@pytest.mark.parametrize(
    "weighting, valid, train, aulc, has_valid, expected",
    [
        ("uniform", [1.0, 2.0, 4.0], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0], True, [1, 1, 1]),
        ("uniform", None, [1.0, 9.0], None, False, [1, 1]),
        # inverse validation loss
        ("score", [1.0, 2.0, 4.0], [4.0, 2.0, 1.0], [1.0, 1.0, 1.0], True, [4, 2, 1]),
        # without validation rows: inverse loss on the training rows
        ("score", None, [4.0, 2.0, 1.0], [1.0, 1.0, 1.0], False, [1, 2, 4]),
        # inverse area under the learning curve, whatever the losses
        ("aulc", [1.0, 2.0, 4.0], [4.0, 2.0, 1.0], [2.0, 1.0, 1.0], True, [1, 2, 2]),
        ("aulc", None, [4.0, 2.0, 1.0], [2.0, 1.0, 1.0], False, [1, 2, 2]),
        # a zero loss is clipped, not divided by: it takes (almost) all the weight
        ("score", [0.0, 1.0], None, None, True, [1e12, 1]),
    ],
)
def test_member_weights(weighting, valid, train, aulc, has_valid, expected):
    weights = member_weights(weighting, records(valid, train, aulc), has_valid)
    expected = np.asarray(expected, dtype=float)
    np.testing.assert_allclose(weights, expected / expected.sum())
    assert weights.sum() == pytest.approx(1.0)


def test_member_weights_of_one_member_is_one():
    for weighting in ("uniform", "score", "aulc"):
        weights = member_weights(weighting, records([0.3], [0.2], [0.1]), True)
        np.testing.assert_array_equal(weights, [1.0])


# ----------------------------------------------------------------------------
# RoundStopper


@pytest.mark.parametrize(
    "losses, patience, tol, stops, best_round",
    [
        ([3.0, 2.0, 1.0], 2, 0.0, [False, False, False], 2),  # always improving
        ([1.0, 2.0, 3.0], 2, 0.0, [False, False, True], 0),  # two rounds without improving
        ([1.0, 2.0, 3.0], 3, 0.0, [False, False, False], 0),  # patience not yet spent
        ([1.0, 1.0], 1, 0.0, [False, True], 0),  # equal is not better
        # an improvement resets the count of stale rounds
        ([1.0, 2.0, 0.5, 0.6, 0.7], 2, 0.0, [False, False, False, False, True], 2),
        # tol: improvements of at most tol do not count
        ([1.0, 0.95, 0.9], 2, 0.1, [False, False, True], 0),
        ([1.0, 0.95, 0.9], 2, 0.0, [False, False, False], 2),
        ([1.0, 0.85, 0.8], 2, 0.1, [False, False, False], 1),
        # NaN: no validation rows; never stops and the last round is the best
        ([np.nan, np.nan, np.nan], 1, 0.0, [False, False, False], 2),
    ],
)
def test_round_stopper(losses, patience, tol, stops, best_round):
    stopper = RoundStopper(patience, tol)
    assert [stopper.step(loss) for loss in losses] == stops
    assert stopper.best_round == best_round
    assert stopper.rounds == len(losses)


def test_round_stopper_keeps_best_loss():
    stopper = RoundStopper(patience=5, tol=0.0)
    for loss in (2.0, 0.5, 0.7):
        stopper.step(loss)
    assert stopper.best_loss == 0.5
    assert stopper.stale == 1


# ----------------------------------------------------------------------------
# RoundPlan: resolved, check, groups


def build(n_features, n_expansion, n_outputs):  # a stand-in module callable
    raise AssertionError("not built in these tests")


def specs(*keys):
    """One MemberSpec per stack key (None: cannot be stacked), named m0, m1, ..."""
    return [MemberSpec(f"m{i}", build, key) for i, key in enumerate(keys)]


MIXED = specs("a", None, "a", "b", "b", "c")  # two stackable groups, two loners


@pytest.mark.parametrize(
    "batched, folds, expected",
    [
        ("auto", None, [[0, 2], [3, 4], [1], [5]]),  # stacked groups first
        (True, None, [[0, 2], [3, 4], [1], [5]]),
        (False, None, [[0], [1], [2], [3], [4], [5]]),  # one job per member
        # folds: the same groups, each member's fold nets in its group's stack
        ("auto", [("train", "held out")], [[0, 2], [3, 4], [1], [5]]),
        (True, [("train", "held out")], [[0, 2], [3, 4], [1], [5]]),
    ],
)
def test_groups(batched, folds, expected):
    plan = RoundPlan(batched=batched, specs=MIXED)
    assert plan.groups(folds) == expected
    assert sorted(i for group in expected for i in group) == list(range(len(MIXED)))


def test_groups_without_stackable_members():
    plan = RoundPlan(batched="auto", specs=specs(None, "a", "b"))
    assert plan.groups(None) == [[0], [1], [2]]


@pytest.mark.parametrize(
    "batched, member_keys, folds",
    [
        (True, ("a", "a"), None),
        (True, ("a", "a"), [("train", "held out")]),
        ("auto", ("a", "a"), [("train", "held out")]),
        ("auto", (None, "b"), None),
        (False, ("a", "a"), [("train", "held out")]),
    ],
)
def test_check_accepts(batched, member_keys, folds):
    RoundPlan(batched=batched, specs=specs(*member_keys)).check(folds)


@pytest.mark.parametrize(
    "member_keys, folds, match",
    [
        (("a", "b", None), None,
         r"batched=True needs at least two members .* the members are \['m0', 'm1', 'm2'\]"),
    ],
)
def test_check_rejects_batched_true(member_keys, folds, match):
    with pytest.raises(ValueError, match=match):
        RoundPlan(batched=True, specs=specs(*member_keys)).check(folds)


DEFAULT = mlp_spec((16,))


def test_resolved_sets_specs_and_leaves_the_plan():
    plan = RoundPlan(members=["mlp", "cnn"], n_select=2)
    resolved = plan.resolved(DEFAULT, (8,))
    assert [spec.name for spec in resolved.specs] == ["mlp", "cnn"]
    assert resolved.n_select == 2 and resolved.members == ["mlp", "cnn"]
    assert plan.specs is None
    assert RoundPlan().resolved(DEFAULT, (8,)).specs == [DEFAULT]


@pytest.mark.parametrize(
    "members, n_select, count",
    [(None, 2, 1), (2, 3, 2), (["mlp", "gru", "cnn"], 4, 3)],
)
def test_resolved_rejects_n_select_above_the_members(members, n_select, count):
    with pytest.raises(ValueError, match=rf"n_select={n_select} is larger than the number of "
                                         rf"members \({count}\); use n_select <= {count} or None"):
        RoundPlan(members=members, n_select=n_select).resolved(DEFAULT, (8,))


# ----------------------------------------------------------------------------
# resolve_members


def my_net(n_features, n_expansion, n_outputs, width=4):
    raise AssertionError("not built in these tests")


class NetFactory:
    def __call__(self, n_features, n_expansion, n_outputs):
        raise AssertionError("not built in these tests")


def test_none_is_the_default_spec():
    assert resolve_members(None, DEFAULT, (8,)) == [DEFAULT]


def test_int_is_k_copies_of_the_default():
    out = resolve_members(3, DEFAULT, (8,))
    assert [spec.name for spec in out] == ["mlp_0", "mlp_1", "mlp_2"]
    assert all(spec.build is DEFAULT.build and spec.stack_key == DEFAULT.stack_key
               for spec in out)


def test_names_are_built_in_architectures():
    out = resolve_members(list(BUILTIN_MODULES), DEFAULT, (8, 4))
    assert [spec.name for spec in out] == list(BUILTIN_MODULES)
    mlp = out[list(BUILTIN_MODULES).index("mlp")]
    assert mlp.stack_key == ("mlp", (8, 4))  # "mlp" takes hidden_layer_sizes, not the default's
    assert mlp.build.keywords == {"hidden_layer_sizes": (8, 4)}
    others = [spec for spec in out if spec.name != "mlp"]
    assert all(spec.stack_key is None for spec in others)
    assert all(spec.build is BUILTIN_MODULES[spec.name] for spec in others)


@pytest.mark.parametrize(
    "members, names",
    [
        ([my_net], ["my_net"]),
        ([partial(my_net, width=8)], ["my_net"]),  # a partial: its function's name
        ([NetFactory()], ["NetFactory"]),  # no __name__: its type's name
        ([("custom", my_net)], ["custom"]),
        ([("wide", "mlp"), "mlp"], ["wide", "mlp"]),
        (["mlp", "mlp", "cnn"], ["mlp_0", "mlp_1", "cnn"]),  # duplicates numbered
        (["cnn", "mlp", "cnn", "cnn"], ["cnn_0", "mlp", "cnn_1", "cnn_2"]),
        ([("a", "mlp"), ("a", my_net)], ["a_0", "a_1"]),
        ([my_net, my_net], ["my_net_0", "my_net_1"]),
    ],
)
def test_member_names(members, names):
    out = resolve_members(members, DEFAULT, (8,))
    assert [spec.name for spec in out] == names


def test_timeseries_preset_expands_to_its_architectures():
    out = resolve_members("timeseries", DEFAULT, (8,))
    assert PRESETS["timeseries"] == ("rocket", "rocket", "rocket")
    assert [spec.name for spec in out] == ["rocket_0", "rocket_1", "rocket_2"]
    built = [type(spec.build((2, 16), 3, 4)).__name__ for spec in out]
    assert built == ["RocketModule"] * 3
    assert all(spec.stack_key is None for spec in out)


def test_callables_and_pairs_keep_their_build():
    factory = NetFactory()
    out = resolve_members([my_net, ("f", factory), ("wide", "mlp")], DEFAULT, (32,))
    assert out[0].build is my_net and out[0].stack_key is None
    assert out[1].build is factory and out[1].stack_key is None
    assert out[2].stack_key == ("mlp", (32,))  # a renamed "mlp" can still be stacked
    # renaming duplicates keeps build and stack_key
    a, b = resolve_members(["mlp", "mlp"], DEFAULT, (32,))
    assert a.stack_key == b.stack_key == ("mlp", (32,))


@pytest.mark.parametrize(
    "members, match",
    [
        ("mlp", r"members must be an int >= 1, a preset \('timeseries'\) or a non-empty list "
                r"of architectures .* got 'mlp'"),
        ([], r"members must be an int >= 1, a preset .* or a non-empty list .* got \[\]"),
        (2.5, r"members must be an int >= 1, a preset .* or a non-empty list .* got 2\.5"),
        ([("a",)], r"members\[0\] must be a name, a module callable or a \(name, spec\) pair "
                   r"with a str name; got \('a',\)"),
        (["mlp", (1, "mlp")], r"members\[1\] must be a name, .* with a str name; got \(1, 'mlp'\)"),
        ([("a", "mlp", "x")], r"members\[0\] must be a name, .* got \('a', 'mlp', 'x'\)"),
        (["mlp", "nope"], r"members\[1\]: unknown architecture 'nope'; the built-in ones are "
                          + re.escape(str(sorted(BUILTIN_MODULES)))),
        ([("a", "nope")], r"members\[0\]: unknown architecture 'nope'"),
        ([42], r"members\[0\] must be an architecture name, a module callable "
               r"module\(n_features, n_expansion, n_outputs\) or a \(name, spec\) pair; got 42"),
        ([("a", 42)], r"members\[0\] must be an architecture name, .* got 42"),
    ],
)
def test_bad_members(members, match):
    with pytest.raises(ValueError, match=match):
        resolve_members(members, DEFAULT, (8,))


def test_an_infinite_validation_loss_is_not_the_best_round():
    stopper = RoundStopper(patience=5, tol=0.0)
    for loss in [1.0, np.inf, 2.0]:
        stopper.step(loss)
    assert stopper.best_round == 0


def test_numbered_duplicates_do_not_take_a_given_name():
    specs = resolve_members(["mlp", ("mlp_0", "cnn"), "mlp"], mlp_spec((8,)), (8,))
    names = [spec.name for spec in specs]
    assert len(set(names)) == 3 and names[1] == "mlp_0"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weighted", [False, True])
def test_classifier_round_loss_and_score_are_scikit_learns(dtype, weighted):
    # the rounds' loss and accuracy skip scikit-learn's validation; same values
    from sklearn.metrics import accuracy_score, log_loss

    rng = np.random.default_rng(0)
    yhat = rng.dirichlet(np.ones(4), size=50).astype(dtype)
    yhat[:5] = np.eye(4, dtype=dtype)[[1, 2, 3, 0, 1]]  # confident misses: clipped
    y = rng.integers(0, 4, size=50)
    w = rng.uniform(0.1, 2.0, size=50) if weighted else None
    clf = RecurrentExpansionClassifier()
    expected = log_loss(y, yhat, labels=np.arange(4), sample_weight=w)
    assert clf._round_loss(y, yhat, w) == pytest.approx(expected, rel=1e-12)
    assert clf._round_score(y, yhat, w) == accuracy_score(y, yhat.argmax(1), sample_weight=w)


@pytest.mark.parametrize("weighted", [False, True])
def test_round_loss_is_the_mean_of_the_row_losses(weighted):
    # one definition of a round's loss: the (weighted) mean of the per-row losses that
    # the one-standard-error rule reads; for regressors scikit-learn's mean squared error
    from sklearn.metrics import mean_squared_error

    from sklearn_recursive import RecurrentExpansionRegressor

    rng = np.random.default_rng(1)
    y, yhat = rng.normal(size=(40, 3)), rng.normal(size=(40, 3))
    w = rng.uniform(0.1, 2.0, size=40) if weighted else None
    reg = RecurrentExpansionRegressor()
    assert reg._round_loss(y, yhat, w) == pytest.approx(
        mean_squared_error(y, yhat, sample_weight=w), rel=1e-12)
    assert reg._row_loss(y, yhat).shape == (40,)
    labels, proba = rng.integers(0, 3, size=40), rng.dirichlet(np.ones(3), size=40)
    clf = RecurrentExpansionClassifier()
    assert clf._round_loss(labels, proba, w) == pytest.approx(
        np.average(clf._row_loss(labels, proba), weights=w), rel=1e-12)
