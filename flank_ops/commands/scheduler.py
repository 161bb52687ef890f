"""flank scheduler [--once] [--now ISO] [--command TEMPLATE]

The embedded default on machines without cron: runs every project's schedules
in the foreground. See flank_ops/schedule/scheduler.py.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from flank_ops.errors import UserError
from flank_ops.humanize import parse_option_time
from flank_ops.paths import Home
from flank_ops.schedule import scheduler as sched
from flank_ops.schedule.catchup import catch_up
from flank_ops.schedule.crontab import has_block_for_home
from flank_ops.schedule.due import floor_minute


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--once", action="store_true", help="check one minute (now, or --now) and exit instead of looping"
    )
    parser.add_argument(
        "--now",
        metavar="ISO",
        help="with --once: the minute to check, e.g. 2026-11-24T02:00 (local time) or 2026-11-24T02:00+00:00",
    )
    parser.add_argument(
        "--command",
        metavar="TEMPLATE",
        help="what to start for a due pipeline instead of `flank run {project} {pipeline} "
        "--trigger schedule --scheduled-at {scheduled_at}` ({project}, {pipeline} and "
        "{scheduled_at}, the due minute, are filled in)",
    )


def run(args: argparse.Namespace) -> int:
    if args.now and not args.once:
        raise UserError("--now works only with --once", "e.g. flank scheduler --once --now 2026-11-24T02:00")
    home = Home()
    template = args.command or sched.default_command()
    if args.command is not None and not args.command.strip():
        raise UserError("--command is empty", "give the command to start, e.g. --command 'echo {pipeline}'")
    scheduler = sched.Scheduler(home, template, sched.print_line)
    if args.once:
        now = parse_option_time(args.now) if args.now else None
        scheduler.tick(floor_minute(now))
        return 0
    projects = home.projects()
    banner = [
        f"flank scheduler: running the schedules of {len(projects)} project{'s' if len(projects) != 1 else ''}"
        f" in {home.root} (Ctrl-C to stop)"
    ]
    if has_block_for_home(home.root):
        banner.append(
            "flank scheduler: warning: your crontab also runs these schedules (flank's block is "
            "installed); scheduled runs will start twice — stop cron or this scheduler"
        )
    catch_up(home, datetime.now(UTC), out=sched.print_line)  # runs missed while nothing ran
    sched.run_forever(scheduler, banner)
    print("flank scheduler: stopped", flush=True)
    return 0
