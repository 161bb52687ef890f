"""notify: with nowhere to send (flank_ops/notify/destinations.py, issue 19 bug 8): said at the push, by
`flank validate` on the VM, by `flank doctor`, and in the run's record — never silent."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from helpers.cli import run_flank
from helpers.repos import git, make_repo

YML = """\
pipelines:
  nightly:
    notify: [failure, recovery]
    tasks:
      a: exit 1
  quiet:
    tasks:
      b: echo b
"""


@pytest.mark.slow
def test_notify_with_nowhere_to_send_is_said_at_push_in_validate_doctor_and_the_record(tmp_path: Path) -> None:
    home = Path(os.environ["FLANK_HOME"])
    home.mkdir(parents=True)
    (home / "flank.toml").write_text("[schedule]\ninstall_crontab = false\n")
    run_flank("init", "demo", check=True)
    clone = make_repo(tmp_path / "clone", {"flank.yml": YML})
    git("remote", "add", "flank", str(home / "demo.git"), cwd=clone)
    push = subprocess.run(["git", "push", "flank", "main"], cwd=clone, capture_output=True, text=True)
    assert push.returncode == 0, push.stderr
    said = [line for line in push.stderr.splitlines() if "notify:" in line]
    assert len(said) == 1 and "warning: notify: nightly (failure, recovery) — but " in said[0], push.stderr
    assert "has no [notify.webhook] or [notify.email]" in said[0] and "quiet" not in said[0]

    # polish e: said once per change of the config, not at every push ...
    (clone / "README.md").write_text("a push that changes no setting\n")
    git("add", "README.md", cwd=clone)
    git("commit", "-qm", "docs", cwd=clone)
    push = subprocess.run(["git", "push", "flank", "main"], cwd=clone, capture_output=True, text=True)
    assert push.returncode == 0 and "deployed" in push.stderr, push.stderr
    assert "notify:" not in push.stderr, push.stderr
    # ... said again when flank.yml's notify: changes
    (clone / "flank.yml").write_text(YML.replace("[failure, recovery]", "[failure]"))
    git("commit", "-qam", "notify on failure only", cwd=clone)
    push = subprocess.run(["git", "push", "flank", "main"], cwd=clone, capture_output=True, text=True)
    said = [line for line in push.stderr.splitlines() if "notify:" in line]
    assert len(said) == 1 and "warning: notify: nightly (failure) — but " in said[0], push.stderr

    # ... and still by validate and doctor, every time they are asked
    for _ in range(2):
        proc = run_flank("validate", cwd=clone)
        assert proc.returncode == 0 and "warning: notify: nightly (failure)" in proc.stderr, proc.stderr
        proc = run_flank("doctor", "--no-cron")
        assert "WARN  notify (demo): notify: nightly (failure)" in proc.stdout, proc.stdout

    assert run_flank("run", "demo", "nightly").returncode == 1
    record = json.loads((home / "demo" / "runs" / "nightly" / "1" / "run.json").read_text())
    assert (
        record["after_run"]["notify"]
        == "notify failure: not sent (no [notify.webhook] or [notify.email] in flank.toml)"
    )

    with open(home / "flank.toml", "a") as f:
        f.write('[notify.webhook]\nurl = "http://127.0.0.1:9/hook"\n')
    assert "notify:" not in run_flank("validate", cwd=clone).stderr
