"""The `flank` command: parses arguments and hands over to flank_ops.commands.<verb>.

Each verb lives in its own module with two plain functions:
    add_arguments(parser)  - declares its options
    run(args) -> int       - does the work; raises UserError for user mistakes

COMMANDS maps each verb to its module and one-line help (as pip's commands/__init__.py does):
only the module of the verb that runs is imported, so a command's imports stay at its top
and `flank --version` or a git hook loads none of them. A new verb is one line in COMMANDS.
"""

from __future__ import annotations

import atexit
import importlib
import os
import sys
from typing import TYPE_CHECKING, NamedTuple, NoReturn

from flank_ops import __version__, jsonout
from flank_ops.error_handler import error_handler
from flank_ops.exit_codes import ExitCode
from flank_ops.fileio import make_state_private

if TYPE_CHECKING:
    import argparse  # imported in build_parser: the git hooks' fast path never builds the parser


class CommandInfo(NamedTuple):
    module: str  # imported only when this verb runs
    help: str


def _verb(module: str, help_text: str) -> CommandInfo:
    return CommandInfo(f"flank_ops.commands.{module}", help_text)


COMMANDS: dict[str, CommandInfo] = {
    "init": _verb("init", "create a project: bare repo with hooks, state folders"),
    "validate": _verb("validate", "check a flank.yml without a VM"),
    "schema": _verb("schema", "print the JSON Schema of flank.yml"),
    "run": _verb("run", "run a pipeline now"),
    "watch": _verb("watch", "in a working copy: run a pipeline, then again on every save (only what the save affects)"),
    "plan": _verb("plan", "what a run would do now with each task (run or up to date) and why, without running"),
    "status": _verb("status", "show the last run of every pipeline"),
    "logs": _verb("logs", "print a task's log"),
    "cancel": _verb("cancel", "stop a running run (its tasks and their process trees)"),
    "backfill": _verb("backfill", "one run per scheduled minute of a past range (--from DATE --to DATE)"),
    "secrets": _verb("secrets", "set, list or unset a project's secrets"),
    "scheduler": _verb("scheduler", "run the schedules in the foreground (machines without cron)"),
    "catchup": _verb("catchup", "start, once, the scheduled runs missed while the VM was off (cron's @reboot line)"),
    "site": _verb("site", "rebuild the static status site"),
    "serve": _verb("serve", "serve the status site over HTTP"),
    "users": _verb("users", "who may run and cancel from the site (flank serve --actions): add, list, remove, passwd"),
    "prune": _verb("prune", "remove old runs (records, logs and pages)"),
    "sync": _verb("sync", "upload records, logs and the site to S3"),
    "doctor": _verb("doctor", "check this VM's flank setup end to end"),
    "report": _verb("report", "what the pipelines' recent runs used: memory, CPU, time"),
    "cost": _verb("cost", "size the VM for its pipelines; resize it on AWS around their runs"),
    "deploy": _verb("deploy", "redo a project's deploy by hand (after an interrupted push)"),
    "remote": _verb(
        "remote", "from a clone on the laptop: run the VM's flank over ssh (status, logs, plan, run, cancel, ...)"
    ),
    "up": _verb("up", "from the laptop: make or start the project's VM on EC2 (ssh key, firewall, data volume, setup)"),
    "down": _verb("down", "from the laptop: stop the project's VM, or terminate it keeping its data volume"),
    "ssh-gate": _verb("ssh_gate", "authorized_keys forced command: a key may run only flank remote and git push/fetch"),
}


