"""Load flank.yml into a validated Config, or report every problem at once.

The checks walk the composed YAML nodes (yaml_nodes.py) so each problem names
file, line and column. Nothing stops at the first error: every check records
into a `Report`, and `load_config` raises ConfigErrors with all of them.

The rules live here, once; schema.py describes the same rules for editors.
Heavy or error-only modules (yaml, difflib, zoneinfo, the cron checker) are
imported lazily: the git pre-receive hook imports this module.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flank_ops.config import yaml_nodes as yn
from flank_ops.config.durations import MAX_DURATION_S, MAX_DURATION_TEXT, parse_duration
from flank_ops.config.model import (
    AUTO_INPUT_KINDS,
    DEFAULT_RETRY_DELAY_S,
    LIST_MATRIX_KEY,
    NOTIFY_OUTCOMES,
    OVERLAP_POLICIES,
    Config,
    Pipeline,
    Setup,
    Task,
)
from flank_ops.errors import ConfigError, ConfigErrors
from flank_ops.paths import STATE_DIR

if TYPE_CHECKING:
    from yaml import Node

    from flank_ops.config.repo_paths import RepoTree

FILENAME = "flank.yml"  # the one name of the file, for the push, deploys, `flank validate` and --local
MAX_BYTES = 1024 * 1024  # a flank.yml is a page of text; anything this big is a mistake (never read whole)
MAX_RETRIES = 20  # retry delays double: 20 retries of 10s already span months
MAX_CONCURRENCY = 1024

NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,99}$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

TOP_KEYS = ("persist", "env", "pipelines", "slurm", "setup")
SETUP_KEYS = ("run", "key", "timeout")  # issue 13
PIPELINE_KEYS = (
    "schedule",
    "timezone",
    "on_push",
    "concurrency",
    "overlap",
    "notify",
    "ping_url",
    "catchup",
    "tasks",
    "executor",
    "auto_inputs",
    "params",
)
TASK_KEYS = (
    "run",
    "needs",
    "retries",
    "retry_delay",
    "timeout",
    "dir",
    "env",
    "memory",
    "cpus",
    "executor",
    "inputs",
    "outputs",
    "artifacts",
    "auto_inputs",
    "matrix",  # issue 26
    "matrix_from",
    "max_parallel",
    "slurm",
    "batch",
    "queue_timeout",
)
# issue 14: `slurm:` keys (flank.toml's [executors.slurm] takes the same), a memory size's units
SLURM_KEYS = ("partition", "account", "qos", "gres", "extra_args")  # gres: issue 26
BATCH_TASK_KEYS = ("queue", "job_definition", "image")  # issue 26: a task's own Batch placement
MEMORY_UNITS_MB = {"M": 1, "G": 1024, "T": 1024 * 1024}
MEMORY_PATTERN = r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([MGTmgt])i?[Bb]?\s*$"  # also the JSON Schema's (schema.py)
MEMORY_RE = re.compile(MEMORY_PATTERN)
MAX_CPUS = 4096
MAX_MEMORY_MB = 1024 * 1024 * 1024  # 1024T: beyond any machine, below any overflow
# issue 26: matrix: keys become FLANK_MATRIX_<KEY>; values become part of task and file names
MATRIX_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,31}$")
MATRIX_VALUE_RE = re.compile(r"^[A-Za-z0-9_+-][A-Za-z0-9_.+-]{0,63}$")
MAX_MATRIX_CELLS = 1000  # per task: beyond this, one make target and one record entry per cell get unwieldy
# issue 26: `matrix_from: FILE`: a .csv is a table (its header the keys), any other file one value a line
MATRIX_TABLE_SUFFIX = ".csv"
Matrix = tuple[tuple[str, tuple[str, ...]], ...]  # ((key, values), ...); key "" for a plain list


class Report:
    """Collects the problems of one file, each at a node's position."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        # issue 26: the matrix: of each task of the pipeline being read; its matrix_from: (path, node)
        self.matrices: dict[str, Matrix] = {}
        self.matrix_from: dict[str, tuple[str, Node]] = {}
        self.errors: list[ConfigError] = []
        self._seen: set[ConfigError] = set()
        self.mappings = yn.Mappings(self.add)
        # (key, path, node) of every dir: and persist: path, checked against the repo's tree
        self.repo_paths: dict[tuple[str, str, int], Node] = {}
        # issue 12: (task, "inputs"|"outputs") -> [(pattern, node)], checked across a pipeline's tasks
        self.file_patterns: dict[tuple[str, str], list[tuple[str, Node]]] = {}

    def add(self, node: Node | None, message: str, hint: str | None = None) -> None:
        line, col = yn.position(node) if node is not None else (1, 1)
        error = ConfigError(self.filename, line, col, message, hint)
        if error not in self._seen:  # an aliased node is checked once per use
            self._seen.add(error)
            self.errors.append(error)

    def entries(self, node: Node) -> list[yn.Entry]:
        return self.mappings.entries(node)


# --- entry points ----------------------------------------------------------------


def load_config(text: str | bytes, filename: str = FILENAME, tree: RepoTree | None = None) -> Config:
    """Parse and validate flank.yml text. Raises ConfigErrors listing every problem.

    With `tree` (the pushed commit's, or a work tree's index), `dir:` and `persist:` paths
    are also checked against the repo's files: see repo_paths.py.
    """
    text = _as_text(text, filename)
    try:
        root = yn.compose(text)
    except yn.YamlProblem as exc:
        raise ConfigErrors([ConfigError(filename, exc.line, exc.column, exc.message, exc.hint)]) from None
    report = Report(filename)
    config = _config(root, report)
    if tree is not None and config is not None:
        _check_repo_paths(report, tree, config)
    if report.errors or config is None:
        raise ConfigErrors(report.errors)
    return config


def symlink_error(filename: str = FILENAME) -> ConfigErrors:
    """flank.yml is a symlink (in a pushed commit, or a work tree): refused, never followed."""
    from flank_ops.config.repo_paths import flank_yml_link_problem

    return ConfigErrors([ConfigError(filename, 0, 0, *flank_yml_link_problem())])


def load_config_file(path: Path, tree: RepoTree | None = None) -> Config:
    """Read and validate a flank.yml file; a missing or unreadable file is a ConfigErrors too."""
    path = Path(path)
    name = str(path)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > MAX_BYTES:
                raise too_large_error(name, size)
            data = f.read(MAX_BYTES + 1)  # never read a huge file whole (nor a growing one)
    except FileNotFoundError:
        raise ConfigErrors(
            [ConfigError(name, 0, 0, "no such file", "run this in your repo's root, or pass the path of flank.yml")]
        ) from None
    except IsADirectoryError:
        raise ConfigErrors([ConfigError(name, 0, 0, "is a directory, not a file")]) from None
    except PermissionError:
        raise ConfigErrors([ConfigError(name, 0, 0, "permission denied", "make the file readable")]) from None
    if tree is not None:
        return load_config(data, name, tree)
    key = (name, data)
    config = _loaded.get(key)
    if config is None:
        config = load_config(data, name)
        if len(_loaded) >= 8:
            _loaded.pop(next(iter(_loaded)))
        _loaded[key] = config
    return config


# One run reads the same flank.yml from several places (runner, site, notifications):
# validate each distinct content once per process. Config values are immutable.
_loaded: dict[tuple[str, bytes], Config] = {}


def describe(config: Config) -> str:
    """'1 pipeline, 4 tasks' — the summary line of `flank validate` and of a push."""
    p = len(config.pipelines)
    t = config.task_count()
    return f"{p} pipeline{'s' if p != 1 else ''}, {t} task{'s' if t != 1 else ''}"


# --- text ------------------------------------------------------------------------


def _file_problem(filename: str, message: str, hint: str | None = None, line: int = 1, column: int = 1) -> ConfigErrors:
    return ConfigErrors([ConfigError(filename, line, column, message, hint)])


