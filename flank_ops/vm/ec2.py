"""The EC2 calls of `flank up` / `flank down`: one project's VM, found again by its tags.

Everything `up` makes carries the tag flank:project=NAME (the data volume also flank:role=data), so
`up` and `down` find it again from any laptop, and running either twice does nothing new:

    key pair        flank-NAME       the user's ssh public key, imported
    security group  flank-NAME       ssh (22) from the caller's address (or a CIDR given), nothing else
    data volume     flank:role=data  encrypted gp3 holding FLANK_HOME; never deleted with the instance
    instance        flank:project    Debian 12, IMDSv2 required, the user data of vm/userdata.py

The volume is bound to its availability zone: a new instance (first `up`, or after `down --terminate`)
is launched in the volume's zone and the volume attached to it, so history, secrets and the site
survive a terminate. boto3 is imported here only, lazily; the endpoint is boto3's own (AWS_ENDPOINT_URL
for tests against moto).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple

from flank_ops.errors import UserError

TAG_PROJECT = "flank:project"
TAG_ROLE = "flank:role"
DEBIAN_AMI_PARAMETER = "/aws/service/debian/release/12/latest/{arch}"  # Debian's public SSM parameters
LIVE_STATES = ("pending", "running", "stopping", "stopped")
WAIT_STEP_S = 2.0
WAIT_LIMIT_S = 600.0


class Instance(NamedTuple):
    id: str
    state: str
    type: str
    zone: str
    public_ip: str | None
    volumes: tuple[str, ...]  # the EBS volumes attached


class Volume(NamedTuple):
    id: str
    state: str  # available | in-use | ...
    zone: str
    size_gib: int
    attached_to: str | None


def resource_name(project: str) -> str:
    return f"flank-{project}"


def tags(project: str, role: str | None = None) -> list[dict[str, str]]:
    pairs = {TAG_PROJECT: project, "Name": resource_name(project), **({TAG_ROLE: role} if role else {})}
    return [{"Key": k, "Value": v} for k, v in pairs.items()]


def clients(region: str | None) -> tuple[Any, Any]:
    """The EC2 and SSM clients of the region (--region, else boto3's AWS_REGION / profile)."""
    import boto3
    from botocore.config import Config as BotoConfig

    session = boto3.session.Session(region_name=region)
    if not session.region_name:
        raise UserError("no AWS region given", "pass --region (e.g. --region eu-west-2), or set AWS_REGION")
    config = BotoConfig(connect_timeout=5, read_timeout=30, retries={"max_attempts": 3})
    return session.client("ec2", config=config), session.client("ssm", config=config)


def call(doing: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
    from flank_ops.cost.aws import call as aws_call

    return aws_call(doing, fn, **kwargs)


def _instance(data: dict[str, Any]) -> Instance:
    return Instance(
        data["InstanceId"],
        data["State"]["Name"],
        data["InstanceType"],
        data.get("Placement", {}).get("AvailabilityZone", ""),
        data.get("PublicIpAddress"),
        tuple(m["Ebs"]["VolumeId"] for m in data.get("BlockDeviceMappings", []) if "Ebs" in m),
    )


def find_instance(ec2: Any, project: str) -> Instance | None:
    found = call(
        "looking for the project's instance",
        ec2.describe_instances,
        Filters=[
            {"Name": f"tag:{TAG_PROJECT}", "Values": [project]},
            {"Name": "instance-state-name", "Values": list(LIVE_STATES)},
        ],
    )
    live = [_instance(i) for r in found.get("Reservations", []) for i in r.get("Instances", [])]
    return live[0] if live else None


def describe(ec2: Any, instance_id: str) -> Instance:
    found = call(f"describing {instance_id}", ec2.describe_instances, InstanceIds=[instance_id])
    return _instance(found["Reservations"][0]["Instances"][0])


def find_data_volume(ec2: Any, project: str) -> Volume | None:
    found = call(
        "looking for the project's data volume",
        ec2.describe_volumes,
        Filters=[{"Name": f"tag:{TAG_PROJECT}", "Values": [project]}, {"Name": f"tag:{TAG_ROLE}", "Values": ["data"]}],
    )
    volumes = [v for v in found.get("Volumes", []) if v["State"] not in ("deleting", "deleted")]
    if not volumes:
        return None
    v = volumes[0]
    attached = [a["InstanceId"] for a in v.get("Attachments", []) if a.get("State") in ("attaching", "attached")]
    return Volume(v["VolumeId"], v["State"], v["AvailabilityZone"], int(v["Size"]), attached[0] if attached else None)


def create_data_volume(ec2: Any, project: str, zone: str, size_gib: int) -> Volume:
    made = call(
        "creating the data volume",
        ec2.create_volume,
        AvailabilityZone=zone,
        Size=size_gib,
        VolumeType="gp3",
        Encrypted=True,
        TagSpecifications=[{"ResourceType": "volume", "Tags": tags(project, role="data")}],
    )
    return Volume(made["VolumeId"], made.get("State", "creating"), zone, size_gib, None)


def first_zone(ec2: Any) -> str:
    found = call("listing availability zones", ec2.describe_availability_zones)
    zones = sorted(z["ZoneName"] for z in found.get("AvailabilityZones", []) if z.get("State") == "available")
    if not zones:
        raise UserError("the region has no available zone", "pass another --region")
    return zones[0]


def ensure_key_pair(ec2: Any, project: str, public_key: bytes) -> tuple[str, bool]:
    """The key pair's name, and whether it was imported now."""
    name = resource_name(project)
    found = call("listing key pairs", ec2.describe_key_pairs, Filters=[{"Name": "key-name", "Values": [name]}])
    if found.get("KeyPairs"):
        return name, False
    call(
        "importing your ssh key",
        ec2.import_key_pair,
        KeyName=name,
        PublicKeyMaterial=public_key,
        TagSpecifications=[{"ResourceType": "key-pair", "Tags": tags(project)}],
    )
    return name, True


def ensure_security_group(ec2: Any, project: str, cidr: str) -> tuple[str, list[str]]:
    """The group's id and what was changed: made, and ssh opened to `cidr` (an old address stays, listed)."""
    name = resource_name(project)
    done: list[str] = []
    found = call(
        "looking for the security group",
        ec2.describe_security_groups,
        Filters=[{"Name": "group-name", "Values": [name]}],
    )
    if found.get("SecurityGroups"):
        group = found["SecurityGroups"][0]
        group_id = group["GroupId"]
        open_to = {
            r["CidrIp"]
            for p in group.get("IpPermissions", [])
            if p.get("FromPort") == 22 and p.get("ToPort") == 22
            for r in p.get("IpRanges", [])
        }
    else:
        made = call(
            "creating the security group",
            ec2.create_security_group,
            GroupName=name,
            Description=f"flank {project}: ssh only",
            TagSpecifications=[{"ResourceType": "security-group", "Tags": tags(project)}],
        )
        group_id = made["GroupId"]
        open_to = set()
        done.append(f"created security group {name} ({group_id})")
    if cidr not in open_to:
        call(
            "opening ssh in the security group",
            ec2.authorize_security_group_ingress,
            GroupId=group_id,
            IpPermissions=[
                {
                    "IpProtocol": "tcp",
                    "FromPort": 22,
                    "ToPort": 22,
                    "IpRanges": [{"CidrIp": cidr, "Description": "flank up: ssh"}],
                }
            ],
        )
        done.append(f"allowed ssh from {cidr}" + (f" (also open to {', '.join(sorted(open_to))})" if open_to else ""))
    return group_id, done


def debian_ami(ssm: Any, arch: str) -> str:
    """The latest Debian 12 image of the region, from Debian's public SSM parameter."""
    from botocore.exceptions import BotoCoreError, ClientError

    name = DEBIAN_AMI_PARAMETER.format(arch="arm64" if arch == "arm64" else "amd64")
    try:
        return str(ssm.get_parameter(Name=name)["Parameter"]["Value"])
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("ParameterNotFound", "AccessDeniedException"):
            raise UserError(
                f"cannot read the Debian 12 image id from the SSM parameter {name} ({code})",
                "pass the image yourself: flank up --ami ami-... (Debian 12, from https://wiki.debian.org/Cloud/AmazonEC2Image)",
            ) from None
        from flank_ops.cost.aws import explain

        raise explain(exc, "reading the Debian image id") from None
    except BotoCoreError as exc:
        from flank_ops.cost.aws import explain

        raise explain(exc, "reading the Debian image id") from None


def image_arch(ec2: Any, ami: str) -> str:
    found = call(f"describing image {ami}", ec2.describe_images, ImageIds=[ami])
    images = found.get("Images", [])
    if not images:
        raise UserError(f"image {ami} not found in this region", "check --ami and --region")
    return "arm64" if images[0].get("Architecture") == "arm64" else "x86_64"


def launch(
    ec2: Any,
    project: str,
    *,
    ami: str,
    instance_type: str,
    key_name: str,
    group_id: str,
    zone: str,
    user_data: str,
) -> Instance:
    made = call(
        "launching the instance",
        ec2.run_instances,
        ImageId=ami,
        InstanceType=instance_type,
        MinCount=1,
        MaxCount=1,
        KeyName=key_name,
        SecurityGroupIds=[group_id],
        Placement={"AvailabilityZone": zone},
        UserData=user_data,
        MetadataOptions={"HttpTokens": "required", "HttpEndpoint": "enabled"},  # IMDSv2 only
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags(project)}],
    )
    return _instance(made["Instances"][0])


