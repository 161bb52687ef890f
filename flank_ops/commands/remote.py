"""flank remote VERB ...: from the laptop's clone, run the VM's flank over ssh.

The VM, FLANK_HOME and project come from the clone's git remote (`flank` unless
--remote says otherwise); see flank_ops/remote/ssh.py. The remote command's exit
code is flank remote's exit code.

    flank remote status
    flank remote logs PIPELINE [RUN] [TASK] [--follow | --json]
    flank remote plan PIPELINE [--force | --force-task T ...] [-p NAME=VALUE ...]
    flank remote report resources
    flank remote doctor [--no-cron]
    flank remote cost plan | prices [--region R]
    flank remote run PIPELINE [--task T | --from T | --rerun RUN_ID | --resume RUN_ID] [--force | --force-task T ...] [--detach]
                              [-p NAME=VALUE ...]
    flank remote cancel PIPELINE [RUN | --backfill ID] [--no-wait]
    flank remote backfill PIPELINE --from DATE --to DATE [--parallel N] [--yes] [-p NAME=VALUE ...] [--detach]
    flank remote deploy [SHA]             (redo a deploy a push left unfinished or failed)
    flank remote secrets set KEY          (value from stdin, sent on ssh's stdin)
    flank remote secrets list | unset KEY
"""

from __future__ import annotations

import argparse
import getpass
import sys

from flank_ops.commands.target import add_param_option
from flank_ops.errors import UserError
from flank_ops.hints import DEFAULT_REMOTE, REMOTE_VM_VERBS
from flank_ops.jsonout import FLAG_HELP
from flank_ops.remote.ssh import parse_remote_url, remote_url, run_remote_flank


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
    p.add_argument("--json", action="store_true", help=FLAG_HELP + "; each log by its address on the status site")

    force = argparse.ArgumentParser(add_help=False)  # the options `run` and `plan` share on the VM
    force.add_argument("--force", action="store_true", help="every task, even those up to date")
    force.add_argument("--force-task", action="append", default=[], metavar="T", help="task T even if up to date")

    p = verbs.add_parser("plan", parents=[common, force], help="what a run would do now with each task, and why")
    p.add_argument("pipeline")
    add_param_option(p)

    p = verbs.add_parser("report", parents=[common], help="what the project's recent runs used")
    p.add_argument("what", choices=["resources"])

    p = verbs.add_parser("doctor", parents=[common], help="check the VM's flank setup (read-only)")
    p.add_argument("--no-cron", action="store_true", help="the VM runs schedules with `flank scheduler`")

    p = verbs.add_parser("cost", parents=[common], help="the VM's size for its pipelines; fetch current prices")
    p.add_argument("action", choices=sorted(REMOTE_VM_VERBS["cost"]))
    p.add_argument("--region", help="prices: the region whose prices to fetch (default: [cost] region)")

    p = verbs.add_parser("run", parents=[common, force], help="run a pipeline now")
    p.add_argument("pipeline")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--task", metavar="T", help="run just task T")
    which.add_argument("--from", dest="from_task", metavar="T", help="run T and everything downstream of it")
    which.add_argument("--rerun", metavar="RUN_ID", help="re-run what failed or did not run in that run")
    which.add_argument("--resume", metavar="RUN_ID", help="go on with that interrupted run (its jobs on a cluster)")
    p.add_argument("--detach", action="store_true", help="start in the background and return at once")
    add_param_option(p)

    p = verbs.add_parser("cancel", parents=[common], help="stop a running run")
    p.add_argument("pipeline")
    p.add_argument("run_id", nargs="?", metavar="RUN")
    p.add_argument("--no-wait", action="store_true", help="ask the run to stop and return at once")
    p.add_argument("--backfill", metavar="ID", help="stop a backfill as a whole")

    p = verbs.add_parser("deploy", parents=[common], help="redo the project's deploy (after a failed or cut push)")
    p.add_argument("sha", nargs="?", help="commit to deploy (default: the tip of the deploy branch)")

    # issue 23
    p = verbs.add_parser("backfill", parents=[common], help="one run per scheduled minute of a past range")
    p.add_argument("pipeline")
    p.add_argument("--from", dest="start", metavar="DATE")
    p.add_argument("--to", dest="end", metavar="DATE")
    p.add_argument("--parallel", metavar="N")
    p.add_argument("--yes", action="store_true")
    add_param_option(p)
    p.add_argument("--detach", action="store_true")
    p.add_argument("--list", action="store_true")

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
        options = [flag for flag, on in (("--follow", args.follow), ("--json", args.json)) if on]
        return ["logs", project, *args.names, *options]
    if args.verb == "plan":
        params = [option for assignment in args.params for option in ("-p", assignment)]
        return ["plan", project, args.pipeline, *_force_options(args), *params]
    if args.verb == "report":
        return ["report", args.what, project]
    if args.verb == "doctor":
        return ["doctor", *(["--no-cron"] if args.no_cron else [])]
    if args.verb == "cost":
        return ["cost", args.action, *(["--region", args.region] if args.region else [])]
    if args.verb == "run":
        options = []
        for flag, value in (
            ("--task", args.task),
            ("--from", args.from_task),
            ("--rerun", args.rerun),
            ("--resume", args.resume),
        ):
            if value is not None:
                options += [flag, value]
        options += _force_options(args)
        for assignment in args.params:  # issue 23: checked on the VM, against the deployed flank.yml
            options += ["-p", assignment]
        return ["run", project, args.pipeline, *options, *(["--detach"] if args.detach else [])]
    if args.verb == "cancel":
        no_wait = ["--no-wait"] if args.no_wait else []
        backfill = ["--backfill", args.backfill] if args.backfill else []
        return ["cancel", project, args.pipeline, *([args.run_id] if args.run_id else []), *backfill, *no_wait]
    if args.verb == "deploy":
        return ["deploy", project, *([args.sha] if args.sha else [])]
    if args.verb == "backfill":
        options = []
        for flag, value in (("--from", args.start), ("--to", args.end), ("--parallel", args.parallel)):
            if value is not None:
                options += [flag, value]
        for assignment in args.params:
            options += ["-p", assignment]
        options += [flag for flag, on in (("--yes", args.yes), ("--detach", args.detach), ("--list", args.list)) if on]
        return ["backfill", project, args.pipeline, *options]
    if args.verb == "secrets":
        return ["secrets", args.action, project, *([args.key] if args.action != "list" else [])]
    raise AssertionError(args.verb)


def _force_options(args: argparse.Namespace) -> list[str]:
    return [*(["--force"] if args.force else []), *(w for t in args.force_task for w in ("--force-task", t))]


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
    return run_remote_flank(target, forwarded, stdin=stdin, tty=follow, remote_name=args.remote_name)