def _as_text(data: str | bytes, filename: str) -> str:
    """UTF-8 text of a plausible size, or ConfigErrors saying why not."""
    if isinstance(data, str):
        if len(data) > MAX_BYTES // 4 and len(data.encode("utf-8", "surrogatepass")) > MAX_BYTES:
            raise too_large_error(filename, len(data.encode("utf-8", "surrogatepass")))
        raw = None
        text = data
    else:
        if len(data) > MAX_BYTES:
            raise too_large_error(filename, len(data))
        raw = data
        if b"\0" in raw:
            line, col = _byte_position(raw, raw.index(b"\0"))
            raise _file_problem(
                filename, "binary file (contains NUL bytes)", "flank.yml must be a UTF-8 text file", line, col
            )
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line, col = _byte_position(raw, exc.start)
            raise _file_problem(
                filename,
                f"not UTF-8 text (byte 0x{raw[exc.start]:02x})",
                "save flank.yml with UTF-8 encoding",
                line,
                col,
            ) from None
    if "\0" in text:
        index = text.index("\0")
        line = text.count("\n", 0, index) + 1
        raise _file_problem(
            filename,
            "binary file (contains NUL bytes)",
            "flank.yml must be a UTF-8 text file",
            line,
            index - (text.rfind("\n", 0, index) + 1) + 1,
        )
    return text.removeprefix("\ufeff")  # a BOM from Windows editors is harmless


def too_large_error(filename: str, size: int) -> ConfigErrors:
    """A flank.yml over MAX_BYTES: the words of `flank validate` and of a push."""
    import math

    megabytes = round(size / 1024 / 1024, 1)
    if megabytes * 1024 * 1024 <= MAX_BYTES:  # never "1.0 MB" for a file over the 1 MB limit
        megabytes = math.ceil(size / 1024 / 1024 * 10) / 10
    return ConfigErrors(
        [
            ConfigError(
                filename,
                0,
                0,
                f"is {megabytes:.1f} MB; flank reads at most {MAX_BYTES // 1024 // 1024} MB",
                "flank.yml describes pipelines; keep data out of it",
            )
        ]
    )


def _byte_position(raw: bytes, index: int) -> tuple[int, int]:
    line_start = raw.rfind(b"\n", 0, index) + 1
    column = len(raw[line_start:index].decode("utf-8", "replace")) + 1
    return raw.count(b"\n", 0, index) + 1, column


# --- small typed readers ------------------------------------------------------------
# Each returns the value, or None after recording why it is wrong.


def _unknown_key(
    report: Report, entry: yn.Entry, allowed: tuple[str, ...], where: str, tasks_missing: bool = False
) -> None:
    from flank_ops.config.suggest import did_you_mean

    hint = did_you_mean(entry.key, allowed)
    if hint is None and where == "task" and entry.key in PIPELINE_KEYS:
        hint = f"'{entry.key}' is a pipeline setting; move it up to the pipeline"
    elif hint is None and where == "pipeline" and entry.key in TASK_KEYS:
        hint = f"'{entry.key}' is a task setting; put it on a task under 'tasks:'"
    elif hint is None and tasks_missing and _looks_like_task(entry.value):
        hint = "tasks go under 'tasks:'"
    elif (
        hint is None
        and where == "top level"
        and yn.is_mapping(entry.value)
        and any(e.key == "tasks" for e in report.entries(entry.value))
    ):
        hint = "pipelines go under 'pipelines:'"
    if hint is None:
        hint = "known keys: " + ", ".join(allowed)
    report.add(entry.key_node, f"unknown key {entry.key!r}", hint)


def _looks_like_task(node: Node) -> bool:
    return yn.is_scalar(node, yn.STR) or (
        yn.is_mapping(node) and any(k.value == "run" for k, _ in node.value if yn.is_scalar(k))
    )


def _mapping(report: Report, node: Node, what: str) -> list[yn.Entry] | None:
    if yn.is_mapping(node):
        return report.entries(node)
    report.add(node, f"{what}: expected a mapping (key: value lines), got {yn.describe(node)}")
    return None


def _string(report: Report, node: Node, key: str, expected: str = "a string") -> str | None:
    if yn.is_scalar(node, yn.STR):
        if _lone_surrogate(report, node, key):
            return None
        return node.value
    hint = "put it in quotes" if yn.is_scalar(node) and not yn.is_null(node) else None
    report.add(node, f"{key}: expected {expected}, got {yn.describe(node)}", hint)
    return None


def _lone_surrogate(report: Report, node: Node, key: str) -> bool:
    """A `\\ud800` escape makes a string no text can hold (issue 20 item 7): no file, command line
    or environment can carry it, so every run would fail. Said here, at its line and column."""
    found = _SURROGATE.search(node.value)
    if found is None:
        return False
    report.add(
        node,
        f"{key}: contains \\u{ord(found.group()):04x}, half of a UTF-16 pair, which is not a character",
        "write the character itself in place of the escape",
    )
    return True


_SURROGATE = re.compile("[\ud800-\udfff]")


def _string_list(report: Report, node: Node, key: str, item: str) -> list[tuple[str, Node]] | None:
    """A list of strings; a single string is a one-item list; null is empty."""
    if yn.is_null(node):
        return []
    if yn.is_scalar(node, yn.STR):
        return [(node.value, node)]
    if not yn.is_sequence(node):
        report.add(node, f"{key}: expected a list of {item}s, got {yn.describe(node)}")
        return None
    items: list[tuple[str, Node]] = []
    for child in node.value:
        article = "an" if item[0] in "aeiou" else "a"
        value = _string(report, child, key, f"{article} {item} (a string)")
        if value is not None:
            items.append((value, child))
    return items


def _integer(report: Report, node: Node, key: str, minimum: int, maximum: int) -> int | None:
    if not yn.is_scalar(node, yn.INT):
        report.add(node, f"{key}: expected a whole number, got {yn.describe(node)}")
        return None
    try:
        value = int(yn.scalar_value(node))
    except ValueError:  # more digits than Python converts (issue 20 item 8): far past either bound
        bound = f"at least {minimum}" if node.value.lstrip().startswith("-") else f"at most {maximum}"
        report.add(node, f"{key}: must be {bound}, got {_shown(node.value)}")
        return None
    if value < minimum:
        report.add(node, f"{key}: must be at least {minimum}, got {_shown(node.value)}")
        return None
    if value > maximum:
        report.add(node, f"{key}: must be at most {maximum}, got {_shown(node.value)}")
        return None
    return value


def _boolean(report: Report, node: Node, key: str) -> bool | None:
    if yn.is_scalar(node, yn.BOOL):
        return bool(yn.scalar_value(node))
    hint = "remove the quotes" if yn.is_scalar(node, yn.STR) and node.value.lower() in ("true", "false") else None
    report.add(node, f"{key}: expected true or false, got {yn.describe(node)}", hint)
    return None


def _duration(report: Report, node: Node, key: str) -> float | None:
    if not (yn.is_scalar(node, yn.STR) or yn.is_scalar(node, yn.INT) or yn.is_scalar(node, yn.FLOAT)):
        report.add(node, f"{key}: expected a duration like 90s, 15m, 2h or 1d, got {yn.describe(node)}")
        return None
    seconds = parse_duration(node.value)
    if seconds is None:
        report.add(
            node,
            f"{key}: {node.value!r} is not a duration",
            "write a number with an optional unit: 90, 90s, 15m, 2h, 1d",
        )
        return None
    if seconds <= 0:
        report.add(node, f"{key}: must be longer than 0, got {node.value!r}")
        return None
    if seconds > MAX_DURATION_S:
        report.add(node, f"{key}: must be at most {MAX_DURATION_TEXT}, got {_shown(node.value)!r}")
        return None
    return seconds


def _shown(text: str) -> str:
    """A value as an error message quotes it: a 5,000-digit number is not printed whole."""
    return text if len(text) <= 40 else f"{text[:20]}…({len(text)} characters)"


