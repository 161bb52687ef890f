"""The crontab block, installed with the real `crontab` command into the machine user's crontab."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from flank_ops.config.model import Config, Pipeline
from flank_ops.errors import UserError
from flank_ops.fileio import locked
from flank_ops.paths import Home, ProjectPaths
from flank_ops.schedule.crontab import (
    NO_CRONTAB,
    CrontabError,
    cron_daemon_running,
    cron_lines,
    crontab_lock,
    install_schedule,
    read_crontab,
    write_crontab,
)
from helpers.user_crontab import user_crontab  # noqa: F401 - fixture

USER_LINES = (
    "# my own jobs\n"
    "MAILTO=ada@example.org\n"
    "\n"
    "0 5 * * * /usr/bin/backup --to /mnt/x   \n"  # trailing blanks kept
    "*/10 * * * *\techo '50\\% done' >/dev/null\n"
)


def config(**schedules: tuple[str, ...] | tuple[tuple[str, ...], str]) -> Config:
    pipelines = {}
    for name, value in schedules.items():
        sched, tz = value if len(value) == 2 and isinstance(value[0], tuple) else (value, None)
        pipelines[name] = Pipeline(name=name, tasks={}, schedule=sched, timezone=tz)
    return Config(pipelines=pipelines)


def project(flank_home: Path, name: str = "demo") -> ProjectPaths:
    return Home(flank_home).project(name)


def crontab_now() -> str:
    return read_crontab() or ""


def block_of(text: str, paths: ProjectPaths) -> list[str]:
    lines = text.splitlines()
    begin = lines.index(f"# >>> flank {paths.name} ({paths.home.root}) >>>")
    end = lines.index(f"# <<< flank {paths.name} ({paths.home.root}) <<<")
    return lines[begin : end + 1]


def daemon_warnings(warnings: list[str]) -> list[str]:
    """The only warning a working install may give: cron's daemon is not running on this machine."""
    return [w for w in warnings if "cron daemon does not seem to be running" not in w]


def test_block_is_installed_next_to_user_lines_kept_byte_for_byte(user_crontab, flank_home: Path) -> None:
    write_crontab(USER_LINES)
    paths = project(flank_home)
    warnings = install_schedule(paths, config(nightly=("0 2 * * *",), hourly=("@hourly",)))
    assert daemon_warnings(warnings) == []
    installed = crontab_now()
    assert installed.startswith(USER_LINES)
    block = block_of(installed, paths)
    assert installed == USER_LINES + "\n".join(block) + "\n"
    commands = [line for line in block if not line.startswith("#")]
    assert len(commands) == 3
    assert commands[0].startswith("0 2 * * * FLANK_HOME=")
    assert commands[1].startswith("@hourly FLANK_HOME=")
    assert commands[2].startswith("@reboot FLANK_HOME=") and commands[2].endswith(" catchup --boot demo")
    for line in commands:
        assert f"FLANK_HOME={flank_home} " in line
        assert " PATH=" in line
        flank = line.split(" run demo ")[0].split(" catchup --boot demo")[0].split()[-1]
        assert os.path.isabs(flank) and os.access(flank, os.X_OK)  # absolute: cron's PATH is bare
    assert commands[0].endswith(" run demo nightly --trigger schedule")
    # the file beside the project holds exactly the installed block
    assert paths.crontab_file.read_text() == "\n".join(block) + "\n"


def test_block_is_updated_in_place_and_removed_when_flank_yml_drops_schedules(user_crontab, flank_home: Path) -> None:
    paths = project(flank_home)
    write_crontab(USER_LINES)
    install_schedule(paths, config(nightly=("0 2 * * *",)))
    write_crontab(crontab_now() + "15 3 * * * /usr/bin/added-after-flank\n")  # the user adds a line later
    install_schedule(paths, config(nightly=("45 4 * * *",), weekly=("@weekly",)))
    text = crontab_now()
    assert text.startswith(USER_LINES)
    assert text.endswith("15 3 * * * /usr/bin/added-after-flank\n")
    block = "\n".join(block_of(text, paths))
    assert "45 4 * * * " in block and "@weekly " in block and "0 2 * * *" not in block
    assert text.count("# >>> flank demo") == 1
    # no schedules left: the block goes, the user's lines are exactly as they were
    assert install_schedule(paths, config(nightly=())) == []
    assert crontab_now() == USER_LINES + "15 3 * * * /usr/bin/added-after-flank\n"
    assert paths.crontab_file.read_text() == "# project demo: no schedules in flank.yml\n"


