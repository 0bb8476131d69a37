import pickle
import re

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.utils import estimator_checks, get_tags

from sklearn_recursive import FeedbackSegmenter
from sklearn_recursive._feedback import UNet, foreground_dice
from sklearn_recursive.datasets import make_noisy_shapes

from .conftest import requires_cuda

# A tiny U-Net and one or two epochs: every fit here takes well under a second.
FAST = dict(
    n_steps=2,
    base_channels=4,
    depth=2,
    max_epochs=1,
    batch_size=8,
    lr=1e-2,
    device="cpu",
    random_state=0,
)


def fast(**params):
    return FeedbackSegmenter(**{**FAST, **params})


@pytest.fixture(scope="module")
def images():
    return make_noisy_shapes(12, size=(13, 11), sigma=0.5, random_state=0)


@pytest.fixture(scope="module")
def signals():
    return make_noisy_shapes(12, kind="signal", size=29, sigma=0.5, random_state=0)


@pytest.fixture(scope="module")
def fitted_images(images):
    return fast().fit(*images)


# ----------------------------------------------------------------------------
# Shapes


@pytest.mark.parametrize("kind", ["image", "signal"])
@pytest.mark.parametrize("channel_axis", [True, False])
def test_output_shapes(kind, channel_axis, images, signals):
    X, y = images if kind == "image" else signals
    if not channel_axis:
        X = X[:, 0]
    seg = fast().fit(X, y)
    assert seg.n_spatial_dims_ == (2 if kind == "image" else 1)
    assert seg.n_features_in_ == 1
    assert seg.predict(X).shape == y.shape
    proba = seg.predict_proba(X)
    assert proba.shape == (len(X), 2, *y.shape[1:])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    staged = list(seg.staged_predict_proba(X, n_steps=3))
    assert len(staged) == 3 and all(p.shape == proba.shape for p in staged)


@pytest.mark.parametrize("shape", [(8, 8), (13, 11), (16, 9), (17, 23)])
def test_unet_handles_odd_sizes(shape):
    net = UNet(3, 5, base_channels=4, depth=3, dim=2)
    assert net(torch.zeros(2, 3, *shape)).shape == (2, 5, *shape)
    net1 = UNet(2, 3, base_channels=4, depth=2, dim=1)
    assert net1(torch.zeros(2, 2, shape[1] + 4)).shape == (2, 3, shape[1] + 4)


def test_unet_has_no_batchnorm():
    net = fast().fit(*make_noisy_shapes(4, size=8, random_state=0)).module_
    kinds = {type(m).__name__ for m in net.modules()}
    assert "GroupNorm" in kinds
    assert not any("BatchNorm" in k for k in kinds)


def test_predict_on_another_image_size(fitted_images):
    X, _ = make_noisy_shapes(3, size=(20, 17), random_state=3)
    assert fitted_images.predict(X).shape == (3, 20, 17)


def test_multichannel_multiclass_arbitrary_labels():
    X, y = make_noisy_shapes(12, size=12, n_classes=3, n_shapes=2, random_state=0)
    X = np.concatenate([X, 1 - X], axis=1)  # two channels
    labels = np.array([0, 5, 9])
    y = labels[y]
    seg = fast().fit(X, y)
    np.testing.assert_array_equal(seg.classes_, labels)
    assert seg.n_features_in_ == 2
    assert seg.predict_proba(X).shape == (12, 3, 12, 12)
    assert set(np.unique(seg.predict(X))) <= set(labels)
    assert 0.0 <= seg.score(X, y) <= 1.0


# ----------------------------------------------------------------------------
# The loop


def test_feedforward_baseline_runs_once(images):
    X, y = images
    seg = fast(feedback=False).fit(X, y)
    assert seg.module_.n_feedback == 0
    assert seg.module_.unet.down[0].layers[0].in_channels == 1
    assert len(list(seg.staged_predict_proba(X, n_steps=4))) == 1
    np.testing.assert_array_equal(seg.predict_proba(X), seg.predict_proba(X, n_steps=7))


def test_feedback_unet_sees_input_and_feedback(fitted_images):
    module = fitted_images.module_
    assert module.n_feedback == 2  # as many as classes by default
    assert module.unet.down[0].layers[0].in_channels == 1 + 2
    assert module.unet.head.out_channels == 2 + 2


