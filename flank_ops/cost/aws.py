"""The AWS calls of `flank cost`: EC2 (which instance, which type), EventBridge Scheduler
(the grow schedules), SSM (the shrink). boto3 is imported here only, lazily: no other
command pays for it.

Credentials come the standard boto3 way (env, profile, instance role); flank never stores
them. `apply` checks everything it can before its first change (credentials, instance,
types offered in the region, the role), so a bad setting changes nothing.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from typing import Any, NamedTuple

from flank_ops.cost.schedules import RESIZE_DOCUMENT, GrowSchedule
from flank_ops.cost.settings import CostSettings
from flank_ops.errors import UserError

IMDS = "http://169.254.169.254/latest"
IMDS_TIMEOUT_S = 1.0


class Clients(NamedTuple):
    ec2: Any
    scheduler: Any
    ssm: Any


def clients(cost: CostSettings) -> Clients:
    import boto3
    from botocore.config import Config as BotoConfig

    config = BotoConfig(connect_timeout=5, read_timeout=20, retries={"max_attempts": 3})
    session = boto3.session.Session(region_name=cost.region)
    return Clients(
        *(session.client(name, endpoint_url=cost.endpoint_url, config=config) for name in ("ec2", "scheduler", "ssm"))
    )


def explain(exc: Exception, doing: str) -> UserError:
    """One clear line for an AWS failure."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    if isinstance(exc, NoCredentialsError):
        return UserError(
            f"{doing}: no AWS credentials found",
            "give the VM an instance role, or set AWS_PROFILE / AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        )
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        message = (str(error.get("Message") or exc).strip().splitlines() or [""])[0][:200]
        return UserError(
            f"{doing}: {error.get('Code', 'error')}: {message}",
            "check the IAM permissions listed in the README ('What it costs')",
        )
    if isinstance(exc, BotoCoreError):
        return UserError(f"{doing}: {exc}", "check the network and [cost] region / endpoint_url")
    return UserError(f"{doing}: {exc}")


def call(doing: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return fn(**kwargs)
    except (BotoCoreError, ClientError) as exc:
        raise explain(exc, doing) from None


def instance_id(cost: CostSettings) -> str:
    """[cost] instance_id, else the instance metadata service (IMDSv2)."""
    if cost.instance_id:
        return cost.instance_id
    try:
        token_req = urllib.request.Request(
            f"{IMDS}/api/token", method="PUT", headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"}
        )
        with urllib.request.urlopen(token_req, timeout=IMDS_TIMEOUT_S) as r:
            token = r.read().decode()
        req = urllib.request.Request(f"{IMDS}/meta-data/instance-id", headers={"X-aws-ec2-metadata-token": token})
        with urllib.request.urlopen(req, timeout=IMDS_TIMEOUT_S) as r:
            return r.read().decode().strip()
    except OSError:
        raise UserError(
            "this VM does not look like an EC2 instance (no instance metadata service)",
            'set [cost] instance_id = "i-..." in flank.toml if it is one',
        ) from None


def current_type(c: Clients, instance: str) -> str:
    found = call(f"describing instance {instance}", c.ec2.describe_instances, InstanceIds=[instance])
    for reservation in found.get("Reservations", []):
        for inst in reservation.get("Instances", []):
            return str(inst["InstanceType"])
    raise UserError(f"instance {instance} not found in this region", "check [cost] instance_id and region")


def todays_type(cost: CostSettings) -> tuple[str | None, str | None]:
    """(today's instance type, None), asked of EC2 when [cost] current_type is not set but instance_id
    is (a plan on a laptop-sized test VM never waits on the metadata service); (None, why) otherwise."""
    if cost.current_type:
        return cost.current_type, None
    if not cost.instance_id:
        return None, "set [cost] current_type (or instance_id) to compare with today"
    try:
        return current_type(clients(cost), cost.instance_id), None
    except UserError as exc:
        return None, f"could not ask EC2 for today's type ({exc.message}); set [cost] current_type to compare"


def check_types_offered(c: Clients, names: set[str], region: str) -> None:
    found = call("listing the instance types of the region", c.ec2.describe_instance_types, InstanceTypes=sorted(names))
    offered = {t["InstanceType"] for t in found.get("InstanceTypes", [])}
    missing = sorted(names - offered)
    if missing:
        raise UserError(
            f"region {region} does not offer {', '.join(missing)}",
            "allow other families in [cost] families, or fix [cost] region",
        )


# The fields of a schedule that `apply` sets: an existing schedule equal on all of them is left alone.
SCHEDULE_FIELDS = (
    "ScheduleExpression",
    "ScheduleExpressionTimezone",
    "FlexibleTimeWindow",
    "State",
    "Target",
    "Description",
)


def _same_schedule(have: dict[str, Any], want: dict[str, Any]) -> bool:
    """Whether an existing schedule (GetSchedule's answer) already is what `want` would make it."""
    for field in SCHEDULE_FIELDS:
        if field == "Target":
            target = have.get("Target") or {}
            if any(target.get(k) != v for k, v in want["Target"].items()):
                return False
        elif field == "FlexibleTimeWindow":
            if (have.get(field) or {}).get("Mode") != want[field]["Mode"]:
                return False
        elif have.get(field) != want[field]:
            return False
    return True


def planned_calls(
    schedules: list[GrowSchedule], existing: dict[str, dict[str, dict[str, Any]]], instance: str, role_arn: str
) -> list[tuple[str, dict[str, Any]]]:
    """The Scheduler API calls that make the groups hold exactly `schedules` (idempotent: a schedule that
    already is as wanted gets no call at all)."""
    calls: list[tuple[str, dict[str, Any]]] = []
    wanted: dict[str, set[str]] = {}
    for s in schedules:
        wanted.setdefault(s.group, set()).add(s.name)
    for group in sorted(wanted):
        if group not in existing:
            calls.append(("create_schedule_group", {"Name": group}))
    for s in schedules:
        kwargs: dict[str, Any] = {
            "Name": s.name,
            "GroupName": s.group,
            "ScheduleExpression": s.expression,
            "ScheduleExpressionTimezone": s.timezone,
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "State": "ENABLED",
            "Target": s.target(instance, role_arn),
            "Description": f"flank: grow to {s.instance_type} before {s.pipeline} ({s.fires})",
        }
        have = existing.get(s.group, {}).get(s.name)
        if have is None:
            calls.append(("create_schedule", kwargs))
        elif not _same_schedule(have, kwargs):
            calls.append(("update_schedule", kwargs))
    for group, names in sorted(existing.items()):
        for name in sorted(set(names) - wanted.get(group, set())):
            calls.append(("delete_schedule", {"Name": name, "GroupName": group}))
    return calls


def existing_schedules(c: Clients, groups: list[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """group -> schedule name -> the schedule as GetSchedule describes it, for those of `groups` that exist."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    known = set()
    for page in c.scheduler.get_paginator("list_schedule_groups").paginate():
        known |= {g["Name"] for g in page.get("ScheduleGroups", [])}
    for group in groups:
        if group not in known:
            continue
        found: dict[str, dict[str, Any]] = {}
        for page in c.scheduler.get_paginator("list_schedules").paginate(GroupName=group):
            for listed in page.get("Schedules", []):
                name = listed["Name"]
                found[name] = call(
                    f"reading schedule {group}/{name}", c.scheduler.get_schedule, GroupName=group, Name=name
                )
        out[group] = found
    return out


def run_calls(c: Clients, calls: list[tuple[str, dict[str, Any]]]) -> None:
    for verb, kwargs in calls:
        call(
            f"{verb} {kwargs.get('GroupName', '')}/{kwargs['Name']}".replace(" /", " "),
            getattr(c.scheduler, verb),
            **kwargs,
        )


def show_call(verb: str, kwargs: dict[str, Any]) -> str:
    return f"scheduler.{verb}({json.dumps(kwargs, sort_keys=True)})"


def start_resize(c: Clients, instance: str, instance_type: str) -> str:
    """Start AWS-ResizeInstance (stop, change type, start); returns the execution id."""
    found = call(
        "starting the AWS-ResizeInstance automation",
        c.ssm.start_automation_execution,
        DocumentName=RESIZE_DOCUMENT,
        Parameters={"InstanceId": [instance], "InstanceType": [instance_type]},
    )
    return str(found["AutomationExecutionId"])


def stop_resize(c: Clients, execution_id: str) -> None:
    call("cancelling the resize", c.ssm.stop_automation_execution, AutomationExecutionId=execution_id, Type="Cancel")