def _name(report: Report, entry: yn.Entry, what: str) -> bool:
    if NAME_RE.match(entry.key):
        return True
    if not entry.key:
        report.add(entry.key_node, f"{what} name is empty")
    elif entry.key.startswith("-"):
        report.add(
            entry.key_node, f"{what} name {entry.key!r} must not start with '-'", "start it with a letter, digit or '_'"
        )
    elif len(entry.key) > 100:
        report.add(entry.key_node, f"{what} name is longer than 100 characters")
    else:
        import unicodedata

        ascii_name = unicodedata.normalize("NFKD", entry.key).encode("ascii", "ignore").decode()
        suggestion = re.sub(r"[^A-Za-z0-9_-]+", "_", ascii_name).strip("_-") or f"my_{what}"
        report.add(
            entry.key_node,
            f"{what} name {entry.key!r} may only use ASCII letters, digits, '_' and '-'",
            f"e.g. {suggestion!r}",
        )
    return False


def _relative_dir(report: Report, node: Node, key: str) -> str | None:
    """A directory inside the repo: relative, no '..', normalised ('data/' -> 'data')."""
    text = _string(report, node, key, "a directory path (a string)")
    if text is None:
        return None
    parts = [p for p in text.strip().split("/") if p not in ("", ".")]
    if not text.strip():
        report.add(node, f"{key}: the path is empty")
    elif text.strip().startswith(("/", "~")):
        report.add(
            node, f"{key}: {text!r} must be relative to the repo root, not absolute", "e.g. 'data' for <repo>/data"
        )
    elif ".." in parts:
        report.add(node, f"{key}: {text!r} must stay inside the repo ('..' is not allowed)")
    elif "\0" in text or "\n" in text:
        report.add(node, f"{key}: {text!r} contains a control character")
    else:
        return "/".join(parts) or "."
    return None


def _env(report: Report, node: Node, key: str) -> dict[str, str]:
    """NAME -> string. Numbers keep the text as written; true/false/null must be quoted."""
    if yn.is_null(node):
        return {}
    entries = _mapping(report, node, key)
    if entries is None:
        return {}
    env: dict[str, str] = {}
    for entry in entries:
        if not ENV_NAME_RE.match(entry.key):
            report.add(
                entry.key_node,
                f"{key}: {entry.key!r} is not a valid environment variable name",
                "use letters, digits and '_', not starting with a digit",
            )
            continue
        value = entry.value
        if yn.is_scalar(value, yn.BOOL):
            report.add(
                value,
                f"{key}: {entry.key} is {yn.describe(value)}; environment values are strings",
                f'quote it: {entry.key}: "{value.value}"',
            )
            continue
        if yn.is_null(value):
            report.add(
                value, f"{key}: {entry.key} has no value", f'write {entry.key}: "" for an empty value, or quote it'
            )
            continue
        if not yn.is_scalar(value) or value.tag not in (yn.STR, yn.INT, yn.FLOAT, yn.TIMESTAMP):
            report.add(value, f"{key}: {entry.key} must be a single value, got {yn.describe(value)}")
            continue
        if "\0" in value.value:
            report.add(value, f"{key}: {entry.key} contains a NUL character")
            continue
        if _lone_surrogate(report, value, f"{key}: {entry.key}"):
            continue
        env[entry.key] = value.value
    return env


# --- flank.yml -------------------------------------------------------------------


def _config(root: Node | None, report: Report) -> Config | None:
    if root is None:
        report.add(None, "flank.yml is empty", "it needs a 'pipelines:' mapping; `flank schema` shows the format")
        return None
    if not yn.is_mapping(root):
        report.add(
            root,
            f"the top level must be a mapping (key: value lines), got {yn.describe(root)}",
            "start with 'pipelines:'",
        )
        return None
    persist: tuple[str, ...] = ()
    env: dict[str, str] = {}
    slurm: dict[str, str] = {}
    pipelines: dict[str, Pipeline] = {}
    setup: Setup | None = None
    entries = report.entries(root)
    for entry in entries:
        if entry.key == "setup":
            setup = _setup(report, entry)
        elif entry.key == "persist":
            persist = _persist(report, entry.value)
        elif entry.key == "env":
            env = _env(report, entry.value, "env")
        elif entry.key == "pipelines":
            pipelines = _pipelines(report, entry)
        elif entry.key == "slurm":
            slurm = _slurm_options(report, entry.value)
        else:
            _unknown_key(report, entry, TOP_KEYS, "top level")
    if not any(e.key == "pipelines" for e in entries):
        report.add(root, "missing 'pipelines:'", "flank.yml needs at least one pipeline with tasks")
    return Config(pipelines=pipelines, persist=persist, env=env, slurm=slurm, setup=setup)


def _slurm_options(report: Report, node: Node) -> dict[str, str]:
    """issue 14: `slurm:` partition, account, qos, extra_args (strings)."""
    if yn.is_null(node):
        return {}
    entries = _mapping(report, node, "slurm")
    options: dict[str, str] = {}
    for entry in entries or ():
        if entry.key not in SLURM_KEYS:
            _unknown_key(report, entry, SLURM_KEYS, "slurm")
            continue
        value = _string(report, entry.value, f"slurm: {entry.key}")
        if value is not None:
            options[entry.key] = value
    return options


def _batch_placement(report: Report, node: Node) -> dict[str, str]:
    """issue 26: a task's `batch: {queue, job_definition, image}` over flank.toml's [executors.batch]."""
    if yn.is_null(node):
        return {}
    placement: dict[str, str] = {}
    for entry in _mapping(report, node, "batch") or ():
        if entry.key not in BATCH_TASK_KEYS:
            _unknown_key(report, entry, BATCH_TASK_KEYS, "batch")
            continue
        value = _string(report, entry.value, f"batch: {entry.key}")
        if value is not None and value.strip():
            placement[entry.key] = value.strip()
            if entry.key == "image" and any(c.isspace() for c in value.strip()):
                report.add(entry.value, f"batch: image {value.strip()!r} is not an image name (no spaces)")
        elif value is not None:
            report.add(entry.value, f"batch: {entry.key} is empty")
    if "job_definition" in placement and "image" in placement:
        report.add(
            node,
            "batch: give job_definition or image, not both",
            "image alone gets a job definition like the project's, with that image",
        )
    return placement


def _memory(report: Report, node: Node) -> int | None:
    """issue 14: `memory: 512M | 16G | 400G | 1T` -> MB."""
    text = str(node.value) if yn.is_scalar(node) and not yn.is_null(node) else ""
    match = MEMORY_RE.match(text)
    if not match:
        report.add(
            node,
            f"memory: expected a size like 512M, 16G or 400G, got {yn.describe(node)}",
            "write a number and a unit: M, G or T",
        )
        return None
    megabytes = float(match.group(1)) * MEMORY_UNITS_MB[match.group(2).upper()]
    if megabytes > MAX_MEMORY_MB:  # also a 5,000-digit number, which float() reads as infinity
        report.add(node, f"memory: must be at most {MAX_MEMORY_MB // 1024 // 1024}T, got {_shown(text.strip())!r}")
        return None
    mb = int(megabytes)
    if mb < 1:
        report.add(node, f"memory: must be at least 1M, got {text.strip()!r}")
        return None
    return mb


def _executor(report: Report, node: Node) -> str | None:
    from flank_ops.config.model import EXECUTOR_NAMES

    return _choice(report, node, "executor", EXECUTOR_NAMES)


def _setup(report: Report, entry: yn.Entry) -> Setup | None:
    """issue 13: `setup: COMMAND`, a list of commands, or {run: ..., key: [...], timeout: 30m}."""
    node = entry.value
    if yn.is_null(node):
        report.add(
            entry.key_node,
            "'setup:' is empty",
            "give the command that installs what the code needs, e.g. setup: pip install -r requirements.txt",
        )
        return None
    if not yn.is_mapping(node):
        commands = _setup_commands(report, node)
        return Setup(commands=commands) if commands else None
    fields: dict[str, Any] = {}
    commands = None
    for e in report.entries(node):
        if e.key == "run":
            commands = _setup_commands(report, e.value)
        elif e.key == "key":
            fields["key"] = _setup_key(report, e.value)
        elif e.key == "timeout":
            fields["timeout_s"] = _duration(report, e.value, "setup: timeout")
        else:
            _unknown_key(report, e, SETUP_KEYS, "setup")
    if not any(e.key == "run" for e in report.entries(node)):
        report.add(
            entry.key_node, "setup has no 'run:'", "add run: <command>, e.g. run: pip install -r requirements.txt"
        )
    if not commands:
        return None
    return Setup(commands=commands, **{k: v for k, v in fields.items() if v is not None})


