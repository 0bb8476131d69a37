import pickle
import re
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.utils import estimator_checks, get_tags

import sklearn_recursive._feedback as feedback_module
from sklearn_recursive import FeedbackSegmenter
from sklearn_recursive._feedback_nets import StepwiseCrossEntropy, UNet
from sklearn_recursive._training import weighted_mean
from sklearn_recursive.datasets import make_noisy_shapes
from sklearn_recursive.metrics import foreground_dice

from .conftest import fast, requires_cuda

# One or two epochs of a tiny U-Net often predict only background: that warning
# is tested on its own below.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def images():
    return make_noisy_shapes(12, size=(13, 11), sigma=0.5, random_state=0)


@pytest.fixture(scope="module")
def signals():
    return make_noisy_shapes(12, kind="signal", size=29, sigma=0.5, random_state=0)


@pytest.fixture(scope="module")
def fitted_images(images):
    return fast(FeedbackSegmenter).fit(*images)


# ----------------------------------------------------------------------------
# Shapes


@pytest.mark.parametrize("kind", ["image", "signal"])
@pytest.mark.parametrize("channel_axis", [True, False])
def test_output_shapes(kind, channel_axis, images, signals):
    X, y = images if kind == "image" else signals
    if not channel_axis:
        X = X[:, 0]
    seg = fast(FeedbackSegmenter).fit(X, y)
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
    net = fast(FeedbackSegmenter).fit(*make_noisy_shapes(4, size=8, random_state=0)).module_
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
    seg = fast(FeedbackSegmenter).fit(X, y)
    np.testing.assert_array_equal(seg.classes_, labels)
    assert seg.n_features_in_ == 2
    assert seg.predict_proba(X).shape == (12, 3, 12, 12)
    assert set(np.unique(seg.predict(X))) <= set(labels)
    assert 0.0 <= seg.score(X, y) <= 1.0


# ----------------------------------------------------------------------------
# The loop


def test_feedforward_baseline_runs_once(images):
    X, y = images
    seg = fast(FeedbackSegmenter, feedback=False).fit(X, y)
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
    seg = fast(FeedbackSegmenter, **params).fit(X, y)
    proba = seg.predict_proba(X, n_steps=3)
    assert np.isfinite(proba).all()
    assert np.isfinite(seg.history_).all() and len(seg.history_) == 1


def test_flags_change_the_model(images):
    X, y = images
    base = fast(FeedbackSegmenter).fit(X, y).predict_proba(X)
    for params in [dict(softmax_feedback=False), dict(decay=False), dict(feedback=False)]:
        proba = fast(FeedbackSegmenter, **params).fit(X, y).predict_proba(X)
        assert not np.allclose(proba, base), params


def test_decay_weights():
    images = make_noisy_shapes(4, size=8, random_state=0)
    module = fast(FeedbackSegmenter, tau=2.0).fit(*images).module_
    assert module.step_weight(1) == pytest.approx(np.exp(-0.5))
    assert module.step_weight(4) == pytest.approx(np.exp(-2.0))
    module.decay = False
    assert module.step_weight(4) == 1.0


@pytest.mark.parametrize(
    "train_steps, backprop_steps, expected",
    [(None, None, {2}), (4, None, {4}), (4, 2, {2}), ((1, 3), None, {1, 2, 3}), ((2, 5), 1, {1})],
)
def test_training_forward_returns_the_gradient_steps(train_steps, backprop_steps, expected):
    seg = fast(FeedbackSegmenter, train_steps=train_steps, backprop_steps=backprop_steps)
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
    seg = fast(FeedbackSegmenter, train_steps=3, backprop_steps=1)
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
    halted, steps = seg.predict_proba(X, n_steps=5, return_steps=True)
    np.testing.assert_array_equal(steps, np.ones(len(X)))
    assert steps.dtype.kind == "i"
    np.testing.assert_allclose(halted, fitted_images.predict_proba(X, n_steps=1), rtol=1e-5)
    seg.set_params(tol=1e-12)
    labels, steps = seg.predict(X, n_steps=5, return_steps=True)
    np.testing.assert_array_equal(steps, np.full(len(X), 5))
    np.testing.assert_array_equal(labels, seg.predict(X, n_steps=5))
    # a tolerance in between stops some samples at some step of 1..n_steps
    seg.set_params(tol=1.0)
    _, steps = seg.predict(X, n_steps=5, return_steps=True)
    assert ((steps >= 1) & (steps <= 5)).all()


