"""flank.yml as YAML nodes: values that remember their line and column.

We compose (not load) the YAML so every value keeps its `start_mark`, which is
what lets each error say `flank.yml:12:7`. This module knows YAML; load.py
knows flank.yml's rules.

PyYAML is imported lazily: the git pre-receive hook imports the config package
and should not pay for it until a flank.yml is actually read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from yaml import Node

STR = "tag:yaml.org,2002:str"
INT = "tag:yaml.org,2002:int"
FLOAT = "tag:yaml.org,2002:float"
BOOL = "tag:yaml.org,2002:bool"
NULL = "tag:yaml.org,2002:null"
TIMESTAMP = "tag:yaml.org,2002:timestamp"
MERGE = "tag:yaml.org,2002:merge"


class YamlProblem(Exception):
    """The text is not YAML we can read; carries a 1-based position."""

    def __init__(self, line: int, column: int, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.line = line
        self.column = column
        self.message = message
        self.hint = hint


class Entry(NamedTuple):
    """One `key: value` of a mapping, merges (`<<: *anchor`) already applied."""

    key: str
    key_node: Node
    value: Node


def position(node: Node) -> tuple[int, int]:
    """1-based (line, column) where `node` starts."""
    return node.start_mark.line + 1, node.start_mark.column + 1


def _line_col(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def compose(text: str) -> Node | None:
    """The YAML node tree of `text` (None for an empty document), or YamlProblem."""
    import yaml

    # libyaml is ~20x faster; its error wording differs, so any failure is re-read by
    # the pure-Python parser, whose messages are the ones users see (and tests pin).
    fast_loader = getattr(yaml, "CSafeLoader", None)
    if fast_loader is not None:
        try:
            return yaml.compose(text, Loader=fast_loader)
        except (yaml.YAMLError, RecursionError):
            pass
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        problem = (exc.problem or exc.context or "not valid YAML").strip()
        if "'\\t'" in problem or (mark is not None and _char_at(text, mark.index) == "\t"):
            raise YamlProblem(
                line,
                col,
                "tab character: YAML allows only spaces here",
                "replace the tab with spaces",
            ) from None
        unquoted = _unquoted_indicator(text, exc)
        if unquoted is not None:
            raise unquoted from None
        if exc.context and exc.problem and exc.context_mark is not None:
            if exc.context.startswith("while"):
                problem += f" ({exc.context} at line {exc.context_mark.line + 1})"
            else:  # e.g. "expected a single document in the stream, but found another document"
                problem = f"{exc.context.strip()}, {problem}"
        raise YamlProblem(line, col, f"invalid YAML: {problem}", _syntax_hint(problem)) from None
    except yaml.reader.ReaderError as exc:
        line, col = _line_col(text, exc.position)
        raise YamlProblem(
            line,
            col,
            f"invalid YAML: control character {_code_point(exc.character)} is not allowed",
            "flank.yml must be plain text",
        ) from None
    except RecursionError:
        raise YamlProblem(1, 1, "invalid YAML: nested too deeply") from None


def _unquoted_indicator(text: str, exc: Any) -> YamlProblem | None:
    """`schedule: */5 * * * *` or `schedule: @daily` unquoted: YAML reads `*` as an alias
    and refuses `@`; say to quote the value rather than quote YAML's parser at the user."""
    if exc.context == "while scanning an alias" and exc.context_mark is not None:
        mark, what = exc.context_mark, "a value starting with '*' is read as an alias"
    elif exc.problem and "'@' that cannot start any token" in exc.problem and exc.problem_mark is not None:
        mark, what = exc.problem_mark, "a value starting with '@' must be quoted"
    else:
        return None
    line_start = text.rfind("\n", 0, mark.index) + 1
    line_end = text.find("\n", mark.index)
    value = text[mark.index : line_end if line_end >= 0 else len(text)].split(" #")[0].strip()
    before = text[line_start : mark.index].split()
    quoted = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    # As the line should read: `schedule: "*/5 * * * *"` or `- "*/5 * * * *"`.
    written = f"{before[-1]} {quoted}" if before and before[-1].endswith((":", "-")) else quoted
    looks_like_cron = before[-1:] == ["schedule:"] or len(value.split()) == 5 or value.startswith("@")
    hint = f"quote the cron expression: {written}" if looks_like_cron else f"put it in quotes: {written}"
    return YamlProblem(mark.line + 1, mark.column + 1, f"invalid YAML: {what}", hint)


