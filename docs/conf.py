"""Sphinx configuration: the Pallets theme, pages in Markdown (MyST), the
API reference by autodoc from the docstrings."""

from __future__ import annotations

import importlib.metadata

project = "flask-healthcheck"
copyright = "2026, the flask-healthcheck authors"
author = "the flask-healthcheck authors"
release = version = importlib.metadata.version("flask-healthchecks")

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "pallets_sphinx_themes",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "_parts"]
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_preserve_defaults = True

html_theme = "flask"
html_theme_options = {"index_sidebar_logo": False}
html_sidebars = {
    "index": ["project.html", "localtoc.html", "searchbox.html"],
    "**": ["localtoc.html", "relations.html", "searchbox.html"],
}
html_title = f"flask-healthcheck Documentation ({version})"
html_show_sourcelink = False
html_static_path: list[str] = []