@pytest.mark.parametrize(
    "params",
    [
        dict(softmax_feedback=False),
        dict(decay=False),
        dict(softmax_feedback=False, decay=False),
        dict(feedback_channels=3),
        dict(feedback_channels=1, softmax_feedback=False),
        dict(tau=0.5),
        dict(train_steps=3),
        dict(train_steps=(1, 3)),
        dict(train_steps=(2, 4), backprop_steps=1),
        dict(backprop_steps=1),
        dict(feedback=False),
    ],
)
def test_every_flag_fits_and_predicts(params, images):
    X, y = images
    seg = fast(**params).fit(X, y)
    proba = seg.predict_proba(X, n_steps=3)
    assert np.isfinite(proba).all()
    assert np.isfinite(seg.history_).all() and len(seg.history_) == 1


def test_flags_change_the_model(images):
    X, y = images
    base = fast().fit(X, y).predict_proba(X)
    for params in [dict(softmax_feedback=False), dict(decay=False), dict(feedback=False)]:
        assert not np.allclose(fast(**params).fit(X, y).predict_proba(X), base), params


def test_decay_weights():
    module = fast(tau=2.0).fit(*make_noisy_shapes(4, size=8, random_state=0)).module_
    assert module.step_weight(1) == pytest.approx(np.exp(-0.5))
    assert module.step_weight(4) == pytest.approx(np.exp(-2.0))
    module.decay = False
    assert module.step_weight(4) == 1.0


@pytest.mark.parametrize(
    "train_steps, backprop_steps, expected",
    [(None, None, {2}), (4, None, {4}), (4, 2, {2}), ((1, 3), None, {1, 2, 3}), ((2, 5), 1, {1})],
)
def test_training_forward_returns_the_gradient_steps(train_steps, backprop_steps, expected):
    seg = fast(train_steps=train_steps, backprop_steps=backprop_steps)
    module = seg.fit(*make_noisy_shapes(4, size=8, random_state=0)).module_
    module.train()
    x = torch.rand(2, 1, 8, 8)
    seen = set()
    for _ in range(30):
        out = module(x)
        assert out.requires_grad and out.shape[1:] == (2, 2, 8, 8)
        seen.add(out.shape[0])
    assert seen == expected


def test_no_gradient_through_the_early_steps():
    # Only the last step carries gradient: its input state is a constant, so the
    # gradient equals that of one U-Net call on the detached state.
    seg = fast(train_steps=3, backprop_steps=1)
    module = seg.fit(*make_noisy_shapes(4, size=8, random_state=0)).module_
    module.train()
    x = torch.rand(2, 1, 8, 8, requires_grad=True)
    module(x).sum().backward()
    grad_truncated = x.grad.clone()
    with torch.no_grad():
        h = module.init_state(x)
        for t in (1, 2):
            h = h + module.update(x, h, t)
    x.grad = None
    (h + module.update(x, h, 3))[:, :2].sum().backward()
    torch.testing.assert_close(x.grad, grad_truncated)


def test_eval_forward_runs_every_step(fitted_images):
    module = fitted_images.module_
    out = module(torch.rand(3, 1, 13, 11), n_steps=4)
    assert out.shape == (4, 3, 2, 13, 11)


def test_more_steps_than_trained_and_staged_agree(images, fitted_images):
    X, _ = images
    staged = list(fitted_images.staged_predict_proba(X, n_steps=6))
    assert len(staged) == 6
    for k in (1, 2, 6):
        np.testing.assert_allclose(
            staged[k - 1], fitted_images.predict_proba(X, n_steps=k), rtol=1e-5, atol=1e-6
        )
    assert not np.allclose(staged[0], staged[-1])
    # default: n_steps
    np.testing.assert_allclose(staged[1], fitted_images.predict_proba(X), rtol=1e-5, atol=1e-6)


def test_tol_halts_early(images, fitted_images):
    X, _ = images
    seg = clone(fitted_images)
    seg.__dict__.update({k: v for k, v in fitted_images.__dict__.items() if k.endswith("_")})
    seg.set_params(tol=1e9)
    halted = seg.predict_proba(X, n_steps=5)
    np.testing.assert_array_equal(seg.n_steps_used_, np.ones(len(X)))
    np.testing.assert_allclose(halted, fitted_images.predict_proba(X, n_steps=1), rtol=1e-5)
    seg.set_params(tol=1e-12)
    seg.predict(X, n_steps=5)
    np.testing.assert_array_equal(seg.n_steps_used_, np.full(len(X), 5))
    # a tolerance in between stops some samples at some step of 1..n_steps
    seg.set_params(tol=1.0)
    seg.predict(X, n_steps=5)
    assert ((seg.n_steps_used_ >= 1) & (seg.n_steps_used_ <= 5)).all()


