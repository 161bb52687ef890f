"""flank_ops/main.py: the lazy command registry (issue 21 item 4, issue 22 item 3).

Only the module of the verb that runs is imported, so `flank --version` and the readers start
without the site, boto3 or jinja2 (the time it saves: `python -X importtime -m flank_ops --version`).
"""

from __future__ import annotations

import argparse
import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from flank_ops import __version__
from flank_ops.main import COMMANDS, build_parser, main
from helpers.cli import REPO_ROOT

HEAVY = {"boto3", "jinja2", "flank_ops.site.build", "flank_ops.notify.dispatch"}


def _imported(*args: str, cwd: Path) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run the real CLI; -> the process and every module it had imported when it exited."""
    script = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('MODULES', *sorted(sys.modules), file=sys.stderr))\n"
        "from flank_ops.main import main\n"
        "raise SystemExit(main(sys.argv[1:]))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    proc = subprocess.run([sys.executable, "-c", script, *args], cwd=cwd, env=env, text=True, capture_output=True)
    listed = [line for line in proc.stderr.splitlines() if line.startswith("MODULES ")]
    return proc, set(listed[-1].split()[1:])


def test_version_imports_no_command(tmp_path: Path) -> None:
    proc, modules = _imported("--version", cwd=tmp_path)
    assert proc.stdout.strip() == f"flank {__version__}"
    assert not {m for m in modules if m.startswith("flank_ops.commands.")}
    assert not modules & {"argparse", *HEAVY}


def test_a_reader_imports_its_command_only(tmp_path: Path) -> None:
    (tmp_path / "flank.yml").write_text("pipelines:\n  nightly:\n    tasks:\n      a:\n        run: 'true'\n")
    proc, modules = _imported("validate", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert {m for m in modules if m.startswith("flank_ops.commands.")} == {"flank_ops.commands.validate"}
    assert not modules & HEAVY


def test_every_verb_is_listed_and_its_options_build() -> None:
    parser = build_parser()  # imports every command module: each one's top-level imports work
    (verbs,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert list(verbs.choices) == list(COMMANDS)
    for verb, sub in verbs.choices.items():
        assert sub.get_default("_module").__name__ == COMMANDS[verb].module


def test_help_lists_every_verb(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert all(verb in out for verb in COMMANDS)


def test_an_unknown_verb_names_the_choices(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["stauts"])
    assert done.value.code == 2
    assert "invalid choice: 'stauts'" in capsys.readouterr().err


def test_commands_import_at_module_top() -> None:
    # A command module is imported only when its verb runs, so its imports belong at its top
    # (issue 21 item 4); only the hooks' fast path (main.py) imports inside functions.
    inside = []
    for path in sorted((REPO_ROOT / "flank_ops" / "commands").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for func in ast.walk(tree):
            if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                inside += [
                    f"{path.name}:{node.lineno}"
                    for node in ast.walk(func)
                    if isinstance(node, (ast.Import, ast.ImportFrom))
                ]
    assert inside == []
