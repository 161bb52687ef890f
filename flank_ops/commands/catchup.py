"""flank catchup [PROJECT]: start, once, each scheduled run missed while the VM was off.

Cron's `@reboot` line runs it (see schedule/crontab.py), and `flank scheduler` at its
start; by hand it is harmless (a run that was not missed is never started twice).
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from flank_ops.humanize import parse_option_time
from flank_ops.paths import Home
from flank_ops.schedule.catchup import catch_up


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("project", nargs="?", help="just this project (default: every project)")
    parser.add_argument("--dry-run", action="store_true", help="say what would be started, start nothing")
    parser.add_argument(
        "--boot",
        action="store_true",
        help="cron's @reboot line: the current minute counts as missed once its :00 passed "
        "(cron started mid-minute waits for the next one)",
    )
    parser.add_argument("--now", metavar="ISO", help=argparse.SUPPRESS)  # tests: a fixed moment


def run(args: argparse.Namespace) -> int:
    now = parse_option_time(args.now) if args.now else datetime.now(UTC)
    started = catch_up(Home(), now, project=args.project, dry_run=args.dry_run, at_boot=args.boot, out=print)
    if not started and not args.dry_run:
        print("flank: nothing to catch up")
    return 0
