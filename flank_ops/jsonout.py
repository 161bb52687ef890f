"""`--json`: the machine interface of `flank` (issue 24), one home for its answers.

Every answer is one JSON object on stdout, one line, with these keys first:

    {"schema": 1, "flank": "0.1.0", "kind": "status" | "plan" | "logs" | "run" | "cancel" |
                                            "secrets" | "validate" | "report" | "cost_plan", ...}

and an error is `{"schema": 1, "flank": ..., "kind": "error", "error": "...", "hint": "..." | null}`,
also on stdout, with the exit code the same command has without --json. `schema` is bumped
only when a key is removed or changes meaning (new keys may come at any time); readers check it
(the R package `flank` asks for SCHEMA and names both versions when the VM is older).

The answers' keys are described by the JSON Schema in r/flank/inst/schema/answers.json — the
contract that tests/jsonout_test.py checks here and the R package's tests check there. A run
in an answer is always the run record itself (`RunRecord.to_json()`, store/model.py), never a
dict rebuilt by hand.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from flank_ops import __version__

SCHEMA = 1
FLAG_HELP = f"answer in JSON (schema {SCHEMA}, see README 'Machine interface')"


class Recorded(Protocol):
    """A typed record that knows its JSON (store/model.py's RunRecord)."""

    def to_json(self) -> dict[str, Any]: ...


def answer(kind: str, **body: Any) -> dict[str, Any]:
    return {"schema": SCHEMA, "flank": __version__, "kind": kind, **body}


def emit(kind: str, **body: Any) -> None:
    """Print one answer (a line of JSON) on stdout."""
    print(json.dumps(answer(kind, **body), ensure_ascii=False, default=str), flush=True)


def record(rec: Recorded | None) -> dict[str, Any] | None:
    """A run as answers carry it: its record, as run.json has it."""
    return None if rec is None else rec.to_json()


def plain(value: Any) -> Any:
    """A typed value (NamedTuples, tuples, dicts, datetimes, all nested) as JSON values; its names are its keys."""
    if hasattr(value, "_asdict"):
        return {k: plain(v) for k, v in value._asdict().items()}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    from datetime import datetime  # here: main.py imports this module on every command and git hook

    if isinstance(value, datetime):
        return value.isoformat()
    return value


def emit_error(message: str, hint: str | None) -> None:
    emit("error", error=message, hint=hint)


def wanted(argv: list[str]) -> bool:
    """Does this command line ask for JSON (so that its errors are JSON too)?"""
    words = argv[: argv.index("--")] if "--" in argv else argv
    return "--json" in words
