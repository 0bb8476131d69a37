"""The gallery scripts parse, use only the public API and describe themselves.

Running them all takes about 1.5 minutes; CI runs them when it builds the docs (the
sphinx-gallery build in `.ci/run`), not in the suite.
"""

import ast
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("plot_*.py"))


def test_there_are_examples():
    assert len(EXAMPLES) >= 7


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_is_a_gallery_script(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    doc = ast.get_docstring(tree)
    title, underline = doc.splitlines()[:2]
    assert title and set(underline) == {"="} and len(underline) >= len(title)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module.startswith("sklearn_recursive"):
            private = [p for p in node.module.split(".") if p.startswith("_")]
            assert not private, f"{path.name} imports the private {node.module}"