def test_return_steps_without_tol(images, fitted_images):
    X, _ = images
    proba, steps = fitted_images.predict_proba(X, n_steps=3, return_steps=True)
    np.testing.assert_array_equal(proba, fitted_images.predict_proba(X, n_steps=3))
    np.testing.assert_array_equal(steps, np.full(len(X), 3))
    ff = fast(FeedbackSegmenter, feedback=False).fit(*images)
    np.testing.assert_array_equal(ff.predict(X, n_steps=4, return_steps=True)[1], np.ones(len(X)))


@pytest.mark.parametrize("tol", [None, 0.5])
def test_prediction_sets_no_attribute(images, tol):
    X, y = images
    seg = fast(FeedbackSegmenter, tol=tol).fit(X, y)
    before = set(vars(seg))
    seg.predict(X)
    seg.predict_proba(X, return_steps=True)
    seg.score(X, y)
    list(seg.staged_predict_proba(X))
    assert set(vars(seg)) == before
    assert not hasattr(seg, "n_steps_used_")


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
    seg = fast(FeedbackSegmenter, feedback=feedback, max_epochs=8).fit(X, y)
    # chance (all foreground) is about 0.2; an untrained net is far below 0.6
    assert seg.score(X_test, y_test) > 0.6
    assert seg.history_[-1] < seg.history_[0]


def test_learns_clean_signals():
    X, y = make_noisy_shapes(48, kind="signal", size=32, sigma=0.2, random_state=0)
    X_test, y_test = make_noisy_shapes(32, kind="signal", size=32, sigma=0.2, random_state=1)
    seg = fast(FeedbackSegmenter, max_epochs=8).fit(X, y)
    assert seg.score(X_test, y_test) > 0.6


# ----------------------------------------------------------------------------
# scikit-learn behaviour


def test_same_random_state_same_predictions(images):
    X, y = images
    params = dict(train_steps=(1, 3), max_epochs=2)
    a = fast(FeedbackSegmenter, **params).fit(X, y).predict_proba(X)
    b = fast(FeedbackSegmenter, **params).fit(X, y).predict_proba(X)
    c = fast(FeedbackSegmenter, random_state=1, **params).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_fit_does_not_touch_global_torch_rng(images):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    fast(FeedbackSegmenter).fit(*images)
    torch.testing.assert_close(torch.rand(3), expected)


def test_clone_get_set_params():
    seg = fast(FeedbackSegmenter, train_steps=(1, 4), tol=0.1)
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
    seg = fast(FeedbackSegmenter, device="cuda").fit(X, y)
    assert next(seg.module_.parameters()).is_cuda
    proba = seg.predict_proba(X)
    loaded = pickle.loads(pickle.dumps(seg))
    assert next(loaded.module_.parameters()).is_cuda
    np.testing.assert_allclose(loaded.predict_proba(X), proba, rtol=1e-5, atol=1e-6)
    cpu = fast(FeedbackSegmenter).fit(X, y).predict_proba(X)
    np.testing.assert_allclose(proba, cpu, atol=1e-3)


def test_grid_search_over_n_steps(images):
    X, y = images
    search = GridSearchCV(fast(FeedbackSegmenter), {"n_steps": [1, 3]}, cv=2).fit(X, y)
    assert search.best_params_["n_steps"] in (1, 3)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.predict(X).shape == y.shape


