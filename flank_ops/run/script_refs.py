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

import ast
import os
import re

from flank_ops.config.repo_paths import repo_relative

MAX_SCRIPT_BYTES = 1024 * 1024  # a script bigger than this is data: not read for references
R_SUFFIXES = (".r", ".rmd", ".qmd", ".rmarkdown")
PY_SUFFIXES = (".py",)
_R_SOURCE = re.compile(r"""(?<![\w.])(?:sys\.)?source\s*\(\s*(?:file\s*=\s*)?(["'])([^"'\n]+)\1""")

# script text digest -> names it references (one run reads the same helper for many tasks)
_parsed: dict[tuple[str, str], tuple[str, ...]] = {}


def is_followed(script: str) -> bool:
    """Whether `script` is a language whose sources are followed."""
    return script.lower().endswith(R_SUFFIXES + PY_SUFFIXES)


def referenced_files(release_dir: str, script: str, task_dir: str | None, digest: str) -> list[str]:
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
        if len(_parsed) > 4096:
            _parsed.clear()
        _parsed[(kind, digest)] = names
    folder = os.path.dirname(script) or "."
    found: list[str] = []
    for name in names:
        candidates = _python_files(name, folder, task_dir) if kind == "py" else _r_files(name, folder, task_dir)
        for rel in candidates:
            if (
                rel is not None
                and rel != script
                and rel not in found
                and os.path.isfile(os.path.join(release_dir, rel))
            ):
                found.append(rel)
                if kind == "r":
                    break  # the first place R would find it
    return found


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
    """Imported module names, as `mod`, `pkg.mod`, `.mod` (relative: one dot per level)."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return ()  # the script fails on its own; nothing more to learn here
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            if node.module:
                names.append(base)
            # `from pkg import mod` may name a module of the package
            names.extend(f"{base}{'.' if node.module else ''}{alias.name}" for alias in node.names if alias.name != "*")
    return tuple(dict.fromkeys(names))


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
