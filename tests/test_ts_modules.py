"""The time-series classification members (FCN, ResNet, InceptionTime, MiniRocket).

Each follows the module contract (2-D and 3-D input, ``Z`` beside the
encoding), keeps a row's outputs independent of its batch, is reproducible
under a seed, survives ``state_dict`` and pickle round trips, refuses bad
arguments clearly and learns.  The MiniRocket member's transform is checked
against aeon's MiniRocket.
"""

import functools
import pickle

import numpy as np
import pytest
import torch

from sklearn_recursive import RecurrentExpansionClassifier
from sklearn_recursive._modules import (
    BUILTIN_MODULES,
    FCNModule,
    InceptionModule,
    MLPModule,
    ResNetModule,
    RocketModule,
    _rocket_dilations,
)
from sklearn_recursive._training import InitMemo, initialized_builder, release_caches

N, CHANNELS, LENGTH, N_OUTPUTS, N_EXPANSION = 10, 3, 40, 2, 5
NAMES = ["fcn", "resnet", "inception", "rocket"]
CLASSES = {
    "fcn": FCNModule,
    "resnet": ResNetModule,
    "inception": InceptionModule,
    "rocket": RocketModule,
}

# Small settings, so that each test runs in well under a second.
SMALL = {
    "fcn": dict(filters=(4, 6, 5), hidden=6),
    "resnet": dict(filters=(4, 6), hidden=6),
    # depth 4: one residual connection (after module 3), then a module without
    "inception": dict(n_filters=3, bottleneck=2, depth=4, hidden=6),
    # 3 biases per kernel: 252 features over dilations 1 to 3
    "rocket": dict(num_features=3 * 84, hidden=6),
}
INPUTS = {"2d": LENGTH, "3d-1ch": (1, LENGTH), "3d": (CHANNELS, LENGTH)}
CASES = [(name, kind, n_exp) for name in NAMES for kind in INPUTS for n_exp in (0, N_EXPANSION)]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n_threads)


def random_inputs(n_features, n_expansion=0, n=N, seed=1):
    generator = torch.Generator().manual_seed(seed)
    shape = (n, n_features) if isinstance(n_features, int) else (n, *n_features)
    X = torch.randn(shape, generator=generator)
    Z = torch.randn((n, n_expansion), generator=generator)
    return X, Z


def make_inputs(kind, n_expansion=0, n=N, seed=1):
    return random_inputs(INPUTS[kind], n_expansion, n, seed)


def build(name, n_features, n_expansion=0, seed=0, ready=True, **params):
    """The module, seeded; a rocket member ``ready`` has its biases set on other rows."""
    torch.manual_seed(seed)
    module = BUILTIN_MODULES[name](n_features, n_expansion, N_OUTPUTS, **{**SMALL[name], **params})
    if name == "rocket" and ready:
        module.fit_biases(random_inputs(n_features, n=30, seed=7)[0])
    return module


