"""The record stays typed from the store to the page (issue 21 items 1 and 2): its model names no
`Any` where the shape is known, nothing in store/ or site/ passes a record around as a dict, and the
site never turns a RunRecord back into JSON."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

from flank_ops.store import model

PACKAGE = Path(__file__).resolve().parents[2] / "flank_ops"
RECORD_CLASSES = (model.RunRecord, model.TaskResult, model.Commit, model.Runner, model.Selection, model.TriggeredBy)
# A parameter by one of these names, or a function by one of these names, is a run record.
RECORD_PARAMETERS = {"record", "held", "run_record", "found", "live"}
RECORD_FUNCTIONS = {"read_record", "current", "load_run_record", "start_record"}
UNTYPED = ("dict", "Mapping", "MutableMapping", "Any", "object")


def test_the_models_fields_name_no_any_but_the_keys_this_version_does_not_know() -> None:
    loose = [
        f"{cls.__name__}.{f.name}: {f.type}"
        for cls in RECORD_CLASSES
        for f in dataclasses.fields(cls)
        if "Any" in str(f.type) and f.name != "extra"
    ]
    assert loose == []


def _untyped(annotation: ast.expr | None) -> bool:
    """Is this annotation a dict/Mapping/Any (outermost, or one member of a union)?"""
    if annotation is None:
        return False
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        annotation = ast.parse(annotation.value, mode="eval").body
    if isinstance(annotation, ast.BinOp):  # X | None
        return _untyped(annotation.left) or _untyped(annotation.right)
    target = annotation.value if isinstance(annotation, ast.Subscript) else annotation
    name = target.attr if isinstance(target, ast.Attribute) else target.id if isinstance(target, ast.Name) else ""
    return name in UNTYPED


def records_as_dicts(source: str) -> list[str]:
    """Where a module annotates a run record as a dict: a record parameter, or a function that
    gives a record."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        args = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
        found += [f"{node.name}({a.arg})" for a in args if a.arg in RECORD_PARAMETERS and _untyped(a.annotation)]
        if node.name in RECORD_FUNCTIONS and _untyped(node.returns):
            found.append(f"{node.name} ->")
    return found


def test_the_scan_finds_a_record_passed_as_a_dict() -> None:
    assert records_as_dicts("def f(record: dict[str, Any]) -> None: ...") == ["f(record)"]
    assert records_as_dicts("def current(run_dir) -> Mapping[str, Any] | None: ...") == ["current ->"]
    assert records_as_dicts("def f(record: RunRecord | None) -> RunRecord: ...") == []


def test_no_module_of_the_store_or_the_site_passes_a_record_as_a_dict() -> None:
    found = {
        str(path.relative_to(PACKAGE)): where
        for folder in ("store", "site")
        for path in sorted((PACKAGE / folder).rglob("*.py"))
        if (where := records_as_dicts(path.read_text(encoding="utf-8")))
    }
    assert found == {}


def test_the_site_never_turns_a_record_back_into_json() -> None:
    calls = {
        f"{path.name}:{node.lineno}"
        for path in sorted((PACKAGE / "site").rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "to_json"
    }
    assert calls == set(), "hand the page the RunRecord (templates read its attributes)"
