"""flank cost apply / remove / shrink-now against moto's server on 127.0.0.1.

moto implements EC2 (instances, instance types) and EventBridge Scheduler (groups,
schedules), so those calls are real HTTP to a real server. moto does not run SSM
automations: the shrink's StartAutomationExecution / StopAutomationExecution calls are
checked with botocore's Stubber against the parameters AWS documents for the
AWS-ResizeInstance runbook — the one mock here, because nothing real can run it.
"""

from __future__ import annotations

import fcntl
import json
import os
import urllib.request
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import pytest

from helpers.cli import run_flank
from helpers.cost_fixtures import SEED_YML, write_runs, write_toml
from helpers.deployed import deploy, push
from helpers.waiting import wait_for

NOW = "2026-11-26T12:00:00+00:00"
ROLE = "arn:aws:iam::123456789012:role/flank-resize"
_server: str | None = None


def moto_url() -> str:
    """One moto server per test process (no auth: these tests are about the calls, not IAM)."""
    global _server
    if _server is None:
        from helpers.servers import start_moto_server

        _server = start_moto_server()
    return _server


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict]:
    url = moto_url()
    urllib.request.urlopen(urllib.request.Request(url + "/moto-api/reset", method="POST")).close()
    creds = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    for k, v in creds.items():
        monkeypatch.setenv(k, v)
    import boto3

    ec2 = boto3.client("ec2", endpoint_url=url, region_name="us-east-1")
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="r6a.8xlarge")["Instances"][0][
        "InstanceId"
    ]
    yield {
        "url": url,
        "instance": instance,
        "ec2": ec2,
        "scheduler": boto3.client("scheduler", endpoint_url=url, region_name="us-east-1"),
    }