def toy_windows(n, seed, length=32):
    """Two classes of 2-channel windows: a slow or a fast sine in channel 0, in noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    t = np.linspace(0, 1, length)
    phase = rng.uniform(0, 2 * np.pi, (n, 1))
    freq = np.where(y == 1, 6.0, 2.0)[:, None]
    X = 0.5 * rng.standard_normal((n, 2, length))
    X[:, 0] += np.sin(2 * np.pi * freq * t + phase)
    return X.astype(np.float32), np.array(["slow", "fast"], dtype=object)[y]


# ----------------------------------------------------------------------
# The contract


@pytest.mark.parametrize("name", NAMES)
def test_registered(name):
    assert BUILTIN_MODULES[name] is CLASSES[name]
    import sklearn_recursive._modules as modules

    assert CLASSES[name].__name__ in modules.__all__


@pytest.mark.parametrize("name, kind, n_expansion", CASES)
def test_contract_shapes(name, kind, n_expansion):
    module = build(name, INPUTS[kind], n_expansion).eval()
    X, Z = make_inputs(kind, n_expansion)
    with torch.no_grad():
        out = module(X, Z)
        maps = module.features(X, Z)
        both = module.features_and_output(X, Z)
    assert out.shape == (N, N_OUTPUTS) and out.dtype == torch.float32
    assert maps.shape == (N, SMALL[name]["hidden"])
    torch.testing.assert_close(both[0], maps, rtol=0, atol=0)
    torch.testing.assert_close(both[1], out, rtol=0, atol=0)


@pytest.mark.parametrize("name, kind, n_expansion", CASES)
def test_gradients_reach_every_parameter(name, kind, n_expansion):
    module = build(name, INPUTS[kind], n_expansion).train()
    X, Z = make_inputs(kind, n_expansion)
    Z.requires_grad_(True)
    maps, out = module.features_and_output(X, Z)
    (out.square().sum() + maps.sum()).backward()
    for pname, param in module.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, pname
    if n_expansion:
        assert Z.grad.abs().sum() > 0


@pytest.mark.parametrize("name", NAMES)
def test_2d_input_is_one_channel(name):
    """``n_features=L`` with X (n, L) is the network of (1, L) with X (n, 1, L)."""
    flat, window = build(name, LENGTH).eval(), build(name, (1, LENGTH)).eval()
    X = make_inputs("2d")[0]
    with torch.no_grad():
        torch.testing.assert_close(flat(X), window(X[:, None, :]), rtol=0, atol=0)
        torch.testing.assert_close(flat(X), flat(X[:, None, :]), rtol=0, atol=0)


@pytest.mark.parametrize("name", NAMES)
def test_z_joins_beside_the_encoding(name):
    """The fusion layer sees [h, Z]; Z changes the outputs, and not the encoding."""
    module = build(name, (CHANNELS, LENGTH), N_EXPANSION).eval()
    X, Z = make_inputs("3d", N_EXPANSION)
    with torch.no_grad():
        h = module.encode(X)
        assert module.fusion[0].in_features == h.shape[1] + N_EXPANSION
        expected = module.head(module.fusion(torch.cat([h, Z], dim=1)))
        # rocket sums its linear layers' column blocks ([h], [Z]): equal up to rounding
        exact = {} if name == "rocket" else dict(rtol=0, atol=0)
        torch.testing.assert_close(module(X, Z), expected, **exact)
        assert not torch.allclose(module(X, Z), module(X, Z + 1))


@pytest.mark.parametrize("name", NAMES)
def test_z_none_when_no_expansion(name):
    module = build(name, LENGTH).eval()
    X, Z = make_inputs("2d")
    with torch.no_grad():
        torch.testing.assert_close(module(X, None), module(X, Z), rtol=0, atol=0)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("n_features", [1, (2, 1), 4, (2, 9)])
def test_short_windows(name, n_features):
    module = build(name, n_features)
    shape = (N, n_features) if isinstance(n_features, int) else (N, *n_features)
    X = torch.randn(shape)
    assert module.train()(X).shape == (N, N_OUTPUTS)
    assert module.eval()(X).shape == (N, N_OUTPUTS)


@pytest.mark.parametrize("name", NAMES)
def test_bad_input_shape(name):
    module = build(name, (CHANNELS, LENGTH), N_EXPANSION)
    with pytest.raises(ValueError, match=r"X must have shape \(n_samples, 3, 40\); got \(10, 4"):
        module(torch.randn(N, CHANNELS + 1, LENGTH), torch.randn(N, N_EXPANSION))
    with pytest.raises(ValueError, match=r"Z must have shape \(10, 5\); got \(10, 4\)"):
        module(torch.randn(N, CHANNELS, LENGTH), torch.randn(N, N_EXPANSION - 1))


# ----------------------------------------------------------------------
# Batches, seeds, round trips


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("mode", ["eval", "train"])
def test_rows_do_not_depend_on_batch(name, mode):
    module = build(name, (CHANNELS, LENGTH), N_EXPANSION).train(mode == "train")
    X, Z = make_inputs("3d", N_EXPANSION, n=40)
    rows = torch.tensor([3, 17, 0, 39])
    with torch.no_grad():
        full_maps, full_out = module.features_and_output(X, Z)
        maps, out = module.features_and_output(X[rows], Z[rows])
        one = module(X[rows[:1]], Z[rows[:1]])
    torch.testing.assert_close(out, full_out[rows], rtol=0, atol=1e-5)
    torch.testing.assert_close(maps, full_maps[rows], rtol=0, atol=1e-5)
    torch.testing.assert_close(one, full_out[rows[:1]], rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_module(name):
    first, second = (build(name, (CHANNELS, LENGTH), N_EXPANSION, seed=3) for _ in range(2))
    other = build(name, (CHANNELS, LENGTH), N_EXPANSION, seed=4)
    for (key, a), b in zip(first.state_dict().items(), second.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=key)
    assert any(not torch.equal(a, c) for a, c in zip(first.parameters(), other.parameters()))
    X, Z = make_inputs("3d", N_EXPANSION)
    with torch.no_grad():
        torch.testing.assert_close(first.eval()(X, Z), second.eval()(X, Z), rtol=0, atol=0)


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_and_pickle_round_trip(name):
    module = build(name, (CHANNELS, LENGTH), N_EXPANSION, seed=0).eval()
    X, Z = make_inputs("3d", N_EXPANSION)
    with torch.no_grad():
        expected = module(X, Z)
        restored = pickle.loads(pickle.dumps(module)).eval()
        torch.testing.assert_close(restored(X, Z), expected, rtol=0, atol=0)
        # a module built from another seed (a rocket one without its biases) takes the state
        other = build(name, (CHANNELS, LENGTH), N_EXPANSION, seed=9, ready=False).eval()
        other.load_state_dict(module.state_dict())
        torch.testing.assert_close(other(X, Z), expected, rtol=0, atol=0)
        # and keeps it in training mode (a rocket member does not refit its biases)
        other.train()(X[:2], Z[:2])
        torch.testing.assert_close(other.eval()(X, Z), expected, rtol=0, atol=0)


# ----------------------------------------------------------------------
# Arguments

BAD_CONSTRUCTORS = [
    (FCNModule, (0, 0, 1), {}, "n_features"),
    (ResNetModule, ((3, 0), 0, 1), {}, "n_features"),
    (InceptionModule, (4, -1, 1), {}, "n_expansion"),
    (RocketModule, (4, 0, 0), {}, "n_outputs"),
    (FCNModule, (4, 0, 1), dict(filters=()), "filters must be a non-empty tuple"),
    (FCNModule, (4, 0, 1), dict(filters=(4, 0, 2)), "filters must be a non-empty tuple"),
    (FCNModule, (4, 0, 1), dict(filters=8), "filters must be a non-empty tuple"),
    (FCNModule, (4, 0, 1), dict(kernel_sizes=(8, 5)), "kernel_sizes must have 3 items"),
    (FCNModule, (4, 0, 1), dict(norm="batch"), "norm must be 'instance', 'layer' or None"),
    (FCNModule, (4, 0, 1), dict(hidden=0), "hidden must be an int >= 1"),
    (ResNetModule, (4, 0, 1), dict(filters=(4, 2.0)), "filters must be a non-empty tuple"),
    (ResNetModule, (4, 0, 1), dict(kernel_sizes=(8, 0)), "kernel_sizes must be a non-empty"),
    (ResNetModule, (4, 0, 1), dict(norm="batch"), "norm must be"),
    (InceptionModule, (4, 0, 1), dict(n_filters=0), "n_filters must be an int >= 1"),
    (InceptionModule, (4, 0, 1), dict(bottleneck=-1), "bottleneck must be an int >= 0"),
    (InceptionModule, (4, 0, 1), dict(depth=0), "depth must be an int >= 1"),
    (InceptionModule, (4, 0, 1), dict(depth=True), "depth must be an int >= 1"),
    (InceptionModule, (4, 0, 1), dict(kernel_sizes=()), "kernel_sizes must be a non-empty"),
    (InceptionModule, (4, 0, 1), dict(norm="BatchNorm"), "norm must be"),
    (RocketModule, (4, 0, 1), dict(num_features=83), "num_features must be an int >= 84"),
    (RocketModule, (4, 0, 1), dict(num_features=1e4), "num_features must be an int >= 84"),
    (RocketModule, (4, 0, 1), dict(max_dilations_per_kernel=0), "max_dilations_per_kernel"),
    (RocketModule, (4, 0, 1), dict(hidden=-2), "hidden must be an int >= 1"),
]


@pytest.mark.parametrize("cls, args, kwargs, match", BAD_CONSTRUCTORS)
def test_bad_constructor_arguments(cls, args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(*args, **kwargs)


def test_paper_settings_build():
    """The papers' widths are one argument away."""
    fcn = FCNModule((1, 16), 0, 2, filters=(128, 256, 128))
    assert [b.conv.out_channels for b in fcn.encoder] == [128, 256, 128]
    assert [b.conv.kernel_size[0] for b in fcn.encoder] == [8, 5, 3]
    resnet = ResNetModule((1, 16), 0, 2, filters=(64, 128, 128))
    assert resnet.fusion[0].in_features == 128 and len(resnet.encoder) == 3
    assert all(len(block.body) == 3 for block in resnet.encoder)
    inception = InceptionModule((1, 16), 0, 2, n_filters=32, bottleneck=32)
    assert inception.fusion[0].in_features == 128 and len(inception.encoder) == 6
    assert len(inception.shortcuts) == 2
    assert [c.kernel_size[0] for c in inception.encoder[1].convs] == [39, 19, 9]
    for module in (fcn, resnet, inception):
        assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
                       for m in module.modules())


# ----------------------------------------------------------------------
# MiniRocket


def test_rocket_kernels_and_dilations():
    module = RocketModule((1, 150), 0, 2)
    assert module.weights.shape == (84, 9)
    assert set(module.weights.unique().tolist()) == {-1.0, 2.0}
    assert ((module.weights == 2).sum(dim=1) == 3).all()
    assert len({tuple(w.tolist()) for w in module.weights}) == 84
    assert module.encoding_size == 9996 == 84 * sum(module.biases_per_dilation)
    assert module.dilations[0] == 1 and max(module.dilations) * 8 <= 150 - 1
    assert len(module.dilations) <= 32
    # exponential spread: more dilations at the short end
    assert module.biases_per_dilation[0] >= module.biases_per_dilation[-1]


def test_rocket_dilations_match_aeon():
    pytest.importorskip("aeon")
    try:
        from aeon.transformations.collection.convolution_based._minirocket import (
            _fit_dilations,
        )
    except ImportError:  # a private helper of aeon: skip where it moved
        pytest.skip("aeon's MiniRocket has no _fit_dilations")
    for length, n_features, max_dilations in [(9, 10_000, 32), (24, 10_000, 32),
                                              (150, 10_000, 32), (1000, 5_000, 20),
                                              (64, 84 * 3, 32)]:
        dilations, counts = _fit_dilations(length, n_features, max_dilations)
        ours = _rocket_dilations(length, n_features, max_dilations)
        assert ours == (tuple(dilations.tolist()), tuple(counts.tolist())), length


def test_rocket_channel_subsets():
    module = RocketModule((12, 30), 0, 2)
    chosen = module.channel_mask.sum(dim=-1)
    assert chosen.min() >= 1 and chosen.max() <= 9
    assert len(chosen.unique()) > 3  # subsets of several sizes
    assert RocketModule((1, 30), 0, 2).channel_mask.eq(1).all()


