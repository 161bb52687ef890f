"""The address the VM's hints show when flank runs through `flank remote` (FLANK_SSH_ADDRESS): the host and port
the laptop's git remote names, an IPv6 one included (the third trial: its tunnel hint lost the `-p`)."""

from __future__ import annotations

import pytest

from flank_ops import hints
from flank_ops.remote import address
from flank_ops.remote.ssh import RemoteProject, host_port


@pytest.mark.parametrize(
    "destination,port,sent",
    [
        ("ada@vm.example", None, "vm.example"),
        ("ada@vm.example", 2222, "vm.example:2222"),
        ("ada@[2001:db8::7]", None, "2001:db8::7"),
        ("ada@[2001:db8::7]", 2222, "[2001:db8::7]:2222"),
    ],
)
def test_the_address_sent_reads_back_as_the_host_and_port_of_the_remote(
    destination: str, port: int | None, sent: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = RemoteProject(destination, port, "flank/p.git", "flank", "p")
    assert host_port(target) == sent
    host = destination.rpartition("@")[2].strip("[]")
    assert hints.host_and_port(sent) == (host, port)
    monkeypatch.setenv(hints.ADDRESS_ENV, sent)
    monkeypatch.setenv(hints.REMOTE_ENV, "flank")
    hints.take_remote_from_env()
    try:
        tunnel = address.vm_address({}, "ada").tunnel(8083)
    finally:
        monkeypatch.delenv(hints.ADDRESS_ENV, raising=False)
        hints.take_remote_from_env()  # forget it again
    assert (f"-p {port}" in tunnel) == (port is not None), tunnel
    assert host in tunnel
