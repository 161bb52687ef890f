"""flank cost plan | apply | remove | shrink-now | prices — size the VM for its pipelines, resize it on AWS.

    plan        the recommended sizes, the resize schedule and the monthly cost, today vs planned
                (prices: [cost] types_file, else those `prices` fetched, else the shipped table)
    apply       create or update the grow schedules (EventBridge Scheduler -> AWS-ResizeInstance);
                idempotent: re-running it updates them and removes stale ones. --dry-run prints the calls
    remove      delete every schedule flank made (and their groups)
    shrink-now  resize to the idle size now, if no run of any project is in progress
    prices      fetch a region's on-demand prices (AWS Price List Query API) into FLANK_HOME's cache

Settings: [cost] in flank.toml (see flank_ops/cost/settings.py and the README).
"""

from __future__ import annotations

import argparse
import json
from datetime import date
from typing import Any

from flank_ops import jsonout
from flank_ops.cost import aws, prices
from flank_ops.cost.aws import todays_type
from flank_ops.cost.plan import plan_sizes
from flank_ops.cost.prices import describe_source, price_table
from flank_ops.cost.resources import collect_needs
from flank_ops.cost.schedules import group_name, grow_schedules
from flank_ops.cost.settings import cost_settings, fetch_hint, instance_types
from flank_ops.cost.shrink import applied_plan_path, shrink_now
from flank_ops.errors import UserError
from flank_ops.fileio import atomic_write_text
from flank_ops.hints import flank_vm_command
from flank_ops.humanize import duration, fmt_kb, parse_option_time
from flank_ops.jsonout import FLAG_HELP
from flank_ops.paths import Home
from flank_ops.settings import settings_for


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["plan", "apply", "remove", "shrink-now", "prices"])
    parser.add_argument("--dry-run", action="store_true", help="apply/remove: print the API calls, make none")
    parser.add_argument("--region", help="prices: the region whose prices to fetch (default: [cost] region)")
    parser.add_argument("--json", action="store_true", help="plan: " + FLAG_HELP)
    parser.add_argument("--now", metavar="ISO", help=argparse.SUPPRESS)  # tests: plan from a fixed moment


def _money(usd: float) -> str:
    return f"${usd:,.0f}"


def _describe(kind: Any) -> str:
    return f"{kind.name} ({kind.vcpus} vCPU, {kind.memory_gib:g} GiB, ${kind.usd_per_hour:.4f}/h)"


def _plan(args: argparse.Namespace) -> tuple[Any, ...]:
    home = Home()
    cost = cost_settings(settings_for(home))
    types = instance_types(cost, price_table(cost, home.price_cache_dir))
    if not cost.current_type and cost.instance_id:  # the settings promise: else asked of EC2
        known, why = todays_type(cost)
        if known and all(kind.name != known for kind in types):
            known, why = None, f"today's type {known} (from EC2) is not in the price table: no comparison"
        cost = cost._replace(current_type=known)
        if why:
            print(f"note: {why}")
    needs = collect_needs(home)
    plan = plan_sizes(needs, types, cost, parse_option_time(args.now) if args.now else None)
    return home, cost, types, needs, plan, grow_schedules(plan, needs, cost)


def _print_plan(home: Any, cost: Any, needs: list[Any], plan: Any, schedules: list[Any]) -> None:

    print("measured (recent runs):")
    for need in needs:
        use = need.use
        if use.runs:
            print(
                f"  {need.project}/{need.pipeline.name}: peak {fmt_kb(use.peak_kb)}, up to {use.peak_tasks} tasks "
                f"at once, typical run {duration(use.typical_s)} ({use.typical_basis})"
                + (f", schedule {', '.join(need.pipeline.schedule)}" if need.pipeline.schedule else ", no schedule")
            )
    families = ", ".join(cost.families) if cost.families else "all but burstable"
    print(f"\nplan ({cost.region}, {cost.arch}, headroom {cost.headroom:.0%}, families {families}):")
    print(f"  idle: {_describe(plan.idle)}")
    for key, kind in sorted(plan.sizes.items()):
        print(f"  {key}: {_describe(kind)}")
    if plan.current is not None:
        print(f"\ntoday: {_describe(plan.current)} 24/7 — {_money(plan.monthly_now)}/month")
        saved = plan.monthly_now - plan.monthly_plan
        print(
            f"planned: {_money(plan.monthly_plan)}/month"
            + (f" (saves {_money(saved)}, {saved / plan.monthly_now:.0%})" if saved > 0 else "")
        )
    else:
        print(f"\nplanned: {_money(plan.monthly_plan)}/month (set [cost] current_type to compare with today)")
    print(describe_source(price_table(cost, home.price_cache_dir), cost.region, date.today()))
    for note in plan.notes:
        print(f"note: {note}")
    if schedules:
        print(f"\nresize schedule ({flank_vm_command('cost apply')} creates it):")
        for s in schedules:
            print(
                f"  grow to {s.instance_type:<13} {s.expression:<28} {s.timezone:<16} "
                f"{cost.grow_lead_minutes} min before {s.pipeline} ({s.fires})"
            )
        print(
            f"  shrink to {plan.idle.name} when the last run of a window ends and no run of any project is "
            f"in progress (or: {flank_vm_command('cost shrink-now')})"
        )


