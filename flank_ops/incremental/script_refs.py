"""What a task's script reads as code: the `sources` of `auto_inputs:` (issue 28 item 10, issue 19 friction 4).

One level, literal names, files of the repo only:

    R (.R, .Rmd, .qmd)   source("R/helpers.R"), source(file = '...'), sys.source("...")
    Python (.py)         import common, import pkg.mod, from data_reader import x, from . import y

A name is looked for where the language looks first: R's source() from the task's working
directory (then, for knitr's sake, the script's own folder); Python's imports from the script's
folder (sys.path[0]), then the working directory (`python -m`). A file found this way is an input
of the task like one listed in `inputs:`; what *it* sources is not followed (one level keeps the
rule short enough to hold in one's head: list deeper files in `inputs:`). Names built at run time
(`source(file.path(dir, f))`, `importlib.import_module(name)`) are not seen.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

from flank_ops.config.repo_paths import repo_relative

MAX_SCRIPT_BYTES = 1024 * 1024  # a script bigger than this is data: not read for references
R_SUFFIXES = (".r", ".rmd", ".qmd", ".rmarkdown")
PY_SUFFIXES = (".py",)
_PY_IMPORT = re.compile(
    r"^[ \t]*(?:from[ \t]+(\.*[\w.]*)[ \t]+import[ \t]+([^\n#;]+)|import[ \t]+([\w. \t,]+))", re.MULTILINE
)
_R_SOURCE = re.compile(r"""(?<![\w.])(?:sys\.)?source\s*\(\s*(?:file\s*=\s*)?(["'])([^"'\n]+)\1""")

# per process: script content digest -> the names it references (one run reads a helper once), and
# (names, folder, dir) -> where each name would be found (hundreds of scripts import the same modules)
_parsed: dict[tuple[str, str], tuple[str, ...]] = {}
_candidates: dict[tuple[str, tuple[str, ...], str, str | None], tuple[tuple[str, ...], ...]] = {}


def is_followed(script: str) -> bool:
    """Whether `script` is a language whose sources are followed."""
    return script.lower().endswith(R_SUFFIXES + PY_SUFFIXES)


def referenced_files(
    release_dir: str,
    script: str,
    task_dir: str | None,
    digest: str,
    is_file: Callable[[str], bool] = os.path.isfile,
) -> list[str]:
    """Repo-relative files that `script` (repo-relative, content `digest`) sources or imports."""
    lower = script.lower()
    if lower.endswith(PY_SUFFIXES):
        kind = "py"
    elif lower.endswith(R_SUFFIXES):
        kind = "r"
    else:
        return []
    names = _parsed.get((kind, digest))
    if names is None:
        names = _read_names(os.path.join(release_dir, script), kind)
        _remember(_parsed, (kind, digest), names)
    folder = os.path.dirname(script) or "."
    key = (kind, names, folder, task_dir)
    groups = _candidates.get(key)
    if groups is None:  # the same imports from the same folder: worked out once
        groups = tuple(
            tuple(c for c in (_python_files if kind == "py" else _r_files)(name, folder, task_dir) if c is not None)
            for name in names
        )
        _remember(_candidates, key, groups)
    found: list[str] = []
    for group in groups:
        for rel in group:
            if rel != script and rel not in found and is_file(os.path.join(release_dir, rel)):
                found.append(rel)
                if kind == "r":
                    break  # the first place R would find it
    return found


def _remember(memo: dict[Any, Any], key: Any, value: Any) -> None:
    if len(memo) > 4096:
        memo.clear()
    memo[key] = value


def _read_names(path: str, kind: str) -> tuple[str, ...]:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_SCRIPT_BYTES + 1)
    except OSError:
        return ()
    if len(data) > MAX_SCRIPT_BYTES:
        return ()
    text = data.decode("utf-8", "replace")
    return _python_names(text) if kind == "py" else _r_names(text)


def _r_names(text: str) -> tuple[str, ...]:
    names: list[str] = []
    for line in text.splitlines():
        for match in _R_SOURCE.finditer(line):
            before = line[: match.start()]
            if "#" in before and before.count('"') % 2 == 0 and before.count("'") % 2 == 0:
                break  # in a comment
            name = match.group(2).strip()
            if name and name not in names and "://" not in name:
                names.append(name)
    return tuple(names)


def _python_names(text: str) -> tuple[str, ...]:
    """Imported module names, as `mod`, `pkg.mod`, `.mod` (relative: one dot per level). A regex over
    lines, not ast: 30x cheaper, and this runs for every task at every run; an `import x` line
    inside a string costs at most one needless input."""
    names: list[str] = []
    for match in _PY_IMPORT.finditer(text):
        module, imported, plain = match.groups()
        if plain is not None:
            names.extend(part.split()[0] for part in plain.split(",") if part.split())
            continue
        names.append(module)
        if module.strip("."):
            module += "."
        for part in imported.strip().strip("()\\").split(","):
            words = part.split()
            if words and words[0] != "*":
                names.append(module + words[0])
    return tuple(dict.fromkeys(n for n in names if n.strip(".")))


def _r_files(name: str, script_folder: str, task_dir: str | None) -> list[str | None]:
    return [repo_relative(task_dir, name), repo_relative(script_folder, name)]


def _python_files(name: str, script_folder: str, task_dir: str | None) -> list[str | None]:
    """The files `import name` runs that could be the repo's: each package's __init__.py, then the module."""
    level = len(name) - len(name.lstrip("."))
    parts = [p for p in name.lstrip(".").split(".") if p]
    if not parts or not all(p.isidentifier() for p in parts):
        return []
    if level:
        roots = [os.path.normpath(os.path.join(script_folder, *[".."] * (level - 1)))]
    else:
        roots = list(dict.fromkeys([script_folder, os.path.normpath(task_dir or ".")]))
    files: list[str | None] = []
    for root in roots:
        for i in range(1, len(parts) + 1):
            here = "/".join(parts[:i])
            files.append(repo_relative(root, f"{here}/__init__.py"))
            if i == len(parts):
                files.append(repo_relative(root, f"{here}.py"))
    return files
