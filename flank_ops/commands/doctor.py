"""flank doctor: check this VM's flank setup end to end and say what to fix.

One line per check (OK / FAIL / SKIP), a fix under each FAIL, exit 1 if any failed.
Network checks use the same settings and timeouts as the runs do, and change
nothing: S3 gets a probe object that is deleted at once, SMTP a login without a
message, the webhook a GET (a POST only with --send-test).
"""

from __future__ import annotations

import argparse
import functools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from flank_ops.config.suggest import did_you_mean
from flank_ops.deploy.setup_doctor import setup_checks
from flank_ops.errors import UserError
from flank_ops.executors.vm_check import doctor_problems
from flank_ops.git.gitcmd import run_git
from flank_ops.git.release_config import deployed_config
from flank_ops.hints import docs_anchor, docs_url, settings_docs
from flank_ops.notify.delivery import DeliveryError
from flank_ops.notify.destinations import nowhere_to_send
from flank_ops.notify.email import check_login, password_for, send_email
from flank_ops.notify.webhook import check_webhook, send_webhook
from flank_ops.paths import Home
from flank_ops.run.makefile import make_executable
from flank_ops.s3 import probe
from flank_ops.schedule.crontab import (
    CrontabError,
    crontab_enabled,
    remove_stale_blocks,
    running_cron_daemon,
    stale_blocks,
)
from flank_ops.settings import email_settings, load_settings, s3_settings, settings_for, webhook_settings
from flank_ops.settings_catalogue import unknown_keys
from flank_ops.site.dag_layout import dot_executable
from flank_ops.task.secrets import load_secrets

MIN_FREE_BYTES = 1024**3  # below 1 GiB, logs and releases will soon fill the disk


class Check(NamedTuple):
    status: str  # OK, FAIL, SKIP, or WARN (a fix worth doing; not counted as a problem)
    name: str
    detail: str
    fix: str | None = None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-cron",
        action="store_true",
        help="this VM runs schedules with `flank scheduler`, not cron: skip the cron checks",
    )
    parser.add_argument(
        "--send-test", action="store_true", help="also post a test message to the webhook and send a test email"
    )
    parser.add_argument(
        "--fix-crontab",
        action="store_true",
        help="remove the crontab blocks of FLANK_HOMEs or projects that no longer exist",
    )


def run(args: argparse.Namespace) -> int:
    home = Home()
    failed = 0
    if args.fix_crontab:
        _remove_stale_crontab_blocks()
    for check in run_checks(home, cron=not args.no_cron, send_test=args.send_test):
        print(f"{check.status:<5} {check.name}: {check.detail}", flush=True)
        if check.status == "FAIL":
            failed += 1
        if check.status in ("FAIL", "WARN") and check.fix:
            print(f"      fix: {check.fix}", flush=True)
    print("all checks passed" if not failed else f"{failed} problem{'s' if failed != 1 else ''} found")
    return 1 if failed else 0


def run_checks(home: Home, *, cron: bool = True, send_test: bool = False) -> Iterator[Check]:
    yield _guard("git", check_git)
    yield _guard("make", check_make)
    yield _guard("graphviz", check_dot)
    if cron:
        yield _guard("cron", check_cron_daemon)
        yield from check_crontab_blocks(home)
        yield _guard("crontab", check_stale_crontab_blocks)
    yield _guard("FLANK_HOME", lambda: check_home_writable(home))
    yield _guard("flank.toml", lambda: check_settings_keys(home))
    yield _guard("disk", lambda: check_disk(home))
    yield _guard("permissions", lambda: check_private_state(home))
    yield from check_integrations(home, send_test)
    yield from check_notify_destinations(home)
    yield from setup_checks(home, Check)
    yield from check_executors(home)  # issue 14