def wait_for(what: str, check: Callable[[], bool], limit_s: float = WAIT_LIMIT_S) -> None:
    deadline = time.monotonic() + limit_s
    while not check():
        if time.monotonic() > deadline:
            raise UserError(f"timed out waiting for {what}", "look in the EC2 console, then run the command again")
        time.sleep(WAIT_STEP_S)


def wait_instance(ec2: Any, instance_id: str, state: str) -> Instance:
    found: list[Instance] = []

    def reached() -> bool:
        found[:] = [describe(ec2, instance_id)]
        return found[0].state == state

    wait_for(f"{instance_id} to be {state}", reached)
    return found[0]


def wait_volume(ec2: Any, project: str, state: str) -> None:
    def reached() -> bool:
        volume = find_data_volume(ec2, project)
        return volume is not None and volume.state == state

    wait_for(f"the data volume to be {state}", reached)


def attach(ec2: Any, volume_id: str, instance_id: str, device: str) -> None:
    call("attaching the data volume", ec2.attach_volume, VolumeId=volume_id, InstanceId=instance_id, Device=device)


def detach(ec2: Any, volume_id: str, instance_id: str) -> None:
    call("detaching the data volume", ec2.detach_volume, VolumeId=volume_id, InstanceId=instance_id)


def start(ec2: Any, instance_id: str) -> None:
    call(f"starting {instance_id}", ec2.start_instances, InstanceIds=[instance_id])


def stop(ec2: Any, instance_id: str) -> None:
    call(f"stopping {instance_id}", ec2.stop_instances, InstanceIds=[instance_id])


def terminate(ec2: Any, instance_id: str) -> None:
    call(f"terminating {instance_id}", ec2.terminate_instances, InstanceIds=[instance_id])


def delete_volume(ec2: Any, volume_id: str) -> None:
    call("deleting the data volume", ec2.delete_volume, VolumeId=volume_id)


def root_volume_gib(ec2: Any, instance: Instance, data_volume: str | None) -> int:
    others = [v for v in instance.volumes if v != data_volume]
    if not others:
        return 0
    found = call("describing the root volume", ec2.describe_volumes, VolumeIds=others)
    return sum(int(v["Size"]) for v in found.get("Volumes", []))