def _apply(args: argparse.Namespace, remove: bool = False) -> int:
    home, cost, types, needs, plan, schedules = _plan(args)
    if schedules and not cost.scheduler_role_arn and not remove:
        raise UserError(
            "flank.toml: [cost] scheduler_role_arn is needed to create the resize schedules",
            "create the role the README describes ('What it costs') and add: "
            'scheduler_role_arn = "arn:aws:iam::<account>:role/<name>"',
        )
    c = aws.clients(cost)
    instance = aws.instance_id(cost)
    aws.current_type(c, instance)  # credentials and instance, before any change
    if not remove:
        aws.check_types_offered(c, {s.instance_type for s in schedules} | {plan.idle.name}, cost.region)
    groups = sorted({group_name(p) for p in home.projects()})
    existing = aws.existing_schedules(c, groups)
    if remove:
        calls = [
            ("delete_schedule", {"Name": n, "GroupName": g})
            for g, names in sorted(existing.items())
            for n in sorted(names)
        ]
        calls += [("delete_schedule_group", {"Name": g}) for g in sorted(existing)]
    else:
        calls = aws.planned_calls(schedules, existing, instance, cost.scheduler_role_arn or "")
    if args.dry_run:
        for verb, kwargs in calls:
            print(aws.show_call(verb, kwargs))
        print(f"(dry run: {len(calls)} call{'s' if len(calls) != 1 else ''}, none made)")
        return 0
    aws.run_calls(c, calls)
    state = applied_plan_path(home)
    if remove:
        state.unlink(missing_ok=True)
        print(
            f"removed {sum(1 for v, _ in calls if v == 'delete_schedule')} schedules and "
            f"{len(existing)} group{'s' if len(existing) != 1 else ''}"
        )
        return 0
    home.internal_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(
        state,
        json.dumps(
            {"idle_type": plan.idle.name, "instance_id": instance, "schedules": [s._asdict() for s in schedules]},
            indent=1,
        )
        + "\n",
    )
    made = sum(1 for v, _ in calls if v == "create_schedule")
    updated = sum(1 for v, _ in calls if v == "update_schedule")
    deleted = sum(1 for v, _ in calls if v == "delete_schedule")
    if not calls:
        n = len(schedules)
        print(
            f"applied: nothing to change ({n} schedule{'s' if n != 1 else ''} up to date); idle size {plan.idle.name}"
        )
        return 0
    print(f"applied: {made} created, {updated} updated, {deleted} removed; idle size {plan.idle.name}")
    return 0


def _prices(args: argparse.Namespace) -> int:

    home = Home()
    cost = cost_settings(settings_for(home))
    region = prices.check_region(args.region or cost.region)
    kinds = prices.fetch_prices(prices.pricing_client(cost), region)
    if not kinds:
        raise UserError(
            f"the AWS Price List has no on-demand Linux prices for region {region!r}",
            "check the region name (e.g. eu-west-2); `aws ec2 describe-regions` lists them",
        )
    path = prices.write_cache(home.price_cache_dir, region, kinds, date.today())
    families = sorted({k.family for k in kinds})
    arches = sorted({k.arch for k in kinds})
    print(
        f"fetched {len(kinds)} prices for {region}: {len(families)} families ({', '.join(families)}), "
        f"{' and '.join(arches)}"
    )
    print(f"cached in {path}; `{flank_vm_command('cost plan')}` uses them for [cost] region = {region!r}")
    return 0


def _shrink_now(args: argparse.Namespace) -> int:
    home, cost, _types, _needs, plan, _schedules = _plan(args)
    print(shrink_now(home, cost, plan.idle.name))
    return 0


def run(args: argparse.Namespace) -> int:
    if args.json and args.action != "plan":
        raise UserError(f"--json goes with cost plan, not cost {args.action}", "flank cost plan --json")
    if args.dry_run and args.action not in ("apply", "remove"):
        raise UserError("--dry-run works with apply and remove", "e.g. flank cost apply --dry-run")
    if args.region and args.action != "prices":
        raise UserError("--region works with prices", f"e.g. {fetch_hint('eu-west-2')}")
    if args.action == "prices":
        return _prices(args)
    if args.action == "plan":
        home, cost, _types, needs, plan, schedules = _plan(args)
        if args.json:
            jsonout.emit("cost_plan", region=cost.region, plan=jsonout.plain(plan), schedules=jsonout.plain(schedules))
            return 0
        _print_plan(home, cost, needs, plan, schedules)
        return 0
    if args.action == "shrink-now":
        return _shrink_now(args)
    return _apply(args, remove=args.action == "remove")
