"""The README's and the how-to pages' Python snippets run, in order, as a reader would
paste them.

Each page's ```python blocks share one namespace. A block whose first line is
``# requires: <what>`` runs only where <what> is there: ``cuda`` (a GPU that
PyTorch sees) or an importable package (``ray``).
"""

import builtins
import importlib.util
import pathlib
import re

import matplotlib
import pytest
import torch

ROOT = pathlib.Path(__file__).parents[1]
HOWTO = ROOT / "docs" / "howto"
PAGES = [ROOT / "README.md", *sorted(p for p in HOWTO.glob("*.md") if p.name != "index.md")]
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.DOTALL | re.MULTILINE)
REQUIRES = re.compile(r"#\s*requires:\s*(\S+)")


def blocks(page):
    return BLOCK.findall(page.read_text(encoding="utf-8"))


def missing(code):
    """What a block needs and this machine lacks, or None."""
    match = REQUIRES.match(code)
    if match is None:
        return None
    what = match.group(1)
    if what == "cuda":
        return None if torch.cuda.is_available() else "a CUDA GPU"
    return None if importlib.util.find_spec(what) else f"the {what} package"


def test_pages_are_found():
    names = {p.stem for p in PAGES}
    assert {"README", "gpu", "distributed", "pipelines", "history"} <= names
    for page in PAGES:
        assert blocks(page), f"{page.name} has no python snippet"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_snippets_run(page, tmp_path, monkeypatch):
    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)  # snippets that save files write them here
    # ray.shutdown() leaves builtins.print replaced: keep that out of other tests
    monkeypatch.setattr(builtins, "print", builtins.print)
    namespace = {"__name__": f"howto_{page.stem}"}
    skipped = []
    for i, code in enumerate(blocks(page)):
        reason = missing(code)
        if reason:
            skipped.append(f"block {i} needs {reason}")
            continue
        exec(compile(code, f"{page.name}[block {i}]", "exec"), namespace)
    import matplotlib.pyplot as plt

    plt.close("all")
    if skipped and len(skipped) == len(blocks(page)):
        pytest.skip("; ".join(skipped))
