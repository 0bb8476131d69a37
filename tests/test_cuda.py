"""CUDA paths; skipped, with the reason, where PyTorch sees no GPU."""

import pickle
import subprocess
import sys

import numpy as np
import pytest

from sklearn_recursive import RecurrentExpansionClassifier, RecurrentExpansionRegressor

from .conftest import fast, requires_cuda


@requires_cuda
@pytest.mark.parametrize("cv", [None, 2])
def test_fit_predict_on_cuda(regression_data, cv):
    X, y = regression_data
    reg = fast(RecurrentExpansionRegressor, device="cuda", cv=cv, early_stopping=True).fit(X, y)
    assert reg.device_ == "cuda"
    assert next(reg.rounds_[0].nets[0].module_.parameters()).is_cuda
    assert np.isfinite(reg.predict(X)).all()


@requires_cuda
def test_auto_picks_cuda(classification_data):
    X, y = classification_data
    clf = fast(RecurrentExpansionClassifier, device="auto").fit(X, y)
    assert clf.device_ == "cuda"


@requires_cuda
def test_cuda_model_predicts_on_cpu_only_machine(regression_data, tmp_path):
    X, y = regression_data
    reg = fast(RecurrentExpansionRegressor, device="cuda").fit(X, y)
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(reg))
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "expected.npy", reg.predict(X))
    code = (
        "import pickle, warnings, numpy as np, torch\n"
        "assert not torch.cuda.is_available()\n"
        "with warnings.catch_warnings(record=True):\n"
        f"    reg = pickle.loads(open(r'{path}', 'rb').read())\n"
        f"X = np.load(r'{tmp_path / 'X.npy'}')\n"
        f"expected = np.load(r'{tmp_path / 'expected.npy'}')\n"
        "np.testing.assert_allclose(reg.predict(X), expected, rtol=1e-4, atol=1e-5)\n"
        "print('ok')\n"
    )
    env = {"CUDA_VISIBLE_DEVICES": "", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