def check_executors(home: Home) -> Iterator[Check]:
    """Each executor configured in flank.toml ([executors.slurm], [executors.batch]) answers."""
    try:
        found = False
        for kind, label, problems in doctor_problems(home):
            found = True
            if problems:
                yield Check(
                    "FAIL",
                    f"executor {kind}{label}",
                    "; ".join(problems),
                    f"check [executors.{kind}] in {home.settings_file}",
                )
            else:
                yield Check("OK", f"executor {kind}{label}", "reachable, as configured")
        if not found:
            yield Check(
                "SKIP",
                "executors",
                f"none configured: tasks run on this VM ([executors.slurm] in {home.settings_file}: "
                f"see {settings_docs('[executors.slurm]')})",
            )
    except UserError as exc:
        yield Check("FAIL", "executors", exc.message, exc.hint)


def _guard(name: str, check: Callable[[], Check]) -> Check:
    """A check that itself breaks is a FAIL line, not a traceback."""
    try:
        return check()
    except UserError as exc:
        return Check("FAIL", name, exc.message, exc.hint)
    except Exception as exc:  # noqa: BLE001 - doctor reports everything it finds
        return Check("FAIL", name, f"{type(exc).__name__}: {exc}")


# --- tools ------------------------------------------------------------------------


def check_git() -> Check:
    proc = run_git(["--version"], check=False)
    return Check("OK", "git", proc.stdout.decode().strip())


