"""The built-in member networks follow the module contract, for 2-D and 3-D input."""

import pickle

import pytest
import torch

from sklearn_recursive._modules import (
    BUILTIN_MODULES,
    CNNModule,
    MLPModule,
    RecurrentModule,
    TransformerModule,
    _patches,
)

N, CHANNELS, LENGTH, N_OUTPUTS = 10, 3, 8, 2

# Small settings, so the whole table runs in a few seconds.
SMALL = {
    "mlp": dict(hidden_layer_sizes=(8, 6)),
    "cnn": dict(channels=(4, 5), kernel_size=3, hidden=6),
    "gru": dict(hidden_size=5, num_layers=2, hidden=6),
    "lstm": dict(hidden_size=5, hidden=6),
    "transformer": dict(d_model=8, nhead=2, num_layers=2, dim_feedforward=16, hidden=6),
    "fcn": dict(filters=(4, 6, 5), hidden=6),
    "resnet": dict(filters=(4, 6), hidden=6),
    "inception": dict(n_filters=3, bottleneck=2, depth=4, hidden=6),
    "rocket": dict(num_features=3 * 84, hidden=6),
}
INPUTS = {"2d": LENGTH, "3d": (CHANNELS, LENGTH)}
CASES = [
    (name, kind, n_expansion)
    for name in BUILTIN_MODULES
    for kind in INPUTS
    for n_expansion in (0, 5)
]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tensors this small gain nothing from threads, and a busy machine's thread
    barriers make the many small steps of a recurrent network crawl."""
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n_threads)


def build(name, n_features, n_expansion, seed=0, **params):
    torch.manual_seed(seed)
    return BUILTIN_MODULES[name](n_features, n_expansion, N_OUTPUTS, **{**SMALL[name], **params})


def make_inputs(kind, n_expansion, n=N):
    generator = torch.Generator().manual_seed(1)
    shape = (n, LENGTH) if kind == "2d" else (n, CHANNELS, LENGTH)
    X = torch.randn(shape, generator=generator)
    Z = torch.randn((n, n_expansion), generator=generator)
    return X, Z


@pytest.mark.parametrize("name, kind, n_expansion", CASES)
def test_contract_shapes(name, kind, n_expansion):
    module = build(name, INPUTS[kind], n_expansion).eval()
    X, Z = make_inputs(kind, n_expansion)
    with torch.no_grad():
        out = module(X, Z)
        maps = module.features(X, Z)
        both = module.features_and_output(X, Z)
    assert out.shape == (N, N_OUTPUTS) and out.dtype == torch.float32
    assert maps.ndim == 2 and len(maps) == N
    torch.testing.assert_close(both[0], maps)
    torch.testing.assert_close(both[1], out)


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


@pytest.mark.parametrize("name, kind, n_expansion", CASES)
def test_same_seed_same_weights(name, kind, n_expansion):
    first, second = (build(name, INPUTS[kind], n_expansion, seed=3) for _ in range(2))
    other = build(name, INPUTS[kind], n_expansion, seed=4)
    for (key, a), b in zip(first.state_dict().items(), second.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=key)
    assert any(not torch.equal(a, c) for a, c in zip(first.parameters(), other.parameters()))


@pytest.mark.parametrize("name, kind, n_expansion", CASES)
def test_pickle_round_trip(name, kind, n_expansion):
    module = build(name, INPUTS[kind], n_expansion).eval()
    restored = pickle.loads(pickle.dumps(module)).eval()
    X, Z = make_inputs(kind, n_expansion)
    with torch.no_grad():
        torch.testing.assert_close(restored(X, Z), module(X, Z), rtol=0, atol=0)


@pytest.mark.parametrize("name, kind, n_expansion", CASES)
def test_rows_do_not_depend_on_batch(name, kind, n_expansion):
    module = build(name, INPUTS[kind], n_expansion).eval()
    X, Z = make_inputs(kind, n_expansion, n=40)
    rows = torch.tensor([3, 17, 0, 39])
    with torch.no_grad():
        full_maps, full_out = module.features_and_output(X, Z)
        maps, out = module.features_and_output(X[rows], Z[rows])
    torch.testing.assert_close(out, full_out[rows], rtol=0, atol=1e-5)
    torch.testing.assert_close(maps, full_maps[rows], rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", BUILTIN_MODULES)
def test_z_none_when_no_expansion(name):
    module = build(name, LENGTH, 0).eval()
    X, Z = make_inputs("2d", 0)
    with torch.no_grad():
        torch.testing.assert_close(module(X, None), module(X, Z))


@pytest.mark.parametrize("name", ["cnn", "gru", "lstm", "transformer"])
@pytest.mark.parametrize("n_features", [1, (2, 1), 4])
def test_window_networks_take_short_windows(name, n_features):
    module = (
        build(name, n_features, 0, kernel_size=5) if name == "cnn" else build(name, n_features, 0)
    )
    shape = (N, n_features) if isinstance(n_features, int) else (N, *n_features)
    assert module(torch.randn(shape)).shape == (N, N_OUTPUTS)


@pytest.mark.parametrize("name", ["cnn", "gru", "lstm", "transformer"])
def test_2d_input_is_one_channel(name):
    """``n_features=L`` with X (n, L) is the same network as (1, L) with X (n, 1, L)."""
    flat, window = build(name, LENGTH, 0).eval(), build(name, (1, LENGTH), 0).eval()
    X = torch.randn(N, LENGTH)
    with torch.no_grad():
        torch.testing.assert_close(flat(X), window(X[:, None, :]))
        torch.testing.assert_close(flat(X), flat(X[:, None, :]))


def test_z_enters_beside_the_window():
    """The fusion layer sees [h, Z]: its input width is the encoding's plus n_expansion."""
    module = CNNModule((CHANNELS, LENGTH), 5, 1, channels=(4,), hidden=6)
    assert module.fusion[0].in_features == 2 * 4 + 5
    module = RecurrentModule(LENGTH, 5, 1, hidden_size=7)
    assert module.fusion[0].in_features == 2 * 7 + 5  # the last and the mean hidden state
    module = TransformerModule(LENGTH, 5, 1, d_model=8, nhead=2)
    assert module.fusion[0].in_features == 8 + 5


