"""secrets.env (0600, atomic) and masking of secret values."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from flank_ops.errors import UserError
from flank_ops.paths import Home
from flank_ops.task.secrets import load_secrets, mask, set_secret, unset_secret
from helpers.cli import REPO_ROOT, run_flank


def test_mask_replaces_whole_values_longest_first() -> None:
    secrets = {"A": "hunter2", "B": "hunter2-extended", "EMPTY": ""}
    assert mask("pw=hunter2-extended and hunter2.", secrets) == "pw=*** and ***."
    assert mask("nothing here", ["x" * 0]) == "nothing here"
    assert mask("a b", ["a", "b"]) == "*** ***"


def test_secrets_file_is_private_and_round_trips(flank_home: Path) -> None:
    paths = Home().project("demo")
    set_secret(paths, "DB_PASSWORD", "p=w with spaces#")
    set_secret(paths, "TOKEN", "t0k")
    assert stat.S_IMODE(paths.secrets_env.stat().st_mode) == 0o600
    assert load_secrets(paths) == {"DB_PASSWORD": "p=w with spaces#", "TOKEN": "t0k"}
    assert unset_secret(paths, "TOKEN") and not unset_secret(paths, "TOKEN")
    assert load_secrets(paths) == {"DB_PASSWORD": "p=w with spaces#"}
    assert not list(paths.secrets_env.parent.glob(".secrets.env.*"))  # no temp files left


@pytest.mark.parametrize(
    "name,value",
    [
        ("1BAD", "v"),
        ("has-dash", "v"),
        ("FLANK_RUN_ID", "v"),
        ("OK", ""),
        ("OK", "nul\0byte"),
        ("MAKEFLAGS", "v"),
        ("SHELL", "v"),
        ("MAKEFILES", "v"),
    ],
)
def test_bad_secrets_are_refused(flank_home: Path, name: str, value: str) -> None:
    with pytest.raises(UserError):
        set_secret(Home().project("demo"), name, value)


AWKWARD_VALUES = {
    "VT": "a\x0bb",
    "FF": "\x0c",
    "LS": "lspart1\u2028S_INJECTED=lspart2",
    "NEL": "x\x85y",
    "PS": "p\u2029q",
    "SEPS": "\x1c\x1d\x1e",
    "MULTI": "two\nlines\r\nand a CR\r",
    "SPACED": "  spaced  ",
    "HASH": "#not a comment",
    "EQUALS": "=x=",
    "NOT_UTF8": os.fsdecode(b"caf\xe9 \xff"),
    "BOM": "\ufeffx",
    "PLAIN": "p=w with spaces#",
}


def test_any_value_round_trips_and_never_defines_another_secret(flank_home: Path) -> None:
    paths = Home().project("demo")
    for name, value in AWKWARD_VALUES.items():
        set_secret(paths, name, value)
    assert load_secrets(paths) == AWKWARD_VALUES
    assert stat.S_IMODE(paths.secrets_env.stat().st_mode) == 0o600
    assert "PLAIN=p=w with spaces#\n" in paths.secrets_env.read_text()  # plain values stay readable


def test_secrets_files_of_earlier_versions_still_read(flank_home: Path) -> None:
    paths = Home().project("demo")
    paths.secrets_env.parent.mkdir(parents=True)
    paths.secrets_env.write_bytes(b"# flank secrets\nA=1\nB=p=w \xe2\x80\xa8still B\n\nC = spaced key\r\n")
    assert load_secrets(paths) == {"A": "1", "B": "p=w \u2028still B", "C": " spaced key"}


@pytest.mark.slow
def test_cli_set_keeps_the_bytes_from_stdin(flank_home: Path) -> None:
    run_flank("init", "demo", check=True)
    value = b"lspart1\xe2\x80\xa8S_INJECTED=lspart2\x0b\x0c\xc2\x85 \xff end"
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "flank_ops", "secrets", "set", "demo", "TOKEN"],
        input=value + b"\n",
        env=env,
        capture_output=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert run_flank("secrets", "list", "demo").stdout == "TOKEN\n"
    assert os.fsencode(load_secrets(Home().project("demo"))["TOKEN"]) == value
