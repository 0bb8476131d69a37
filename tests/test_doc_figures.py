"""``docs/make_figures.py``, which draws the user guide's figures, runs end to end."""

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).parents[1] / "docs" / "make_figures.py"


def test_make_figures_tiny(tmp_path):
    spec = importlib.util.spec_from_file_location("make_figures", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--tiny", "--out", str(tmp_path)])
    written = sorted(p.name for p in tmp_path.glob("*.png"))
    assert written == ["multiverse_members.png", "multiverse_rounds.png", "re_rounds.png",
                       "re_staged.png"]
    for name in written:  # the pages show these files
        assert (SCRIPT.parent / "images" / name).exists()