def test_patches_are_consecutive_steps_of_every_channel():
    X = torch.arange(2 * 2 * 7.0).reshape(2, 2, 7)
    tokens = _patches(X, 3)
    assert tokens.shape == (2, 3, 6)  # ceil(7 / 3) tokens of 2 channels x 3 steps
    torch.testing.assert_close(tokens[1, 1], torch.cat([X[1, 0, 3:6], X[1, 1, 3:6]]))
    torch.testing.assert_close(tokens[0, 2], torch.tensor([6.0, 0, 0, 13, 0, 0]))  # padded
    torch.testing.assert_close(_patches(X, 1), X.transpose(1, 2))


@pytest.mark.parametrize("name", ["gru", "lstm", "transformer"])
@pytest.mark.parametrize(("length", "patch_size", "tokens"), [
    (8, "auto", 8), (32, "auto", 32), (33, "auto", 17), (251, "auto", 32), (10, 4, 3),
])
def test_sequence_networks_read_patches(name, length, patch_size, tokens):
    """A window of L steps is ceil(L / p) tokens of p steps: one step per token up to 32."""
    module = build(name, (CHANNELS, length), 5, patch_size=patch_size)
    p = module.patch_size
    assert -(-length // p) == tokens
    if name == "transformer":
        assert module.position.shape[0] == tokens
        assert module.embedding.in_features == CHANNELS * p
    else:
        assert module.encoder.input_size == CHANNELS * p
    out = module(torch.randn(N, CHANNELS, length), torch.randn(N, 5))
    assert out.shape == (N, N_OUTPUTS)


@pytest.mark.parametrize("bad", [0, -1, 1.5, "all", None])
def test_patch_size_is_checked(bad):
    with pytest.raises(ValueError, match="patch_size"):
        TransformerModule(LENGTH, 0, 1, patch_size=bad)
    with pytest.raises(ValueError, match="patch_size"):
        RecurrentModule(LENGTH, 0, 1, patch_size=bad)


def test_recurrent_cells():
    assert isinstance(BUILTIN_MODULES["gru"](4, 0, 1).encoder, torch.nn.GRU)
    assert isinstance(BUILTIN_MODULES["lstm"](4, 0, 1).encoder, torch.nn.LSTM)


def test_mlp_2d_unchanged():
    module = MLPModule(3, 2, 4, (5, 7))
    assert [m.in_features for m in module.body if isinstance(m, torch.nn.Linear)] == [5, 5]
    assert module.head.in_features == 7 and module.head.out_features == 4


def test_mlp_flattens_windows():
    torch.manual_seed(0)
    window = MLPModule((CHANNELS, LENGTH), 2, 1, (8,))
    torch.manual_seed(0)
    flat = MLPModule(CHANNELS * LENGTH, 2, 1, (8,))
    X, Z = torch.randn(N, CHANNELS, LENGTH), torch.randn(N, 2)
    torch.testing.assert_close(window(X, Z), flat(X.flatten(1), Z))


BAD_CONSTRUCTORS = [
    (CNNModule, (0, 0, 1), {}, "n_features"),
    (CNNModule, ((3, 0), 0, 1), {}, "n_features"),
    (CNNModule, ((3, 4, 5), 0, 1), {}, "n_features"),
    (CNNModule, (2.0, 0, 1), {}, "n_features"),
    (MLPModule, ((3, "4"), 0, 1), {}, "n_features"),
    (CNNModule, (4, -1, 1), {}, "n_expansion"),
    (CNNModule, (4, 0, 0), {}, "n_outputs"),
    (CNNModule, (4, 0, 1), dict(channels=()), "channels"),
    (CNNModule, (4, 0, 1), dict(channels=(4, 0)), "channels"),
    (CNNModule, (4, 0, 1), dict(kernel_size=0), "kernel_size"),
    (CNNModule, (4, 0, 1), dict(hidden=0), "hidden"),
    (RecurrentModule, (4, 0, 1), dict(cell="rnn"), "cell"),
    (RecurrentModule, (4, 0, 1), dict(hidden_size=0), "hidden_size"),
    (RecurrentModule, (4, 0, 1), dict(num_layers=1.5), "num_layers"),
    (TransformerModule, (4, 0, 1), dict(d_model=30, nhead=4), "d_model must be a multiple"),
    (TransformerModule, (4, 0, 1), dict(nhead=0), "nhead"),
    (TransformerModule, (4, 0, 1), dict(num_layers=0), "num_layers"),
    (TransformerModule, (4, 0, 1), dict(dim_feedforward=0), "dim_feedforward"),
]


@pytest.mark.parametrize("cls, args, kwargs, match", BAD_CONSTRUCTORS)
def test_bad_constructor_arguments(cls, args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(*args, **kwargs)


BAD_INPUTS = [
    ("cnn", (CHANNELS, LENGTH), (N, CHANNELS + 1, LENGTH), r"\(n_samples, 3, 8\); got \(10, 4"),
    ("gru", (CHANNELS, LENGTH), (N, CHANNELS, LENGTH - 1), r"\(n_samples, 3, 8\); got"),
    ("transformer", (CHANNELS, LENGTH), (N, LENGTH), r"got \(10, 8\)"),
    ("lstm", LENGTH, (N, LENGTH + 1), r"\(n_samples, 8\) or \(n_samples, 1, 8\)"),
    ("cnn", LENGTH, (N, 2, LENGTH), r"got \(10, 2, 8\)"),
    ("mlp", (CHANNELS, LENGTH), (N, CHANNELS, LENGTH + 1), r"\(n_samples, 3, 8\); got"),
]


@pytest.mark.parametrize("name, n_features, shape, match", BAD_INPUTS)
def test_bad_input_shape(name, n_features, shape, match):
    module = build(name, n_features, 0)
    with pytest.raises(ValueError, match=match):
        module(torch.randn(shape))


@pytest.mark.parametrize("name", ["cnn", "gru", "lstm", "transformer"])
@pytest.mark.parametrize(
    "n_expansion, z_shape, match",
    [
        (5, None, r"Z must have shape \(10, 5\); got None"),
        (5, (N, 4), r"got \(10, 4\)"),
        (0, (N, 2), r"Z must have shape \(10, 0\)"),
        (5, (N - 1, 5), r"got \(9, 5\)"),
    ],
)
def test_bad_z_shape(name, n_expansion, z_shape, match):
    module = build(name, LENGTH, n_expansion)
    Z = None if z_shape is None else torch.randn(z_shape)
    with pytest.raises(ValueError, match=match):
        module(torch.randn(N, LENGTH), Z)


@pytest.mark.parametrize("name", BUILTIN_MODULES)
def test_builders_pickle(name):
    builder = pickle.loads(pickle.dumps(BUILTIN_MODULES[name]))
    torch.manual_seed(0)
    module = builder(LENGTH, 2, N_OUTPUTS, **SMALL[name])
    reference = build(name, LENGTH, 2)
    assert type(module) is type(reference)
    for a, b in zip(module.parameters(), reference.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
