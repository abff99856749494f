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
    "sphinx.ext.intersphinx",
    "pallets_sphinx_themes",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "_inventories"]
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_preserve_defaults = True

# Links into the docs of Python, Flask and SQLAlchemy. The inventories are
# kept in _inventories/ so that a build needs no network (CI has none);
# they come from Debian's documentation packages (python3.11-doc,
# python-flask-doc 2.2, python-sqlalchemy-doc 1.4, flask-sqlalchemy-doc
# 3.0), the newest a machine without the internet could get. The names
# linked from these pages have the same addresses in the current docs.
# Where the network is there, refresh them from the sites:
#   curl -o docs/_inventories/flask.inv https://flask.palletsprojects.com/en/stable/objects.inv
intersphinx_mapping = {
    "python": ("https://docs.python.org/3/", "_inventories/python.inv"),
    "flask": ("https://flask.palletsprojects.com/en/stable/", "_inventories/flask.inv"),
    "sqlalchemy": ("https://docs.sqlalchemy.org/en/20/", "_inventories/sqlalchemy.inv"),
    "flask_sqlalchemy": (
        "https://flask-sqlalchemy.readthedocs.io/en/stable/",
        "_inventories/flask-sqlalchemy.inv",
    ),
}

html_theme = "flask"
html_theme_options = {"index_sidebar_logo": False}
html_sidebars = {
    "index": ["project.html", "localtoc.html", "searchbox.html"],
    "**": ["localtoc.html", "relations.html", "searchbox.html"],
}
html_title = f"flask-healthcheck Documentation ({version})"
html_show_sourcelink = False
html_static_path: list[str] = []
