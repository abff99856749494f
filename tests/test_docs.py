"""Every Python example in README.md and docs/ runs, as it is written.

Each page runs top to bottom in one namespace, like a reader typing it in:
a later example may use what an earlier one defined. A page that needs
something the reader would have (an app, a real server's URL) sets it up
in an invisible block (``<!-- invisible-code-block: python ... -->``);
an example that can't run here (a shell session, a deployment file) is
not a Python block, or is marked ``<!-- skip: next -->`` with the reason.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sybil import Sybil
from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser

ROOT = Path(__file__).parent.parent
#: tests/test_porting_docs.py runs docs/porting.md, each "before" example
#: against the library it ports from.
PAGES = [
    ROOT / "README.md",
    *sorted(p for p in (ROOT / "docs").glob("*.md") if p.name != "porting.md"),
]
#: The pages whose examples need a real server (``<!-- servers: ... -->``).
SERVER_PAGES = [
    pytest.param(page, marks=pytest.mark.server)
    if "<!-- servers: " in page.read_text()
    else page
    for page in PAGES
]
SYBIL = Sybil(parsers=[PythonCodeBlockParser(), SkipParser()])


#: Environment variables a page's examples read, and the fixture (a real
#: server of the suite's) that gives each its value.
SERVERS = {
    "postgresql": ("DATABASE_URL", "postgres_url"),
    "redis": ("REDIS_URL", "redis_url"),
}


@pytest.mark.parametrize("page", SERVER_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_examples_run(
    page: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    text = page.read_text()
    if (found := re.search(r"<!-- servers: ([\w ]+?) \(", text)) is not None:
        for server in found.group(1).split():
            variable, fixture = SERVERS[server]
            monkeypatch.setenv(variable, request.getfixturevalue(fixture))
    document = SYBIL.parse(page)
    document.namespace["__name__"] = f"docs_{page.stem.replace('-', '_')}"
    for example in document.examples():
        example.evaluate()


def _documented_api() -> list[tuple[str, str, str]]:
    """(directive, module, name) of every ``.. auto*::`` in docs/api.md."""
    found = []
    module = ""
    for line in (ROOT / "docs" / "api.md").read_text().splitlines():
        if m := re.match(r"\.\. module:: (\S+)", line):
            module = m[1]
        elif m := re.match(r"\.\. (auto\w+):: (\S+)", line):
            found.append((m[1], module, m[2]))
    return found


@pytest.mark.parametrize(
    ("directive", "module", "name"), _documented_api(), ids=lambda v: str(v)
)
def test_public_api_says_since_when(directive: str, module: str, name: str) -> None:
    """Every public name in the API page carries ``.. versionadded::``: a
    name added later must say when, as Flask's do."""
    if directive == "autodata":  # documented by the ``#:`` comment above it
        from sphinx.pycode import ModuleAnalyzer

        docs = ModuleAnalyzer.for_module(module).find_attr_docs()
        doc = "".join(docs[("", name)])
    else:
        import importlib
        import inspect

        doc = inspect.getdoc(getattr(importlib.import_module(module), name)) or ""
    assert ".. versionadded:: " in doc, f"{module}.{name}"
