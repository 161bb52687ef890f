"""`flank up` / `flank down` against moto's server on 127.0.0.1: real HTTP to a real EC2 and SSM API.

moto keeps key pairs, security groups, instances (with their user data, metadata options and tags),
volumes (attach, detach, encryption) and stop/start/terminate as EC2 does. It holds none of the public
SSM parameters, so the Debian image id cannot come from there: the test checks `up` says to pass --ami,
then passes one of moto's images. moto's instances do not boot, so `--no-wait` is used (the wait for
ssh and `flank doctor` is the same probe tests/vm/setup_script_test.py runs against a real sshd).
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers.cli import run_flank
from helpers.repos import git, make_repo
from helpers.servers import start_moto_server

pytestmark = pytest.mark.slow

_server: str | None = None
CIDR = "203.0.113.7/32"
SOURCE = "git+https://example.org/flank_ops.git@v1"


def moto_url() -> str:
    global _server
    if _server is None:
        _server = start_moto_server()
    return _server


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict]:
    url = moto_url()
    urllib.request.urlopen(urllib.request.Request(url + "/moto-api/reset", method="POST")).close()
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-2",
        "AWS_ENDPOINT_URL": url,  # boto3's own setting: flank up talks to moto as it would to AWS
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    import boto3

    ec2 = boto3.client("ec2", endpoint_url=url, region_name="eu-west-2")
    ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    yield {"ec2": ec2, "ami": ami, "key": f"{key}.pub"}


def _instances(ec2) -> list[dict]:
    found = ec2.describe_instances(Filters=[{"Name": "tag:flank:project", "Values": ["demo"]}])
    return [i for r in found["Reservations"] for i in r["Instances"]]


def _live(ec2) -> list[dict]:
    return [i for i in _instances(ec2) if i["State"]["Name"] != "terminated"]


def _data_volume(ec2) -> dict | None:
    found = ec2.describe_volumes(Filters=[{"Name": "tag:flank:role", "Values": ["data"]}])["Volumes"]
    return found[0] if found else None


def test_up_down_lifecycle_keeps_the_data_volume(tmp_path: Path, aws: dict) -> None:
    ec2 = aws["ec2"]
    clone = make_repo(tmp_path / "demo", {"flank.yml": "pipelines: {}\n"})
    common = ["--type", "m7i.large", "--key", aws["key"], "--ssh-from", CIDR, "--no-wait", "--source", SOURCE]

    # moto has no public SSM parameters: one clear line saying what to do, and nothing made
    proc = run_flank("up", *common, cwd=clone)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "cannot read the Debian 12 image id from the SSM parameter /aws/service/debian/release/12/latest/amd64" in (
        proc.stderr
    )
    assert "flank up --ami ami-..." in proc.stderr
    assert _instances(ec2) == [] and ec2.describe_key_pairs()["KeyPairs"] == []

    # this flank runs from a local checkout, which a VM cannot install from: --source says from where
    local = run_flank("up", *[a for a in common if a not in ("--source", SOURCE)], "--ami", aws["ami"], cwd=clone)
    assert local.returncode == 1 and "which the VM cannot install from" in local.stderr
    assert "flank up --source git+https://" in local.stderr and _instances(ec2) == []

    out = run_flank("up", *common, "--ami", aws["ami"], cwd=clone, check=True).stdout
    [instance] = _live(ec2)
    iid = instance["InstanceId"]
    volume = _data_volume(ec2)
    assert volume is not None
    assert "imported your ssh key as key pair flank-demo" in out
    assert f"allowed ssh from {CIDR}" in out
    assert f"created data volume {volume['VolumeId']} (50 GiB, encrypted) for FLANK_HOME" in out
    assert f"launched {iid} (m7i.large, {aws['ami']}" in out and "IMDSv2 only" in out
    assert f"attached data volume {volume['VolumeId']} to {iid}" in out
    # what EC2 now holds
    assert [k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"]] == ["flank-demo"]
    [group] = ec2.describe_security_groups(GroupNames=["flank-demo"])["SecurityGroups"]
    assert [(p["FromPort"], [r["CidrIp"] for r in p["IpRanges"]]) for p in group["IpPermissions"]] == [(22, [CIDR])]
    assert instance["InstanceType"] == "m7i.large" and instance["KeyName"] == "flank-demo"
    assert instance["MetadataOptions"]["HttpTokens"] == "required"
    assert {t["Key"]: t["Value"] for t in instance["Tags"]}["flank:project"] == "demo"
    user_data = base64.b64decode(
        ec2.describe_instance_attribute(InstanceId=iid, Attribute="userData")["UserData"]["Value"]
    ).decode()
    assert user_data.startswith("#!/bin/bash\n") and "export FLANK_PROJECT=demo" in user_data
    assert f"export FLANK_SOURCE={SOURCE}\n" in user_data
    assert volume["VolumeId"].replace("-", "") in user_data  # the mount finds the volume by its id
    from flank_ops.vm.userdata import setup_script

    assert user_data.endswith(setup_script().split("\n", 1)[1])  # the README's setup, verbatim
    assert volume["Encrypted"] and volume["Size"] == 50 and volume["VolumeType"] == "gp3"
    assert [a["InstanceId"] for a in volume["Attachments"]] == [iid]
    ip = instance["PublicIpAddress"]
    url = f"ssh://admin@{ip}/home/admin/flank/demo.git"
    assert f"git remote flank added: {url}" in out
    assert git("remote", "get-url", "flank", cwd=clone).stdout.strip() == url
    assert f"ssh -N -L 8083:127.0.0.1:8083 admin@{ip}" in out
    # the shipped table has no eu-west-2: the disks are priced, the type says how to price it
    assert (
        "now about $4.64/month: m7i.large 24/7 (not priced for eu-west-2: flank cost prices --region eu-west-2)" in out
    )
    assert "disks 58 GiB $4.64" in out  # the 50 GiB data volume and moto's 8 GiB root volume

    # again: nothing new; with the region's prices fetched (here: written as `flank cost prices` does), priced
    from datetime import date

    from flank_ops.cost.prices import write_cache
    from flank_ops.cost.settings import InstanceType
    from flank_ops.paths import Home

    write_cache(Home().price_cache_dir, "eu-west-2", [InstanceType("m7i.large", "m7i", 2, 8, 0.1176)], date.today())
    again = run_flank("up", *common, "--ami", aws["ami"], cwd=clone, check=True).stdout
    assert f"{iid} (m7i.large) is already running" in again and len(_live(ec2)) == 1
    assert "now about $90.49/month: m7i.large 24/7 $85.85, disks 58 GiB $4.64" in again

    down = run_flank("down", cwd=clone, check=True).stdout
    assert f"stopped {iid} (m7i.large)" in down
    assert f"data volume {volume['VolumeId']} (50 GiB) stays attached" in down
    assert "now about $" in down and "24/7" not in down  # disks only
    assert _live(ec2)[0]["State"]["Name"] == "stopped"

    up = run_flank("up", *common, cwd=clone, check=True).stdout  # a stopped VM needs no image
    assert f"started {iid}" in up and _live(ec2)[0]["State"]["Name"] == "running"

    gone = run_flank("down", "--terminate", cwd=clone, check=True).stdout
    assert f"terminated {iid}" in gone and f"data volume {volume['VolumeId']} (50 GiB) kept" in gone
    assert _live(ec2) == []
    assert _data_volume(ec2)["State"] == "available"

    back = run_flank("up", *common, "--ami", aws["ami"], cwd=clone, check=True).stdout
    [new] = _live(ec2)
    assert new["InstanceId"] != iid
    assert f"found data volume {volume['VolumeId']} (50 GiB): history, secrets and site come back" in back
    assert "key pair flank-demo is there" in back and "allowed ssh" not in back
    assert [a["InstanceId"] for a in _data_volume(ec2)["Attachments"]] == [new["InstanceId"]]
    assert new["Placement"]["AvailabilityZone"] == volume["AvailabilityZone"]

    # deleting the data needs a confirmation
    refused = run_flank("down", "--terminate", "--delete-data", cwd=clone)
    assert refused.returncode == 1 and "add --yes to confirm" in refused.stderr
    assert len(_live(ec2)) == 1 and _data_volume(ec2) is not None
    wrong = run_flank("down", "--delete-data", "--yes", cwd=clone)
    assert wrong.returncode == 1 and "--delete-data works with --terminate" in wrong.stderr
    done = run_flank("down", "--terminate", "--delete-data", "--yes", cwd=clone, check=True).stdout
    assert f"deleted data volume {volume['VolumeId']}" in done and "now costs nothing per month" in done
    assert _live(ec2) == [] and _data_volume(ec2) is None


def test_without_type_up_launches_what_the_cost_plan_sizes(tmp_path: Path, aws: dict) -> None:
    from helpers.cost_fixtures import SEED_YML, write_runs, write_toml
    from helpers.deployed import deploy

    clone = make_repo(tmp_path / "demo", {"flank.yml": "pipelines: {}\n"})
    common = ["--key", aws["key"], "--ssh-from", CIDR, "--no-wait", "--ami", aws["ami"], "--source", SOURCE]
    proc = run_flank("up", *common, cwd=clone)
    assert proc.returncode == 1 and "no instance type given and none planned (no projects in" in proc.stderr
    assert "pass one: flank up --type m7i.large" in proc.stderr and _instances(aws["ec2"]) == []

    # this FLANK_HOME's runs (the seed case: 200 GB at night) make the plan: the size its window needs
    write_toml()
    deploy(tmp_path, SEED_YML)
    write_runs()
    write_toml('[cost]\narch = "x86_64"\n')
    plan = run_flank("cost", "plan", check=True).stdout
    planned = re.search(r"demo/nightly: (\S+) \(\d+ vCPU", plan).group(1)  # 256 GiB, 2 tasks: x2iedn.2xlarge
    out = run_flank("up", *common, cwd=clone, check=True).stdout
    [instance] = _live(aws["ec2"])
    assert instance["InstanceType"] == planned and f"({planned}, " in out