def test_generic_input_forms(images, tmp_path):
    # what check_estimator's table-based checks test, on images
    X, y = images
    expected = fast(FeedbackSegmenter).fit(X, y).predict_proba(X)
    as_float64 = (fast(FeedbackSegmenter).fit(X.astype(np.float64), y.astype(np.int32))
                  .predict_proba(X))
    np.testing.assert_allclose(as_float64, expected, rtol=1e-5, atol=1e-6)
    for labels in (y.astype(bool), y.astype(np.float64), y.astype(np.uint8)):
        proba = fast(FeedbackSegmenter).fit(X, labels).predict_proba(X)
        np.testing.assert_array_equal(proba, expected)
    path = tmp_path / "X.npy"
    np.save(path, X)
    readonly = np.load(path, mmap_mode="r")
    seg = fast(FeedbackSegmenter).fit(readonly, y)
    np.testing.assert_array_equal(seg.predict_proba(readonly), expected)
    fortran = fast(FeedbackSegmenter).fit(np.asfortranarray(X), y)
    np.testing.assert_array_equal(fortran.predict_proba(X), expected)
    np.testing.assert_array_equal(seg.predict_proba(X.tolist()), expected)


def test_fit_idempotent_and_predict_leaves_state(images):
    X, y = images
    seg = fast(FeedbackSegmenter).fit(X, y)
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
    getattr(estimator_checks, check)("FeedbackSegmenter", fast(FeedbackSegmenter))


def test_check_estimator_sees_honest_tags():
    # with two_d_array=False scikit-learn runs only the clone check and says why
    with pytest.warns(UserWarning, match="Can't test estimator FeedbackSegmenter"):
        results = estimator_checks.check_estimator(fast(FeedbackSegmenter), on_fail=None)
    assert [r["status"] for r in results] == ["passed"]


def test_verbose_prints_epochs(images, capsys):
    fast(FeedbackSegmenter, verbose=1, max_epochs=2).fit(*images)
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
        fast(FeedbackSegmenter).fit(*make(*images))


@pytest.mark.parametrize("kind", ["image", "signal"])
def test_channels_last_gets_a_hint(kind, images, signals):
    X, y = images if kind == "image" else signals
    X3 = np.concatenate([X] * 3, axis=1)
    channels_last = np.moveaxis(X3, 1, -1)
    axes = (0, 3, 1, 2) if kind == "image" else (0, 2, 1)
    with pytest.raises(ValueError, match=rf"channels-last.*X\.transpose{re.escape(str(axes))}"):
        fast(FeedbackSegmenter).fit(channels_last, y)
    seg = fast(FeedbackSegmenter).fit(channels_last.transpose(axes), y)
    assert seg.n_features_in_ == 3
    hint = rf"on the last axis, use X\.transpose{re.escape(str(axes))}"
    with pytest.raises(ValueError, match=hint):
        seg.predict(channels_last)


def test_signal_length_must_match_labels(signals):
    X, y = signals
    with pytest.raises(ValueError, match=r"shape \(12, 29\) for X of shape \(12, 1, 29\)"):
        fast(FeedbackSegmenter).fit(X, y[:, :20])


def test_too_small_for_depth():
    X, y = make_noisy_shapes(4, size=6, random_state=0)
    with pytest.raises(ValueError, match=r"too small for depth=3.*2\*\*depth = 8"):
        fast(FeedbackSegmenter, depth=3).fit(X, y)


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
        fast(FeedbackSegmenter, **params).fit(*images)


def test_invalid_parameter_type(images):
    with pytest.raises(ValueError, match="n_steps"):
        fast(FeedbackSegmenter, n_steps=0).fit(*images)


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
    with pytest.raises(ValueError, match="n_steps must be an int >= 1; got 0"):
        fitted_images.predict(X, n_steps=0)
    with pytest.raises(ValueError, match="n_steps must be an int >= 1; got True"):
        fitted_images.predict_proba(X, n_steps=True)
    with pytest.raises(ValueError, match="n_steps must be an int >= 1; got -1"):
        fitted_images.staged_predict_proba(X, n_steps=-1)  # at the call, not when iterated
    with pytest.raises(ValueError, match=r"labels \[7\] not seen in fit.*\[0, 1\]"):
        fitted_images.score(X, np.where(y == 1, 7, y))
    with pytest.raises(ValueError, match="y must hold one label per pixel"):
        fitted_images.score(X, y[:, :5])


# ----------------------------------------------------------------------------
# Issue 11


