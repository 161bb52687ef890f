"""The cloud-init user data of `flank up`: mount the data volume, then the README's VM setup, verbatim.

The setup steps live in one file, setup-vm.sh (package data beside this module). The README shows
that file in its "Set up a VM" section and tests/vm/userdata_test.py checks the two are the same, so
what `flank up` does to a new VM and what a person does by hand cannot drift apart. What only a VM
made by `flank up` needs comes first: the settings, and the encrypted data volume (FLANK_HOME) found
by its volume id, formatted on its first use only, mounted by UUID so it follows the instance's stops.
"""

from __future__ import annotations

import shlex
from importlib import resources

SETUP_SCRIPT = "setup-vm.sh"
VM_USER = "admin"  # the login user of Debian's cloud images
DATA_DEVICE = "/dev/sdf"  # the name the data volume is attached under (Nitro instances show it as NVMe)


def setup_script() -> str:
    return resources.files("flank_ops.vm").joinpath(SETUP_SCRIPT).read_text(encoding="utf-8")


def vm_flank_home(user: str = VM_USER) -> str:
    return f"/home/{user}/flank"


def mount_data_volume(volume_id: str, mount_point: str) -> str:
    """Shell lines (root) that wait for the attached volume, format it if blank, mount it for good."""
    by_id = "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_" + volume_id.replace("-", "")
    return f"""\
# the data volume {volume_id}: FLANK_HOME, kept when the instance is terminated
device=""
for _ in $(seq 1 300); do
  for candidate in {by_id} {DATA_DEVICE} /dev/xvdf; do
    if [ -b "$candidate" ]; then device="$(readlink -f "$candidate")"; break 2; fi
  done
  sleep 1
done
[ -n "$device" ] || {{ echo "flank: the data volume {volume_id} never appeared" >&2; exit 1; }}
blkid "$device" >/dev/null || mkfs.ext4 -q -L flank-data "$device"   # a new volume only
mkdir -p {shlex.quote(mount_point)}
uuid="$(blkid -s UUID -o value "$device")"
grep -q "$uuid" /etc/fstab || echo "UUID=$uuid {mount_point} ext4 defaults,nofail 0 2" >> /etc/fstab
mountpoint -q {shlex.quote(mount_point)} || mount {shlex.quote(mount_point)}
"""


def user_data(project: str, source: str, volume_id: str | None, user: str = VM_USER) -> str:
    """The whole user data script: settings, the data volume (None: FLANK_HOME stays on the root disk),
    then setup-vm.sh as it is."""
    home = vm_flank_home(user)
    settings = {"FLANK_USER": user, "FLANK_SOURCE": source, "FLANK_PROJECT": project, "FLANK_HOME": home}
    exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in settings.items())
    script = setup_script()
    body = script.split("\n", 1)[1] if script.startswith("#!") else script
    return (
        "#!/bin/bash\n"
        f"# flank up: cloud-init user data of project {project} (runs once, as root, at the first boot)\n"
        "set -euo pipefail\n"
        + exports
        + (mount_data_volume(volume_id, home) if volume_id else "")
        + f"# --- {SETUP_SCRIPT} ---\n"
        + body
    )