# PyYAML's words for the usual slips, and what to look at.
_SYNTAX_HINTS = (
    ("expected <block end>", "check the indentation of this line against the lines above"),
    ("mapping values are not allowed here", "a value containing ': ' needs quotes, or the line above lacks ':'"),
    ("could not find expected ':'", "a 'key: value' line is missing its ':'"),
    ("found undefined alias", "define the anchor (&name) before using it (*name)"),
    ("found unexpected end of stream", "a quote or bracket is not closed"),
    ("but got '<stream end>'", "a quote or bracket is not closed"),
)


def _syntax_hint(problem: str) -> str | None:
    return next((hint for words, hint in _SYNTAX_HINTS if words in problem), None)


def _code_point(character: int | str | bytes) -> str:
    if isinstance(character, bytes):
        return "0x" + character.hex()
    return f"U+{character if isinstance(character, int) else ord(character[:1] or ' '):04X}"


def _char_at(text: str, index: int) -> str:
    return text[index] if 0 <= index < len(text) else ""


def is_mapping(node: Node) -> bool:
    return node.id == "mapping"


def is_sequence(node: Node) -> bool:
    return node.id == "sequence"


def is_scalar(node: Node, tag: str | None = None) -> bool:
    return node.id == "scalar" and (tag is None or node.tag == tag)


def is_null(node: Node) -> bool:
    return is_scalar(node, NULL)


def describe(node: Node) -> str:
    """What a user wrote, in words: "a list", "the string 'two'", "nothing (null)"."""
    if node.id == "mapping":
        return "a mapping"
    if node.id == "sequence":
        return "a list"
    value = node.value
    shown = value if len(value) <= 40 else value[:37] + "..."
    return {
        STR: f"the string {shown!r}",
        INT: f"the number {shown}",
        FLOAT: f"the number {shown}",
        BOOL: f"{shown} (a boolean)",
        NULL: "nothing (null)",
        TIMESTAMP: f"the date {shown}",
    }.get(node.tag, f"a value tagged {node.tag}")


def scalar_value(node: Node) -> Any:
    """The Python value of a scalar node, as YAML 1.1 (PyYAML) reads it."""
    from yaml.constructor import SafeConstructor

    return SafeConstructor().construct_object(node, deep=True)


class Mappings:
    """Reads mapping nodes: merges `<<` keys, reports duplicate keys once.

    Merged entries are memoised per node so an alias-heavy file cannot make the
    walk explode (each mapping is flattened once).
    """

    def __init__(self, on_error: Callable[..., None]) -> None:
        # on_error(node, message, hint=None) records one problem.
        self._on_error = on_error
        self._flat: dict[int, list[Entry]] = {}

    def entries(self, node: Node) -> list[Entry]:
        cached = self._flat.get(id(node))
        if cached is not None:
            return cached
        self._flat[id(node)] = []  # a mapping merging itself sees nothing, not a loop
        merged: dict[str, Entry] = {}
        own: dict[str, Entry] = {}
        for key_node, value_node in node.value:
            if is_scalar(key_node, MERGE):
                for source in self._merge_sources(value_node):
                    for entry in self.entries(source):
                        merged.setdefault(entry.key, entry)
                continue
            if not is_scalar(key_node):
                self._on_error(key_node, f"a key must be a plain name, got {describe(key_node)}")
                continue
            key = key_node.value
            if key in own:
                first_line, _ = position(own[key].key_node)
                self._on_error(key_node, f"duplicate key {key!r}", f"first defined at line {first_line}")
                continue
            own[key] = Entry(key, key_node, value_node)
        result = [e for k, e in merged.items() if k not in own] + list(own.values())
        self._flat[id(node)] = result
        return result

    def _merge_sources(self, value_node: Node) -> list[Node]:
        sources = value_node.value if is_sequence(value_node) else [value_node]
        good = [s for s in sources if is_mapping(s)]
        if len(good) != len(sources):
            self._on_error(
                value_node, f"'<<' (merge) needs a mapping or a list of mappings, got {describe(value_node)}"
            )
        return good
