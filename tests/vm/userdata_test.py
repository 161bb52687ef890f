"""The VM setup has one source: flank_ops/vm/setup-vm.sh, which the docs include as it is and `flank up` sends."""

from __future__ import annotations

import re

from flank_ops.vm.userdata import setup_script, user_data
from helpers.cli import REPO_ROOT


def test_the_docs_show_the_setup_script_as_it_is() -> None:
    # no copy to keep equal: the docs site includes the file itself (pymdownx.snippets, `make docs`)
    page = (REPO_ROOT / "docs" / "getting-started" / "vm.md").read_text(encoding="utf-8")
    assert re.search(r'```bash\n--8<-- "flank_ops/vm/setup-vm.sh"\n```', page), "the docs no longer include setup-vm.sh"
    assert setup_script().startswith("#!/bin/bash\n")


def test_the_user_data_is_settings_the_volume_mount_then_the_script() -> None:
    data = user_data("my proj", "git+https://example.org/flank.git", "vol-0123456789abcdef0")
    assert data.startswith("#!/bin/bash\n")
    assert "export FLANK_PROJECT='my proj'\n" in data and "export FLANK_HOME=/home/admin/flank\n" in data
    assert "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0123456789abcdef0" in data
    assert data.index("mount /home/admin/flank") < data.index("# 1. Debian packages")
    assert data.endswith(setup_script().split("\n", 1)[1])
    assert len(data.encode()) < 16 * 1024  # EC2's limit on user data