@pytest.mark.parametrize("channels", [1, CHANNELS])
def test_rocket_convolution_is_the_kernels(channels):
    """``_convolve`` is a zero-padded dilated conv1d of the channel-subset sums (one
    channel: by MiniRocket's decomposition), row by row whatever the batch."""
    torch.manual_seed(0)
    module = RocketModule((channels, LENGTH), 0, 2, num_features=3 * 84)
    X = torch.randn(6, channels, LENGTH)
    for i, d in enumerate(module.dilations):
        summed = torch.einsum("kc,ncl->nkl", module.channel_mask[i], X)
        expected = torch.stack(
            [
                torch.nn.functional.conv1d(
                    summed[:, k : k + 1], module.weights[k].view(1, 1, 9), padding=4 * d, dilation=d
                )[:, 0]
                for k in range(84)
            ],
            dim=1,
        )
        torch.testing.assert_close(module._convolve(X, i), expected, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(module._convolve(X[2:3], i), module._convolve(X, i)[2:3],
                                   rtol=0, atol=0)
        # paired (fit_biases): kernel k on row k only, the same values as the full output
        rows = torch.randint(0, len(X), (84,))
        full = module._convolve(X, i)[rows, torch.arange(84)]
        torch.testing.assert_close(module._convolve(X[rows], i, paired=True), full,
                                   rtol=0, atol=0)


def test_rocket_ppv_counts_the_valid_part():
    """PPV is the share of positive ``C - bias``, over the valid part for unpadded pairs;
    comparing and sorting count the same."""
    torch.manual_seed(0)
    module = RocketModule((1, LENGTH), 0, 2, num_features=20 * 84).eval()
    X = torch.randn(5, 1, LENGTH)
    module.fit_biases(X)
    features = module.ppv(X)
    assert features.min() >= 0 and features.max() <= 1
    start = 0
    for i, d in enumerate(module.dilations):
        C = module._convolve(X, i)
        biases = module.biases[:, module._bias_columns(i)]
        for k in (0, 1, 83):
            Ck = C[:, k] if module.padded[i, k] else C[:, k, 4 * d : LENGTH - 4 * d]
            expected = (Ck[:, :, None] > biases[k]).double().mean(dim=1)
            n_b = biases.shape[1]
            got = features[:, start + k * n_b : start + (k + 1) * n_b]
            torch.testing.assert_close(got.double(), expected, rtol=0, atol=1e-6)
        start += 84 * biases.shape[1]
    assert not module.padded.all() and module.padded.any()
    module.compare_up_to = 0  # sort for every dilation
    torch.testing.assert_close(module.ppv(X), features, rtol=0, atol=0)
    module.compare_up_to = 10**6  # compare for every dilation
    torch.testing.assert_close(module.ppv(X), features, rtol=0, atol=0)


def test_rocket_standardises_its_features():
    """``encode`` is the PPV standardised on the windows that set the biases: mean 0 and
    standard deviation ``input_gain`` there (1 for constant features, at least
    ``std_floor`` for the others); before the biases are set, ``PPV - 0.5``."""
    torch.manual_seed(0)
    module = RocketModule((CHANNELS, LENGTH), 0, 2, num_features=5 * 84).eval()
    X = torch.randn(30, CHANNELS, LENGTH)
    with torch.no_grad():
        torch.testing.assert_close(module.encode(X), module.ppv(X) - 0.5, rtol=0, atol=0)
        module.fit_biases(X)
        P, H = module.ppv(X).double(), module.encode(X).double()
    std = P.std(dim=0, unbiased=False)
    varies = std >= module.std_floor
    assert varies.sum() > 0.5 * len(std)
    torch.testing.assert_close(H.mean(dim=0), torch.zeros_like(std), rtol=0, atol=1e-6)
    torch.testing.assert_close(H.std(dim=0, unbiased=False)[varies],
                               torch.full_like(std, module.input_gain)[varies],
                               rtol=1e-4, atol=1e-6)
    constant = std == 0
    assert H[:, constant].eq(0).all()
    small = (std > 0) & ~varies  # divided by the floor: smaller than the others
    assert (H.std(dim=0, unbiased=False)[small] < module.input_gain).all()
    # a new window far from the batch stays bounded: |h| <= gain / floor
    with torch.no_grad():
        new = module.encode(10 * torch.randn(4, CHANNELS, LENGTH))
    assert new.abs().max() <= module.input_gain / module.std_floor + 1e-5


def test_rocket_linear_skip_starts_at_zero():
    """``outputs = head(maps) + skip([h, Z])``; the skip starts at zero."""
    module = build("rocket", (CHANNELS, LENGTH)).train()
    X, _ = make_inputs("3d", n=6)
    assert module.skip.weight.eq(0).all() and module.skip.bias.eq(0).all()
    with torch.no_grad():
        maps, out = module.features_and_output(X)
        torch.testing.assert_close(out, module.head(maps), rtol=0, atol=0)
        module.skip.bias.fill_(1.0)
        torch.testing.assert_close(module(X), module.head(maps) + 1.0, rtol=0, atol=0)


def test_rocket_biases_set_by_first_training_pass():
    torch.manual_seed(0)
    module = RocketModule((CHANNELS, LENGTH), 0, 2, num_features=3 * 84)
    X, _ = make_inputs("3d", n=20)
    module.eval()(X)  # eval: the biases stay unset (zero)
    assert not module.biases_set and module.biases.eq(0).all()
    module.train()(X)  # first training pass: set from its batch
    assert module.biases_set and not module.biases.eq(0).all()
    torch.manual_seed(0)
    reference = RocketModule((CHANNELS, LENGTH), 0, 2, num_features=3 * 84).fit_biases(X)
    torch.testing.assert_close(module.biases, reference.biases, rtol=0, atol=0)
    biases = module.biases.clone()
    module(torch.randn(7, CHANNELS, LENGTH))  # later passes keep them
    torch.testing.assert_close(module.biases, biases, rtol=0, atol=0)
    # each pair's biases are quantiles of one window's convolution output
    C = reference._convolve(X, 0)
    rows = (reference.example_draw[0] * len(X)).long()
    low = C[rows, torch.arange(84)].amin(dim=1)
    high = C[rows, torch.arange(84)].amax(dim=1)
    b = reference.biases[:, reference._bias_columns(0)]
    assert (b >= low[:, None] - 1e-5).all() and (b <= high[:, None] + 1e-5).all()


def test_rocket_fit_biases_checks_shape():
    module = RocketModule((CHANNELS, LENGTH), 0, 2)
    with pytest.raises(ValueError, match=r"X must have shape \(n_samples, 3, 40\)"):
        module.fit_biases(torch.randn(4, LENGTH))


def test_rocket_large_batches_in_chunks():
    """Inference over many rows runs in chunks and gives the same rows."""
    module = build("rocket", (1, LENGTH)).eval()
    module.chunk_elements = 84 * (LENGTH + 1) * 3  # 3 rows per chunk
    X = make_inputs("3d-1ch", n=11)[0]
    with torch.no_grad():
        chunked = module.encode(X)
        module.chunk_elements = 1 << 22
        torch.testing.assert_close(chunked, module.encode(X), rtol=0, atol=0)
        assert module.encode(X[:0]).shape == (0, module.encoding_size)


def n_windows(cache):
    """The windows a rocket cache holds (it may hold the Gram matrix of some too)."""
    return sum(isinstance(key, bytes) for key in cache)


def test_rocket_training_cache_gives_the_transform():
    """From the first training pass until `release_cache`, encodings come from a cache that
    holds exactly what the transform computes; new biases or weights empty it; a pickle or
    a copy carries none; predictions outside training are not cached."""
    module = build("rocket", (CHANNELS, LENGTH))
    X, _ = make_inputs("3d", n=12)
    with torch.no_grad():
        reference = module._transform(X)
        assert module.eval().encode(X) is not None and module._cache is None  # eval: no cache
        module.train()
        torch.testing.assert_close(module.encode(X[:5]), reference[:5], rtol=0, atol=0)
        assert n_windows(module._cache) == 5
        # a batch of cached and new windows, in any order
        order = torch.tensor([7, 0, 11, 3, 4, 9, 1])
        torch.testing.assert_close(module.encode(X[order]), reference[order], rtol=0, atol=0)
        assert n_windows(module._cache) == 8
        module._cache[X[0].numpy().tobytes()] += 1.0  # a poisoned entry shows it is read
        torch.testing.assert_close(module.encode(X[:1]), reference[:1] + 1.0)
        # validation passes (eval mode) during training read and fill it too
        module.eval()
        torch.testing.assert_close(module.encode(X[1:]), reference[1:], rtol=0, atol=0)
        assert n_windows(module._cache) == 12
        assert pickle.loads(pickle.dumps(module))._cache is None
        module.load_state_dict(module.state_dict())  # the same buffers: the cache stands
        assert n_windows(module._cache) == 12
        state = module.state_dict()
        state["biases"] = state["biases"] + 1.0
        module.load_state_dict(state)  # other biases: the cache is stale
        assert module._cache == {}
        module.encode(X)
        module.fit_biases(X[5:])  # new biases: the cache holds the encodings of X[5:] only
        assert n_windows(module._cache) == 7
        torch.testing.assert_close(module.encode(X[5:]), module._transform(X[5:]),
                                   rtol=0, atol=0)
        torch.testing.assert_close(module.encode(X), module._transform(X), rtol=0, atol=0)
        release_caches(torch.nn.Sequential(module))
        assert module._cache is None
        module.encode(X)
        assert module._cache is None  # eval after release: no cache


def test_rocket_cache_size_bounds_the_cache():
    X, _ = make_inputs("3d", n=12)
    module = build("rocket", (CHANNELS, LENGTH), cache_size=0).train()
    with torch.no_grad():
        reference = module._transform(X)
        torch.testing.assert_close(module.encode(X), reference, rtol=0, atol=0)
        assert module._cache is None
        module = build("rocket", (CHANNELS, LENGTH)).train()
        module.cache_size = 5 * module.encoding_size + 1
        torch.testing.assert_close(module.encode(X[:3]), reference[:3], rtol=0, atol=0)
        torch.testing.assert_close(module.encode(X), reference, rtol=0, atol=0)
        assert n_windows(module._cache) == 5
        torch.testing.assert_close(module.encode(X[[11, 2, 0]]), reference[[11, 2, 0]],
                                   rtol=0, atol=0)
    with pytest.raises(ValueError, match="cache_size must be an int >= 0"):
        build("rocket", (CHANNELS, LENGTH), cache_size=-1)


def test_rocket_estimator_same_with_and_without_cache():
    """Training with the cache fits the same network as recomputing every epoch: the
    ridge of each round fits all the training rows, so the Gram matrix kept with the cache
    is the one it would compute without."""
    X, y = toy_windows(40, seed=0)
    X_test, _ = toy_windows(20, seed=1)
    fits = [
        RecurrentExpansionClassifier(
            module=functools.partial(RocketModule, **SMALL["rocket"], cache_size=size),
            n_rounds=2, n_components=4, max_epochs=4, batch_size=16, device="cpu",
            random_state=0,
        ).fit(X, y)
        for size in (0, 2**26)
    ]
    np.testing.assert_array_equal(fits[1].predict_proba(X_test), fits[0].predict_proba(X_test))
    for round_ in fits[1].rounds_:
        for net in round_.nets:
            assert all(getattr(m, "_cache", None) is None for m in net.module_.modules())


def test_rocket_fold_nets_share_one_initialisation_and_cache():
    """`initialized_builder`: one module initialised on all the windows; every build is a
    copy of it (the same biases and weights) reading one cache, filled by the
    initialisation; modules without ``initialize`` are left to their builder."""
    X, _ = make_inputs("3d", n=12)
    make = functools.partial(RocketModule, (CHANNELS, LENGTH), 0, 2, **SMALL["rocket"])
    builder, cache = initialized_builder(make, 3, X)
    torch.manual_seed(3)
    reference = make().fit_biases(X)
    assert n_windows(cache) == 12
    copies = [builder(), builder()]
    for module in copies:
        assert module._cache is cache
        for name, value in reference.state_dict().items():
            torch.testing.assert_close(module.state_dict()[name], value, rtol=0, atol=0)
    copies[0].train()
    with torch.no_grad():
        torch.testing.assert_close(copies[0].encode(X), reference._transform(X), rtol=0, atol=0)
    release_caches(copies[0])
    assert copies[0]._cache is None and copies[1]._cache is cache and n_windows(cache) == 12
    # others: built once, the first build handed out (no module built for nothing)
    mlp = functools.partial(MLPModule, 4, 0, 1)
    builder, cache = initialized_builder(mlp, 0, torch.randn(3, 4))
    assert cache is None
    torch.manual_seed(0)
    reference = mlp()
    first, second = builder(), builder()
    assert first is not second and isinstance(second, MLPModule)  # later calls build anew
    for name, value in reference.state_dict().items():
        torch.testing.assert_close(first.state_dict()[name], value, rtol=0, atol=0)


def count_transformed_rows(monkeypatch):
    """A list that records the number of windows of every MiniRocket transform from now."""
    rows = []
    ppv = RocketModule.ppv

    def counted(self, windows):
        rows.append(len(windows))
        return ppv(self, windows)

    monkeypatch.setattr(RocketModule, "ppv", counted)
    return rows


@pytest.mark.parametrize("head", ["ridge", "trained"])
def test_rocket_estimator_transforms_each_window_once_a_fit(monkeypatch, head):
    """With cross-fitting, a rocket member computes the MiniRocket transform of the
    training windows once a fit (its initialisation, on all of them, in round 0): the fold
    nets' training and out-of-fold outputs read the shared cache, and the next rounds
    reuse the initialisation.  Every fold net of every round has the biases fitted on all
    training windows; the trained weights differ between rounds."""
    X, y = toy_windows(30, seed=0)
    rows = count_transformed_rows(monkeypatch)
    est = RecurrentExpansionClassifier(
        module=functools.partial(RocketModule, **SMALL["rocket"], head=head), n_rounds=3,
        n_components=4, max_epochs=3, batch_size=8, cv=3, n_iter_no_change=100,
        device="cpu", random_state=0).fit(X, y)
    assert len(est.rounds_) == 3
    # the fit first checks the member's contract on 2 rows (forward, then features)
    assert rows == [2, 2, 30], rows
    modules = [next(m for m in net.module_.modules() if isinstance(m, RocketModule))
               for round_ in est.rounds_ for net in round_.nets]
    per_round = 1 if head == "ridge" else 3  # the ridge: one fit, leave-one-out outputs
    assert len(modules) == 3 * per_round
    for module in modules[1:]:
        for name in RocketModule._FIXED + ("example_draw",):
            torch.testing.assert_close(getattr(module, name), getattr(modules[0], name),
                                       rtol=0, atol=0)
    assert not torch.equal(modules[per_round].fusion[0].weight,
                           modules[2 * per_round].fusion[0].weight)


def test_init_memo_pickles_empty():
    """A memo sent to another process arrives empty: the job there initialises itself."""
    memo = InitMemo()
    memo["key"] = ([{"biases": torch.ones(2)}], {})
    copied = pickle.loads(pickle.dumps(memo))
    assert isinstance(copied, InitMemo) and copied == {}
    assert len(memo) == 1


def _italy_power_demand():
    datasets = pytest.importorskip("aeon.datasets")
    X_train, y_train = datasets.load_italy_power_demand(split="train")
    X_test, y_test = datasets.load_italy_power_demand(split="test")
    return X_train, y_train, X_test, y_test


def _ridge_accuracy(F_train, y_train, F_test, y_test):
    from sklearn.linear_model import RidgeClassifierCV

    ridge = RidgeClassifierCV(alphas=np.logspace(-3, 3, 10)).fit(F_train, y_train)
    return ridge.score(F_test, y_test)


def test_rocket_features_as_good_as_aeon_minirocket():
    """On ItalyPowerDemand, ridge on our PPV features is within 0.02 of aeon's MiniRocket."""
    X_train, y_train, X_test, y_test = _italy_power_demand()
    from aeon.transformations.collection.convolution_based import MiniRocket

    minirocket = MiniRocket(random_state=0).fit(X_train)
    reference = _ridge_accuracy(
        minirocket.transform(X_train), y_train, minirocket.transform(X_test), y_test
    )
    torch.manual_seed(0)
    module = RocketModule(X_train.shape[1:], 0, 2).eval()
    Xt_train = torch.tensor(X_train, dtype=torch.float32)
    module.fit_biases(Xt_train)
    with torch.no_grad():
        ours = _ridge_accuracy(
            module.encode(Xt_train).numpy(), y_train,
            module.encode(torch.tensor(X_test, dtype=torch.float32)).numpy(), y_test,
        )
    assert reference > 0.9
    assert ours >= reference - 0.02, (ours, reference)


def test_rocket_transform_equals_aeon_minirocket_given_its_biases():
    """With aeon's fitted biases loaded, our transform is aeon's (up to rounding ties)."""
    X_train, _, X_test, _ = _italy_power_demand()
    from aeon.transformations.collection.convolution_based import MiniRocket

    minirocket = MiniRocket(random_state=0).fit(X_train)
    _, _, dilations, per_dilation, biases = minirocket.parameters
    module = RocketModule(X_train.shape[1:], 0, 2).eval()
    assert module.dilations == tuple(dilations.tolist())
    assert module.biases_per_dilation == tuple(per_dilation.tolist())
    start = 0
    for i, n_b in enumerate(module.biases_per_dilation):
        block = torch.tensor(biases[start : start + 84 * n_b]).view(84, n_b)
        module.biases[:, module._bias_columns(i)] = block
        start += 84 * n_b
    module.biases_set.fill_(True)
    with torch.no_grad():
        ours = module.ppv(torch.tensor(X_test, dtype=torch.float32)).numpy()
    theirs = np.asarray(minirocket.transform(X_test))
    assert ours.shape == theirs.shape
    # a window position whose output ties with a bias (e.g. on a plateau) may
    # round to either side: a few features in 10^5 differ by a few 1/24
    gap = np.abs(ours - theirs)
    assert (gap > 1e-6).mean() < 1e-4, (gap > 1e-6).mean()
    assert gap.mean() < 1e-5, gap.mean()


# ----------------------------------------------------------------------
# Learning, through the estimator


# (max_epochs, lr) for a quick fit of each member, with its default widths: the
# FCN needs more steps to leave its first plateau; the rocket member's fusion
# layer over ~10,000 features wants a smaller step.
QUICK_FIT = {"fcn": (20, 1e-2), "resnet": (10, 1e-2), "inception": (10, 1e-2),
             "rocket": (20, 3e-3)}


@pytest.mark.parametrize("name", NAMES)
def test_learns_a_toy_problem(name):
    """Slow or fast sines in noise (chance: 0.5); 2 batches an epoch, 10 or 20 epochs."""
    X, y = toy_windows(64, seed=0)
    X_test, y_test = toy_windows(200, seed=1)
    max_epochs, lr = QUICK_FIT[name]
    # 1 to 4 s on one CPU thread (no wall-time assertion: shared machines vary)
    clf = RecurrentExpansionClassifier(
        module=name, n_rounds=1, max_epochs=max_epochs, batch_size=32, lr=lr,
        early_stopping=False, device="cpu", random_state=0,
    ).fit(X, y)
    assert clf.score(X_test, y_test) > 0.9  # 1.0 with seeds 0, 1 and 2


def test_rocket_estimator_reproducible_and_pickles():
    X, y = toy_windows(60, seed=0)
    X_test, _ = toy_windows(50, seed=1)
    make = functools.partial(
        RecurrentExpansionClassifier, module="rocket", n_rounds=2, max_epochs=5, batch_size=16,
        early_stopping=False, device="cpu", random_state=0,
    )
    first, second = make().fit(X, y), make().fit(X, y)
    proba = first.predict_proba(X_test)
    np.testing.assert_array_equal(second.predict_proba(X_test), proba)
    for round_ in first.rounds_:  # the network itself, or inside a round's wrapper
        (rocket,) = [m for m in round_.nets[0].module_.modules() if isinstance(m, RocketModule)]
        assert rocket.biases_set
    restored = pickle.loads(pickle.dumps(first))
    np.testing.assert_array_equal(restored.predict_proba(X_test), proba)
    # rows predicted alone or among others get the same probabilities
    np.testing.assert_allclose(first.predict_proba(X_test[:3]), proba[:3], rtol=0, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", NAMES)
def test_cuda_matches_cpu(name):
    module = build(name, (CHANNELS, LENGTH), N_EXPANSION).eval()
    X, Z = make_inputs("3d", N_EXPANSION)
    with torch.no_grad():
        cpu_maps, cpu_out = module.features_and_output(X, Z)
        gpu = module.to("cuda")
        maps, out = gpu.features_and_output(X.cuda(), Z.cuda())
        if name == "rocket":  # the PPV transform itself is exact
            torch.testing.assert_close(
                gpu.encode(X.cuda()).cpu(), module.cpu().encode(X), rtol=0, atol=0
            )
    torch.testing.assert_close(out.cpu(), cpu_out, rtol=1e-3, atol=1e-4)
    torch.testing.assert_close(maps.cpu(), cpu_maps, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_timeseries_preset_multiverse(task):
    """``members="timeseries"`` fits its three rocket members on windows, each with its own
    random features, for a classifier and the regressor twin; it survives clone and
    pickle."""
    from sklearn.base import clone

    from sklearn_recursive import MultiverseRE, RecurrentExpansionRegressor

    X, y = toy_windows(40, seed=0)
    X_test, _ = toy_windows(10, seed=1)
    RE = RecurrentExpansionClassifier if task == "classification" else RecurrentExpansionRegressor
    target = y if task == "classification" else X[:, 0, -1] + 0.5 * (y == "fast")
    mv = MultiverseRE(RE(n_rounds=2, n_components=4, max_epochs=3, batch_size=16, cv=2,
                         device="cpu"), members="timeseries", random_state=0)
    assert clone(mv).get_params()["members"] == "timeseries"
    mv.fit(X, target)
    assert [m["name"] for m in mv.history_[0]["members"]] == ["rocket_0", "rocket_1",
                                                               "rocket_2"]
    rockets = [nets[0].module_ for nets in mv.rounds_[0].members]
    assert all(isinstance(m, RocketModule) for m in rockets)
    assert len({m.cache_key() for m in rockets}) == 3  # three transforms
    # cv=2: one ridge fit each, its leave-one-out outputs out of fold
    assert all(len(nets) == 1 for nets in mv.rounds_[0].members)
    pred = mv.predict(X_test)
    assert pred.shape == (10,)
    if task == "classification":
        assert set(pred) <= {"slow", "fast"}
    else:
        assert np.isfinite(pred).all()
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(mv)).predict(X_test), pred)


# The ridge head (closed form)


def _ridge_data(n=40, p=30, n_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, p))
    y = np.argmax(A[:, :n_classes] + 0.5 * rng.standard_normal((n, n_classes)), axis=1)
    return A, y