def _setup_commands(report: Report, node: Node) -> tuple[str, ...] | None:
    items = _string_list(report, node, "setup", "command")
    if items is None:
        return None
    if not items:
        report.add(node, "setup: no command given", "e.g. setup: pip install -r requirements.txt")
        return None
    commands = [_command(report, item, "setup") for _, item in items]
    return tuple(c for c in commands if c) if all(commands) else None


def _setup_key(report: Report, node: Node) -> tuple[str, ...] | None:
    """Files (paths or globs, relative to the repo root) whose content decides when setup runs again."""
    items = _string_list(report, node, "setup: key", "file path")
    if items is None:
        return None
    keys: list[str] = []
    for _, item in items:
        path = _relative_dir(report, item, "setup: key")
        if path is not None and path not in keys:
            keys.append(path)
    return tuple(keys)


def _persist(report: Report, node: Node) -> tuple[str, ...]:
    items = _string_list(report, node, "persist", "directory")
    kept: dict[str, Node] = {}
    for text, item in items or ():
        path = _relative_dir(report, item, "persist")
        if path is None:
            continue
        if path == "." or path.split("/")[0] in (".git", STATE_DIR):
            report.add(item, f"persist: {text!r} cannot be persisted", "name a data folder, e.g. 'data'")
            continue
        if path in kept:
            report.add(item, f"persist: {text!r} is listed twice (first at line {yn.position(kept[path])[0]})")
            continue
        inside = next((p for p in kept if path.startswith(p + "/") or p.startswith(path + "/")), None)
        if inside is not None:
            report.add(item, f"persist: {text!r} overlaps {inside!r}", "persist the outer directory only")
            continue
        kept[path] = item
        report.repo_paths[("persist", path, id(item))] = item
    return tuple(kept)


def _pipelines(report: Report, entry: yn.Entry) -> dict[str, Pipeline]:
    if yn.is_null(entry.value):
        report.add(entry.key_node, "'pipelines:' is empty", "define at least one pipeline with tasks")
        return {}
    errors_before = len(report.errors)
    entries = _mapping(report, entry.value, "pipelines")
    if entries is None:
        return {}
    if not entries and len(report.errors) == errors_before:  # not when its keys were unreadable
        report.add(entry.value, "'pipelines:' is empty", "define at least one pipeline with tasks")
    pipelines: dict[str, Pipeline] = {}
    for pipeline_entry in entries:
        pipeline = _pipeline(report, pipeline_entry)
        if pipeline is not None:
            pipelines[pipeline.name] = pipeline
    return pipelines


def _pipeline(report: Report, entry: yn.Entry) -> Pipeline | None:
    valid_name = _name(report, entry, "pipeline")
    if yn.is_null(entry.value):
        report.add(entry.key_node, f"pipeline {entry.key!r} is empty", "give it 'tasks:'")
        return None
    entries = _mapping(report, entry.value, f"pipeline {entry.key!r}")
    if entries is None:
        return None
    settings: dict[str, Any] = {}
    tasks: dict[str, Task] | None = None
    tasks_missing = not any(e.key == "tasks" for e in entries)
    for e in entries:
        key, node = e.key, e.value
        if key == "tasks":
            tasks = _tasks(report, e, entry.key)
        elif key == "schedule":
            settings["schedule"] = _schedule(report, node)
        elif key == "timezone":
            settings["timezone"] = _timezone(report, node)
        elif key == "on_push":
            settings["on_push"] = _boolean(report, node, key)
        elif key == "concurrency":
            settings["concurrency"] = _integer(report, node, key, 1, MAX_CONCURRENCY)
        elif key == "overlap":
            settings["overlap"] = _choice(report, node, key, OVERLAP_POLICIES)
        elif key == "notify":
            settings["notify"] = _notify(report, node)
            settings["notify_set"] = True
        elif key == "ping_url":
            settings["ping_url"] = _ping_url(report, node)
        elif key == "catchup":
            settings["catchup_s"] = _catchup(report, node)
        elif key == "executor":
            settings["executor"] = _executor(report, node)
        elif key == "auto_inputs":
            settings["auto_inputs"] = _auto_inputs(report, node)
        elif key == "params":
            settings["params"] = _params(report, node)
        else:
            _unknown_key(report, e, PIPELINE_KEYS, "pipeline", tasks_missing)
    if tasks_missing:
        report.add(entry.key_node, f"pipeline {entry.key!r} has no 'tasks:'", "add tasks: {name: command}")
    if tasks is None or not valid_name:
        return None
    return Pipeline(name=entry.key, tasks=tasks, **{k: v for k, v in settings.items() if v is not None})


def _catchup(report: Report, node: Node) -> float | None:
    """A duration, or 0 (never catch up)."""
    if (yn.is_scalar(node, yn.INT) or yn.is_scalar(node, yn.STR)) and str(node.value).strip() in (
        "0",
        "0s",
        "0m",
        "0h",
        "0d",
    ):
        return 0.0
    return _duration(report, node, "catchup")


def _schedule(report: Report, node: Node) -> tuple[str, ...] | None:
    items = _string_list(report, node, "schedule", "cron expression")
    if items is None:
        return None
    from flank_ops.config.cron_syntax import check_expression

    seen: set[str] = set()
    schedule: list[str] = []
    for text, item in items:
        expr = " ".join(text.split())
        if not expr:
            report.add(item, "schedule: the cron expression is empty", 'e.g. "0 2 * * *" for 02:00 every day')
            continue
        problem = check_expression(expr)
        if problem:
            report.add(item, f"schedule: {problem}")
            continue
        if expr not in seen:
            seen.add(expr)
            schedule.append(expr)
    return tuple(schedule)


def _timezone(report: Report, node: Node) -> str | None:
    name = _string(report, node, "timezone", "a timezone name like Europe/London")
    if name is None:
        return None
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(name)
        return name
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        pass
    from flank_ops.config.suggest import did_you_mean

    report.add(
        node,
        f"timezone: unknown timezone {name!r}",
        did_you_mean(name, zoneinfo.available_timezones()) or "use an IANA name like Europe/London or UTC",
    )
    return None


def _choice(report: Report, node: Node, key: str, choices: tuple[str, ...]) -> str | None:
    value = _string(report, node, key, " or ".join(choices))
    if value is None:
        return None
    if value not in choices:
        from flank_ops.config.suggest import did_you_mean

        report.add(node, f"{key}: {value!r} is not one of {', '.join(choices)}", did_you_mean(value, choices))
        return None
    return value


def _notify(report: Report, node: Node) -> tuple[str, ...] | None:
    items = _string_list(report, node, "notify", "outcome")
    if items is None:
        return None
    outcomes: list[str] = []
    for _, item in items:
        value = _choice(report, item, "notify", NOTIFY_OUTCOMES)
        if value is not None and value not in outcomes:
            outcomes.append(value)
    return tuple(outcomes)


def _ping_url(report: Report, node: Node) -> str | None:
    url = _string(report, node, "ping_url", "an http(s) URL")
    if url is None:
        return None
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname) and not any(c.isspace() for c in url)
    except ValueError:
        ok = False
    if not ok:
        report.add(node, f"ping_url: {url!r} is not an http:// or https:// URL", "e.g. https://hc-ping.com/<uuid>")
        return None
    return url


def _check_repo_paths(report: Report, tree: RepoTree, config: Config) -> None:
    from flank_ops.config.repo_paths import path_problems

    for (key, path, _), node in report.repo_paths.items():
        for message, hint in path_problems(tree, key, path, config.persist):
            report.add(node, message, hint)


