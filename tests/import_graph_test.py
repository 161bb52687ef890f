"""The package's folders import each other without loops, so each can be read (and tested) on top of
the ones below it:

    config <- git <- store <- incremental <- task <- executors <- run <- schedule <- cost <- site
        <- notify, storage <- finish, deploy <- commands

Every import counts, at module top or inside a function: a function-local import hides an
arrow from the reader, not from this test. The modules at the top of the package (errors,
fileio, paths, humanize, settings, ...) sit below every folder; main.py dispatches to them all.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "flank_ops"
DISPATCHERS = {"main", "__main__", "reference"}  # the entry points, above everything (reference: `make docs`)
# Arrows pointing the wrong way that came with the issue 11-14 merges, after this rule: each is one
# import to untangle (move the code down or hand it in from above). No new entry here, please.
KNOWN_UPWARD: set[tuple[str, str]] = set()  # arrows that point the wrong way, each to untangle; none now


def _node(module: str) -> str | None:
    """The graph node of a flank_ops module: its folder, or "<top>" for a module at the top."""
    parts = module.split(".")
    if parts[0] != "flank_ops" or len(parts) < 2:
        return None
    if (PACKAGE / parts[1]).is_dir():
        return parts[1]
    return None if parts[1] in DISPATCHERS else "<top>"


def _imported(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        if node.module == "flank_ops":  # from flank_ops import records -> flank_ops.records
            return [f"flank_ops.{alias.name}" for alias in node.names]
        return [node.module]
    return []


def folder_graph() -> dict[str, dict[str, list[str]]]:
    """{folder: {imported folder: ["flank_ops/run/runner.py:33 flank_ops.git.gitcmd", ...]}}."""
    graph: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent)
        source = _node(".".join(rel.with_suffix("").parts))
        if source is None:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            for module in _imported(node):
                target = _node(module)
                if target is not None and target != source:
                    graph[source][target].append(f"{rel}:{node.lineno} imports {module}")
    return graph


def find_loop(graph: dict[str, dict[str, list[str]]]) -> list[str] | None:
    """One cycle of folders [a, b, ..., a], or None."""
    state: dict[str, str] = {}  # "open" while on the current path, then "done"
    path: list[str] = []

    def visit(folder: str) -> list[str] | None:
        state[folder] = "open"
        path.append(folder)
        for target in sorted(graph.get(folder, {})):
            if state.get(target) == "open":
                return path[path.index(target) :] + [target]
            if target not in state:
                loop = visit(target)
                if loop:
                    return loop
        path.pop()
        state[folder] = "done"
        return None

    for folder in sorted(graph):
        if folder not in state:
            loop = visit(folder)
            if loop:
                return loop
    return None


@pytest.mark.slow
def test_folders_import_each_other_without_loops() -> None:
    graph = folder_graph()
    for source, target in KNOWN_UPWARD:
        graph[source].pop(target, None)
    assert graph["run"], "the scan found no imports at all: is PACKAGE right?"
    loop = find_loop(graph)
    if loop:
        arrows = [f"  {a} -> {b}: {graph[a][b][0]}" for a, b in zip(loop, loop[1:])]
        raise AssertionError(
            "the folders import each other in a loop: "
            + " -> ".join(loop)
            + "\n"
            + "\n".join(arrows)
            + "\nmove the code or hand it in from above (see finish/)"
        )


@pytest.mark.slow
def test_the_known_wrong_arrows_still_exist() -> None:
    # once one is untangled, drop it from KNOWN_UPWARD so it cannot come back
    graph = folder_graph()
    assert [arrow for arrow in sorted(KNOWN_UPWARD) if not graph[arrow[0]].get(arrow[1])] == []


@pytest.mark.slow
def test_the_top_modules_import_no_folder() -> None:
    # errors, fileio, paths, humanize, settings: everyone's foundation, so they depend on no feature
    graph = folder_graph()
    assert {target for target in graph.get("<top>", {}) if ("<top>", target) not in KNOWN_UPWARD} == set()


def test_a_loop_is_found_and_named() -> None:
    graph = {
        "run": {"site": ["run/x.py:1 imports flank_ops.site.build"]},
        "site": {"run": ["site/y.py:2 imports flank_ops.store.records"]},
        "git": {},
    }
    assert find_loop(graph) == ["run", "site", "run"]
    assert find_loop({"site": {"run": ["..."]}, "run": {"git": ["..."]}}) is None


def module_graph() -> dict[str, set[str]]:
    """{module: the flank_ops modules it imports}, every import (module top, function, TYPE_CHECKING).
    `from flank_ops.x import y` counts as an import of flank_ops.x.y when that is a module."""
    modules = {
        ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        for path in PACKAGE.rglob("*.py")
    }
    graph: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    targets.add(sub if sub in modules else node.module)
            else:
                targets.update(_imported(node))
        graph[name] = {t for t in targets if t in modules and t != name and not name.startswith(t + ".")}
    return graph


def test_no_two_files_import_each_other_in_a_circle() -> None:
    # issue 21: a circle of files hidden by an import inside a function is still a circle
    graph = {name: {t: [f"{name} imports {t}"] for t in targets} for name, targets in module_graph().items()}
    assert graph["flank_ops.run.runner"], "the scan found no imports at all: is PACKAGE right?"
    loop = find_loop(graph)
    assert loop is None, "these files import each other in a circle: " + " -> ".join(loop or [])