def test_no_tol_leaves_no_step_count(images, fitted_images):
    fitted_images.predict(images[0])
    assert not hasattr(fitted_images, "n_steps_used_")


# ----------------------------------------------------------------------------
# Score


def test_foreground_dice():
    truth = np.array([[0, 1, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0], [1, 1, 2, 2]])
    pred = np.array([[0, 1, 0, 0], [0, 0, 0, 0], [0, 1, 0, 0], [1, 1, 0, 2]])
    scores = foreground_dice(truth, pred, 3)
    # 2*1/(1+2); empty truth and prediction; foreground predicted on empty truth;
    # class 1 perfect, class 2 2*1/(1+2)
    np.testing.assert_allclose(scores, [2 / 3, 1.0, 0.0, (1 + 2 / 3) / 2])


def test_score_is_mean_foreground_dice(images, fitted_images):
    X, y = images
    expected = foreground_dice(y, fitted_images.predict(X), 2).mean()
    assert fitted_images.score(X, y) == pytest.approx(expected)


@pytest.mark.parametrize("feedback", [True, False])
def test_learns_clean_shapes(feedback):
    X, y = make_noisy_shapes(48, size=12, sigma=0.2, random_state=0)
    X_test, y_test = make_noisy_shapes(32, size=12, sigma=0.2, random_state=1)
    seg = fast(feedback=feedback, max_epochs=8).fit(X, y)
    # chance (all foreground) is about 0.2; an untrained net is far below 0.6
    assert seg.score(X_test, y_test) > 0.6
    assert seg.history_[-1] < seg.history_[0]


def test_learns_clean_signals():
    X, y = make_noisy_shapes(48, kind="signal", size=32, sigma=0.2, random_state=0)
    X_test, y_test = make_noisy_shapes(32, kind="signal", size=32, sigma=0.2, random_state=1)
    seg = fast(max_epochs=8).fit(X, y)
    assert seg.score(X_test, y_test) > 0.6


# ----------------------------------------------------------------------------
# scikit-learn behaviour


def test_same_random_state_same_predictions(images):
    X, y = images
    params = dict(train_steps=(1, 3), max_epochs=2)
    a = fast(**params).fit(X, y).predict_proba(X)
    b = fast(**params).fit(X, y).predict_proba(X)
    c = fast(random_state=1, **params).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_fit_does_not_touch_global_torch_rng(images):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    fast().fit(*images)
    torch.testing.assert_close(torch.rand(3), expected)


def test_clone_get_set_params():
    seg = fast(train_steps=(1, 4), tol=0.1)
    params = seg.get_params()
    assert params["train_steps"] == (1, 4) and params["n_steps"] == 2
    other = clone(seg).set_params(n_steps=7, feedback=False)
    assert other.n_steps == 7 and not other.feedback and seg.n_steps == 2
    assert clone(seg).get_params() == params


def test_pickle_round_trip(images, fitted_images):
    X, y = images
    loaded = pickle.loads(pickle.dumps(fitted_images))
    np.testing.assert_array_equal(loaded.predict_proba(X), fitted_images.predict_proba(X))
    assert loaded.score(X, y) == fitted_images.score(X, y)


def test_pickle_from_cuda_loads_on_cpu(images, fitted_images, monkeypatch):
    # simulate a model fitted on CUDA arriving on a machine without one
    state = {**pickle.loads(pickle.dumps(fitted_images)).__getstate__(), "device_": "cuda:0"}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    loaded = FeedbackSegmenter.__new__(FeedbackSegmenter)
    with pytest.warns(UserWarning, match="fitted on 'cuda:0'.*predict on the CPU"):
        loaded.__setstate__(state)
    assert loaded.device_ == "cpu"
    np.testing.assert_array_equal(
        loaded.predict_proba(images[0]), fitted_images.predict_proba(images[0])
    )


@requires_cuda
def test_cuda_fit_predict_pickle(images):
    X, y = images
    seg = fast(device="cuda").fit(X, y)
    assert next(seg.module_.parameters()).is_cuda
    proba = seg.predict_proba(X)
    loaded = pickle.loads(pickle.dumps(seg))
    assert next(loaded.module_.parameters()).is_cuda
    np.testing.assert_allclose(loaded.predict_proba(X), proba, rtol=1e-5, atol=1e-6)
    cpu = fast().fit(X, y).predict_proba(X)
    np.testing.assert_allclose(proba, cpu, atol=1e-3)