def test_moved_names_still_importable_from_feedback():
    from sklearn_recursive import _feedback_nets, metrics

    assert feedback_module.UNet is _feedback_nets.UNet
    assert feedback_module.FeedbackUNet is _feedback_nets.FeedbackUNet
    assert feedback_module.StepwiseCrossEntropy is _feedback_nets.StepwiseCrossEntropy
    assert feedback_module.foreground_dice is metrics.foreground_dice
    assert feedback_module.ConvBlock is _feedback_nets.ConvBlock  # for older pickles


def test_foreground_dice_needs_equal_shapes():
    with pytest.raises(ValueError, match=r"same shape; got \(2, 4\) and \(2, 3\)"):
        foreground_dice(np.zeros((2, 4)), np.zeros((2, 3)), 2)


@pytest.mark.parametrize(
    "name, value",
    [
        ("n_steps", True),
        ("train_steps", True),
        ("backprop_steps", True),
        ("feedback_channels", True),
        ("base_channels", True),
        ("depth", False),
        ("max_updates", True),
        ("max_epochs", True),
        ("n_iter_no_change", True),
        ("batch_size", True),
    ],
)
def test_bools_are_not_ints(name, value, images):
    with pytest.raises(ValueError, match=rf"'{name}' parameter of FeedbackSegmenter.*Got {value}"):
        fast(FeedbackSegmenter, **{name: value}).fit(*images)


@pytest.mark.parametrize("steps", [(True, 3), (1, True), (np.True_, 2)])
def test_bools_are_not_ints_in_train_steps_tuple(steps, images):
    with pytest.raises(ValueError, match=r"tuple \(low, high\) of ints.*got \("):
        fast(FeedbackSegmenter, train_steps=steps).fit(*images)


def test_numpy_ints_are_ints(images):
    seg = fast(FeedbackSegmenter, n_steps=np.int64(2),
               train_steps=(np.int32(1), np.int64(2))).fit(*images)
    assert seg.predict(images[0], n_steps=np.int64(3)).shape == images[1].shape


def test_steps_iterator_is_the_loop(fitted_images):
    module = fitted_images.module_.eval()
    x = torch.rand(3, 1, 13, 11)
    with torch.no_grad():
        steps = list(module.steps(x, 4))
        h = module.init_state(x)
        for t, step in enumerate(steps, 1):
            h = h + module.update(x, h, t)
            assert step.t == t and step.n_used is None
            torch.testing.assert_close(step.state, h, rtol=0, atol=0)
            torch.testing.assert_close(step.logits, h[:, :2], rtol=0, atol=0)
        torch.testing.assert_close(module(x, n_steps=4), torch.stack([s.logits for s in steps]))


def test_steps_iterator_gradient_and_grad_mode(fitted_images):
    # steps before the last n_grad run without gradient; the caller's grad mode is
    # left alone between steps (no no_grad context leaks out of the generator)
    module = fitted_images.module_
    x = torch.rand(2, 1, 13, 11)
    seen = []
    for step in module.steps(x, 4, n_grad=2):
        seen.append((step.state.requires_grad, torch.is_grad_enabled()))
    assert seen == [(False, True), (False, True), (True, True), (True, True)]
    with torch.no_grad():
        assert not any(s.state.requires_grad for s in module.steps(x, 3))


def test_steps_iterator_halts(fitted_images):
    module = fitted_images.module_.eval()
    x = torch.rand(3, 1, 13, 11)
    with torch.no_grad():
        halted = list(module.steps(x, 6, tol=1e9))
        assert len(halted) == 1 and halted[0].n_used.tolist() == [1, 1, 1]
        full = list(module.steps(x, 6, tol=1e-12))
        assert [s.n_used.tolist() for s in full] == [[t] * 3 for t in range(1, 7)]


def test_feedforward_steps_once(images):
    module = fast(FeedbackSegmenter, feedback=False).fit(*images).module_
    assert len(list(module.steps(torch.rand(2, 1, 8, 8), 5))) == 1


# -- batch composition