def repo_path_keys(config: Config) -> set[tuple[str, str]]:
    """The (key, path) of every `dir:` and `persist:` path a valid `config`'s file names: what
    load_config checks against the repo's tree (Report.repo_paths, without the nodes)."""
    dirs = {t.dir for p in config.pipelines.values() for t in p.tasks.values() if t.dir not in (None, ".")}
    return {("persist", path) for path in config.persist} | {("dir", str(path)) for path in dirs}


def still_valid(config: Config, tree: RepoTree) -> bool:
    """For a Config load_config made before from the very same bytes, by this same flank (a push
    whose flank.yml did not change: git/release_config.py `validated_before`): whether it passes
    what depends on more than those bytes too, as load_config would — its `dir:` and `persist:`
    paths in this `tree`, its timezones on this machine. False: validate in full (load_config),
    which says what is wrong and where."""
    from flank_ops.config.repo_paths import path_problems

    if any(path_problems(tree, key, path, config.persist) for key, path in sorted(repo_path_keys(config))):
        return False
    zones = {p.timezone for p in config.pipelines.values() if p.timezone}
    if zones:
        import zoneinfo

        try:
            for zone in zones:
                zoneinfo.ZoneInfo(zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            return False
    return True


# --- tasks -----------------------------------------------------------------------


def _tasks(report: Report, entry: yn.Entry, pipeline: str) -> dict[str, Task] | None:
    if yn.is_null(entry.value):
        report.add(entry.key_node, f"pipeline {pipeline!r} has no tasks", "add tasks: {name: command}")
        return None
    errors_before = len(report.errors)
    entries = _mapping(report, entry.value, "tasks")
    if entries is None:
        return None
    if not entries and len(report.errors) == errors_before:  # not when its keys were unreadable
        report.add(entry.value, f"pipeline {pipeline!r} has no tasks", "add tasks: {name: command}")
        return None
    tasks: dict[str, Task] = {}
    needs_nodes: dict[str, list[tuple[str, Node]]] = {}
    report.matrices = {}  # issue 26: this pipeline's matrix: tasks
    report.matrix_from = {}
    for task_entry in entries:
        if not _name(report, task_entry, "task"):
            continue
        task, needs = _task(report, task_entry)
        if task is not None:
            tasks[task.name] = task
            needs_nodes[task.name] = needs
    names = {e.key: None for e in entries}  # ordered, with fast lookups
    for name, needs in needs_nodes.items():
        _check_needs(report, name, needs, names)
    _check_cycles(report, {n: [(_need_base(d), node) for d, node in ds] for n, ds in needs_nodes.items()})
    _check_file_patterns(report, tasks)
    _check_matrix_from(report, tasks)
    # Needs pointing nowhere were reported; keep the model consistent anyway.
    tasks = {
        n: _replace_needs(t, [d for d in t.needs if _need_base(d) in tasks and _need_base(d) != n])
        for n, t in tasks.items()
    }
    return _expand_matrices(tasks, report.matrices)


def _replace_needs(task: Task, needs: list[str]) -> Task:
    if tuple(needs) == task.needs:
        return task
    from dataclasses import replace

    return replace(task, needs=tuple(needs))


def _task(report: Report, entry: yn.Entry) -> tuple[Task | None, list[tuple[str, Node]]]:  # noqa: C901 - one branch per task key: next to split (a table of key readers)
    name, node = entry.key, entry.value
    if yn.is_scalar(node, yn.STR):
        command = _command(report, node, name)
        return (Task(name=name, run=command) if command else None), []
    if yn.is_null(node):
        report.add(node, f"task {name!r} has no command", f"write {name}: <command>, e.g. Rscript R/{name}.R")
        return None, []
    if not yn.is_mapping(node):
        report.add(
            node, f"task {name!r}: expected a command (a string) or a mapping with 'run:', got {yn.describe(node)}"
        )
        return None, []
    fields: dict[str, Any] = {}
    needs: list[tuple[str, Node]] = []
    command = None
    has_run = False
    max_parallel_node = node
    for e in report.entries(node):
        key, value = e.key, e.value
        if key == "run":
            has_run = True
            command = _command(report, value, name)
        elif key == "needs":
            needs = _needs(report, value)
        elif key == "retries":
            fields["retries"] = _integer(report, value, key, 0, MAX_RETRIES)
        elif key == "retry_delay":
            fields["retry_delay_s"] = _duration(report, value, key)
        elif key == "timeout":
            fields["timeout_s"] = _duration(report, value, key)
        elif key == "dir":
            fields["dir"] = _relative_dir(report, value, key)
            if fields["dir"] is not None and fields["dir"] != ".":
                report.repo_paths[("dir", fields["dir"], id(value))] = value
        elif key == "env":
            fields["env"] = _env(report, value, "env")
        elif key == "memory" and yn.is_sequence(value):  # issue 26: one value per attempt
            fields["memory_per_attempt_mb"] = _memory_per_attempt(report, value)
            fields["memory_mb"] = (fields["memory_per_attempt_mb"] or (None,))[0]
        elif key == "memory":
            fields["memory_mb"] = _memory(report, value)
        elif key == "cpus":
            fields["cpus"] = _integer(report, value, key, 1, MAX_CPUS)
        elif key == "executor":
            fields["executor"] = _executor(report, value)
        elif key in ("inputs", "outputs"):
            fields[key] = _file_pattern_list(report, value, key, name)
        elif key == "artifacts":
            fields["artifacts"] = _artifacts(report, value)
        elif key == "auto_inputs":
            fields["auto_inputs"] = _auto_inputs(report, value)
        elif key == "matrix":
            matrix = _matrix(report, value)
            if matrix is not None:
                report.matrices[name] = matrix
        elif key == "matrix_from":  # issue 26: cells from a file written upstream
            fields["matrix_from"] = _matrix_from(report, value, name)
        elif key == "queue_timeout":  # issue 26
            fields["queue_timeout_s"] = _duration(report, value, key)
        elif key == "slurm":  # issue 26: per-task placement
            fields["slurm"] = _slurm_options(report, value)
        elif key == "batch":
            fields["batch"] = _batch_placement(report, value)
        elif key == "max_parallel":
            fields["max_parallel"] = _integer(report, value, key, 1, MAX_MATRIX_CELLS)
            max_parallel_node = value
        else:
            _unknown_key(report, e, TASK_KEYS, "task")
    if fields.get("max_parallel") and name not in report.matrices and not fields.get("matrix_from"):
        report.add(max_parallel_node, "max_parallel: only a task with matrix: has instances to bound", "add matrix:")
    _check_placeholders(report, node, name, fields)
    _check_memory_attempts(report, node, fields)
    if not has_run:
        report.add(entry.key_node, f"task {name!r} has no 'run:'", "add run: <command>")
    if not command:
        return None, needs
    fields.setdefault("retry_delay_s", DEFAULT_RETRY_DELAY_S)
    return Task(
        name=name,
        run=command,
        needs=tuple(dict.fromkeys(n for n, _ in needs)),
        **{k: v for k, v in fields.items() if v is not None},
    ), needs


def _artifacts(report: Report, node: Node) -> tuple[str, ...] | None:
    """issue 11: paths or globs relative to the task's dir (may reach into persisted folders)."""
    items = _string_list(report, node, "artifacts", "path or glob")
    if items is None:
        return None
    kept: dict[str, None] = {}
    for text, item in items:
        pattern = text.strip()
        parts = [p for p in pattern.split("/") if p not in ("", ".")]
        if not pattern:
            report.add(item, "artifacts: the path is empty")
        elif pattern.startswith(("/", "~")):
            report.add(
                item, f"artifacts: {text!r} must be relative to the task's dir, not absolute", "e.g. 'results/*.png'"
            )
        elif ".." in parts:
            report.add(
                item,
                f"artifacts: {text!r} must stay inside the project ('..' is not allowed)",
                "name the file from the task's dir, e.g. 'results/plot.png'",
            )
        elif any(c in pattern for c in "\0\n\r"):
            report.add(item, f"artifacts: {text!r} contains a control character")
        elif not parts:
            report.add(item, f"artifacts: {text!r} names the task's whole folder", "name files, e.g. 'results/*.png'")
        else:
            kept["/".join(parts)] = None
    return tuple(kept)


def max_command_bytes() -> int:
    """The longest command (UTF-8 bytes) the kernel will take as `sh -c COMMAND`.

    A quarter of ARG_MAX leaves room for the environment; Linux also caps any one
    argument at 32 pages (MAX_ARG_STRLEN, its NUL included), whatever ARG_MAX says.
    """
    import os

    try:
        arg_max = os.sysconf("SC_ARG_MAX")
        page = os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        arg_max, page = 2 * 1024 * 1024, 4096
    return min(arg_max // 4, 32 * page - 1)


def _command(report: Report, node: Node, task: str) -> str | None:
    command = _string(report, node, "run", "a shell command (a string)")
    if command is None:
        return None
    if not command.strip():
        report.add(node, "run: the command is empty")
        return None
    if "\0" in command:
        report.add(node, "run: the command contains a NUL character")
        return None
    size, limit = len(command.encode("utf-8", "surrogatepass")), max_command_bytes()
    if size > limit:
        report.add(
            node,
            f"run: the command is {size / 1024:.1f} KiB; the kernel takes at most "
            f"{limit / 1024:.1f} KiB for one command",
            f"put the commands in a script in the repo and run it, e.g. sh scripts/{task}.sh",
        )
        return None
    return command


# --- inputs: and outputs: (issue 12) ---------------------------------------------------


def _file_pattern_list(report: Report, node: Node, key: str, task: str) -> tuple[str, ...] | None:
    """Paths or globs relative to the task's dir: (checked against each other in _check_file_patterns)."""
    items = _string_list(report, node, key, "path")
    if items is None:
        return None
    kept: list[tuple[str, Node]] = []
    for text, child in items:
        pattern = text.strip()
        if not pattern:
            report.add(child, f"{key}: the path is empty")
        elif pattern.startswith(("/", "~")):
            report.add(
                child, f"{key}: {pattern!r} must be relative to the task's dir, not absolute", "e.g. data/clean.parquet"
            )
        elif pattern.endswith("/") or pattern in (".", ".."):
            report.add(
                child,
                f"{key}: {pattern!r} is a directory; flank fingerprints files",
                f"list its files with a glob, e.g. {pattern.rstrip('/') or '.'}/**/*",
            )
        elif any(c in pattern for c in "\0\n\r"):
            report.add(child, f"{key}: {pattern!r} contains a control character")
        else:
            kept.append((pattern, child))
    report.file_patterns[(task, key)] = kept
    return tuple(dict.fromkeys(p for p, _ in kept))


def _auto_inputs(report: Report, node: Node) -> tuple[str, ...] | None:
    """`auto_inputs: true | false | [scripts, sources, setup]`: which inputs flank finds itself."""
    if yn.is_scalar(node, yn.BOOL):
        return AUTO_INPUT_KINDS if yn.scalar_value(node) else ()
    if not (yn.is_sequence(node) or yn.is_scalar(node, yn.STR) or yn.is_null(node)):
        report.add(
            node,
            f"auto_inputs: expected true, false or a list of {', '.join(AUTO_INPUT_KINDS)}, got {yn.describe(node)}",
        )
        return None
    kinds: list[str] = []
    for _, item in _string_list(report, node, "auto_inputs", "kind") or []:
        kind = _choice(report, item, "auto_inputs", AUTO_INPUT_KINDS)
        if kind is not None and kind not in kinds:
            kinds.append(kind)
    return tuple(k for k in AUTO_INPUT_KINDS if k in kinds)


def _check_file_patterns(report: Report, tasks: dict[str, Task]) -> None:
    """Across a pipeline: paths stay in the repo, no output is also an input of its task,
    no two tasks declare the same output."""
    from fnmatch import fnmatchcase

    from flank_ops.config.repo_paths import repo_relative

    owners: dict[str, str] = {}
    for name, task in tasks.items():
        resolved: dict[str, list[tuple[str, str, Node]]] = {}
        for key in ("inputs", "outputs"):
            resolved[key] = []
            for pattern, node in report.file_patterns.get((name, key), []):
                path = repo_relative(task.dir, pattern)
                if path is None:
                    report.add(node, f"{key}: {pattern!r} leads out of the repo ('..' past its root)")
                    continue
                resolved[key].append((pattern, path, node))
        for pattern, path, node in resolved["outputs"]:
            for _, other, _ in resolved["inputs"]:
                if path == other or fnmatchcase(other, path) or fnmatchcase(path, other):
                    report.add(
                        node,
                        f"outputs: {pattern!r} is also an input of task {name!r}",
                        "a task cannot depend on what it writes: remove it from inputs:",
                    )
                    break
            if path in owners and owners[path] != name:
                report.add(
                    node,
                    f"outputs: {pattern!r} is also an output of task {owners[path]!r}",
                    "each file has one task that writes it; give one of them another path",
                )
            owners.setdefault(path, name)


def _needs(report: Report, node: Node) -> list[tuple[str, Node]]:
    if yn.is_scalar(node, yn.STR) and ("," in node.value or " " in node.value.strip()):
        names = [n for n in re.split(r"[,\s]+", node.value) if n]
        report.add(node, f"needs: {node.value!r} is one name", f"for several, write a list: [{', '.join(names)}]")
        return []
    return _string_list(report, node, "needs", "task name") or []


def _check_needs(report: Report, task: str, needs: list[tuple[str, Node]], names: dict[str, None]) -> None:
    from flank_ops.config.suggest import did_you_mean

    for dep, node in needs:
        if "[" in dep:  # issue 26: one instance (or a slice) of a matrix task
            _check_instance_need(report, task, dep, node, names)
        elif dep == task:
            report.add(node, f"task {task!r} needs itself", "remove it from 'needs'")
        elif dep not in names:
            others = [n for n in names if n != task]
            report.add(
                node,
                f"needs: unknown task {dep!r}",
                did_you_mean(dep, others) or (f"tasks here: {', '.join(others)}" if others else None),
            )


def _check_cycles(report: Report, needs: dict[str, list[tuple[str, Node]]]) -> None:
    """Report each cycle once: 'a -> b -> a' means a needs b and b needs a.

    Depth-first search with an explicit stack: a chain of thousands of tasks must
    not hit Python's recursion limit.
    """
    rank = {task: i for i, task in enumerate(needs)}  # flank.yml order
    deps = {t: [d for d, _ in ds if d in needs and d != t] for t, ds in needs.items()}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    reported: set[frozenset[str]] = set()
    for root in needs:
        if root in state:
            continue
        path = [root]
        stack = [iter(deps[root])]
        state[root] = 1
        while stack:
            dep = next(stack[-1], None)
            if dep is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(dep) == 1:
                cycle = path[path.index(dep) :]  # each needs the next; the last needs the first
                if frozenset(cycle) not in reported:
                    reported.add(frozenset(cycle))
                    _report_cycle(report, cycle, needs, rank)
            elif dep not in state:
                state[dep] = 1
                path.append(dep)
                stack.append(iter(deps[dep]))


def _report_cycle(
    report: Report, cycle: list[str], needs: dict[str, list[tuple[str, Node]]], rank: dict[str, int]
) -> None:
    # Start from the task that comes first in flank.yml; point at its 'needs' entry.
    i = cycle.index(min(cycle, key=rank.__getitem__))
    cycle = cycle[i:] + cycle[:i]
    node = next(n for d, n in needs[cycle[0]] if d == cycle[1 % len(cycle)])
    shown = cycle + [cycle[0]]
    if len(shown) > 12:  # name the ends of a very long loop, not all of it
        shown = shown[:5] + [f"({len(shown) - 10} more)"] + shown[-5:]
    report.add(node, "cycle: " + " -> ".join(shown), "each task needs the next; remove one of these needs")


# --- params: (issue 23) ------------------------------------------------------------

PARAM_KEYS = ("default", "type", "choices", "description")
PARAM_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
# the YAML type of a short form's default -> the parameter's type
_PARAM_TYPE_OF_TAG = {yn.STR: "string", yn.INT: "int", yn.FLOAT: "number", yn.BOOL: "bool", yn.TIMESTAMP: "date"}


def _params(report: Report, node: Node) -> dict[str, Any] | None:
    """`params:` name -> default, or name -> {default, type, choices, description}."""
    if yn.is_null(node):
        return {}
    entries = _mapping(report, node, "params")
    if entries is None:
        return None
    from flank_ops.config.params import env_name

    params: dict[str, Any] = {}
    seen_env: dict[str, str] = {}
    for entry in entries:
        if not PARAM_NAME_RE.match(entry.key):
            report.add(
                entry.key_node,
                f"params: {entry.key!r} is not a valid parameter name",
                "use letters, digits and '_' (at most 64), not starting with a digit: tasks read FLANK_PARAM_<NAME>",
            )
            continue
        variable = env_name(entry.key)
        if variable in seen_env:
            report.add(
                entry.key_node,
                f"params: {entry.key!r} and {seen_env[variable]!r} are both {variable} for tasks",
                "give one of them another name",
            )
            continue
        seen_env[variable] = entry.key
        param = _param(report, entry)
        if param is not None:
            params[entry.key] = param
    return params


def _param(report: Report, entry: yn.Entry) -> Any:
    from flank_ops.config.model import PARAM_TYPES, Param
    from flank_ops.config.params import parse_value

    name, node = entry.key, entry.value
    fields: dict[str, yn.Entry] = {}
    if yn.is_mapping(node):
        for e in report.entries(node):
            if e.key in PARAM_KEYS:
                fields[e.key] = e
            else:
                _unknown_key(report, e, PARAM_KEYS, "param")
        default_node = fields["default"].value if "default" in fields else None
    else:
        default_node = node
    if default_node is not None and not yn.is_scalar(default_node):
        report.add(default_node, f"params: {name}: the default must be a single value, got {yn.describe(default_node)}")
        return None
    if default_node is None or yn.is_null(default_node):
        report.add(
            default_node if default_node is not None else entry.key_node,
            f"params: {name} has no default",
            "scheduled runs use the default: give one, e.g. default: 2026-11-01",
        )
        return None
    choices: tuple[str, ...] = ()
    if "choices" in fields:
        items = _string_list(report, fields["choices"].value, f"params: {name}: choices", "choice")
        if items is None:
            return None
        choices = tuple(dict.fromkeys(text for text, _ in items))
        if not choices:
            report.add(fields["choices"].value, f"params: {name}: choices is empty", "list the values, e.g. [lm, glm]")
            return None
    type_name: str | None = None
    if "type" in fields:
        type_name = _choice(report, fields["type"].value, f"params: {name}: type", PARAM_TYPES)
        if type_name is None:
            return None
    elif choices:
        type_name = "choice"
    else:
        type_name = _PARAM_TYPE_OF_TAG.get(default_node.tag, "string")
    if type_name == "choice" and not choices:
        report.add(
            fields["type"].key_node if "type" in fields else entry.key_node,
            f"params: {name}: type: choice needs a list of choices:",
            "e.g. choices: [lm, glm]",
        )
        return None
    if choices and type_name != "choice":
        report.add(fields["choices"].key_node, f"params: {name}: choices: goes with type: choice, not {type_name}")
        return None
    description = ""
    if "description" in fields:
        description = _string(report, fields["description"].value, f"params: {name}: description") or ""
    probe = Param(name, type_name, "", choices)
    try:
        default = parse_value(probe, str(default_node.value))
    except ValueError as exc:
        report.add(default_node, f"params: {name}: the default {exc} (type {type_name})")
        return None
    return Param(name, type_name, default, choices, description)


# --- matrix: (issue 26) ------------------------------------------------------------------


def _matrix(report: Report, node: Node) -> Matrix | None:
    """`matrix: [a, b]` or `matrix: {key: [a, b], other: [1, 2]}` -> ((key, values), ...)."""
    if yn.is_sequence(node):
        values = _matrix_values(report, node, "")
        matrix: Matrix = (("", values),) if values else ()
    elif yn.is_mapping(node):
        columns: list[tuple[str, tuple[str, ...]]] = []
        for entry in report.entries(node):
            key_ok = bool(MATRIX_KEY_RE.match(entry.key))
            if not key_ok:
                report.add(
                    entry.key_node,
                    f"matrix: {entry.key!r} is not a key",
                    "a key is a name like region or year (letters, digits, _); tasks see it as FLANK_MATRIX_<KEY>",
                )
            values = _matrix_values(report, entry.value, entry.key)
            if key_ok and values:
                columns.append((entry.key, values))
        matrix = tuple(columns)
    else:
        report.add(node, f"matrix: expected a list of values or a mapping of lists, got {yn.describe(node)}")
        return None
    if not matrix:
        if not (yn.is_mapping(node) and report.entries(node)):
            report.add(node, "matrix: is empty", "give it values: matrix: [north, south]")
        return None
    sizes = [len(values) for _, values in matrix]
    cells = 1
    for size in sizes:
        cells *= size
    if cells > MAX_MATRIX_CELLS:
        report.add(
            node,
            f"matrix: {cells} cells ({' x '.join(map(str, sizes))}); at most {MAX_MATRIX_CELLS} per task",
            "loop inside the task over some of the values, or split it into several tasks",
        )
        return None
    return matrix


def _matrix_values(report: Report, node: Node, key: str) -> tuple[str, ...]:
    where = f"matrix: {key}" if key else "matrix"
    if yn.is_scalar(node) and not yn.is_null(node):
        items = [node]  # `year: 2024` is a one-value column
    elif yn.is_sequence(node):
        items = list(node.value)
    else:
        report.add(node, f"{where}: expected a list of values, got {yn.describe(node)}")
        return ()
    values: dict[str, None] = {}
    for item in items:
        text = str(item.value) if yn.is_scalar(item) and not yn.is_null(item) else None
        if text is None or not MATRIX_VALUE_RE.match(text):
            shown = repr(text) if text is not None else yn.describe(item)
            report.add(
                item,
                f"matrix: {shown} is not a plain value",
                "use letters, digits, '_', '.', '+' and '-': a value becomes part of the task's name and its log's",
            )
        elif text in values:
            report.add(item, f"{where}: {text!r} is listed twice")
        else:
            values[text] = None
    return tuple(values)


def _need_base(need: str) -> str:
    """`model[region=north]` -> `model`; a plain name is itself."""
    return need.split("[", 1)[0]


def _check_instance_need(report: Report, task: str, dep: str, node: Node, names: dict[str, None]) -> None:
    from flank_ops.config.model import cell_matches

    base = _need_base(dep)
    if not dep.endswith("]") or base not in names:
        report.add(node, f"needs: unknown task {dep!r}", "one instance is written like model[region=north]")
    elif base == task:
        report.add(node, f"task {task!r} needs itself", "remove it from 'needs'")
    elif base in report.matrix_from:
        report.add(
            node,
            f"needs: {dep!r}: the cells of {base!r} are known only when the run reads {report.matrix_from[base][0]}",
            f"need all of them: needs: [{base}]",
        )
    elif base not in report.matrices:
        report.add(node, f"needs: {dep!r}: task {base!r} has no matrix:", f"write needs: [{base}]")
    elif not any(cell_matches(cell, dep[len(base) + 1 : -1]) for cell in _cells(report.matrices[base])):
        report.add(
            node,
            f"needs: {dep!r} matches no instance of {base!r}",
            f"its values: {_matrix_text(report.matrices[base])}",
        )


def _cells(matrix: Matrix) -> list[tuple[tuple[str, str], ...]]:
    from itertools import product

    keys = [key or LIST_MATRIX_KEY for key, _ in matrix]
    return [tuple(zip(keys, combo)) for combo in product(*(values for _, values in matrix))]


def _matrix_text(matrix: Matrix) -> str:
    return "; ".join(f"{key}: {', '.join(values)}" if key else ", ".join(values) for key, values in matrix)


def _expand_matrices(tasks: dict[str, Task], matrices: dict[str, Matrix]) -> dict[str, Task]:
    """Each matrix: task becomes its instances (in place, flank.yml order kept); a need of the
    task stands for all of them, a need of `task[...]` for those that match."""
    if not matrices:
        return tasks
    from dataclasses import replace

    from flank_ops.config.model import cell_matches

    instances: dict[str, list[Task]] = {}
    for name, matrix in matrices.items():
        if name not in tasks:
            continue
        plain = matrix[0][0] == ""
        instances[name] = [tasks[name].instance(cell, plain) for cell in _cells(matrix)]

    def resolve(need: str) -> list[str]:
        base = _need_base(need)
        if base not in instances:
            return [need]
        if base == need:
            return [i.name for i in instances[base]]
        return [i.name for i in instances[base] if cell_matches(i.cell, need[len(base) + 1 : -1])]

    expanded: dict[str, Task] = {}
    for name, task in tasks.items():
        needs = tuple(dict.fromkeys(n for need in task.needs for n in resolve(need)))
        for one in instances.get(name, [task]):
            expanded[one.name] = replace(one, needs=needs) if needs != one.needs else one
    return expanded


def _memory_per_attempt(report: Report, node: Node) -> tuple[int, ...] | None:
    """issue 26: `memory: [4G, 8G, 16G]`: attempt n asks for the n-th (the last for any after)."""
    if not node.value:
        report.add(node, "memory: the list is empty", "write one size per attempt, e.g. [4G, 8G, 16G]")
        return None
    sizes = [_memory(report, item) for item in node.value]
    if any(size is None for size in sizes):
        return None
    return tuple(size for size in sizes if size is not None)


def _check_memory_attempts(report: Report, node: Node, fields: dict[str, Any]) -> None:
    per_attempt = fields.get("memory_per_attempt_mb") or ()
    attempts = (fields.get("retries") or 0) + 1
    if len(per_attempt) > attempts:
        memory_node = next(e.value for e in report.entries(node) if e.key == "memory")
        report.add(
            memory_node,
            f"memory: {len(per_attempt)} sizes, but the task has {attempts} attempt{'s' if attempts > 1 else ''}",
            f"add retries: {len(per_attempt) - 1}, or list fewer sizes",
        )


# --- matrix_from: and {key} placeholders (issue 26) -----------------------------------------


def _matrix_from(report: Report, node: Node, task: str) -> str | None:
    """`matrix_from: outputs/regions.txt`: a file (relative to the task's dir) an upstream task writes."""
    text = _string(report, node, "matrix_from", "a file path (a string)")
    if text is None:
        return None
    path = text.strip()
    example = "e.g. matrix_from: outputs/regions.txt (one value a line) or outputs/cells.csv (a table)"
    if not path or path.endswith("/"):
        report.add(node, f"matrix_from: {text!r} is not a file", example)
    elif path.startswith(("/", "~")):
        report.add(node, f"matrix_from: {path!r} must be relative to the task's dir, not absolute", example)
    elif any(c in path for c in "*?[{\0\n\r"):
        report.add(node, f"matrix_from: {path!r} must name one file (no glob, no placeholder)", example)
    else:
        report.matrix_from[task] = (path, node)
        return path
    return None


def matrix_from_keys(task: Task) -> tuple[str, ...] | None:
    """The keys a matrix_from: task's cells have, when flank.yml tells: (value,) for a file of lines;
    None for a table (its header says, when the run reads it)."""
    if task.matrix_from is None or task.matrix_from.lower().endswith(MATRIX_TABLE_SUFFIX):
        return None
    return (LIST_MATRIX_KEY,)


def _check_matrix_from(report: Report, tasks: dict[str, Task]) -> None:
    """A matrix_from: file is an output of a task this one needs (so make has written it when the
    task starts); a matrix: task cannot also have one."""
    from fnmatch import fnmatchcase

    from flank_ops.config.repo_paths import repo_relative

    for name, (path, node) in report.matrix_from.items():
        task = tasks.get(name)
        if task is None:
            continue
        if name in report.matrices:
            report.add(node, "matrix_from: and matrix: both give the cells", "keep one of them")
            continue
        wanted = repo_relative(task.dir, path)
        if wanted is None:
            report.add(node, f"matrix_from: {path!r} leads out of the repo ('..' past its root)")
            continue

        def writes(other: Task, wanted: str = wanted) -> bool:
            outs = (repo_relative(other.dir, o) for o in other.outputs)
            return any(o is not None and (o == wanted or fnmatchcase(wanted, o)) for o in outs)

        needed = [_need_base(d) for d in task.needs]
        if any(writes(tasks[d]) for d in needed if d in tasks):
            continue
        writer = next((n for n, t in tasks.items() if n != name and writes(t)), None)
        report.add(
            node,
            f"matrix_from: {path!r} is not an output of a task {name!r} needs",
            f"add needs: [{writer}]"
            if writer
            else "the task that writes it goes in needs:, and the file in that task's outputs:",
        )


def _check_placeholders(report: Report, node: Node, name: str, fields: dict[str, Any]) -> None:
    """`{key}` in inputs:, outputs:, artifacts: names a key of the task's matrix; every instance writes
    outputs of its own (each key named), or two instances would overwrite each other's files."""
    from flank_ops.config.model import placeholders

    if not yn.is_mapping(node):
        return
    matrix = report.matrices.get(name)
    keys: tuple[str, ...] | None
    if matrix is not None:
        keys = tuple(k or LIST_MATRIX_KEY for k, _ in matrix)
    elif fields.get("matrix_from"):
        keys = matrix_from_keys(Task(name=name, run="", matrix_from=fields["matrix_from"]))
    else:
        keys = ()
    cells = 1
    for _, values in matrix or ():
        cells *= len(values)
    for entry in report.entries(node):
        if entry.key not in ("inputs", "outputs", "artifacts"):
            continue
        items = entry.value.value if yn.is_sequence(entry.value) else [entry.value]
        for item in items:
            if not yn.is_scalar(item, yn.STR):
                continue
            named = placeholders(item.value)
            if keys is not None and named and not keys:
                report.add(
                    item,
                    f"{entry.key}: {{{named[0]}}} names a matrix key, but task {name!r} has no matrix:",
                    "placeholders like {region} are for the instances of a matrix: or matrix_from: task",
                )
                continue
            unknown = [k for k in named if keys is not None and k not in keys]
            if unknown:
                report.add(
                    item,
                    f"{entry.key}: {{{unknown[0]}}} is not a key of {name!r}'s matrix",
                    f"its keys: {', '.join('{' + k + '}' for k in keys or ())}",
                )
                continue
            missing = [k for k in keys or () if k not in named]
            if entry.key == "outputs" and missing and (cells > 1 or matrix is None):
                shown = " and ".join("{" + k + "}" for k in missing)
                if len(missing) == len(keys or ()):
                    problem = f"outputs: {item.value!r} would be the same file for every instance of {name!r}"
                else:
                    problem = (
                        f"outputs: {item.value!r} does not name {shown}: instances that differ only in "
                        f"{' and '.join(missing)} would write the same file"
                    )
                report.add(item, problem, f"give each instance its own: e.g. {_with_placeholders(item.value, missing)}")


def _with_placeholders(path: str, keys: list[str]) -> str:
    """`out/model.rds` + [region] -> `out/model_{region}.rds` (a hint's example)."""
    stem, dot, suffix = path.rpartition(".")
    if not dot or "/" in suffix:
        stem, suffix = path, ""
    return stem + "".join("_{" + k + "}" for k in keys) + (f".{suffix}" if suffix else "")
