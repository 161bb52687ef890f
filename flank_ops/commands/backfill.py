"""flank backfill PROJECT PIPELINE --from DATE --to DATE [--parallel N] [--yes] [-p NAME=VALUE ...] [--detach]
   flank backfill PROJECT PIPELINE --list

One run per scheduled minute of the range, oldest first (schedule/backfill.py says how).
Stop one as a whole with `flank cancel PROJECT PIPELINE --backfill ID` (or Ctrl-C here).
Exits 0 only when every run succeeded.
"""

from __future__ import annotations

import argparse

from flank_ops.commands.target import add_param_option
from flank_ops.config.params import split_assignments
from flank_ops.errors import UserError
from flank_ops.paths import Home
from flank_ops.schedule import backfill


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("project")
    parser.add_argument("pipeline")
    parser.add_argument(
        "--from", dest="start", metavar="DATE", help="the first day (or ISO time), in the pipeline's zone"
    )
    parser.add_argument("--to", dest="end", metavar="DATE", help="the last day, included (or ISO time)")
    parser.add_argument("--parallel", type=int, default=1, metavar="N", help="runs at once (default 1: one by one)")
    parser.add_argument("--yes", action="store_true", help="start more than 100 runs")
    add_param_option(parser, "a value for one of the pipeline's params: for every run (repeatable)")
    parser.add_argument("--detach", action="store_true", help="start in the background and return at once")
    parser.add_argument("--list", action="store_true", help="list the pipeline's backfills")
    parser.add_argument("--drive", metavar="ID", help=argparse.SUPPRESS)  # the detached driver of a backfill


def run(args: argparse.Namespace) -> int:
    if args.drive:
        return backfill.drive(Home().project(args.project).require(), args.pipeline, args.drive)
    if args.list:
        return _list(args)
    if not args.start or not args.end:
        raise UserError(
            "which range?", f"e.g. flank backfill {args.project} {args.pipeline} --from 2026-11-01 --to 2026-11-07"
        )
    plan = backfill.plan_backfill(
        args.project,
        args.pipeline,
        args.start,
        args.end,
        params=split_assignments(args.params),
        parallel=args.parallel,
        yes=args.yes,
    )
    zone = plan.pipeline.timezone
    n = len(plan.minutes)
    what = (
        f"{n} run{'s' if n != 1 else ''} of {plan.pipeline.name}, "
        f"{backfill.minute_text(plan.minutes[0], zone)} to {backfill.minute_text(plan.minutes[-1], zone)}"
    )
    if args.detach:
        backfill_id = backfill.start_backfill(plan)
        print(f"flank: backfill {backfill_id} started in the background: {what}")
        print(f"  stop it: flank cancel {args.project} {args.pipeline} --backfill {backfill_id}")
        return 0
    backfill_id = backfill.create_backfill(plan)
    print(
        f"flank: backfill {backfill_id}: {what}"
        + (" (minutes from now on are left to the schedule)" if plan.clipped else "")
    )
    print(f"  stop it: Ctrl-C, or flank cancel {args.project} {args.pipeline} --backfill {backfill_id}", flush=True)
    return backfill.drive(plan.paths, plan.pipeline.name, backfill_id, out=lambda line: print(line, flush=True))


def _list(args: argparse.Namespace) -> int:
    paths = Home().project(args.project).require()
    found = backfill.list_backfills(paths, args.pipeline)
    if not found:
        print(f"flank: {args.pipeline} has no backfills")
        return 0
    for state in found:
        minutes = state.get("minutes") or []
        zone = state.get("timezone")
        span = (
            f"{backfill.minute_text(minutes[0], zone)} to {backfill.minute_text(minutes[-1], zone)}" if minutes else "-"
        )
        print(f"{state['id']}  {state['status']:<11} {len(state.get('runs') or {})}/{len(minutes)} runs  {span}")
    return 0
