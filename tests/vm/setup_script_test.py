"""The proof a new VM would give: `flank up`'s user data, run for real as root on this Debian machine for a
fresh Unix user, then a real `git push` over a real sshd to that user deploys and runs the example.

What differs from EC2, and why: no data volume is mounted (user_data(..., volume_id=None): the mount
lines are the one part needing a block device of its own); the apt step finds every package installed
(so it is a no-op here); flank is installed from a wheel of this checkout through pip's `--find-links`
(FLANK_PIP_OPTIONS) rather than the package index; the `flank` link goes to a folder of the test's own
(FLANK_BIN_DIR), never the machine's /usr/local/bin; without systemd as PID 1, the script says cron and
`flank serve` are the user's to start. The schedule is kept out of the new user's crontab (flank.toml).

It takes about a minute (building the wheels, a venv, R), so it is marked slow: `-m "not slow"` leaves
it out; tests/vm/userdata_test.py is the fast check of the same script.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

from helpers.cli import EXAMPLE_REPO, REPO_ROOT
from helpers.repos import git, make_repo
from helpers.sshd import PrivateSshd, sshd_available
from helpers.waiting import wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="the VM setup runs as root (it creates a user)"),
    pytest.mark.skipif(bool(sshd_available()), reason=sshd_available() or ""),
    pytest.mark.skipif(shutil.which("Rscript") is None, reason="the example's tasks need R"),
]


def _wheelhouse(folder: Path) -> None:
    """flank's wheel and its dependencies', for an install that needs no index (pip's cache makes it quick)."""
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--wheel-dir", str(folder), str(REPO_ROOT)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot build the wheels to install flank from (is the package index reachable?): {proc.stderr}")
    # readable by the new user whatever this process's umask (a test that ran flank's main() in-process
    # left flank's 077 behind): the folder and each wheel, explicitly
    folder.chmod(0o755)
    for wheel in folder.iterdir():
        wheel.chmod(0o644)


def _ended(pid: int) -> bool:
    """Gone, or a zombie nobody reaped yet (the detached runner's parent, the hook, is gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_user_data_sets_up_a_vm_that_a_push_deploys_to_and_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flank_ops.remote.ssh import parse_remote_url, probe_remote_flank
    from flank_ops.vm.userdata import user_data, vm_flank_home

    user = f"flank{uuid.uuid4().hex[:8]}"
    shared = Path(tempfile.mkdtemp(prefix="flank-vm-test-"))  # readable by the new user, unlike tmp_path
    os.chmod(shared, 0o755)
    try:
        _wheelhouse(shared / "wheels")
        script = user_data("demo", "flank-ops", None, user=user)
        env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": "/root",
            "FLANK_PIP_OPTIONS": f"--no-index --find-links {shared / 'wheels'}",
            "FLANK_BIN_DIR": str(shared / "bin"),
        }
        done = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
        home = Path(vm_flank_home(user))
        assert f"flank: VM set up for {user} (FLANK_HOME={home})" in done.stdout
        assert (shared / "bin" / "flank").resolve() == Path(f"/home/{user}/.flank-venv/bin/flank")
        assert (home / "demo.git" / "hooks" / "post-receive").is_file()
        entry = pwd.getpwnam(user)
        assert (home / "demo.git").stat().st_uid == entry.pw_uid
        (home / "flank.toml").write_text("[schedule]\ninstall_crontab = false\n")  # keep its crontab empty
        os.chown(home / "flank.toml", entry.pw_uid, entry.pw_gid)
        # running it again (a kept FLANK_HOME on a new instance) repairs, and changes nothing else
        again = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=600)
        assert again.returncode == 0, again.stdout + again.stderr

        # the test's sshd runs without PAM, which refuses a locked password (useradd's "!"): unlock it, with no
        # password to log in by (Debian's sshd uses PAM and lets the key in as it is)
        subprocess.run(["usermod", "-p", "*", user], check=True)
        with PrivateSshd(tmp_path / "sshd", user=user) as sshd:
            files = {str(p.relative_to(EXAMPLE_REPO)): p.read_text() for p in EXAMPLE_REPO.rglob("*") if p.is_file()}
            clone = make_repo(tmp_path / "sales-model", files, message="nightly sales model")
            url = sshd.url(home / "demo.git")
            git("remote", "add", "flank", url, cwd=clone)
            monkeypatch.setenv("GIT_SSH_COMMAND", sshd.ssh_command)
            pushed = git("push", "-o", "run=nightly", "flank", "main", cwd=clone)
            assert "remote: flank: flank.yml OK — 1 pipeline, 5 tasks" in pushed.stderr
            assert "remote: flank: deployed " in pushed.stderr
            record = home / "demo" / "runs" / "nightly" / "1" / "run.json"

            def finished() -> bool:
                try:
                    return json.loads(record.read_text())["status"] != "running"
                except (OSError, ValueError):
                    return False

            wait_for(finished, "the pushed run to finish", timeout=300)
            run = json.loads(record.read_text())
            assert run["status"] == "success"
            wait_for(lambda: _ended(run["runner"]["pid"]), "the runner's after-run steps to end")
            report = (home / "demo" / "persist" / "output" / "report.md").read_text()
            assert "| region | units | revenue |" in report
            # what `flank up` asks the VM over ssh, the same way
            code, out = probe_remote_flank(parse_remote_url(url), ["status", "demo"])
            assert code == 0, out
            assert "nightly" in out and "success" in out
            # up's readiness: `flank doctor` over ssh. This machine may run no cron daemon (a VM from flank up
            # does): then the wait reports doctor's verdict and where to look, instead of passing.
            from flank_ops.commands.up import _wait_until_ready
            from flank_ops.errors import UserError

            _, doctor = probe_remote_flank(parse_remote_url(url), ["doctor"])
            failing = [line for line in doctor.splitlines() if line.startswith("FAIL")]
            assert all(line.startswith("FAIL  cron") for line in failing), doctor
            try:
                _wait_until_ready(url, limit_s=0)
            except UserError as exc:
                assert f"the VM is not ready after 0 min (last: {len(failing)} problem" in exc.message
                assert "cloud-init-output.log" in (exc.hint or "")
                assert shutil.which("pgrep") and subprocess.run(["pgrep", "-x", "cron"]).returncode != 0
    finally:
        subprocess.run(["userdel", "--remove", "--force", user], capture_output=True)
        shutil.rmtree(shared, ignore_errors=True)