def test_user_without_crontab_gets_none_back(user_crontab, flank_home: Path) -> None:
    write_crontab(None)
    paths = project(flank_home)
    install_schedule(paths, config(nightly=("0 2 * * *",)))
    assert "# >>> flank demo" in crontab_now()
    assert install_schedule(paths, config(nightly=())) == []  # the schedules taken out of flank.yml
    assert read_crontab() is None  # "no crontab for ...", as before flank


def test_projects_and_flank_homes_never_touch_each_other(user_crontab, tmp_path: Path) -> None:
    write_crontab(USER_LINES)
    a = Home(tmp_path / "home-one").project("alpha")
    b = Home(tmp_path / "home-one").project("beta")
    a2 = Home(tmp_path / "home-two").project("alpha")  # same project name, another FLANK_HOME
    for paths, expr in ((a, "0 1 * * *"), (b, "0 2 * * *"), (a2, "0 3 * * *")):
        install_schedule(paths, config(nightly=(expr,)))
    text = crontab_now()
    assert [line for line in text.splitlines() if line.startswith("# >>>")] == [
        f"# >>> flank alpha ({tmp_path / 'home-one'}) >>>",
        f"# >>> flank beta ({tmp_path / 'home-one'}) >>>",
        f"# >>> flank alpha ({tmp_path / 'home-two'}) >>>",
    ]
    install_schedule(a, config(nightly=()))
    text = crontab_now()
    assert "0 1 * * *" not in text and "0 2 * * *" in text and "0 3 * * *" in text
    assert f"FLANK_HOME={tmp_path / 'home-two'} " in "\n".join(block_of(text, a2))
    install_schedule(b, config(nightly=()))
    install_schedule(a2, config(nightly=()))
    assert crontab_now() == USER_LINES


def test_percent_is_escaped_and_the_line_runs_under_crons_bare_environment(user_crontab, tmp_path: Path) -> None:
    paths = Home(tmp_path / "50%off home").project("demo")
    install_schedule(paths, config(nightly=("0 2 * * *",)))
    (line, reboot) = [x for x in block_of(crontab_now(), paths) if not x.startswith("#")]
    assert reboot.startswith("@reboot ") and "50\\%off" in reboot
    assert "50\\%off" in line and "%" not in line.replace("\\%", "")
    # Run the command as cron would: \% back to %, /bin/sh -c, bare environment. With no such
    # project deployed, flank itself answers, which proves the paths and FLANK_HOME got through.
    command = line.split(" ", 5)[5].replace("\\%", "%")
    proc = subprocess.run(
        ["/bin/sh", "-c", command], env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}, capture_output=True, text=True
    )
    assert proc.returncode == 1, proc.stderr
    assert f"no project 'demo' in {tmp_path / '50%off home'}" in proc.stderr


