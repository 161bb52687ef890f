"""flank validate [PATH]: check a flank.yml without a VM.

Prints `flank.yml OK — 1 pipeline, 4 tasks` (exit 0) or every problem as
`file:line:col: message` lines, the format editors and terminals link to (exit 1).
In a git work tree it also checks what the push checks (a symlinked flank.yml, dir: and
persist: paths against the repo's files), with the same rules and words.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from flank_ops import jsonout
from flank_ops.config.load import FILENAME, describe, load_config_file, symlink_error
from flank_ops.config.model import Config
from flank_ops.errors import ConfigErrors, UserError
from flank_ops.executors.vm_check import config_warnings
from flank_ops.git.trees import work_tree_index
from flank_ops.jsonout import FLAG_HELP
from flank_ops.notify.destinations import nowhere_to_send
from flank_ops.paths import Home
from flank_ops.settings import settings_for

if TYPE_CHECKING:
    from flank_ops.config.repo_paths import RepoTree


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "path",
        nargs="?",
        default="flank.yml",
        metavar="PATH",
        help="a flank.yml, or a directory holding one (default: ./flank.yml)",
    )
    parser.add_argument("--json", action="store_true", help=FLAG_HELP)


def run(args: argparse.Namespace) -> int:
    path = args.path
    if os.path.isdir(path):
        path = os.path.join(path, FILENAME)
    try:
        # A git work tree's flank.yml gets the push's checks too: against the index, what
        # the next commit (and so the next push) holds.
        tree = work_tree_index(Path(path))
        if tree is not None and (os.path.islink(path) or _indexed_as_link(tree)):
            raise symlink_error(path)
        config = load_config_file(path, tree=tree)
    except ConfigErrors as exc:
        if args.json:
            _emit_json(path, None, [e._asdict() for e in exc.errors], [])
            return 1
        for error in exc.errors:
            print(error, file=sys.stderr)
        if len(exc.errors) > 1:
            print(f"{len(exc.errors)} errors", file=sys.stderr)
        return 1
    if args.json:
        _emit_json(path, config, [], _vm_warnings(config, show=False))
        return 0
    print(f"{path} OK — {describe(config)}")
    _vm_warnings(config)
    return 0


def _emit_json(path: str, config: Config | None, errors: list[dict[str, object]], warnings: list[str]) -> None:
    """`flank validate --json`: valid or not, every error (file, line, column, message, hint), the pipelines."""
    pipelines = [{"pipeline": name, "tasks": list(p.tasks)} for name, p in config.pipelines.items()] if config else []
    jsonout.emit("validate", file=path, valid=not errors, errors=errors, warnings=warnings, pipelines=pipelines)


def _vm_warnings(config: Config, show: bool = True) -> list[str]:
    """issue 14: on the VM (FLANK_HOME exists), what this VM lacks for the config: warnings."""
    home = Home()
    if not home.root.is_dir():
        return []
    try:
        warnings = config_warnings(home, None, config)
    except UserError as exc:
        warnings = [exc.message]
    try:
        warnings += [w for w in [nowhere_to_send(config, settings_for(home), str(home.settings_file))] if w]
    except UserError:
        pass  # an unreadable flank.toml: said above
    for warning in warnings if show else []:
        print(f"warning: {warning}", file=sys.stderr)
    return warnings


def _indexed_as_link(tree: RepoTree) -> bool:
    entry = (tree.folder("") or {}).get(FILENAME)
    return entry is not None and entry.kind == "link"
