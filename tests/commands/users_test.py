"""flank users (issue 23 item 5): who may act from the site; passwords as scrypt hashes in a 0600 file."""

from __future__ import annotations

import json
import os
import stat

import pytest

from flank_ops.paths import Home
from flank_ops.site import auth
from helpers.cli import run_flank


def _users() -> dict:
    return json.loads(Home().users_file.read_text())["users"]


@pytest.mark.slow
def test_add_list_passwd_remove() -> None:
    run_flank("init", "demo", check=True)
    added = run_flank("users", "add", "ada", "--project", "demo", input="correct horse\n", check=True)
    assert "added ada (runner)" in added.stdout
    run_flank("users", "add", "root", "--role", "admin", input="battery staple\n", check=True)
    path = Home().users_file
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert "correct horse" not in text and "battery staple" not in text
    entry = _users()["ada"]
    assert entry["role"] == "runner" and entry["projects"] == ["demo"]
    assert entry["salt"] != _users()["root"]["salt"]  # a salt of its own
    users = auth.load_users(Home())
    assert auth.authenticate(users, "ada", "correct horse") == users["ada"]
    assert auth.authenticate(users, "ada", "battery staple") is None
    assert auth.authenticate(users, "nobody", "correct horse") is None

    listed = run_flank("users", "list", check=True).stdout
    assert "ada\trunner\tdemo" in listed and "root\tadmin\tall projects" in listed

    run_flank("users", "passwd", "ada", input="new password!\n", check=True)
    users = auth.load_users(Home())
    assert auth.authenticate(users, "ada", "new password!") and not auth.authenticate(users, "ada", "correct horse")

    run_flank("users", "remove", "ada", check=True)
    assert "ada" not in _users()


@pytest.mark.slow
def test_bad_input_is_one_line_and_changes_nothing() -> None:
    run_flank("init", "demo", check=True)
    cases = [
        (("users", "add", "ada", "--project", "dmeo"), "pw-long-enough\n", "no project 'dmeo'", "did you mean 'demo'"),
        (("users", "add", "ada"), "pw-long-enough\n", "a runner needs the projects", "--project P"),
        (("users", "add", "ada", "--project", "demo"), "short\n", "too short", ""),
        (("users", "add", "ada", "--project", "demo"), "", "no password given", ""),
        (("users", "add", "../x", "--project", "demo"), "pw-long-enough\n", "is not a user name", ""),
        (("users", "remove", "ghost"), "", "no user 'ghost'", ""),
    ]
    for args, stdin, message, hint in cases:
        proc = run_flank(*args, input=stdin)
        assert proc.returncode == 1, (args, proc.stderr)
        assert message in proc.stderr and hint in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
        assert not Home().users_file.exists()
    run_flank("users", "add", "ada", "--project", "demo", input="pw-long-enough\n", check=True)
    before = Home().users_file.read_bytes()
    again = run_flank("users", "add", "ada", "--project", "demo", input="other-password\n")
    assert again.returncode == 1 and "user 'ada' exists" in again.stderr
    assert Home().users_file.read_bytes() == before


def test_the_password_is_never_an_argument() -> None:
    proc = run_flank("users", "add", "ada", "--password", "x")
    assert proc.returncode != 0 and "unrecognized arguments" in proc.stderr
    assert not os.path.exists(Home().users_file)
