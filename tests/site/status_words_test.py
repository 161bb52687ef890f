"""The site reads statuses from the record's model (store/model.py), never as words of its own
(issue 21 item 2): no module under flank_ops/site/ compares a status string, or keeps a set of them."""

from __future__ import annotations

import ast
from pathlib import Path

from flank_ops.store.model import RunStatus, TaskStatus

SITE = Path(__file__).resolve().parents[2] / "flank_ops" / "site"
STATUS_WORDS = {str(s) for s in RunStatus} | {str(s) for s in TaskStatus}


def _status_words(node: ast.expr) -> list[str]:
    """The status words a literal names: a string, or a tuple/list/set/frozenset(...) of them."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in STATUS_WORDS:
        return [node.value]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("frozenset", "set", "tuple"):
        return [w for arg in node.args for w in _status_words(arg)]
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [w for element in node.elts for w in _status_words(element)]
    return []


def status_literals(source: str) -> list[tuple[int, str]]:
    """(line, word) of each status word a module uses as a status: compared (==, !=, in, not in),
    or gathered into a module-level collection that stands for a set of statuses."""
    found = []
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for operand in (node.left, *node.comparators):
                found += [(node.lineno, w) for w in _status_words(operand)]
    for node in tree.body:
        value = node.value if isinstance(node, (ast.Assign, ast.AnnAssign)) else None
        if value is not None and not isinstance(value, ast.Constant):
            found += [(node.lineno, w) for w in _status_words(value)]
    return found


def test_the_scan_finds_a_status_compared_or_gathered_as_words() -> None:
    source = 'x = s == "running"\ny = t in ("pending", "queued")\nLIVE = ("running", "queued")\n'
    assert status_literals(source) == [(1, "running"), (2, "pending"), (2, "queued"), (3, "running"), (3, "queued")]
    assert status_literals('label = "running"\nx = s == TaskStatus.RUNNING\n') == []


def test_no_site_module_compares_a_status_string() -> None:
    found = {
        f"{path.name}:{line}": word
        for path in sorted(SITE.rglob("*.py"))
        for line, word in status_literals(path.read_text(encoding="utf-8"))
    }
    assert found == {}, f"use store.model's RunStatus, TaskStatus and status sets instead: {found}"
