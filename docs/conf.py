"""Sphinx configuration for the xact documentation.

Build with ``bash docs/build.sh`` (``sphinx-build -W -n``: every warning,
and every cross-reference that does not resolve, is an error).
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent / "src"))

import xact

project = "xact"
author = "The xact developers"
copyright = "2026, The xact developers"
release = xact.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
# _generated/*.md are included into pages, not pages of their own.
exclude_patterns = ["_build", "_generated", "scripts", "_inventories"]
templates_path = ["_templates"]
nitpicky = True

# -- MyST -------------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

# -- autodoc / autosummary / numpydoc -----------------------------------------
autosummary_imported_members = True
# Signatures without annotations: numpydoc's Parameters section gives the
# types in words ("array", "int, tuple of ints or None"), as NumPy and SciPy do.
autodoc_typehints = "none"
autodoc_default_options = {"members": False}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
# Every public docstring documents all its parameters and what it returns,
# and has an Examples section (which runs as a doctest in the test suite).
numpydoc_validation_checks = {"PR01", "PR02", "PR03", "PR10", "RT01", "EX01", "GL08"}

# -- intersphinx --------------------------------------------------------------
# The build runs without network access, so the inventories are small local
# files made by _inventories/make_inventories.py that list exactly the external
# names these pages link to, with their real URLs.
_INV = DOCS / "_inventories"
intersphinx_mapping = {
    "python": ("https://docs.python.org/3/", str(_INV / "python.inv")),
    "numpy": ("https://numpy.org/doc/stable/", str(_INV / "numpy.inv")),
    "scipy": ("https://docs.scipy.org/doc/scipy/", str(_INV / "scipy.inv")),
    "torch": ("https://docs.pytorch.org/docs/stable/", str(_INV / "torch.inv")),
    "jax": ("https://docs.jax.dev/en/latest/", str(_INV / "jax.inv")),
    "dask": ("https://docs.dask.org/en/stable/", str(_INV / "dask.inv")),
    "distributed": ("https://distributed.dask.org/en/stable/", str(_INV / "distributed.inv")),
    "array-api": ("https://data-apis.org/array-api/latest/", str(_INV / "array-api.inv")),
    "array-api-compat": (
        "https://data-apis.org/array-api-compat/",
        str(_INV / "array-api-compat.inv"),
    ),
    "cupy": ("https://docs.cupy.dev/en/stable/", str(_INV / "cupy.inv")),
}
intersphinx_timeout = 1

# -- HTML ---------------------------------------------------------------------
html_theme = "furo"
html_title = f"xact {release}"
html_static_path: list[str] = []
html_show_sourcelink = False
html_copy_source = False

# autosummary writes a stub page for every function listed in docs/api/*.md.
autosummary_generate = True