def test_ridge_head_is_ridge_classifier_cv():
    """Classification: scikit-learn's `RidgeClassifierCV` (MiniRocket's head) on the same
    columns -- the same penalty and the same scores up to a positive temperature, fitted on
    the leave-one-out scores."""
    from scipy.special import log_softmax
    from sklearn.linear_model import RidgeClassifierCV, RidgeCV

    from sklearn_recursive._modules import RIDGE_ALPHAS, ridge_head

    A, y = _ridge_data()
    coef, intercept, temperature = ridge_head(A, y, 3, RIDGE_ALPHAS)
    reference = RidgeClassifierCV(alphas=RIDGE_ALPHAS).fit(A, y)
    np.testing.assert_allclose(coef, reference.coef_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(intercept, reference.intercept_, rtol=1e-6, atol=1e-8)
    assert temperature > 0
    # the temperature minimises the cross-entropy of the leave-one-out scores
    targets = np.where(np.arange(3) == y[:, None], 1.0, -1.0)
    loo = RidgeCV(alphas=[reference.alpha_], scoring="neg_mean_squared_error",
                  store_cv_results=True).fit(A, targets).cv_results_[:, :, 0]

    def loss(t):
        return -log_softmax(t * loo, axis=1)[np.arange(len(y)), y].mean()
    assert loss(temperature) <= min(loss(0.9 * temperature), loss(1.1 * temperature))


def test_ridge_head_regression_and_offsets():
    """Regression fits ``y - offset`` (temperature 1); a classifier whose offset already
    predicts the classes and whose columns are noise keeps the offset almost unchanged."""
    from sklearn.linear_model import RidgeCV

    from sklearn_recursive._modules import RIDGE_ALPHAS, ridge_head

    A, _ = _ridge_data()
    rng = np.random.default_rng(1)
    y = A[:, :2] @ np.array([[1.0, 0.5], [-2.0, 1.0]]) + 0.1 * rng.standard_normal((40, 2))
    offset = rng.standard_normal((40, 2))
    coef, intercept, temperature = ridge_head(A, y, 2, RIDGE_ALPHAS, offset=offset)
    reference = RidgeCV(alphas=RIDGE_ALPHAS).fit(A, y - offset)
    np.testing.assert_allclose(coef, reference.coef_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(intercept, reference.intercept_, rtol=1e-6, atol=1e-8)
    assert temperature == 1.0
    noise = rng.standard_normal((60, 30))
    labels = rng.integers(0, 3, 60)
    logits = 4.0 * (np.arange(3) == labels[:, None])
    coef, intercept, temperature = ridge_head(noise, labels, 3, RIDGE_ALPHAS, offset=logits)
    assert np.abs(temperature * (noise @ coef.T + intercept)).mean() < 0.25  # offset: 4
    # weights: a row of weight 2 counts as the row twice
    weights = np.ones(40)
    weights[0] = 2.0
    twice = np.vstack([A, A[:1]]), np.concatenate([y, y[:1]])
    np.testing.assert_allclose(
        ridge_head(A, y, 2, [1.0], sample_weight=weights)[0],
        ridge_head(*twice, 2, [1.0])[0], rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("cv", [None, 4])
def test_ridge_head_leave_one_out_outputs_are_refits_without_the_row(cv):
    """``return_loo``: each row's output is what the ridge fitted without that row gives it
    (one penalty, so that the refits choose no other), with the offset and, for a
    classifier, the temperature of the fit on all rows -- also when blocks (``cv``) choose
    the fit."""
    from sklearn_recursive._modules import ridge_head

    rng = np.random.default_rng(3)
    A = rng.standard_normal((15, 40))  # more columns than rows: the kernel form
    y = A[:, :2] @ np.array([[1.0], [-1.0]]) + 0.3 * rng.standard_normal((15, 1))
    offset = rng.standard_normal((15, 1))
    labels = rng.integers(0, 3, 15)
    for target, n_out, off in ((y, 1, offset), (labels, 3, None)):
        *_, temperature, loo = ridge_head(A, target, n_out, [2.0], offset=off,
                                          return_loo=True, cv=cv)
        # the temperature does not depend on whether the outputs are asked for
        assert ridge_head(A, target, n_out, [2.0], offset=off, cv=cv)[2] == temperature
        for i in range(15):
            keep = np.arange(15) != i
            coef, intercept, _ = ridge_head(
                A[keep], target[keep], n_out, [2.0],
                offset=None if off is None else off[keep])
            decision = A[i] @ coef.T + intercept
            expected = (off[i] + decision if off is not None
                        else temperature * decision)
            np.testing.assert_allclose(loo[i], expected, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("cv", [None, 5])
def test_ridge_head_rows_of_weight_zero(cv):
    """A row of weight 0 changes nothing in the fit, and its leave-one-out output is the
    fit's output -- finite, not 0 / 0 -- for regression and class targets."""
    from sklearn_recursive._modules import RIDGE_ALPHAS, ridge_head

    rng = np.random.default_rng(13)
    A = rng.standard_normal((30, 50))
    w = np.ones(30)
    w[[0, 7, 20]] = 0.0
    keep = w > 0
    for target, n_out in ((A[:, 0] + 0.1 * rng.standard_normal(30), 1),
                          (rng.integers(0, 3, 30), 3)):
        coef, intercept, temperature, loo = ridge_head(
            A, target, n_out, RIDGE_ALPHAS, sample_weight=w, cv=cv, return_loo=True)
        if cv is None:  # the blocks of the rows kept differ from those of all rows
            reference = ridge_head(A[keep], target[keep], n_out, RIDGE_ALPHAS,
                                   return_loo=True)
            np.testing.assert_allclose(coef, reference[0], rtol=1e-6, atol=1e-9)
            np.testing.assert_allclose(loo[keep], reference[3], rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(loo[~keep], temperature * (A[~keep] @ coef.T + intercept),
                                   rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("cv", [None, 4])
def test_ridge_head_keeps_the_kernel_between_calls(monkeypatch, cv):
    """``kept``: a later call on the same main columns, rows and weights reuses the main
    kernel's eigendecomposition (one ``eigh`` for both) and fits what a fresh call fits,
    bit for bit, whatever its other columns; other weights decompose their kernel anew."""
    from sklearn_recursive._modules import RIDGE_ALPHAS, ridge_head

    decompositions = []
    eigh = np.linalg.eigh
    monkeypatch.setattr(np.linalg, "eigh", lambda M: decompositions.append(len(M)) or eigh(M))
    rng = np.random.default_rng(17)
    main = rng.standard_normal((40, 90))
    y = main[:, :2] + 0.3 * rng.standard_normal((40, 2))
    kept, scales = {}, (1.0, 10.0, np.inf)
    for call, w in enumerate((None, None, None, rng.uniform(0.5, 2.0, 40))):
        A = np.hstack([main, rng.standard_normal((40, 5))])  # a round's new expansion
        args = (A, y, 2, RIDGE_ALPHAS, w)
        kwargs = dict(n_main=90, other_scales=scales, return_loo=True, cv=cv)
        before = len(decompositions)
        reused = ridge_head(*args, **kwargs, kept=kept)
        assert len(decompositions) - before == (0 if call in (1, 2) else 1)
        fresh = ridge_head(*args, **kwargs)
        for got, expected in zip(reused, fresh):
            np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("scale", [0.3, 1.0, 40.0])
def test_ridge_head_scaled_other_columns_are_ridge_cv_on_scaled_columns(scale):
    """``other_scales=(s,)``: the fit is `RidgeCV` on the main columns beside the other
    columns multiplied by ``s`` (weighted, leave-one-out choice of the penalty), its
    weights applying to the columns as given -- the low-rank update of the main columns'
    kernel that serves every scale computes the same fit."""
    from sklearn.linear_model import RidgeCV

    from sklearn_recursive._modules import RIDGE_ALPHAS, ridge_head

    rng = np.random.default_rng(11)
    main, other = rng.standard_normal((45, 120)), rng.standard_normal((45, 6))
    y = other @ rng.standard_normal((6, 2)) + main[:, :2] + 0.5 * rng.standard_normal((45, 2))
    w = rng.uniform(0.5, 2.0, 45)
    coef, intercept, _ = ridge_head(np.hstack([main, other]), y, 2, RIDGE_ALPHAS,
                                    sample_weight=w, n_main=120, other_scales=(scale,))
    reference = RidgeCV(alphas=RIDGE_ALPHAS).fit(np.hstack([main, scale * other]), y,
                                                 sample_weight=w)
    expected = reference.coef_.copy()
    expected[:, 120:] *= scale
    np.testing.assert_allclose(coef, expected, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(intercept, reference.intercept_, rtol=1e-6, atol=1e-9)


def test_ridge_head_other_columns_alone():
    """``other_scales`` with ``inf``: the columns from ``n_main`` on alone (the first ones'
    weights 0), as scikit-learn's `RidgeCV` on those columns; the leave-one-out error picks
    it when the first columns are noise and the others carry the target."""
    from sklearn.linear_model import RidgeCV

    from sklearn_recursive._modules import RIDGE_ALPHAS, ridge_head

    rng = np.random.default_rng(5)
    noise, lags = rng.standard_normal((60, 200)), rng.standard_normal((60, 4))
    y = lags @ np.array([1.0, -0.5, 0.25, 2.0]) + 0.1 * rng.standard_normal(60)
    A = np.hstack([noise, lags])
    coef, intercept, _ = ridge_head(A, y, 1, RIDGE_ALPHAS, n_main=200, other_scales=(np.inf,))
    reference = RidgeCV(alphas=RIDGE_ALPHAS).fit(lags, y)
    assert not coef[:, :200].any()
    np.testing.assert_allclose(coef[:, 200:], reference.coef_[None], rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(intercept, [reference.intercept_], rtol=1e-6, atol=1e-8)
    for cv in (None, 4):
        chosen, *_ = ridge_head(A, y, 1, RIDGE_ALPHAS, n_main=200, other_scales=(1.0, np.inf),
                                cv=cv)
        assert not chosen[:, :200].any()


def test_ridge_head_chooses_by_contiguous_blocks_with_cv():
    """``cv=k``: the penalty of lowest error over ``k`` contiguous blocks of rows, each
    predicted by the weighted ridge fitted on the others -- scikit-learn's `Ridge` refitted
    fold by fold (``KFold(k)``, no shuffling) -- and then the fit on all rows."""
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import KFold

    from sklearn_recursive._modules import RIDGE_ALPHAS, ridge_head

    for seed, (n, p, noise) in enumerate([(53, 80, 0.5), (40, 10, 2.0), (61, 30, 0.1)]):
        rng = np.random.default_rng(seed)
        A = rng.standard_normal((n, p))
        y = A[:, :3] @ np.array([1.0, -1.0, 0.5]) + noise * rng.standard_normal(n)
        w = rng.uniform(0.5, 2.0, n)
        errors = np.zeros(len(RIDGE_ALPHAS))
        for i, alpha in enumerate(RIDGE_ALPHAS):
            for kept, held in KFold(5).split(A):
                fit = Ridge(alpha=alpha).fit(A[kept], y[kept], sample_weight=w[kept])
                errors[i] += w[held] @ (fit.predict(A[held]) - y[held]) ** 2
        for i in range(len(RIDGE_ALPHAS) - 1):  # every neighbouring pair's order, exactly
            pair = RIDGE_ALPHAS[i: i + 2]
            chosen = pair[int(errors[i + 1] < errors[i])]
            coef, *_ = ridge_head(A, y, 1, pair, sample_weight=w, cv=5)
            reference = Ridge(alpha=chosen).fit(A, y, sample_weight=w)
            np.testing.assert_allclose(coef[0], reference.coef_, rtol=1e-6, atol=1e-10)
        coef, intercept, _ = ridge_head(A, y, 1, RIDGE_ALPHAS, sample_weight=w, cv=5)
        reference = Ridge(alpha=RIDGE_ALPHAS[np.argmin(errors)]).fit(A, y, sample_weight=w)
        np.testing.assert_allclose(coef[0], reference.coef_, rtol=1e-6, atol=1e-10)
        np.testing.assert_allclose(intercept, [reference.intercept_], rtol=1e-6, atol=1e-10)
    # the other columns' weight is chosen by the blocks as well: the main columns noise,
    # the other ones the target -> the largest scale of the other columns wins
    noise = rng.standard_normal((len(y), 200))
    cols = np.hstack([noise, A[:, :3]])
    coef, *_ = ridge_head(cols, y, 1, RIDGE_ALPHAS, n_main=200, other_scales=(1.0, 100.0),
                          cv=5)
    assert np.abs(coef[0, 200:]).min() > 10 * np.abs(coef[0, :200]).max()


@pytest.mark.parametrize("ridge_cv, target, expected", [
    ("auto", "regression", 5), ("auto", "classification", None), (None, "regression", None),
    (3, "classification", 3), (40, "regression", 24)])
def test_rocket_ridge_cv_reaches_the_ridge(monkeypatch, ridge_cv, target, expected):
    """``ridge_cv``: "auto" chooses the ridge by 5 contiguous blocks for regression targets
    and by leave-one-out (None) for class labels; an int k by k blocks (at most the rows)."""
    from sklearn_recursive._modules import ridge_head

    X, Z = make_inputs("3d", N_EXPANSION, n=24)
    y = (X[:, 0, :8].mean(dim=1) > 0).long()
    if target == "regression":
        y = X[:, 0, -3:].sum(dim=1, keepdim=True).repeat(1, N_OUTPUTS).double()
    seen = []

    def spy(*args, cv=None, **kwargs):
        seen.append(cv)
        return ridge_head(*args, cv=cv, **kwargs)

    monkeypatch.setattr("sklearn_recursive._modules.ridge_head", spy)
    module = build("rocket", (CHANNELS, LENGTH), N_EXPANSION, ridge_cv=ridge_cv).train()
    assert module.fit_closed_form(X, Z, y)
    assert seen == [expected]


@pytest.mark.parametrize("bad", [1, 0, "loo", 2.5])
def test_rocket_ridge_cv_refuses_bad_values(bad):
    with pytest.raises(ValueError, match="ridge_cv must be 'auto', None or an int >= 2"):
        RocketModule((CHANNELS, LENGTH), N_EXPANSION, 2, ridge_cv=bad)


@pytest.mark.parametrize("linear_window", [True, False, "auto"])
def test_rocket_fit_closed_form(linear_window):
    """``head="ridge"``: `fit_closed_form` fits the linear skip as `ridge_head` on the
    unit-variance columns of ``[h, Z]`` (and of the window's values with
    ``linear_window``; "auto": not for class labels), zeroes the maps' head and leaves
    the maps' layer as built; ``head="trained"`` declines, and so does the ridge with
    fewer than 3 rows."""
    from sklearn_recursive._modules import ridge_head

    X, Z = make_inputs("3d", N_EXPANSION, n=24)
    y = (X[:, 0, :8].mean(dim=1) > 0).long()
    module = build("rocket", (CHANNELS, LENGTH), N_EXPANSION,
                   linear_window=linear_window).train()
    fusion = module.fusion[0].weight.clone()
    assert module.fit_closed_form(X, Z, y)
    assert torch.equal(module.fusion[0].weight, fusion)
    assert module.head.weight.abs().sum() == 0 and module.head.bias.abs().sum() == 0
    with torch.no_grad():
        inputs = module._fusion_input(X, Z).double().numpy()
        if linear_window is True:
            inputs = np.hstack([inputs, X.flatten(1).double().numpy()])
        scale = np.concatenate([np.full(module.encoding_size, 1 / module.input_gain),
                                1 / inputs[:, module.encoding_size:].std(axis=0)])
        coef, intercept, temperature = ridge_head(inputs * scale, y.numpy(), 2, module.alphas)
        assert temperature > 0.1
        expected = temperature * ((inputs * scale) @ coef.T + intercept)
        outputs = module.eval()(X, Z).numpy()
        np.testing.assert_allclose(outputs, expected, rtol=1e-4, atol=1e-4)
        assert (outputs.argmax(axis=1) == y.numpy()).mean() > 0.9  # it fits its rows
    assert not build("rocket", (CHANNELS, LENGTH), N_EXPANSION, head="trained").fit_closed_form(
        X, Z, y)
    assert not build("rocket", (CHANNELS, LENGTH), N_EXPANSION).fit_closed_form(
        X[:2], Z[:2], y[:2])


def test_rocket_fold_heads_read_the_gram_of_all_windows(monkeypatch):
    """The initialisation keeps the Gram matrix of the windows that set the biases; a fold
    network's ridge reads its rows' block of it: the head it fits is the one it fits with
    no cache (the Gram computed from its own rows), and a window outside the kept rows
    makes it compute instead."""
    from sklearn_recursive._modules import _GRAM, ridge_head

    X, Z = make_inputs("3d", N_EXPANSION, n=30)
    y = (X[:, 0, :8].mean(dim=1) > 0).long()
    make = functools.partial(RocketModule, (CHANNELS, LENGTH), N_EXPANSION, 2,
                             **SMALL["rocket"])
    builder, cache = initialized_builder(make, 3, X)
    assert cache[_GRAM][1].shape == (30, 30)
    rows = torch.arange(30) % 5 != 2  # a fold's training rows
    with_gram, alone = builder(), builder()
    alone.release_cache()
    alone.cache_size = 0
    calls = []
    real = ridge_head

    def spy(*args, gram=None, **kwargs):
        calls.append(gram)
        return real(*args, gram=gram, **kwargs)

    monkeypatch.setattr("sklearn_recursive._modules.ridge_head", spy)
    assert with_gram.train().fit_closed_form(X[rows], Z[rows], y[rows])
    assert alone.train().fit_closed_form(X[rows], Z[rows], y[rows])
    np.testing.assert_allclose(calls[0], calls[1], rtol=1e-12, atol=1e-12)
    for a, b in zip(with_gram.skip.parameters(), alone.skip.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    moved = X.clone()
    moved[0] += 1.0  # a window the Gram does not hold
    assert with_gram._gram_of(moved[:4], with_gram.encode(moved[:4])).shape == (4, 4)


def test_rocket_later_rounds_reuse_the_kernel(monkeypatch):
    """A member's networks of later rounds, sharing its cache, fit the same rows with a
    new expansion: the PPVs' kernel is decomposed once, the heads are those fitted with
    no cache, and a cache too small for the decomposition keeps none."""
    from sklearn_recursive._modules import _KERNEL

    decompositions = []
    eigh = np.linalg.eigh
    monkeypatch.setattr(np.linalg, "eigh", lambda M: decompositions.append(len(M)) or eigh(M))
    X, _ = make_inputs("3d", N_EXPANSION, n=30)
    y = X[:, 0, -3:].sum(dim=1, keepdim=True).repeat(1, N_OUTPUTS).double()
    make = functools.partial(RocketModule, (CHANNELS, LENGTH), N_EXPANSION, N_OUTPUTS,
                             **SMALL["rocket"])
    builder, cache = initialized_builder(make, 3, X)
    for round_ in range(3):
        Z = torch.randn(30, N_EXPANSION, generator=torch.Generator().manual_seed(round_))
        shared, alone = builder(), builder()
        alone.release_cache()
        alone.cache_size = 0
        assert shared.train().fit_closed_form(X, Z, y)
        assert alone.train().fit_closed_form(X, Z, y)
        for a, b in zip(shared.skip.parameters(), alone.skip.parameters()):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert decompositions == [30] * 4  # once shared, three times alone
    assert _KERNEL in cache
    small = builder()
    small.cache_size = 4 * 30**2 * (1 + len(small.alphas) / 5) - 1
    assert small._kernel_memo(30, 5) is None and small._kernel_memo(30, None) is cache


@pytest.mark.parametrize("params, message", [
    (dict(head="adam"), "head must be 'ridge' or 'trained'; got 'adam'"),
    (dict(linear_window=1), "linear_window must be 'auto', True or False; got 1"),
    (dict(alphas=[]), "alphas must be a non-empty sequence of positive"),
    (dict(alphas=[1.0, -1.0]), "alphas must be a non-empty sequence of positive"),
    (dict(alphas=[[1.0]]), "alphas must be a non-empty sequence of positive"),
    (dict(alphas=[float("nan")]), "alphas must be a non-empty sequence of positive"),
])
def test_rocket_head_arguments(params, message):
    with pytest.raises(ValueError, match=message):
        RocketModule((1, LENGTH), 0, 2, **params)


@pytest.mark.parametrize("classifier", [True, False])
def test_rocket_estimator_fits_in_closed_form(classifier):
    """Every fold net of a rocket member is fitted in closed form (one recorded epoch,
    whatever ``max_epochs``), continued rounds included (gate 1), for classifiers and
    regressors; the fit is reproducible."""
    from sklearn_recursive import RecurrentExpansionRegressor
    from sklearn_recursive._members import ContinuedRound

    X, y = toy_windows(30, seed=0)
    if not classifier:
        y = X[:, 0, :5].mean(axis=1)
    Est = RecurrentExpansionClassifier if classifier else RecurrentExpansionRegressor
    params = dict(module=functools.partial(RocketModule, **SMALL["rocket"]), n_rounds=3,
                  n_components=4, max_epochs=50, cv=3, n_iter_no_change=100, device="cpu",
                  random_state=0)
    est = Est(**params).fit(X, y)
    assert len(est.rounds_) == 3
    for r, round_ in enumerate(est.rounds_):
        for net in round_.nets:
            assert len(net.history) == 1 and np.isfinite(net.history[-1, "train_loss"])
            assert isinstance(net.module_, ContinuedRound) == (r > 0)
            if r > 0:
                assert net.module_.gate.eq(1).all()
    np.testing.assert_array_equal(Est(**params).fit(X, y).predict(X), est.predict(X))


@pytest.mark.parametrize("head", ["ridge", "trained"])
def test_rocket_predictions_transform_each_window_once(monkeypatch, head):
    """Predicting runs every network of every round (one a round with the ridge head, one
    per fold trained), and they share the member's transform: each new window (and the
    zero rows that pad the chunk, alike) is transformed once, and the predictions are
    those of the networks run one by one."""
    from sklearn_recursive import _expansion as expansion

    X, y = toy_windows(30, seed=0)
    X_new, _ = toy_windows(7, seed=1)
    est = RecurrentExpansionClassifier(
        module=functools.partial(RocketModule, **SMALL["rocket"], head=head), n_rounds=3,
        n_components=4, cv=3, max_epochs=3, n_iter_no_change=100, device="cpu",
        random_state=0).fit(X, y)
    n_nets = sum(len(round_.nets) for round_ in est.rounds_)
    assert n_nets == (3 if head == "ridge" else 9)
    rows = count_transformed_rows(monkeypatch)
    staged = list(est.staged_predict_proba(X_new))
    assert rows == [8], rows  # 7 windows and one zero row
    assert all(getattr(m, "_cache", None) is None
               for round_ in est.rounds_ for net in round_.nets for m in net.module_.modules())
    # the same numbers as with no cache shared: every network transforms the windows itself
    monkeypatch.setattr(expansion, "share_caches_by_key", lambda modules, pool: [])
    for pooled, alone in zip(staged, est.staged_predict_proba(X_new)):
        np.testing.assert_array_equal(pooled, alone)
    assert len(rows) == 1 + n_nets


def test_rocket_cross_fitting_is_the_ridge_leave_one_out():
    """With ``cv``, a ridge-headed rocket member fits one network a round on all rows, and
    its out-of-fold outputs, which score and choose the rounds, are the ridge's exact
    leave-one-out outputs (n folds instead of ``cv``); a trained head fits ``cv`` fold
    networks."""
    from scipy.special import softmax
    from sklearn.metrics import log_loss

    X, y = toy_windows(30, seed=0)
    est = RecurrentExpansionClassifier(
        module=functools.partial(RocketModule, **SMALL["rocket"]), n_rounds=2,
        n_components=4, cv=3, device="cpu", random_state=0).fit(X, y)
    for round_, record in zip(est.rounds_, est.history_):
        (net,) = round_.nets
        loo = net.module_.loo_outputs()
        assert loo.shape == (30, 2)
        assert record["valid_loss"] == pytest.approx(log_loss(y, softmax(loo, axis=1)),
                                                     rel=1e-6)
    trained = RecurrentExpansionClassifier(
        module=functools.partial(RocketModule, **SMALL["rocket"], head="trained"),
        n_rounds=1, n_components=4, cv=3, max_epochs=2, device="cpu", random_state=0).fit(X, y)
    assert len(trained.rounds_[0].nets) == 3


class _ForgetfulMemo(dict):
    """A memo that keeps nothing: as a job in another process sees it."""

    def __setitem__(self, key, value):
        pass


def test_rocket_rounds_same_with_and_without_the_memo(monkeypatch):
    """Without the memo (a job in another process gets an empty one) a later round
    initialises its member as its round-0 module did: the same model, bit for bit, at the
    cost of the transform every round."""
    from sklearn_recursive import _rounds

    X, y = toy_windows(30, seed=0)
    X_new, _ = toy_windows(9, seed=1)
    params = dict(module=functools.partial(RocketModule, **SMALL["rocket"]), n_rounds=3,
                  n_components=4, cv=3, n_iter_no_change=100, device="cpu", random_state=0)
    rows = count_transformed_rows(monkeypatch)
    kept = RecurrentExpansionClassifier(**params).fit(X, y)
    assert rows == [2, 2, 30]
    monkeypatch.setattr(_rounds, "InitMemo", _ForgetfulMemo)
    rows.clear()
    forgot = RecurrentExpansionClassifier(**params).fit(X, y)
    assert rows == [2, 2, 30, 30, 30]  # round 0, then the round-0 module again each round
    for a, b in zip(kept.staged_predict_proba(X_new), forgot.staged_predict_proba(X_new)):
        np.testing.assert_array_equal(a, b)
