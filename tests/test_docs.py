"""Every Python example in README.md and docs/ runs, as it is written.

Each page runs top to bottom in one namespace, like a reader typing it in:
a later example may use what an earlier one defined. A page that needs
something the reader would have (an app, a real server's URL) sets it up
in an invisible block (``<!-- invisible-code-block: python ... -->``);
an example that can't run here (a shell session, a deployment file) is
not a Python block, or is marked ``<!-- skip: next -->`` with the reason.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sybil import Sybil
from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser

ROOT = Path(__file__).parent.parent
PAGES = sorted((ROOT / "docs").glob("*.md"))
SYBIL = Sybil(parsers=[PythonCodeBlockParser(), SkipParser()])


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_examples_run(
    page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    document = SYBIL.parse(page)
    document.namespace["__name__"] = f"docs_{page.stem.replace('-', '_')}"
    for example in document.examples():
        example.evaluate()
