"""A private sshd on 127.0.0.1 for tests and benches: pushes and `flank remote` over real ssh.

    with PrivateSshd(tmp_dir, env={"FLANK_HOME": ...}) as sshd:
        sshd.url("/path/to/NAME.git")    # ssh://user@127.0.0.1:PORT/path/to/NAME.git
        sshd.ssh_command                  # for GIT_SSH_COMMAND: key, no host-key prompts

Its own host key, client key, authorized_keys and config, all in tmp_dir; it logs in
the current user only, by that key. `env` is set in every session (sshd's SetEnv),
e.g. the test's isolated git identity. Stopped by its pid on exit.

Run as root, sshd needs its privilege-separation folder /run/sshd, which Debian's
service creates at start; it is created here too when missing (as the service would).
"""

from __future__ import annotations

import getpass
import os
import shlex
import shutil
import socket
import subprocess
import time
from pathlib import Path

from helpers.ports import free_port

SSHD = "/usr/sbin/sshd"


def sshd_available() -> str | None:
    """Why a private sshd cannot run here, or None when it can."""
    if not (shutil.which("sshd") or os.access(SSHD, os.X_OK)):
        return "sshd is not installed (apt-get install openssh-server)"
    if not shutil.which("ssh") or not shutil.which("ssh-keygen"):
        return "the ssh client is not installed (apt-get install openssh-client)"
    return None


def _quote_setenv(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class PrivateSshd:
    def __init__(self, workdir: Path, env: dict[str, str] | None = None, user: str | None = None) -> None:
        self.dir = Path(workdir)
        self.env = dict(env or {})
        self.user = user or getpass.getuser()  # another user (root only): its key goes to its ~/.ssh
        self.port = 0
        self.proc: subprocess.Popen | None = None

    @property
    def key(self) -> Path:
        return self.dir / "client_key"

    @property
    def ssh_options(self) -> list[str]:
        return [
            "-i",
            str(self.key),
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            f"UserKnownHostsFile={os.devnull}",
            "-o",
            "LogLevel=ERROR",
            "-F",
            os.devnull,
        ]

    @property
    def ssh_command(self) -> str:
        """A GIT_SSH_COMMAND value: ssh with this server's key and no host-key questions."""
        return shlex.join(["ssh", *self.ssh_options])

    def url(self, path: str | Path) -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}{path}"

    def start(self) -> PrivateSshd:
        self.dir.mkdir(parents=True, exist_ok=True)
        for name in ("host_key", "client_key"):
            if not (self.dir / name).exists():
                subprocess.run(
                    ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.dir / name)],
                    check=True,
                    stdout=subprocess.DEVNULL,
                )
        authorized = self.dir / "authorized_keys"
        if self.user != getpass.getuser():  # sshd reads another user's keys as that user: in its own home
            import pwd

            entry = pwd.getpwnam(self.user)
            authorized = Path(entry.pw_dir) / ".ssh" / "authorized_keys"
            authorized.parent.mkdir(mode=0o700, exist_ok=True)
            os.chown(authorized.parent, entry.pw_uid, entry.pw_gid)
        shutil.copyfile(self.dir / "client_key.pub", authorized)
        if self.user != getpass.getuser():
            os.chown(authorized, entry.pw_uid, entry.pw_gid)
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        self.port = free_port()
        config = [
            f"ListenAddress 127.0.0.1:{self.port}",
            f"HostKey {self.dir / 'host_key'}",
            f"AuthorizedKeysFile {authorized}",
            f"AllowUsers {self.user}",
            "PidFile none",
            "StrictModes no",  # the keys live in a temp dir
            "UsePAM no",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            "AcceptEnv none",
        ]
        if self.env:
            config.append("SetEnv " + " ".join(f"{k}={_quote_setenv(v)}" for k, v in self.env.items()))
        (self.dir / "sshd_config").write_text("\n".join(config) + "\n")
        sshd = shutil.which("sshd") or SSHD
        self.proc = subprocess.Popen(
            [sshd, "-D", "-e", "-f", str(self.dir / "sshd_config")],
            stdout=subprocess.DEVNULL,
            stderr=open(self.dir / "sshd.log", "wb"),
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited: {(self.dir / 'sshd.log').read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)  # polling for the port, with a deadline
        self.stop()
        raise RuntimeError("sshd did not start listening")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> PrivateSshd:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
