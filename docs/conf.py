"""Sphinx configuration: the user guide (Markdown, via MyST), the API reference
(autosummary + numpydoc) and the example gallery (sphinx-gallery over ../examples).

Build (warnings are errors): ``python -m sphinx -W -b html docs docs/_build/html``.
Add ``-D plot_gallery=0`` to build without running the examples.
"""

import sklearn_recursive

project = "sklearn-recursive"
author = "the sklearn-recursive developers"
release = version = sklearn_recursive.__version__

extensions = [
    "myst_parser",
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx_gallery.gen_gallery",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.json", "auto_examples/*.md5"]

templates_path = ["_templates"]  # classes: own members only, no metadata-routing setters
autosummary_generate = True
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
myst_heading_anchors = 3

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "within_subsection_order": "FileNameSortKey",
}

html_theme = "pydata_sphinx_theme"
html_theme_options = {"navigation_with_keys": False}
html_title = f"sklearn-recursive {version}"