def test_prediction_does_not_depend_on_the_batch(images, fitted_images):
    X, _ = images
    full = fitted_images.predict_proba(X)
    assert np.array_equal(fitted_images.predict_proba(X[:3]), full[:3])
    assert np.array_equal(fitted_images.predict_proba(X[5:6]), full[5:6])
    staged = list(fitted_images.staged_predict_proba(X[:3], n_steps=3))
    assert np.array_equal(staged[1], full[:3])


def test_prediction_chunks_past_the_chunk_size(monkeypatch, images, fitted_images):
    monkeypatch.setattr(feedback_module, "_PREDICT_BATCH", 5)
    X, _ = images
    full = fitted_images.predict_proba(X)  # chunks of 5, 5 and 2 padded to 5
    assert np.array_equal(fitted_images.predict_proba(X[10:]), full[10:])
    assert np.array_equal(fitted_images.predict_proba(X[:7]), full[:7])


# -- Ctrl-C


def _interrupt_at_batch(monkeypatch, batch):
    """The training criterion raises KeyboardInterrupt at its ``batch``-th call."""
    calls = []

    class Interrupting(StepwiseCrossEntropy):
        def forward(self, step_logits, y):
            calls.append(1)
            if len(calls) == batch:
                raise KeyboardInterrupt
            return super().forward(step_logits, y)

    monkeypatch.setattr(feedback_module, "StepwiseCrossEntropy", Interrupting)


@pytest.mark.parametrize("n_iter_no_change", [None, 10])
def test_keyboard_interrupt_keeps_finished_epochs(monkeypatch, images, n_iter_no_change):
    X, y = images  # 12 images, batches of 8: 2 batches an epoch
    params = dict(max_epochs=5, n_iter_no_change=n_iter_no_change, loss_tol=0.0)
    finished = fast(FeedbackSegmenter, max_epochs=2, n_iter_no_change=n_iter_no_change,
                    loss_tol=0.0).fit(X, y)
    assert not finished.interrupted_
    _interrupt_at_batch(monkeypatch, 6)  # in the third epoch, after its first batch
    with pytest.warns(UserWarning, match=r"interrupted after 2 finished epoch\(s\)"):
        seg = fast(FeedbackSegmenter, **params).fit(X, y)
    assert seg.interrupted_ and len(seg.history_) == 2
    assert seg.history_ == finished.history_
    # the weights of epoch 2, not those one batch into epoch 3
    assert np.array_equal(seg.predict_proba(X), finished.predict_proba(X))


def test_keyboard_interrupt_in_the_first_epoch_propagates(monkeypatch, images):
    _interrupt_at_batch(monkeypatch, 2)
    seg = fast(FeedbackSegmenter, max_epochs=3)
    with pytest.raises(KeyboardInterrupt):
        seg.fit(*images)
    assert not [name for name in vars(seg) if name.endswith("_")]  # not fitted


# -- training budget and convergence


def test_budget_counts_updates():
    X, y = make_noisy_shapes(20, size=8, random_state=0)  # batches of 8: 3 an epoch
    seg = fast(FeedbackSegmenter, max_epochs=None, max_updates=7, n_iter_no_change=None).fit(X, y)
    assert len(seg.history_) == 3  # ceil(7 / 3) epochs
    seg = fast(FeedbackSegmenter, max_epochs=2, max_updates=7, n_iter_no_change=None).fit(X, y)
    assert len(seg.history_) == 2  # max_epochs replaces max_updates


