"""The grow schedules of a size plan, as EventBridge Scheduler schedules.

Each pipeline schedule becomes one schedule per distinct time of day it fires, moved
`grow_lead_minutes` earlier (across midnight: a day earlier), in the pipeline's own time
zone (EventBridge Scheduler takes one, so DST is AWS's to honour, as cron's is flank's).
Each invokes the AWS-managed runbook AWS-ResizeInstance through the Scheduler's universal
target for SSM StartAutomationExecution. There are no shrink schedules: the shrink happens
when the window's last run ends (cost/shrink.py), never at a fixed time that could stop the
VM under a run that took longer than usual.
"""

from __future__ import annotations

import json
from typing import NamedTuple

from flank_ops.config.model import Pipeline
from flank_ops.cost.plan import SizePlan
from flank_ops.cost.resources import PipelineNeed
from flank_ops.cost.settings import CostSettings
from flank_ops.errors import UserError

RESIZE_DOCUMENT = "AWS-ResizeInstance"
TARGET_ARN = "arn:aws:scheduler:::aws-sdk:ssm:startAutomationExecution"
MAX_TIMES_PER_DAY = 12
WEEKDAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")


class GrowSchedule(NamedTuple):
    group: str  # one schedule group per project
    name: str
    expression: str  # cron(...) in EventBridge Scheduler syntax
    timezone: str
    instance_type: str
    pipeline: str  # project/pipeline, for people reading the plan
    fires: str  # the flank.yml schedule it precedes

    def target(self, instance_id: str, role_arn: str) -> dict[str, object]:
        return {
            "Arn": TARGET_ARN,
            "RoleArn": role_arn,
            "Input": json.dumps(
                {
                    "DocumentName": RESIZE_DOCUMENT,
                    "Parameters": {"InstanceId": [instance_id], "InstanceType": [self.instance_type]},
                },
                sort_keys=True,
            ),
        }


def group_name(project: str) -> str:
    return f"flank-{project}"


def _field(values: set[int] | frozenset[int], full: range, names: tuple[str, ...] | None = None) -> str:
    if set(values) >= set(full):
        return "*"
    return ",".join(names[v] if names else str(v) for v in sorted(values))


def _aws_expressions(pipeline: Pipeline, expr: str, lead: int) -> list[tuple[str, str]]:
    """[(cron(...), what it is)] for one flank.yml schedule moved `lead` minutes earlier."""
    from flank_ops.schedule.due import spec_for

    spec = spec_for(expr)
    times = sorted((h * 60 + m - lead) for h in spec.hours for m in spec.minutes)
    if len(times) > MAX_TIMES_PER_DAY:
        raise UserError(
            f"{pipeline.name}: schedule {expr!r} fires {len(times)} times a day — too often to resize around",
            "such a pipeline keeps the VM busy: leave it out of the plan by giving it no "
            "schedule, or size the VM for it (the plan then says resizing does not pay)",
        )
    months = _field(spec.months, range(1, 13))
    out = []
    for minute_of_day in times:
        day_before = minute_of_day < 0
        minute_of_day %= 24 * 60
        h, m = divmod(minute_of_day, 60)
        days, weekdays = set(spec.days), set(spec.weekdays)
        if day_before:
            if not spec.day_star or months != "*":
                raise UserError(
                    f"{pipeline.name}: growing {lead} min before {expr!r} falls on the day before, "
                    "which a day-of-month or month restriction cannot express",
                    "lower [cost] grow_lead_minutes, or move the schedule past midnight + the lead",
                )
            weekdays = {(d - 1) % 7 for d in weekdays}
        variants = []
        if spec.day_star and spec.weekday_star:
            variants.append(("*", "?"))
        elif spec.day_star:
            variants.append(("?", _field(weekdays, range(7), WEEKDAYS)))
        elif spec.weekday_star:
            variants.append((_field(days, range(1, 32)), "?"))
        else:  # cron runs when either matches: two schedules
            variants += [(_field(days, range(1, 32)), "?"), ("?", _field(weekdays, range(7), WEEKDAYS))]
        for dom, dow in variants:
            out.append((f"cron({m} {h} {dom} {months} {dow} *)", expr))
    return out


def grow_schedules(plan: SizePlan, needs: list[PipelineNeed], cost: CostSettings) -> list[GrowSchedule]:
    from flank_ops.schedule.zones import local_zone_name

    out = []
    for need in needs:
        key = f"{need.project}/{need.pipeline.name}"
        kind = plan.sizes.get(key)
        if kind is None or not plan.resize or kind == plan.idle:
            continue
        zone = need.pipeline.timezone or local_zone_name() or "UTC"
        n = 0
        for expr in need.pipeline.schedule:
            for expression, fires in _aws_expressions(need.pipeline, expr, cost.grow_lead_minutes):
                out.append(
                    GrowSchedule(
                        group_name(need.project),
                        f"grow-{need.pipeline.name}-{n}"[:64],
                        expression,
                        zone,
                        kind.name,
                        key,
                        fires,
                    )
                )
                n += 1
    return out
