"""flank up [PROJECT]: from the laptop, make (or start again) the project's VM on EC2, ready for `git push flank`.

The first time: your ssh key imported as a key pair, a security group open to ssh from your address
only, an encrypted data volume for FLANK_HOME, and a Debian 12 instance (IMDSv2 only) whose cloud-init
user data is the README's VM setup (vm/userdata.py). Then it waits until ssh answers and `flank
doctor` passes there, points the clone's `flank` git remote at the VM and prints the site's tunnel.
Again: the tagged instance is found and started; after `flank down --terminate`, a new instance gets
the kept data volume back. See vm/ec2.py for what is made and how it is found.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import time
import urllib.request
from importlib import metadata
from pathlib import Path

from flank_ops.commands.serve import DEFAULT_PORT
from flank_ops.errors import UserError
from flank_ops.remote.ssh import parse_remote_url, probe_remote_flank
from flank_ops.vm import ec2
from flank_ops.vm.clone import point_remote, project_of_clone
from flank_ops.vm.monthly import monthly_cost
from flank_ops.vm.sizing import planned_type, type_arch
from flank_ops.vm.userdata import DATA_DEVICE, VM_USER, user_data, vm_flank_home

DEFAULT_DATA_GIB = 50
DEFAULT_REMOTE = "flank"
READY_LIMIT_S = 20 * 60.0  # packages, R and flank's venv on a fresh Debian: minutes
CHECKIP_URL = "https://checkip.amazonaws.com"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("project", nargs="?", help="the project (default: this clone's folder name)")
    parser.add_argument("--region", help="the AWS region (default: AWS_REGION or your AWS profile's)")
    parser.add_argument(
        "--type", dest="instance_type", help="the instance type (default: what `flank cost plan` sizes)"
    )
    parser.add_argument("--ami", help="the image (default: the latest Debian 12, from Debian's public SSM parameter)")
    parser.add_argument("--ssh-from", metavar="CIDR", help="who may ssh in (default: your public address, /32)")
    parser.add_argument(
        "--key", metavar="FILE", help="your ssh public key (default: ~/.ssh/id_ed25519.pub or id_rsa.pub)"
    )
    parser.add_argument(
        "--source",
        help="what the VM's pip installs flank from (default: where this flank came from: its git commit or version)",
    )
    parser.add_argument(
        "--data-size", type=int, default=DEFAULT_DATA_GIB, metavar="GIB", help="the data volume's size in GiB"
    )
    parser.add_argument("--remote", default=DEFAULT_REMOTE, help="the git remote to point at the VM (default: flank)")
    parser.add_argument("--no-wait", action="store_true", help="return right after the AWS calls (for scripts)")


def _public_key(path: str | None) -> bytes:
    candidates = (
        [Path(path).expanduser()] if path else [Path.home() / ".ssh" / n for n in ("id_ed25519.pub", "id_rsa.pub")]
    )
    for candidate in candidates:
        try:
            return candidate.read_bytes()
        except OSError:
            continue
    raise UserError(
        f"no ssh public key at {', '.join(str(c) for c in candidates)}",
        "make one (ssh-keygen -t ed25519) or name yours with --key FILE.pub",
    )


def _ssh_from(cidr: str | None) -> str:
    if cidr:
        try:
            return str(ipaddress.ip_network(cidr, strict=False))
        except ValueError:
            raise UserError(
                f"--ssh-from {cidr!r} is not an address or CIDR", "e.g. --ssh-from 203.0.113.7/32"
            ) from None
    try:
        with urllib.request.urlopen(CHECKIP_URL, timeout=5) as r:
            address = r.read().decode().strip()
        return str(ipaddress.ip_network(f"{address}/32"))
    except (OSError, ValueError):
        raise UserError(
            f"could not find your public address ({CHECKIP_URL} did not answer)",
            "say who may ssh in: --ssh-from 203.0.113.7/32",
        ) from None


def _instance_type(args: argparse.Namespace) -> str:
    if args.instance_type:
        return str(args.instance_type)
    planned, why = planned_type()
    if planned is None:
        raise UserError(f"no instance type given and none planned ({why})", "pass one: flank up --type m7i.large")
    return planned


def _source(args: argparse.Namespace) -> str:
    """What the VM installs: --source, else where this laptop's flank came from (PEP 610's direct_url.json:
    the same git commit, or the same version from the package index); a local checkout cannot be reached."""
    if args.source:
        return str(args.source)
    try:
        dist = metadata.distribution("flank-ops")
    except metadata.PackageNotFoundError:
        dist = None
    direct = json.loads(dist.read_text("direct_url.json") or "null") if dist else None
    if direct and direct.get("vcs_info", {}).get("vcs") == "git":
        return f"git+{direct['url']}@{direct['vcs_info']['commit_id']}"
    checkout = Path(__file__).resolve().parents[2]
    if direct or (checkout / "pyproject.toml").is_file():
        raise UserError(
            f"this flank runs from {checkout}, which the VM cannot install from",
            "say what the VM installs: flank up --source git+https://<host>/<you>/flank_ops.git",
        )
    return f"flank-ops=={dist.version}" if dist else "flank-ops"


def _wait_until_ready(url: str, limit_s: float = READY_LIMIT_S) -> None:
    """Until ssh answers and `flank doctor` passes on the VM (cloud-init is done by then)."""
    target = parse_remote_url(url)
    deadline = time.monotonic() + limit_s
    print(f"waiting for {target.destination} to answer ssh and pass `flank doctor` (a new VM takes minutes)...")
    last = ""
    while True:
        code, out = probe_remote_flank(target, ["doctor"])
        if code == 0:
            print(f"{target.destination}: flank doctor passed")
            return
        last = out.strip().splitlines()[-1] if out.strip() else f"exit {code}"
        if time.monotonic() > deadline:
            raise UserError(
                f"the VM is not ready after {limit_s / 60:.0f} min (last: {last})",
                f"look at it: ssh {target.destination} 'sudo tail /var/log/cloud-init-output.log; flank doctor'",
            )
        time.sleep(10)


def run(args: argparse.Namespace) -> int:
    if args.data_size < 1:
        raise UserError(f"--data-size {args.data_size}: give the volume's size in GiB", "e.g. --data-size 100")
    project = project_of_clone(args.project)
    ec2_client, ssm = ec2.clients(args.region)
    region = ec2_client.meta.region_name
    instance = ec2.find_instance(ec2_client, project)
    volume = ec2.find_data_volume(ec2_client, project)
    if instance is not None:
        if instance.state == "stopping":
            ec2.wait_instance(ec2_client, instance.id, "stopped")
            instance = instance._replace(state="stopped")
        if instance.state == "stopped":
            ec2.start(ec2_client, instance.id)
            print(f"started {instance.id} ({instance.type})")
        else:
            print(f"{instance.id} ({instance.type}) is already {instance.state}")
    else:
        instance_type = _instance_type(args)
        # what can be wrong is checked before anything is made: the image, the key, the address, the source
        if args.ami:
            ami = args.ami
            ec2.image_arch(ec2_client, ami)  # it exists here
        else:
            ami = ec2.debian_ami(ssm, type_arch(instance_type))
        public_key, cidr, source = _public_key(args.key), _ssh_from(args.ssh_from), _source(args)
        key_name, imported = ec2.ensure_key_pair(ec2_client, project, public_key)
        print(f"imported your ssh key as key pair {key_name}" if imported else f"key pair {key_name} is there")
        group_id, done = ec2.ensure_security_group(ec2_client, project, cidr)
        for line in done:
            print(line)
        if volume is None:
            volume = ec2.create_data_volume(ec2_client, project, ec2.first_zone(ec2_client), args.data_size)
            ec2.wait_volume(ec2_client, project, "available")
            print(f"created data volume {volume.id} ({volume.size_gib} GiB, encrypted) for FLANK_HOME")
        else:
            print(f"found data volume {volume.id} ({volume.size_gib} GiB): history, secrets and site come back")
        instance = ec2.launch(
            ec2_client,
            project,
            ami=ami,
            instance_type=instance_type,
            key_name=key_name,
            group_id=group_id,
            zone=volume.zone,
            user_data=user_data(project, source, volume.id),
        )
        print(f"launched {instance.id} ({instance_type}, {ami}, {volume.zone}; IMDSv2 only)")
    instance = ec2.wait_instance(ec2_client, instance.id, "running")
    volume = ec2.find_data_volume(ec2_client, project)
    if volume is not None and volume.attached_to is None:
        ec2.attach(ec2_client, volume.id, instance.id, DATA_DEVICE)
        ec2.wait_volume(ec2_client, project, "in-use")
        print(f"attached data volume {volume.id} to {instance.id}")
    if not instance.public_ip:
        raise UserError(f"{instance.id} has no public address", "launch it in a subnet that gives public IPs")
    url = f"ssh://{VM_USER}@{instance.public_ip}{vm_flank_home()}/{project}.git"
    if not args.no_wait:
        _wait_until_ready(url)
    print(point_remote(args.remote, url))
    print("the status site, through an ssh tunnel:")
    print(f"  ssh -N -L {DEFAULT_PORT}:127.0.0.1:{DEFAULT_PORT} {VM_USER}@{instance.public_ip}")
    print(f"  http://127.0.0.1:{DEFAULT_PORT}/")
    disks = (volume.size_gib if volume else 0) + ec2.root_volume_gib(ec2_client, instance, volume and volume.id)
    print(monthly_cost(region, instance.type, disks))
    return 0