def test_default_stop_rule_ends_training_on_an_easy_set():
    X, y = make_noisy_shapes(16, size=8, sigma=0.2, random_state=0)
    seg = FeedbackSegmenter(feedback=False, base_channels=4, depth=1, lr=1e-2, device="cpu",
                            random_state=0).fit(X, y)
    budget = -(-seg.max_updates // 2)  # 2 batches an epoch
    assert 10 < len(seg.history_) < budget
    assert seg.score(X, y) > 0.9


def test_stop_rule_keeps_the_best_epoch(images):
    # patience 1 with a huge tolerance: epoch 1 is the best, epoch 2 does not count
    X, y = images
    seg = fast(FeedbackSegmenter, max_epochs=5, n_iter_no_change=1, loss_tol=1e6).fit(X, y)
    assert len(seg.history_) == 2
    first = fast(FeedbackSegmenter, max_epochs=1, n_iter_no_change=None).fit(X, y)
    assert np.array_equal(seg.predict_proba(X), first.predict_proba(X))


def _invisible_foreground(n=16, size=8):
    # pure noise, one foreground pixel per image at a random place
    rng = np.random.default_rng(0)
    X = rng.random((n, 1, size, size)).astype(np.float32)
    y = np.zeros((n, size, size), dtype=np.int64)
    y[np.arange(n), rng.integers(0, size, n), rng.integers(0, size, n)] = 1
    return X, y


@pytest.mark.filterwarnings("default::sklearn.exceptions.ConvergenceWarning")
def test_background_only_model_warns():
    X, y = _invisible_foreground()
    with pytest.warns(ConvergenceWarning, match=r"only background.*Train longer.*lr"):
        seg = fast(FeedbackSegmenter, depth=1, max_epochs=3, lr=3e-2).fit(X, y)
    assert not (seg.predict(X) > 0).any()


@pytest.mark.filterwarnings("default::sklearn.exceptions.ConvergenceWarning")
def test_trained_model_does_not_warn():
    X, y = make_noisy_shapes(48, size=12, sigma=0.2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        seg = fast(FeedbackSegmenter, max_epochs=8).fit(X, y)
    assert (seg.predict(X) > 0).any()


# -- sample weights


def test_sample_weight_zero_ignores_a_sample(images):
    X, y = images
    weight = np.ones(len(X))
    weight[:3] = 0
    other = y.copy()
    other[:3] = 1 - other[:3]  # labels of the zero-weight samples changed
    a = fast(FeedbackSegmenter, max_epochs=2).fit(X, y, sample_weight=weight).predict_proba(X)
    b = fast(FeedbackSegmenter, max_epochs=2).fit(X, other, sample_weight=weight).predict_proba(X)
    assert np.array_equal(a, b)
    c = fast(FeedbackSegmenter, max_epochs=2).fit(X, other).predict_proba(X)
    assert not np.allclose(a, c)


def test_sample_weight_ones_is_unweighted(images):
    X, y = images
    a = fast(FeedbackSegmenter, max_epochs=2).fit(X, y).predict_proba(X)
    b = (fast(FeedbackSegmenter, max_epochs=2).fit(X, y, sample_weight=np.full(len(X), 3.0))
         .predict_proba(X))
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_weighted_loss():
    # the per-pixel losses summed over steps, weighted by row as every net's are
    logits = torch.randn(2, 3, 2, 4, 5)  # 2 steps, 3 samples, 2 classes
    y = torch.randint(0, 2, (3, 4, 5))
    w = torch.tensor([0.5, 2.0, 0.0])
    per_sample = [
        torch.nn.functional.cross_entropy(z, y, reduction="none").mean(dim=(1, 2)) for z in logits
    ]
    losses = StepwiseCrossEntropy(reduction="none")(logits, y)
    assert losses.shape == (3, 4, 5)
    expected = sum((w * p).sum() / w.sum() for p in per_sample)
    torch.testing.assert_close(weighted_mean(losses, w), expected)
    unweighted = StepwiseCrossEntropy()(logits, y)
    torch.testing.assert_close(unweighted, sum(p.mean() for p in per_sample))


@pytest.mark.parametrize(
    "weight, match",
    [
        (-np.ones(12), "Negative values in data passed to `sample_weight`"),
        (np.ones(5), r"sample_weight.shape == \(5,\), expected \(12,\)"),
        (np.zeros(12), "at least one non-zero"),
    ],
)
def test_bad_sample_weight(weight, match, images):
    with pytest.raises(ValueError, match=match):
        fast(FeedbackSegmenter).fit(*images, sample_weight=weight)


def test_score_sample_weight(images, fitted_images):
    X, y = images
    dice = foreground_dice(y, fitted_images.predict(X), 2)
    weight = np.arange(len(X), dtype=float)
    expected = np.average(dice, weights=weight)
    assert fitted_images.score(X, y, sample_weight=weight) == pytest.approx(expected)
    assert fitted_images.score(X, y, sample_weight=np.ones(len(X))) == pytest.approx(dice.mean())