def test_grid_search_over_n_steps(images):
    X, y = images
    search = GridSearchCV(fast(), {"n_steps": [1, 3]}, cv=2).fit(X, y)
    assert search.best_params_["n_steps"] in (1, 3)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.predict(X).shape == y.shape


def test_generic_input_forms(images, tmp_path):
    # what check_estimator's table-based checks test, on images
    X, y = images
    expected = fast().fit(X, y).predict_proba(X)
    as_float64 = fast().fit(X.astype(np.float64), y.astype(np.int32)).predict_proba(X)
    np.testing.assert_allclose(as_float64, expected, rtol=1e-5, atol=1e-6)
    for labels in (y.astype(bool), y.astype(np.float64), y.astype(np.uint8)):
        np.testing.assert_array_equal(fast().fit(X, labels).predict_proba(X), expected)
    path = tmp_path / "X.npy"
    np.save(path, X)
    readonly = np.load(path, mmap_mode="r")
    seg = fast().fit(readonly, y)
    np.testing.assert_array_equal(seg.predict_proba(readonly), expected)
    np.testing.assert_array_equal(fast().fit(np.asfortranarray(X), y).predict_proba(X), expected)
    np.testing.assert_array_equal(seg.predict_proba(X.tolist()), expected)


def test_fit_idempotent_and_predict_leaves_state(images):
    X, y = images
    seg = fast().fit(X, y)
    first = seg.predict_proba(X)
    before = dict(seg.__dict__)
    seg.predict(X)
    seg.score(X, y)
    list(seg.staged_predict_proba(X))
    assert seg.__dict__.keys() == before.keys()
    np.testing.assert_array_equal(seg.fit(X, y).predict_proba(X), first)


def test_predictions_are_per_sample(images, fitted_images):
    # GroupNorm normalises each sample alone: batching and order do not matter
    X, _ = images
    full = fitted_images.predict_proba(X)
    np.testing.assert_allclose(fitted_images.predict_proba(X[:5]), full[:5], rtol=1e-5, atol=1e-6)
    order = np.arange(len(X))[::-1]
    np.testing.assert_allclose(fitted_images.predict_proba(X[order]), full[order], rtol=1e-5)


def test_tags():
    tags = get_tags(FeedbackSegmenter())
    assert not tags.input_tags.two_d_array
    assert tags.input_tags.three_d_array
    assert not tags.input_tags.allow_nan
    assert tags.target_tags.required


# scikit-learn's checks that need no table data; the ones that fit on 2-D X
# are covered on images by the tests above (see docs/feedback.md for the list)
SKLEARN_CHECKS_WITHOUT_DATA = [
    "check_estimator_cloneable",
    "check_estimator_repr",
    "check_no_attributes_set_in_init",
    "check_parameters_default_constructible",
    "check_get_params_invariance",
    "check_set_params",
    "check_do_not_raise_errors_in_init_or_set_params",
    "check_valid_tag_types",
    "check_estimator_tags_renamed",
    "check_mixin_order",
    "check_param_validation",
]


@pytest.mark.parametrize("check", SKLEARN_CHECKS_WITHOUT_DATA)
def test_sklearn_checks_that_apply(check):
    getattr(estimator_checks, check)("FeedbackSegmenter", fast())


def test_check_estimator_sees_honest_tags():
    # with two_d_array=False scikit-learn runs only the clone check and says why
    with pytest.warns(UserWarning, match="Can't test estimator FeedbackSegmenter"):
        results = estimator_checks.check_estimator(fast(), on_fail=None)
    assert [r["status"] for r in results] == ["passed"]


def test_verbose_prints_epochs(images, capsys):
    fast(verbose=1, max_epochs=2).fit(*images)
    assert "train_loss" in capsys.readouterr().out


# ----------------------------------------------------------------------------
# Bad input