def check_make() -> Check:
    try:
        exe = make_executable()
    except UserError as exc:
        return Check("FAIL", "make", exc.message, exc.hint)
    first = subprocess.run(
        [exe, "--version"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=10
    ).stdout.splitlines()[:1]
    version = first[0] if first else "unknown make"
    if "GNU Make" not in version:
        return Check(
            "FAIL", "make", f"{exe} is not GNU make ({version})", "install GNU make: sudo apt-get install make"
        )
    return Check("OK", "make", version)


def check_dot() -> Check:
    """Graphviz dot lays out the site's task graphs; without it the site lists the tasks."""
    exe = dot_executable()
    if exe is None:
        return Check(
            "FAIL",
            "graphviz",
            "dot is not installed: the site lists each pipeline's tasks instead of drawing the task graph",
            "install Graphviz: sudo apt-get install graphviz",
        )
    proc = subprocess.run([exe, "-V"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=10)
    return Check("OK", "graphviz", (proc.stdout.strip().splitlines() or ["dot"])[0])


def check_cron_daemon() -> Check:
    daemon = running_cron_daemon()
    if daemon:
        return Check("OK", "cron", f"{daemon} is running")
    return Check(
        "FAIL",
        "cron",
        "no cron daemon is running: scheduled runs will not happen",
        "start it (sudo systemctl enable --now cron), or keep `flank scheduler` running instead "
        "and use `flank doctor --no-cron`",
    )


def _installed_crontab() -> tuple[list[str] | None, str | None]:
    """The user's installed crontab lines, or (None, why not)."""
    exe = shutil.which("crontab")
    if exe is None:
        return None, "the crontab command is missing (install cron: sudo apt-get install cron)"
    proc = subprocess.run([exe, "-l"], capture_output=True, text=True, timeout=10)
    if proc.returncode != 0:
        if "no crontab" in proc.stderr.lower():
            return [], None
        return None, f"crontab -l failed: {proc.stderr.strip() or proc.returncode}"
    return [line.strip() for line in proc.stdout.splitlines()], None


def check_crontab_blocks(home: Home) -> Iterator[Check]:
    """Every project's generated schedule lines are in the installed crontab (unless flank.toml says not to)."""
    installed: list[str] | None = None
    error: str | None = None
    scheduled = 0
    for name in home.projects():
        try:
            wanted = [line.strip() for line in home.project(name).crontab_file.read_text().splitlines()]
        except FileNotFoundError:
            continue
        jobs = [line for line in wanted if line and not line.startswith("#")]
        if not jobs:
            continue
        scheduled += 1
        if not crontab_enabled(home.project(name)):
            yield Check(
                "SKIP",
                f"crontab ({name})",
                "off by flank.toml ([schedule] install_crontab = false): run `flank scheduler` to run the schedules",
            )
            continue
        if installed is None and error is None:
            installed, error = _installed_crontab()
        if installed is None:
            yield Check("FAIL", f"crontab ({name})", error or "cannot read the crontab")
            continue
        missing = [line for line in jobs if line not in installed]
        if missing:
            yield Check(
                "FAIL",
                f"crontab ({name})",
                f"{len(missing)} of {len(jobs)} schedule line{'s' if len(jobs) != 1 else ''} not installed "
                f"(first: {missing[0]})",
                f"push again (git push flank main) to reinstall it; compare `crontab -l` with "
                f"{home.project(name).crontab_file}",
            )
        else:
            yield Check(
                "OK", f"crontab ({name})", f"{len(jobs)} schedule line{'s' if len(jobs) != 1 else ''} installed"
            )
    if not scheduled:
        yield Check("SKIP", "crontab", "no project has a schedule")


def check_stale_crontab_blocks() -> Check:
    """flank blocks whose FLANK_HOME or project was deleted by hand still fire, every time, for nothing."""
    try:
        stale = stale_blocks()
    except CrontabError as exc:
        return Check("SKIP", "crontab", str(exc))
    if not stale:
        return Check("OK", "crontab", "no blocks left behind by deleted projects or FLANK_HOMEs")
    listed = "; ".join(f"{block.project} ({why})" for block, why in stale)
    return Check(
        "FAIL",
        "crontab",
        f"{len(stale)} block{'s' if len(stale) != 1 else ''} fire for nothing: {listed}",
        "remove them: flank doctor --fix-crontab",
    )


def _remove_stale_crontab_blocks() -> None:
    try:
        removed = remove_stale_blocks()
    except CrontabError as exc:
        raise UserError(str(exc)) from None
    for block, why in removed:
        print(f"removed the crontab block of {block.project} ({block.home}): {why}", flush=True)
    if not removed:
        print("no crontab blocks to remove", flush=True)


# --- FLANK_HOME -------------------------------------------------------------------


def check_settings_keys(home: Home) -> Check:
    """A misspelt flank.toml key is otherwise ignored without a word: name it, with the likely one."""
    if not home.settings_file.exists():
        return Check("SKIP", "flank.toml", f"no {home.settings_file} (every setting has its default)")
    unknown = unknown_keys(load_settings(home))
    if not unknown:
        return Check("OK", "flank.toml", "every key is one flank knows")
    where, key, known = unknown[0]
    more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
    hint = did_you_mean(key, known) or f"keys known there: {', '.join(known)}"
    return Check("FAIL", "flank.toml", f"unknown key {key!r} in {where} of {home.settings_file}{more}", hint)


def check_home_writable(home: Home) -> Check:
    if not home.root.is_dir():
        return Check(
            "FAIL",
            "FLANK_HOME",
            f"{home.root} does not exist",
            "create your first project: flank init NAME (or set FLANK_HOME)",
        )
    try:
        fd, probe = tempfile.mkstemp(dir=home.root, prefix=".flank-doctor-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        return Check(
            "FAIL",
            "FLANK_HOME",
            f"cannot write in {home.root} ({exc.strerror})",
            f"make it writable for {_user()}: sudo chown -R {_user()} {home.root}",
        )
    return Check("OK", "FLANK_HOME", f"{home.root} is writable")


def check_private_state(home: Home) -> Check:
    """Each project's folder and bare repo are the owner's only (a FLANK_HOME made by an older flank
    may be readable by every local user: logs, records, releases, the repo)."""
    names = home.projects()
    if not names:
        return Check("SKIP", "permissions", "no projects yet")
    open_to_others = []
    for name in names:
        paths = home.project(name)
        for folder in (paths.dir, paths.bare_repo):
            try:
                if folder.stat().st_mode & 0o077:
                    open_to_others.append(folder)
            except FileNotFoundError:
                continue
    if not open_to_others:
        return Check(
            "OK",
            "permissions",
            f"the state of {len(names)} project{'s' if len(names) != 1 else ''} is readable by you only",
        )
    listed = " ".join(str(f) for f in open_to_others)
    return Check(
        "FAIL",
        "permissions",
        f"readable by other users: {listed}",
        f"chmod -R go-rwx {listed} (see {docs_url('operating/files.md', docs_anchor('Who can read what'))})",
    )


def _user() -> str:
    return pwd.getpwuid(os.getuid()).pw_name


def check_disk(home: Home) -> Check:
    where = home.root
    while not where.exists() and where != where.parent:
        where = where.parent
    usage = shutil.disk_usage(where)
    free = f"{usage.free / 1024**3:.1f} GiB free of {usage.total / 1024**3:.1f} GiB on {where}"
    if usage.free < MIN_FREE_BYTES:
        return Check("FAIL", "disk", free, "free some space: `flank prune` removes old runs")
    return Check("OK", "disk", free)


# --- integrations -----------------------------------------------------------------


def _setting_scopes(home: Home) -> list[tuple[str | None, dict[str, Any]]]:
    """Settings as each project sees them (VM-wide defaults + its overrides), or VM-wide alone."""
    projects = home.projects()
    if not projects:
        return [(None, settings_for(home))]
    return [(name, settings_for(home, name)) for name in projects]


def _distinct(items: list[tuple[str | None, Any]]) -> list[tuple[str, Any]]:
    """Drop repeats of the same settings; name the project only when projects differ."""
    seen: dict[Any, str | None] = {}
    for project, value in items:
        if value is not None and value not in seen:
            seen[value] = project
    several = len(seen) > 1
    return [(f" ({project})" if several and project else "", value) for value, project in seen.items()]


def check_integrations(home: Home, send_test: bool) -> Iterator[Check]:
    scopes = _setting_scopes(home)
    for kind, read in (("s3", s3_settings), ("smtp", email_settings), ("webhook", webhook_settings)):
        found: list[tuple[str | None, Any]] = []
        broken = False
        for project, settings in scopes:
            try:
                value: Any = read(settings)
            except UserError as exc:
                broken = True
                yield Check("FAIL", kind + (f" ({project})" if project else ""), exc.message, exc.hint)
                continue
            if kind == "smtp" and value is not None:
                value = (value, project)  # the password may be a project secret
            found.append((project, value))
        targets = _distinct(found)
        if not targets and not broken:
            table = _TABLES[kind]
            yield Check("SKIP", kind, f"not configured ({table} in {home.settings_file}: see {settings_docs(table)})")
        for label, value in targets:
            yield _guard(kind + label, functools.partial(_check_one, home, kind, value, label, send_test))


def check_notify_destinations(home: Home) -> Iterator[Check]:
    """Each project whose deployed flank.yml asks for notifications has somewhere to send them."""
    for name in home.projects():
        paths = home.project(name)
        try:
            config = deployed_config(paths)
            warning = nowhere_to_send(config, settings_for(home, name), str(home.settings_file)) if config else None
        except UserError:
            continue  # an unreadable flank.yml or flank.toml: other checks and the push say it
        if warning:
            yield Check(
                "WARN", f"notify ({name})", warning, f"add [notify.webhook] or [notify.email] to {home.settings_file}"
            )


_TABLES = {"s3": "[s3]", "smtp": "[notify.email]", "webhook": "[notify.webhook]"}


def _check_one(home: Home, kind: str, value: Any, label: str, send_test: bool) -> Check:
    name = kind + label
    try:
        if kind == "s3":
            return Check("OK", name, probe(value))
        if kind == "smtp":
            settings, project = value
            password = password_for(settings, load_secrets(home.project(project)) if project else {})
            if send_test:
                send_email(
                    settings,
                    password,
                    "flank doctor: test message",
                    f"This is a test message from flank doctor on {socket.gethostname()}.\n",
                )
                return Check("OK", name, f"test email sent to {', '.join(settings.to)}")
            return Check("OK", name, check_login(settings, password))
        if send_test:
            send_webhook(value, f"flank doctor: test message from {socket.gethostname()}")
            return Check("OK", name, "test message posted")
        return Check("OK", name, check_webhook(value))
    except UserError as exc:  # S3 probe failures
        return Check("FAIL", name, exc.message, _FIXES[kind])
    except DeliveryError as exc:
        return Check("FAIL", name, str(exc), _FIXES[kind])


_FIXES = {
    "s3": "check [s3] in flank.toml and the AWS credentials of this user (env, ~/.aws, or the instance role)",
    "smtp": "check [notify.email] in flank.toml and the password (password_env names an env var or project secret)",
    "webhook": "check [notify.webhook] url in flank.toml and that this VM can reach it",
}