def test_no_crontab_command_is_a_warning_not_an_error(
    flank_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # a machine without cron: `crontab` is not on PATH
    paths = project(flank_home)
    assert install_schedule(paths, config(nightly=("0 2 * * *",))) == [NO_CRONTAB]
    assert "no crontab command: install cron (apt-get install cron) or run `flank scheduler`" in NO_CRONTAB
    assert "0 2 * * * " in paths.crontab_file.read_text()  # the block is still written for reading
    assert install_schedule(paths, config(nightly=())) == []  # nothing scheduled: nothing to warn about


def test_cron_daemon_not_running_is_a_warning(user_crontab, flank_home: Path) -> None:
    warnings = install_schedule(project(flank_home), config(nightly=("0 2 * * *",)))
    if cron_daemon_running():
        assert warnings == []
    else:
        assert warnings == [
            "the cron daemon does not seem to be running, so schedules will not fire: start it "
            "(service cron start) or run `flank scheduler`"
        ]


def test_crontab_refusing_is_reported(user_crontab) -> None:
    with pytest.raises(CrontabError, match="the crontab command refused flank's schedule .*missing newline"):
        write_crontab("0 2 * * * true")  # real crontab refuses a file without a final newline


def test_damaged_block_is_left_alone_with_a_warning(user_crontab, flank_home: Path) -> None:
    paths = project(flank_home)
    damaged = USER_LINES + f"# >>> flank demo ({flank_home}) >>>\n0 1 * * * something\n"
    write_crontab(damaged)
    warnings = install_schedule(paths, config(nightly=("0 2 * * *",)))
    assert any("has its first line but not its last" in w for w in warnings)
    assert crontab_now() == damaged
    write_crontab(USER_LINES)


def test_guarded_lines_for_a_zone_other_than_the_vms(flank_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    paths = project(flank_home)
    lines = cron_lines(
        paths,
        config(
            plain=("0 2 * * *",),
            utc=(("0 3 * * *",), "Etc/UTC"),  # another name for the VM's zone: plain
            london=(("30 1 * * *", "@hourly"), "Europe/London"),
            india=(("15 9 * * 1-5",), "Asia/Kolkata"),  # half-hour offset: every minute is a candidate
            twice=("0 2 * * *", "0 */6 * * *"),
        ),
    )
    by_when = [(line.when, line.command.split(" run ")[1]) for line in lines]
    assert by_when == [
        ("0 2 * * *", "demo plain --trigger schedule"),
        ("0 3 * * *", "demo utc --trigger schedule"),
        ("0,30 * * * *", "demo london --trigger schedule --if-due '30 1 * * *'"),
        ("0 * * * *", "demo london --trigger schedule --if-due @hourly"),
        ("* * * * *", "demo india --trigger schedule --if-due '15 9 * * 1-5'"),
        ("0 2 * * *", "demo twice --trigger schedule --if-due '0 2 * * *'"),
        ("0 */6 * * *", "demo twice --trigger schedule --if-due '0 */6 * * *'"),
    ]
    monkeypatch.setenv("TZ", "Europe/London")  # a VM in London: no guard needed
    (line,) = cron_lines(paths, config(london=(("30 1 * * *",), "Europe/London")))
    assert line.when == "30 1 * * *" and "--if-due" not in line.command


def test_git_exec_dir_is_left_out_of_the_saved_path(flank_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    git_dir = subprocess.run(["git", "--exec-path"], capture_output=True, text=True).stdout.strip()
    monkeypatch.setenv("PATH", os.pathsep.join([git_dir, "/opt/R/bin", "/usr/bin", "/bin", "/usr/bin"]))
    (line,) = cron_lines(project(flank_home), config(nightly=("0 2 * * *",)))
    assert " PATH=/opt/R/bin:/usr/bin:/bin " in line.command
    assert shutil.which("git")  # sanity: the test ran with a git


def test_install_crontab_false_in_flank_toml_leaves_the_crontab_alone(user_crontab, flank_home: Path) -> None:
    write_crontab(USER_LINES)
    flank_home.mkdir(parents=True, exist_ok=True)
    (flank_home / "flank.toml").write_text("[schedule]\ninstall_crontab = false\n")
    paths = project(flank_home)
    warnings = install_schedule(paths, config(nightly=("0 2 * * *",)))
    assert crontab_now() == USER_LINES
    assert len(warnings) == 1 and "flank scheduler" in warnings[0] and "install_crontab = false" in warnings[0]
    # the block is still written beside the project, for a person to read or install by hand
    assert "0 2 * * * FLANK_HOME=" in paths.crontab_file.read_text()
    assert install_schedule(paths, config(nightly=())) == []


def test_relative_and_empty_path_entries_are_left_out_of_the_saved_path(
    flank_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `.` / an empty entry / `bin` would make cron look programs up in the folder the run starts in
    monkeypatch.setenv("PATH", os.pathsep.join([".", "", "bin", "/opt/R/bin", "./tools", "/usr/bin", "/bin"]))
    (line,) = cron_lines(project(flank_home), config(nightly=("0 2 * * *",)))
    assert " PATH=/opt/R/bin:/usr/bin:/bin " in line.command


def test_the_crontab_lock_is_in_a_folder_no_other_user_can_write(flank_home: Path) -> None:
    lock = crontab_lock()
    for folder in lock.parents:
        st = folder.stat()
        if st.st_uid == os.getuid():
            break
        # folders above the account's own (/, /home) are root's and not writable by others
        assert st.st_uid == 0 and not st.st_mode & 0o022, folder
    parent = lock.parent.stat() if lock.parent.exists() else None
    if parent is not None:
        assert parent.st_uid == os.getuid() and not parent.st_mode & 0o002
    assert not str(lock).startswith(tempfile.gettempdir() + "/")


def test_a_lock_file_planted_as_a_symlink_is_not_followed(flank_home: Path, tmp_path: Path) -> None:
    target = tmp_path / "victim"
    lock = tmp_path / "locks" / "crontab.lock"
    lock.parent.mkdir()
    lock.symlink_to(target)
    with pytest.raises(UserError, match="is a symbolic link"), locked(lock):
        pass
    assert not target.exists()  # nothing created through the link
