"""flank secrets set|list|unset through the real CLI."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from helpers.cli import run_flank

pytestmark = pytest.mark.slow


def test_set_list_unset(flank_home: Path) -> None:
    run_flank("init", "demo", check=True)
    proc = run_flank("secrets", "set", "demo", "DB_PASSWORD", input="correct horse\n")
    assert proc.returncode == 0, proc.stderr
    assert "set DB_PASSWORD for demo" in proc.stdout and "correct horse" not in proc.stdout
    secrets_env = flank_home / "demo" / "secrets.env"
    assert "DB_PASSWORD=correct horse\n" in secrets_env.read_text()
    assert stat.S_IMODE(secrets_env.stat().st_mode) == 0o600

    run_flank("secrets", "set", "demo", "API_KEY", input="k3y", check=True)
    listed = run_flank("secrets", "list", "demo", check=True).stdout
    assert listed.split() == ["API_KEY", "DB_PASSWORD"]
    assert "correct horse" not in listed and "k3y" not in listed

    run_flank("secrets", "unset", "demo", "API_KEY", check=True)
    assert run_flank("secrets", "list", "demo", check=True).stdout.split() == ["DB_PASSWORD"]


def test_mistakes_get_a_clear_message(flank_home: Path) -> None:
    run_flank("init", "demo", check=True)
    cases = [
        (("secrets", "set", "nope", "KEY"), "v", "no project 'nope'"),
        (("secrets", "set", "demo", "bad-name"), "v", "invalid secret name 'bad-name'"),
        (("secrets", "set", "demo", "KEY"), "", "no value given for KEY"),
        (("secrets", "unset", "demo", "MISSING"), None, "no secret 'MISSING'"),
    ]
    for args, stdin, message in cases:
        proc = run_flank(*args, input=stdin)
        assert proc.returncode == 1 and message in proc.stderr, (args, proc.stderr)
        assert "Traceback" not in proc.stderr
    assert not (flank_home / "demo" / "secrets.env").exists()
