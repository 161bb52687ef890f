"""flank remote VERB ...: from the laptop's clone, run the VM's flank over ssh.

The VM, FLANK_HOME and project come from the clone's git remote (`flank` unless
--remote says otherwise); see flank_ops/remote/ssh.py. The remote command's exit
code is flank remote's exit code.

    flank remote status
    flank remote logs PIPELINE [RUN] [TASK] [--follow]
    flank remote run PIPELINE [--task T | --from T | --rerun RUN_ID] [--detach]
    flank remote cancel PIPELINE [RUN]
    flank remote secrets set KEY          (value from stdin, sent on ssh's stdin)
    flank remote secrets list | unset KEY
"""

from __future__ import annotations

import argparse
import getpass
import sys

from flank_ops.errors import UserError
from flank_ops.remote.ssh import parse_remote_url, remote_url, run_remote_flank

DEFAULT_REMOTE = "flank"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    help_remote = f"the git remote that points at the VM (default: {DEFAULT_REMOTE})"
    parser.add_argument("--remote", dest="remote_name", default=DEFAULT_REMOTE, metavar="NAME", help=help_remote)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--remote", dest="remote_name", default=argparse.SUPPRESS, metavar="NAME", help=help_remote)
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True

    verbs.add_parser("status", parents=[common], help="the project's pipelines and their last runs")

    p = verbs.add_parser("logs", parents=[common], help="print a task's log")
    p.add_argument("names", nargs="+", metavar="PIPELINE [RUN] [TASK]")
    p.add_argument("--follow", "-f", action="store_true", help="print a running task's output as it comes")

    p = verbs.add_parser("run", parents=[common], help="run a pipeline now")
    p.add_argument("pipeline")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--task", metavar="T", help="run just task T")
    which.add_argument("--from", dest="from_task", metavar="T", help="run T and everything downstream of it")
    which.add_argument("--rerun", metavar="RUN_ID", help="re-run what failed or did not run in that run")
    p.add_argument("--detach", action="store_true", help="start in the background and return at once")

    p = verbs.add_parser("cancel", parents=[common], help="stop a running run")
    p.add_argument("pipeline")
    p.add_argument("run_id", nargs="?", metavar="RUN")

    p = verbs.add_parser("secrets", parents=[common], help="set, list or unset the project's secrets")
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    actions.add_parser("set", parents=[common], help="set KEY to the value read from stdin").add_argument("key")
    actions.add_parser("list", parents=[common], help="list the secret names")
    actions.add_parser("unset", parents=[common], help="remove KEY").add_argument("key")


def flank_args(args: argparse.Namespace, project: str) -> list[str]:
    """The VM-side `flank` arguments for this verb."""
    if args.verb == "status":
        return ["status", project]
    if args.verb == "logs":
        if len(args.names) > 3:
            raise UserError(
                f"unexpected {' '.join(args.names[3:])!r}", "usage: flank remote logs PIPELINE [RUN] [TASK] [--follow]"
            )
        return ["logs", project, *args.names, *(["--follow"] if args.follow else [])]
    if args.verb == "run":
        options = []
        for flag, value in (("--task", args.task), ("--from", args.from_task), ("--rerun", args.rerun)):
            if value is not None:
                options += [flag, value]
        return ["run", project, args.pipeline, *options, *(["--detach"] if args.detach else [])]
    if args.verb == "cancel":
        return ["cancel", project, args.pipeline, *([args.run_id] if args.run_id else [])]
    if args.verb == "secrets":
        return ["secrets", args.action, project, *([args.key] if args.action != "list" else [])]
    raise AssertionError(args.verb)


def read_secret_value(key: str) -> bytes:
    """The value to send: typed at a hidden prompt, or all of stdin (flank on the VM drops one final newline)."""
    if sys.stdin is None:
        return b""
    if sys.stdin.isatty():
        return getpass.getpass(f"value of {key}: ").encode()
    return sys.stdin.buffer.read()


def run(args: argparse.Namespace) -> int:
    target = parse_remote_url(remote_url(args.remote_name))
    forwarded = flank_args(args, target.project)
    stdin = read_secret_value(args.key) if args.verb == "secrets" and args.action == "set" else None
    follow = args.verb == "logs" and args.follow and sys.stdin is not None and sys.stdin.isatty()
    return run_remote_flank(target, forwarded, stdin=stdin, tty=follow)