def _toml(aws: dict, **extra: str) -> None:
    keys = {
        "region": '"us-east-1"',
        "families": '["r6a"]',
        "instance_id": f'"{aws["instance"]}"',
        "scheduler_role_arn": f'"{ROLE}"',
        "endpoint_url": f'"{aws["url"]}"',
        **extra,
    }
    write_toml("[cost]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items() if v is not None))


def _schedules(aws: dict) -> dict[str, dict]:
    sched = aws["scheduler"]
    groups = [g["Name"] for g in sched.list_schedule_groups()["ScheduleGroups"] if g["Name"] != "default"]
    out = {}
    for group in groups:
        for s in sched.list_schedules(GroupName=group)["Schedules"]:
            got = sched.get_schedule(GroupName=group, Name=s["Name"])
            got.pop("ResponseMetadata", None)  # differs per request
            out[f"{group}/{s['Name']}"] = got
    return out


def _seed_project(tmp_path: Path, aws: dict):
    """The seed case deployed, its 30 run records written, flank.toml pointing [cost] at moto."""
    from flank_ops.paths import Home

    write_toml()
    deploy(tmp_path, SEED_YML)
    write_runs()
    _toml(aws)
    return Home()


def _stubbed_ssm(home, monkeypatch: pytest.MonkeyPatch):
    """The real EC2 and Scheduler clients (moto), and a botocore Stubber on SSM (moto cannot run automations)."""
    from botocore.stub import Stubber

    from flank_ops.cost import aws as cost_aws

    real = cost_aws.clients(cost_settings_of(home))
    monkeypatch.setattr(cost_aws, "clients", lambda _cost: real)
    return Stubber(real.ssm)


def _expect_resize(stub, instance: str, execution: str, to: str = "r6a.large") -> None:
    """The call AWS documents for AWS-ResizeInstance, answered with `execution` as its id."""
    stub.add_response(
        "start_automation_execution",
        {"AutomationExecutionId": execution},
        {"DocumentName": "AWS-ResizeInstance", "Parameters": {"InstanceId": [instance], "InstanceType": [to]}},
    )


@pytest.mark.slow
def test_apply_creates_grow_schedules_then_updates_and_removes_stale(tmp_path: Path, aws: dict) -> None:
    write_toml()
    clone = deploy(tmp_path, SEED_YML)
    write_runs()
    _toml(aws)

    dry = run_flank("cost", "apply", "--dry-run", "--now", NOW, check=True).stdout
    assert "scheduler.create_schedule_group" in dry and '"cron(45 1 * * ? *)"' in dry
    assert "(dry run: 2 calls, none made)" in dry
    assert _schedules(aws) == {}

    out = run_flank("cost", "apply", "--now", NOW, check=True).stdout
    assert "applied: 1 created, 0 updated, 0 removed; idle size r6a.large" in out
    made = _schedules(aws)
    assert list(made) == ["flank-demo/grow-nightly-0"]
    s = made["flank-demo/grow-nightly-0"]
    assert s["ScheduleExpression"] == "cron(45 1 * * ? *)"
    assert s["ScheduleExpressionTimezone"] == "Europe/London"
    assert s["Target"]["Arn"] == "arn:aws:scheduler:::aws-sdk:ssm:startAutomationExecution"
    assert s["Target"]["RoleArn"] == ROLE
    assert json.loads(s["Target"]["Input"]) == {
        "DocumentName": "AWS-ResizeInstance",
        "Parameters": {"InstanceId": [aws["instance"]], "InstanceType": ["r6a.8xlarge"]},
    }

    # nothing changed: a true no-op, no UpdateSchedule call (the schedule's modification date stands)
    again = run_flank("cost", "apply", "--now", NOW, check=True).stdout
    assert "applied: nothing to change (1 schedule up to date); idle size r6a.large" in again
    assert _schedules(aws) == made

    # two schedules now (weekdays 02:00, Sunday 00:05 — its grow falls on Saturday)
    push(clone, {"flank.yml": SEED_YML.replace('"0 2 * * *"', '["0 2 * * 1-5", "5 0 * * 0"]')}, "two schedules")
    out = run_flank("cost", "apply", "--now", NOW, check=True).stdout
    assert "applied: 1 created, 1 updated, 0 removed" in out
    made = _schedules(aws)
    assert {k: v["ScheduleExpression"] for k, v in made.items()} == {
        "flank-demo/grow-nightly-0": "cron(45 1 ? * MON,TUE,WED,THU,FRI *)",
        "flank-demo/grow-nightly-1": "cron(50 23 ? * SAT *)",
    }

    push(clone, {"flank.yml": SEED_YML}, "back to one")
    out = run_flank("cost", "apply", "--now", NOW, check=True).stdout
    assert "applied: 0 created, 1 updated, 1 removed" in out
    assert list(_schedules(aws)) == ["flank-demo/grow-nightly-0"]

    gone = run_flank("cost", "remove", check=True).stdout
    assert "removed 1 schedules and 1 group" in gone
    assert _schedules(aws) == {}
    assert [g["Name"] for g in aws["scheduler"].list_schedule_groups()["ScheduleGroups"]] == ["default"]


@pytest.mark.slow
def test_bad_settings_change_nothing(tmp_path: Path, aws: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    write_toml()
    deploy(tmp_path, SEED_YML)
    write_runs()
    types = tmp_path / "types.csv"
    types.write_text(
        "region,type,family,vcpus,memory_gib,usd_per_hour\n"
        "us-east-1,r6a.large,r6a,2,16,0.1134\nus-east-1,zz9.huge,zz9,32,512,0.5\n"
    )
    cases = [
        ({"scheduler_role_arn": None}, "[cost] scheduler_role_arn is needed"),
        ({"instance_id": '"i-0000000000000dead"'}, "i-0000000000000dead"),
        ({"families": '["zz9", "r6a"]', "types_file": f'"{types}"'}, "zz9.huge"),  # a type AWS lacks
    ]
    for extra, message in cases:
        _toml(aws, **extra)
        proc = run_flank("cost", "apply", "--now", NOW)
        assert proc.returncode == 1 and message in proc.stderr, (extra, proc.stderr)
        assert "Traceback" not in proc.stderr
        assert _schedules(aws) == {}
    _toml(aws)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    proc = run_flank("cost", "apply", "--now", NOW)
    assert proc.returncode == 1 and "no AWS credentials found" in proc.stderr, proc.stderr
    assert _schedules(aws) == {}


@pytest.mark.slow
def test_shrink_now_waits_for_runs_and_a_starting_run_cancels_it(
    tmp_path: Path, aws: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flank_ops.cost import shrink
    from flank_ops.cost.settings import cost_settings
    from flank_ops.settings import settings_for

    home = _seed_project(tmp_path, aws)
    cost = cost_settings(settings_for(home))
    stub = _stubbed_ssm(home, monkeypatch)

    # a run holds the busy lock: no call at all (the stub has no responses queued)
    home.internal_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(home.busy_lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)  # as a running run holds it
        with stub:
            assert (
                shrink.shrink_now(home, cost, "r6a.large")
                == "not shrinking: a run is in progress (it holds the VM's busy lock)"
            )
    finally:
        os.close(fd)

    _expect_resize(stub, aws["instance"], "0123abcd-0000-4000-8000-00000000e1e1")
    with stub:
        said = shrink.shrink_now(home, cost, "r6a.large")
    assert (
        said
        == f"shrinking {aws['instance']} from r6a.8xlarge to r6a.large (automation 0123abcd-0000-4000-8000-00000000e1e1)"
    )
    assert json.loads(shrink.marker_path(home).read_text())["execution_id"] == "0123abcd-0000-4000-8000-00000000e1e1"

    stub.add_response(
        "stop_automation_execution",
        {},
        {"AutomationExecutionId": "0123abcd-0000-4000-8000-00000000e1e1", "Type": "Cancel"},
    )
    with stub:
        assert "cancelled the shrink to r6a.large" in shrink.cancel_pending(home, cost)
    assert not shrink.marker_path(home).exists()
    assert shrink.cancel_pending(home, cost) is None


@pytest.mark.slow
def test_the_run_that_ends_a_window_shrinks_unless_another_is_due(
    tmp_path: Path, aws: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import datetime

    from flank_ops.cost import shrink

    home = _seed_project(tmp_path, aws)
    assert shrink.shrink_after_run(home) is None  # no plan applied: nothing to do
    run_flank("cost", "apply", "--now", NOW, check=True)
    stub = _stubbed_ssm(home, monkeypatch)
    # 01:20 London: nightly (02:00) is due within grow lead + 30 min: keep the size
    with stub:
        assert (
            shrink.shrink_after_run(home, datetime.fromisoformat("2026-11-27T01:20:00+00:00"))
            == "not shrinking: demo/nightly runs soon"
        )
    _expect_resize(stub, aws["instance"], "0123abcd-0000-4000-8000-00000000e1e2")
    with stub:  # 04:50, the night's run just ended: shrink to the applied idle size
        said = shrink.shrink_after_run(home, datetime.fromisoformat("2026-11-27T04:50:00+00:00"))
    assert said.startswith(f"shrinking {aws['instance']} from r6a.8xlarge to r6a.large")


@pytest.mark.slow
def test_a_run_holds_the_busy_lock_and_cancels_a_shrink_started_just_before(tmp_path: Path, aws: dict) -> None:
    """The race, closed from the run's side: a run that starts while a shrink is pending cancels it
    (moto cannot stop an automation; the cancel call is the runner's, over real HTTP to moto,
    whose 'not implemented' answer the run reports in its output without failing)."""
    from flank_ops.cost import shrink
    from flank_ops.paths import Home
    from helpers.deployed import WAIT_FOR_GATE, open_gate, start_flank, task_status

    write_toml()
    deploy(tmp_path, f"persist: [gate]\npipelines:\n  nightly:\n    tasks:\n      hold: '{WAIT_FOR_GATE}'\n")
    _toml(aws)
    home = Home()
    runner = start_flank("run", "demo", "nightly")
    try:
        wait_for(lambda: task_status(1, "hold") == "running", "the run to start")
        said = shrink.shrink_now(home, cost_settings_of(home), "r6a.large")
        assert said == "not shrinking: a run is in progress (it holds the VM's busy lock)"
    finally:
        open_gate()
    runner.communicate(timeout=60)

    # a shrink marker from a minute ago: the next run's start asks AWS to stop that automation
    shrink.marker_path(home).write_text(
        json.dumps(
            {"execution_id": "0123abcd-0000-4000-8000-00000000e1e3", "to": "r6a.large", "at": datetime_now_iso()}
        )
        + "\n"
    )
    out = run_flank("run", "demo", "nightly", "--task", "hold")
    assert out.returncode == 0, out.stderr
    assert "flank: could not cancel the VM's pending shrink: cancelling the resize: 500" in out.stdout
    assert "Traceback" not in out.stderr
    assert not shrink.marker_path(home).exists()


def cost_settings_of(home):
    from flank_ops.cost.settings import cost_settings
    from flank_ops.settings import settings_for

    return cost_settings(settings_for(home))


def datetime_now_iso() -> str:
    from datetime import datetime

    return datetime.now(UTC).isoformat()


@pytest.mark.slow
def test_plan_asks_ec2_for_todays_type_when_current_type_is_not_set(tmp_path: Path, aws: dict) -> None:
    """issue 19 bug 6: [cost] instance_id is set, current_type is not: the plan compares with the instance's
    real type (moto's EC2 says r6a.8xlarge), as its settings promise."""
    _seed_project(tmp_path, aws)
    out = run_flank("cost", "plan", "--now", NOW, check=True).stdout
    assert "today: r6a.8xlarge (32 vCPU, 256 GiB" in out and "24/7" in out, out
    assert "set [cost] current_type" not in out
    aws["ec2"].stop_instances(InstanceIds=[aws["instance"]])
    aws["ec2"].modify_instance_attribute(InstanceId=aws["instance"], InstanceType={"Value": "r6a.12xlarge"})
    assert "today: r6a.12xlarge" in run_flank("cost", "plan", "--now", NOW, check=True).stdout
