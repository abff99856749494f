"""The package's shape, as DESIGN.md's architecture section describes it:
small modules of one job, no import circle, the core apart from
``contrib``. A change that breaks one of these fails here, not in a review.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "flask_healthcheck"
MODULES = sorted(PACKAGE.rglob("*.py"))
MAX_MODULE_LINES = 400
MAX_CLASS_CODE_LINES = 250


def _name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), str(path))


def _imported(path: Path, *, top_level_only: bool) -> set[str]:
    """The package's modules ``path`` imports."""
    module = _name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = _tree(path)
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target.startswith("flask_healthcheck"):
                found.add(target)
                # ``from . import x`` imports the module (or package) x
                found.update(
                    f"{target}.{alias.name}"
                    for alias in node.names
                    if _is_module(f"{target}.{alias.name}")
                )
        elif isinstance(node, ast.Import):
            found.update(
                a.name for a in node.names if a.name.startswith("flask_healthcheck")
            )
    found.discard(module)
    return found


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_modules_are_small(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_MODULE_LINES, f"{_name(path)}: {lines} lines"


def _code_lines(cls: ast.ClassDef, source: list[str]) -> int:
    """Lines of a class holding code: not blank, not a comment, not a
    docstring."""
    docstrings: set[int] = set()
    for node in ast.walk(cls):
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                end = body[0].end_lineno or body[0].lineno
                docstrings.update(range(body[0].lineno, end + 1))
    end = cls.end_lineno or cls.lineno
    return sum(
        1
        for number in range(cls.lineno, end + 1)
        if number not in docstrings
        and source[number - 1].strip()
        and not source[number - 1].strip().startswith("#")
    )


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_classes_are_small(path: Path) -> None:
    source = path.read_text().splitlines()
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.ClassDef):
            lines = _code_lines(node, source)
            assert lines <= MAX_CLASS_CODE_LINES, f"{node.name}: {lines} lines of code"


def test_no_import_circle() -> None:
    """Among the imports a module makes when it is imported (those inside
    functions load on first use, by design)."""
    graph = {_name(p): _imported(p, top_level_only=True) for p in MODULES}
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        if module in path:
            circle = " -> ".join([*path[path.index(module) :], module])
            pytest.fail(f"import circle: {circle}")
        if module in done:
            return
        for imported in sorted(graph.get(module, ())):
            visit(imported, (*path, module))
        done.add(module)

    for module in sorted(graph):
        visit(module, ())


def test_the_core_does_not_import_contrib() -> None:
    """Only the extension, where an app is put together, loads the
    ready-made services (DESIGN: "the core never imports contrib")."""
    for path in MODULES:
        module = _name(path)
        if module.startswith("flask_healthcheck.contrib") or module in {
            "flask_healthcheck.extension",
        }:
            continue
        imported = _imported(path, top_level_only=False)
        assert not any(m.startswith("flask_healthcheck.contrib") for m in imported), (
            module
        )


def test_signals_module_holds_the_signals_alone() -> None:
    """``flask_healthcheck.signals`` is what subscribers import: the
    signals and ``__all__``, their delivery elsewhere."""
    from flask_healthcheck import signals

    public = {n for n in vars(signals) if not n.startswith("_")}
    public -= {"annotations", "Namespace"}
    assert public == set(signals.__all__)