def _chosen_verb(argv: list[str]) -> str | None:
    """The verb on the command line (flank's own options come before it and take no value)."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser for `argv`: every verb is listed, only the chosen one's module is imported
    (argv None: all of them, e.g. to check every verb's options, or to write the reference)."""
    import argparse

    from flank_ops.hints import docs_url

    class JsonErrors(argparse.ArgumentParser):
        """With --json a mistake on the command line is a JSON answer too (exit 2, as argparse's)."""

        def error(self, message: str) -> NoReturn:
            jsonout.emit_error(f"{self.prog}: {message}", f"usage: {' '.join(self.format_usage().split()[1:])}")
            raise SystemExit(ExitCode.USAGE)

    chosen = None if argv is None else _chosen_verb(argv)
    # A known verb without help asked: its parser alone (each verb's parser cost a run ~0.2 ms)
    alone = chosen in COMMANDS and argv is not None and not {"-h", "--help"} & set(argv)
    parser_class = JsonErrors if argv is not None and jsonout.wanted(argv) else argparse.ArgumentParser
    parser = parser_class(
        prog="flank",
        description="Airflow lite: git push a pipeline to a VM; make runs it, cron schedules it.",
        epilog=f"docs: {docs_url('index.md')}",
    )
    parser.add_argument("--version", action="version", version=f"flank {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for verb, info in COMMANDS.items():
        if alone and verb != chosen:
            continue
        p = sub.add_parser(
            verb,
            help=info.help,
            description=info.help,
            epilog=f"docs: {docs_url('reference/commands.md', f'flank-{verb}')}",
        )
        if argv is None or verb == chosen:
            module = importlib.import_module(info.module)
            module.add_arguments(p)
            p.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Everything flank, git and tasks create under FLANK_HOME is the owner's (the site
    # alone is made readable, explicitly): see fileio.py. Hooks and cron come through here too.
    make_state_private()
    with error_handler(json_errors=jsonout.wanted(argv)):
        # Git hooks take a fast path: no argparse, no command modules imported.
        if argv and argv[0] == "hook":
            from flank_ops.deploy.hooks import hook_main

            return hook_main(argv[1:])
        if argv and argv[0] == "_task":
            # The portable task launcher (used when no C compiler is available).
            from flank_ops.task.task_exec import main as task_main

            return task_main(argv[1:])
        if argv and argv[0] == "_task_checked":
            # A task with outputs: skipped if up to date, its outputs checked (issue 12).
            from flank_ops.task.checked_task import main as checked_main

            return checked_main(argv[1:])
        if argv == ["--version"]:  # asked by scripts and `flank remote`: no parser needed
            print(f"flank {__version__}")
            return 0
        from flank_ops.hints import take_remote_from_env
        from flank_ops.paths import NoSuchProject

        take_remote_from_env()  # through `flank remote`: hints say `flank remote …` (tasks never see it)
        args = build_parser(argv).parse_args(argv)
        try:
            return int(args._module.run(args) or 0)
        except NoSuchProject as exc:
            from flank_ops.remote.ssh import clone_remote_hint

            exc.hint = clone_remote_hint(argv) or exc.hint
            raise
    return 0  # unreachable; error_handler exits


_exit_status: list[int] = []  # cli(): the status the process ends with, once main() is done


def cli() -> NoReturn:
    """The `flank` command (the console script, `python -m flank_ops`): main(), then an exit that
    skips the interpreter's teardown. Python's normal exit still runs first — threads joined,
    atexit handlers run — and then, instead of collecting and freeing every object and module
    one by one (a fifth of a no-change `flank run`, ~20 ms, issue 22), the process ends with
    its buffers flushed. Tests call main() and exit as usual."""
    atexit.register(_end_now)  # registered first, so it runs after every other handler
    try:
        status = main()
    except SystemExit as exc:  # argparse's --help and usage errors
        code = exc.code
        status = code if isinstance(code, int) else (0 if code is None else 1)
        _exit_status.append(status)
        raise
    _exit_status.append(status)
    raise SystemExit(status)


def _end_now() -> None:
    if not _exit_status:  # an exception escaped main(): Python ends the usual way
        return
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can be said
            pass
    os._exit(_exit_status[0])


if __name__ == "__main__":
    cli()
