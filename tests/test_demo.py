import io
import subprocess
import sys

import numpy as np

from sklearn_recursive.__main__ import run_demo


def test_demo_prints_round_table_and_saves_plot(tmp_path):
    stream = io.StringIO()
    reg, test_mse, figure = run_demo(quick=True, out=tmp_path, stream=stream)
    text = stream.getvalue()
    assert "<- best_round_" in text
    for i in range(reg.n_rounds_):
        assert any(line.split()[:1] == [str(i)] for line in text.splitlines())
    assert len(test_mse) == reg.n_rounds_ and np.all(np.isfinite(test_mse))
    assert figure is not None and figure.stat().st_size > 10_000
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_module_entry_point_help():
    out = subprocess.run(
        [sys.executable, "-m", "sklearn_recursive", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0 and "--quick" in out.stdout
