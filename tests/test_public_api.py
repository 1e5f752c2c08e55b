"""The public API is what ``__all__`` says, and all of it is documented.

* Every module of xact declares ``__all__``, and its public names (those it
  defines without a leading underscore) are exactly the names in ``__all__``
  that it defines; the others in ``__all__`` must be imported re-exports.
* Every name in ``xact.__all__`` is listed in an autosummary block of a page
  of the API reference that the reference's table of contents includes, and
  every name listed there exists.
* The examples of the getting-started page run (as doctests).
"""

from __future__ import annotations

import ast
import doctest
import importlib
import pkgutil
import re
from pathlib import Path
from types import ModuleType

import pytest

import xact

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
API = DOCS / "api"


def _modules() -> list[ModuleType]:
    mods = [xact]
    for info in pkgutil.walk_packages(xact.__path__, prefix="xact."):
        if info.name.split(".")[-1] == "__main__":
            continue
        mods.append(importlib.import_module(info.name))
    return mods


MODULES = _modules()


def _source(mod: ModuleType) -> Path:
    """The module's source: for a compiled extension, its stub (``.pyi``)."""
    assert mod.__file__ is not None
    path = Path(mod.__file__)
    if path.suffix != ".py":
        path = path.with_name(mod.__name__.rsplit(".", 1)[-1] + ".pyi")
    return path


def _defined_names(mod: ModuleType) -> set[str]:
    """Names bound at the top level of the module's source, not by an import."""
    tree = ast.parse(_source(mod).read_text(encoding="utf-8"))
    names: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
                if isinstance(node.target, ast.Name):
                    names.add(node.target.id)
            elif isinstance(node, ast.If):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)

    visit(tree.body)
    return names


@pytest.mark.parametrize("mod", MODULES, ids=lambda m: m.__name__)
def test_module_public_names_equal_all(mod):
    assert hasattr(mod, "__all__"), f"{mod.__name__} has no __all__"
    declared = list(mod.__all__)
    assert len(declared) == len(set(declared)), f"{mod.__name__}.__all__ has duplicates"
    missing = [name for name in declared if not hasattr(mod, name)]
    assert not missing, f"{mod.__name__}.__all__ names undefined {missing}"
    defined = _defined_names(mod)
    public = {n for n in defined if not n.startswith("_")}
    assert public <= set(declared), (
        f"{mod.__name__}: public names not in __all__: {sorted(public - set(declared))}"
    )
    # The rest of __all__ (not defined here) must be re-exports of imported names.
    reexports = set(declared) - defined
    imported = set()
    tree = ast.parse(_source(mod).read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            imported.update((a.asname or a.name).split(".")[0] for a in node.names)
    assert reexports <= imported, f"{mod.__name__}: {sorted(reexports - imported)}"


def test_top_level_all_is_sorted():
    assert list(xact.__all__) == sorted(xact.__all__)


# --------------------------------------------------------------------------
# The API reference


def _toctree_pages() -> list[str]:
    text = (API / "index.md").read_text(encoding="utf-8")
    match = re.search(r"```\{toctree\}\n(.*?)```", text, re.DOTALL)
    assert match, "docs/api/index.md has no toctree"
    return [
        line.strip()
        for line in match.group(1).splitlines()
        if line.strip() and not line.strip().startswith(":")
    ]


def _documented() -> dict[str, str]:
    """``{name: page}`` for every entry of an autosummary block in the reference."""
    found: dict[str, str] = {}
    for page in _toctree_pages():
        path = API / f"{page}.md"
        assert path.is_file(), f"the API toctree lists {page}, which does not exist"
        text = path.read_text(encoding="utf-8")
        assert ".. currentmodule:: xact" in text, f"{page}: autosummary names must be in xact"
        for block in re.findall(r"\.\. autosummary::\n((?:[ \t]+.*\n|\n)+)", text):
            for line in block.splitlines():
                entry = line.strip()
                if entry and not entry.startswith(":"):
                    found[entry.removeprefix("xact.")] = page
    return found


def test_every_public_name_is_in_the_api_reference():
    documented = _documented()
    public = [n for n in xact.__all__ if not (n.startswith("__") and n.endswith("__"))]
    missing = [n for n in public if n not in documented]
    assert not missing, f"add to an autosummary block under docs/api/: {missing}"


def test_api_reference_names_exist_or_are_pending():
    pending = _pending_until_merged()
    stale = [
        n
        for n, page in _documented().items()
        if n not in xact.__all__ and n not in pending.get(f"api/{page}", ())
    ]
    assert not stale, f"documented but not in xact.__all__: {stale}"


def _pending_until_merged() -> dict[str, list[str]]:
    """``PENDING_UNTIL_MERGED`` of docs/conf.py (read without importing Sphinx)."""
    tree = ast.parse((DOCS / "conf.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == (
            "PENDING_UNTIL_MERGED"
        ):
            assert node.value is not None
            return ast.literal_eval(node.value)
    return {}


def test_getting_started_examples_run():
    pytest.importorskip("torch")
    pytest.importorskip("jax")
    pytest.importorskip("dask.array")
    pytest.importorskip("array_api_strict")
    result = doctest.testfile(
        str(DOCS / "getting_started.md"),
        module_relative=False,
        optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS,
        verbose=False,
        report=True,
    )
    assert result.attempted > 20
    assert result.failed == 0
