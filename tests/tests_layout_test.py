"""The tests keep the package's shape: tests/<folder>/ holds the tests of flank_ops/<folder>/, shared helpers
live in tests/helpers/, and no test reaches a helper by editing the import path (issue 21 item 5)."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
PACKAGE = TESTS.parent / "flank_ops"
# folders of tests that test no flank_ops folder: the helpers, the R package (r/flank/), examples/repo/
NOT_PACKAGE_FOLDERS = {"helpers", "r", "examples"}


def _test_folders() -> set[Path]:
    return {path.parent.relative_to(TESTS) for path in TESTS.rglob("*_test.py")} - {Path(".")}


def test_every_test_folder_mirrors_a_package_folder() -> None:
    strays = sorted(
        str(folder)
        for folder in _test_folders()
        if folder.parts[0] not in NOT_PACKAGE_FOLDERS and not (PACKAGE / folder).is_dir()
    )
    assert strays == [], f"tests/{strays[0]}/ tests no flank_ops/{strays[0]}/: move its files where their module is"


def _edits_the_import_path(tree: ast.AST) -> bool:
    """Code (not text in a string, e.g. a script handed to a child Python) that touches the import path."""
    return any(
        isinstance(node, ast.Attribute)
        and node.attr == "path"
        and isinstance(node.value, ast.Name)
        and node.value.id == "sys"
        for node in ast.walk(tree)
    )


def test_no_test_edits_the_import_path() -> None:
    editing = sorted(
        str(path.relative_to(TESTS))
        for path in TESTS.rglob("*.py")
        if _edits_the_import_path(ast.parse(path.read_text(encoding="utf-8")))
    )
    assert editing == [], f"{editing}: put the shared code in tests/helpers/ and import it as helpers.x"
