import numpy as np
import pytest
import torch

from sklearn_recursive import (
    FeedbackSegmenter,
    RecurrentExpansionClassifier,
    RecurrentExpansionRegressor,
    RecursiveReasoner,
)

# One torch thread: the suite's networks are tiny, and two threads per process
# on a 2-core machine running parallel-backend tests (or anything else)
# oversubscribe the cores, which slows torch down many times over.
torch.set_num_threads(1)

# Tiny networks and few epochs: every fit in the suite takes well under a second.
_FAST_RE = dict(
    hidden_layer_sizes=(16,),
    n_rounds=2,
    n_components=2,
    max_epochs=20,
    batch_size=32,
    lr=1e-2,
    early_stopping=False,
    cv=None,
    device="cpu",
    random_state=0,
)

# The suite's fast settings, one entry per estimator class.
FAST = {
    RecurrentExpansionRegressor: _FAST_RE,
    RecurrentExpansionClassifier: _FAST_RE,
    # a tiny U-Net and one epoch
    FeedbackSegmenter: dict(
        n_steps=2,
        base_channels=4,
        depth=2,
        max_epochs=1,
        batch_size=8,
        lr=1e-2,
        device="cpu",
        random_state=0,
    ),
    # a tiny network, 3 steps and one epoch: fits in well under a second
    RecursiveReasoner: dict(n_steps=3, width=8, max_epochs=1, batch_size=16, device="cpu",
                            random_state=0),
}


def fast(estimator_class, **params):
    """An ``estimator_class`` with its fast settings (`FAST`), overridden by ``params``."""
    return estimator_class(**{**FAST[estimator_class], **params})


@pytest.fixture
def user_threads():
    """torch on 2 threads, as a user's process would be, for the test; then 1 again."""
    torch.set_num_threads(2)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(1)


@pytest.fixture
def seed():
    return 0


@pytest.fixture
def regression_data(seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((120, 4)).astype(np.float32)
    y = (X[:, 0] - 2 * X[:, 1] + 0.1 * rng.standard_normal(120)).astype(np.float32)
    return X, y


@pytest.fixture
def classification_data(seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((120, 4)).astype(np.float32)
    y = np.where(X[:, 0] + X[:, 1] > 0, "yes", "no").astype(object)
    y[X[:, 2] > 1.0] = "maybe"
    return X, y


@pytest.fixture(params=["regressor", "classifier"])
def estimator_and_data(request, regression_data, classification_data):
    if request.param == "regressor":
        return fast(RecurrentExpansionRegressor), regression_data
    return fast(RecurrentExpansionClassifier), classification_data


requires_cuda = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device (none visible to PyTorch)"
)
