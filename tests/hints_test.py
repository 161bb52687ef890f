"""flank_ops/hints.py: a hint printed through `flank remote` is a command for the laptop, or says it is
the VM's (polish d). Through `flank remote`, FLANK_REMOTE names the clone's git remote (remote/ssh.py)."""

from __future__ import annotations

import argparse

import pytest

from flank_ops import hints, main


@pytest.fixture
def via_remote(monkeypatch: pytest.MonkeyPatch):
    def come_through(remote: str | None) -> None:
        if remote is None:
            monkeypatch.delenv(hints.REMOTE_ENV, raising=False)
        else:
            monkeypatch.setenv(hints.REMOTE_ENV, remote)
        hints.take_remote_from_env()

    yield come_through
    come_through(None)


def test_a_vm_wide_hint_is_typed_as_where_it_is_printed(via_remote) -> None:
    via_remote(None)  # on the VM
    assert hints.flank_vm_command("cost prices", "--region", "eu-west-2") == "flank cost prices --region eu-west-2"
    assert hints.flank_vm_command("cost apply") == "flank cost apply"
    via_remote("flank")  # on the laptop, through `flank remote`
    assert hints.flank_vm_command("cost prices", "--region", "eu-west-2") == (
        "flank remote cost prices --region eu-west-2"
    )
    assert hints.flank_vm_command("cost plan") == "flank remote cost plan"
    assert hints.flank_vm_command("cost apply") == "flank cost apply on the VM"  # not forwarded: said so
    via_remote("staging")
    assert hints.flank_vm_command("cost plan") == "flank remote cost plan --remote staging"


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(actions[0].choices) if actions else {}


def test_the_verbs_hints_send_through_remote_are_the_verbs_flank_remote_forwards() -> None:
    # one list of what `flank remote` forwards: a hint never names a verb it refuses, nor misses one it takes
    remote = _subcommands(main.build_parser())["remote"]
    verbs = _subcommands(remote)
    assert set(verbs) == hints.REMOTE_VERBS | set(hints.REMOTE_VM_VERBS)
    cost = next(a for a in verbs["cost"]._actions if a.dest == "action")
    assert set(cost.choices or ()) == hints.REMOTE_VM_VERBS["cost"]
