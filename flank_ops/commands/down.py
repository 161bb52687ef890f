"""flank down [PROJECT]: stop the project's VM (default), or terminate it, keeping its data volume.

    flank down                       stop: the instance and its disks stay; `flank up` starts it again
    flank down --terminate           the instance goes; the data volume (FLANK_HOME) is kept, and
                                     `flank up` attaches it to a new instance
    flank down --terminate --delete-data [--yes]   the data volume too: history, secrets, site, gone

Either way it says what it did and what the project costs per month now.
"""

from __future__ import annotations

import argparse
import sys

from flank_ops.errors import UserError
from flank_ops.vm import ec2
from flank_ops.vm.clone import project_of_clone
from flank_ops.vm.monthly import monthly_cost


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("project", nargs="?", help="the project (default: this clone's folder name)")
    parser.add_argument("--region", help="the AWS region (default: AWS_REGION or your AWS profile's)")
    parser.add_argument("--terminate", action="store_true", help="terminate the instance (the data volume is kept)")
    parser.add_argument("--delete-data", action="store_true", help="with --terminate: delete the data volume too")
    parser.add_argument("--yes", action="store_true", help="do not ask before deleting the data volume")


def _confirm(project: str, volume_id: str) -> None:
    if not sys.stdin.isatty():
        raise UserError(
            f"--delete-data deletes {volume_id} (FLANK_HOME: every run, secret and the site) for good",
            "add --yes to confirm",
        )
    answer = input(f"delete data volume {volume_id} of {project} for good? type the project name to confirm: ")
    if answer.strip() != project:
        raise UserError("not confirmed: nothing deleted", f"type {project} to confirm, or pass --yes")


def run(args: argparse.Namespace) -> int:
    if args.delete_data and not args.terminate:
        raise UserError("--delete-data works with --terminate", "flank down --terminate --delete-data")
    project = project_of_clone(args.project)
    ec2_client, _ssm = ec2.clients(args.region)
    region = ec2_client.meta.region_name
    instance = ec2.find_instance(ec2_client, project)
    volume = ec2.find_data_volume(ec2_client, project)
    if args.delete_data and volume is not None and not args.yes:
        _confirm(project, volume.id)
    root_gib = 0
    if instance is None:
        print(f"no instance of {project} in {region}")
    elif not args.terminate:
        root_gib = ec2.root_volume_gib(ec2_client, instance, volume and volume.id)
        if instance.state in ("stopped", "stopping"):
            print(f"{instance.id} ({instance.type}) is already {instance.state}")
        else:
            ec2.stop(ec2_client, instance.id)
            ec2.wait_instance(ec2_client, instance.id, "stopped")
            print(f"stopped {instance.id} ({instance.type}); `flank up` starts it again")
    else:
        if volume is not None and volume.attached_to == instance.id:
            if instance.state != "stopped":
                ec2.stop(ec2_client, instance.id)  # the file system is unmounted cleanly by the shutdown
                ec2.wait_instance(ec2_client, instance.id, "stopped")
            ec2.detach(ec2_client, volume.id, instance.id)
            ec2.wait_volume(ec2_client, project, "available")
        ec2.terminate(ec2_client, instance.id)
        ec2.wait_instance(ec2_client, instance.id, "terminated")
        print(f"terminated {instance.id} ({instance.type})")
    if volume is not None and args.delete_data:
        ec2.delete_volume(ec2_client, volume.id)
        print(f"deleted data volume {volume.id}")
        volume = None
    elif volume is not None:
        kept = "kept" if args.terminate else "stays attached"
        print(f"data volume {volume.id} ({volume.size_gib} GiB) {kept}")
    disks = root_gib + (volume.size_gib if volume is not None else 0)
    print(monthly_cost(region, None, disks))
    return 0
