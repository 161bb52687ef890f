"""secrets.env (0600, atomic) and masking of secret values."""
from __future__ import annotations

import stat
from pathlib import Path

import pytest

from flank_ops.errors import UserError
from flank_ops.paths import Home
from flank_ops.run.secrets import load_secrets, mask, set_secret, unset_secret


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


@pytest.mark.parametrize("name,value", [("1BAD", "v"), ("has-dash", "v"), ("FLANK_RUN_ID", "v"),
                                        ("OK", ""), ("OK", "two\nlines")])
def test_bad_secrets_are_refused(flank_home: Path, name: str, value: str) -> None:
    with pytest.raises(UserError):
        set_secret(Home().project("demo"), name, value)