def _nan_images(images):
    X = images[0].copy()
    X[0, 0, 3, 4] = np.nan
    return X


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda X, y: (X, y[:, :12]), r"y must hold one label per pixel, of shape \(12, 13, 11\)"),
        (lambda X, y: (X, y[:10]), r"of shape \(12, 13, 11\).*got y of shape \(10, 13, 11\)"),
        (lambda X, y: (X, y + 0.5), "integer class labels; got non-integer values"),
        (lambda X, y: (X, y.astype(str)), "integer class labels; got dtype <U"),
        (lambda X, y: (X, y - 1), "non-negative integer class labels; got -1"),
        (lambda X, y: (X, np.zeros_like(y)), "at least 2 classes.*only label 0"),
        (lambda X, y: (X[..., None], y), r"X must be images .*got a 5-D array"),
        (lambda X, y: (X[:, 0, 0], y), r"X must be images .*got a 2-D array"),
        (lambda X, y: (X, y[:, 0, 0]), r"y must be label masks .*got a 1-D array"),
        (lambda X, y: (X, y[..., None]), r"y must be label masks .*got a 4-D array"),
        (lambda X, y: (_nan_images((X, y)), y), "Input X contains NaN"),
        (lambda X, y: (X[:1], y[:1]), "at least 2 samples; got n_samples=1"),
        (lambda X, y: (X[:0], y[:0]), "Found array with 0 sample"),
        (lambda X, y: (X, None), "requires y to be passed"),
    ],
)
def test_bad_fit_input(make, match, images):
    with pytest.raises(ValueError, match=match):
        fast().fit(*make(*images))


@pytest.mark.parametrize("kind", ["image", "signal"])
def test_channels_last_gets_a_hint(kind, images, signals):
    X, y = images if kind == "image" else signals
    X3 = np.concatenate([X] * 3, axis=1)
    channels_last = np.moveaxis(X3, 1, -1)
    axes = (0, 3, 1, 2) if kind == "image" else (0, 2, 1)
    with pytest.raises(ValueError, match=rf"channels-last.*X\.transpose{re.escape(str(axes))}"):
        fast().fit(channels_last, y)
    seg = fast().fit(channels_last.transpose(axes), y)
    assert seg.n_features_in_ == 3
    hint = rf"on the last axis, use X\.transpose{re.escape(str(axes))}"
    with pytest.raises(ValueError, match=hint):
        seg.predict(channels_last)


def test_signal_length_must_match_labels(signals):
    X, y = signals
    with pytest.raises(ValueError, match=r"shape \(12, 29\) for X of shape \(12, 1, 29\)"):
        fast().fit(X, y[:, :20])


def test_too_small_for_depth():
    X, y = make_noisy_shapes(4, size=6, random_state=0)
    with pytest.raises(ValueError, match=r"too small for depth=3.*2\*\*depth = 8"):
        fast(depth=3).fit(X, y)


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(train_steps=(3, 1)), r"train_steps must be .*got \(3, 1\)"),
        (dict(train_steps=(0, 2)), "1 <= low <= high"),
        (dict(train_steps=(1, 2, 3)), "tuple \\(low, high\\)"),
        (dict(feedback_channels=1), "feedback_channels=1 with softmax_feedback=True"),
        (dict(device="tpu:x"), "device must be"),
    ],
)
def test_bad_parameters(params, match, images):
    with pytest.raises(ValueError, match=match):
        fast(**params).fit(*images)


def test_invalid_parameter_type(images):
    with pytest.raises(ValueError, match="n_steps"):
        fast(n_steps=0).fit(*images)


def test_bad_predict_input(images, fitted_images, signals):
    X, y = images
    with pytest.raises(NotFittedError):
        FeedbackSegmenter().predict(X)
    with pytest.raises(ValueError, match="Input X contains NaN"):
        fitted_images.predict(_nan_images(images))
    with pytest.raises(ValueError, match=r"X has 2 channels, but FeedbackSegmenter .* on 1"):
        fitted_images.predict(np.concatenate([X, X], axis=1))
    with pytest.raises(ValueError, match=r"X must be images .*got a 2-D array of shape \(12, 29\)"):
        fitted_images.predict(signals[0][:, 0])
    # a one-channel signal batch reads as images of height 1
    with pytest.raises(ValueError, match=r"spatial shape \(1, 29\), too small for depth=2"):
        fitted_images.predict(signals[0])
    with pytest.raises(ValueError, match="n_steps must be a positive int"):
        fitted_images.predict(X, n_steps=0)
    with pytest.raises(ValueError, match="n_steps must be a positive int"):
        fitted_images.staged_predict_proba(X, n_steps=-1)  # at the call, not when iterated
    with pytest.raises(ValueError, match=r"labels \[7\] not seen in fit.*\[0, 1\]"):
        fitted_images.score(X, np.where(y == 1, 7, y))
    with pytest.raises(ValueError, match="y must hold one label per pixel"):
        fitted_images.score(X, y[:, :5])
