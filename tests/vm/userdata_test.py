"""The VM setup has one source: flank_ops/vm/setup-vm.sh, which the README shows and `flank up` sends."""

from __future__ import annotations

import re

from helpers.cli import REPO_ROOT

from flank_ops.vm.userdata import setup_script, user_data


def test_the_readme_shows_the_setup_script_as_it_is() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- setup-vm.sh begins[^\n]*-->\n```bash\n(.*?)```\n<!-- setup-vm.sh ends -->", readme, re.S)
    assert block is not None, "README.md lost its copy of flank_ops/vm/setup-vm.sh"
    assert block.group(1) == setup_script(), "README.md's setup script differs from flank_ops/vm/setup-vm.sh: copy it"


def test_the_user_data_is_settings_the_volume_mount_then_the_script() -> None:
    data = user_data("my proj", "git+https://example.org/flank.git", "vol-0123456789abcdef0")
    assert data.startswith("#!/bin/bash\n")
    assert "export FLANK_PROJECT='my proj'\n" in data and "export FLANK_HOME=/home/admin/flank\n" in data
    assert "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0123456789abcdef0" in data
    assert data.index("mount /home/admin/flank") < data.index("# 1. Debian packages")
    assert data.endswith(setup_script().split("\n", 1)[1])
    assert len(data.encode()) < 16 * 1024  # EC2's limit on user data
