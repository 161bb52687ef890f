"""How the user reaches this VM over ssh: the one home of the host, port and user in the hints flank
prints (the git remote URL `flank init` prints, the ssh tunnel to the status site, `ssh vm flank`).

In order of precedence:
1. flank.toml's [ssh] table (host, port, user): for a VM behind NAT, a jump host or a DNS name;
2. what the user's own ssh connection used: the laptop's git remote URL, which `flank remote` passes
   along (FLANK_SSH_ADDRESS, see hints.py), else SSH_CONNECTION ("client_ip client_port
   server_ip server_port": set by sshd in a push's hooks and in any ssh session);
3. this machine's name, port 22: its fully qualified name, or its host name when the resolver
   answers a loopback name for it (`127.0.0.1 localhost vm` in /etc/hosts: `localhost` in a hint
   would send the laptop to itself).
"""

from __future__ import annotations

import os
import shlex
import socket
from typing import Any, NamedTuple

from flank_ops.hints import host_and_port, via_address
from flank_ops.settings import ssh_settings


class SshAddress(NamedTuple):
    user: str
    host: str
    port: int | None  # None: ssh's default (22)

    @property
    def destination(self) -> str:
        return f"{self.user}@{self.host}" if self.user else self.host

    def url(self, path: str) -> str:
        """ssh://user@host[:port]/abs/path (an IPv6 address in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = f":{self.port}" if self.port else ""
        return f"ssh://{self.user + '@' if self.user else ''}{host}{port}{path}"

    def ssh(self, *options: str) -> str:
        """`ssh [OPTIONS] [-p PORT] user@host` as the user types it."""
        return shlex.join(["ssh", *options, *(["-p", str(self.port)] if self.port else []), self.destination])

    def tunnel(self, local_port: int) -> str:
        """The ssh command that forwards `local_port` on the laptop to 127.0.0.1:`local_port` here."""
        return self.ssh("-L", f"{local_port}:127.0.0.1:{local_port}")


def login_user() -> str:
    import getpass

    return os.environ.get("USER") or os.environ.get("LOGNAME") or getpass.getuser()


def _port(value: Any) -> int | None:
    try:
        port = int(value)
    except (TypeError, ValueError):
        return None
    return None if port == 22 or not 0 < port < 65536 else port


def vm_address(settings: dict[str, Any], user: str | None = None) -> SshAddress:
    """The address hints should show for this VM (see the module's docstring); `user` defaults to
    the user flank runs as (the one who pushes: the hooks run as them)."""
    table = ssh_settings(settings)
    user = table.get("user") or user or login_user()
    if table.get("host"):
        return SshAddress(user, table["host"], _port(table.get("port")))
    passed = via_address()  # the laptop's git remote: host[:port] as the user wrote it
    if passed:
        host, port = host_and_port(passed)
        return SshAddress(user, host or passed, _port(table.get("port") or port))
    connection = os.environ.get("SSH_CONNECTION", "").split()
    if len(connection) == 4:
        return SshAddress(user, connection[2], _port(table.get("port") or connection[3]))
    return SshAddress(user, machine_name(), _port(table.get("port")))


LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost", "ip6-loopback"})


def machine_name() -> str:
    """This machine's name as another machine may reach it (see the module's docstring, 3.)."""
    fqdn = socket.getfqdn()
    return socket.gethostname() if fqdn.split(".")[0] in LOOPBACK_NAMES else fqdn
