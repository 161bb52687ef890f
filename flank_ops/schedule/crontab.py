"""The project's block in the user's crontab.

    # >>> flank demo (/home/ada/flank) >>>
    # flank.yml schedules of project demo; generated on every push, edit flank.yml instead
    0 2 * * * FLANK_HOME=/home/ada/flank PATH=/usr/local/bin:/usr/bin:/bin /venv/bin/flank run demo nightly --trigger schedule
    # <<< flank demo (/home/ada/flank) <<<

The markers name both FLANK_HOME and the project, so two FLANK_HOMEs (or two
projects) on one account never touch each other's lines, and the user's own
lines are kept byte for byte. The block is also written to
`<project>/crontab`, where a person can read what is installed.

Lines use absolute paths and carry FLANK_HOME and the PATH of the deploy
(cron's own PATH is /usr/bin:/bin, where Rscript or a venv's python may not
be). A pipeline whose `timezone:` differs from the VM's gets a guarded line
(`--if-due`, see due.py); so does a pipeline with several schedules, so two
schedules meeting in one minute start one run.

Installing never raises for cron trouble: it returns warnings, because a push
must still deploy on a machine without cron (`flank scheduler` covers it).
"""

from __future__ import annotations

import os
import pwd
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

from flank_ops.config.model import Config
from flank_ops.fileio import atomic_write_text, locked
from flank_ops.paths import ProjectPaths
from flank_ops.settings_catalogue import default
from flank_ops.store.model import RunTrigger

NO_CRONTAB = "no crontab command: install cron (apt-get install cron) or run `flank scheduler`"
NO_DAEMON = (
    "the cron daemon does not seem to be running, so schedules will not fire: start it "
    "(service cron start) or run `flank scheduler`"
)
FALLBACK_PATH = "/usr/local/bin:/usr/bin:/bin"


def crontab_lock() -> Path:
    """One lock per account, not per FLANK_HOME: every FLANK_HOME of a user shares one crontab.

    It lives in the account's own home as the password database has it (not $HOME,
    $XDG_* or /tmp): cron jobs, ssh hooks and login shells see different environments
    but must find the same lock, and no other user may plant a file or link there.
    An account without a writable home falls back to FLANK_HOME.
    """
    try:
        home = Path(pwd.getpwuid(os.getuid()).pw_dir)
    except KeyError:
        home = None
    if home is not None and home.is_dir() and os.access(home, os.W_OK):
        return home / ".cache" / "flank" / "crontab.lock"
    from flank_ops.paths import Home

    return Home().internal_dir / "crontab.lock"


def markers(paths: ProjectPaths) -> tuple[str, str]:
    where = str(paths.home.root).replace("\n", " ")
    return f"# >>> flank {paths.name} ({where}) >>>", f"# <<< flank {paths.name} ({where}) <<<"


# --- the block ---------------------------------------------------------------


def flank_command() -> list[str]:
    """How cron starts flank: the console script beside this interpreter, else `python -m flank_ops`."""
    script = Path(sys.executable).parent / "flank"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "flank_ops"]


def task_path() -> str:
    """The PATH of this (deploying) environment, minus git's own exec dir that hooks prepend.

    Only absolute entries: `.`, an empty entry (which means `.`) or `bin` would make
    cron look up programs in whatever folder the run starts in.
    """
    seen: list[str] = []
    for entry in os.environ.get("PATH", "").split(os.pathsep):
        if entry.startswith("/") and entry not in seen and not entry.rstrip("/").endswith("git-core"):
            seen.append(entry)
    return os.pathsep.join(seen) or FALLBACK_PATH


def cron_escape(command: str) -> str:
    """cron turns an unescaped % into a newline (the rest becomes stdin)."""
    return command.replace("%", "\\%")


class CronLine(NamedTuple):
    comment: str | None
    when: str  # the five cron fields (or @keyword) cron reads
    command: str

    def text(self) -> str:
        line = f"{self.when} {cron_escape(self.command)}"
        return f"# {self.comment}\n{line}" if self.comment else line


def _guarded_when(expr: str, whole_hours: bool) -> str:
    """Fire at every minute the schedule could mean in any UTC offset; `--if-due` picks the real one."""
    from flank_ops.config.cron_syntax import parse_expression

    spec = parse_expression(expr)
    if not whole_hours:
        return "* * * * *"
    minute = spec.fields[0]
    if not spec.wildcard and 0 not in spec.minutes:
        # Minute 0 too: a time skipped by spring-forward runs right after the jump, on the hour.
        minute = f"0,{minute}"
    return f"{minute} * * * *"


def cron_lines(paths: ProjectPaths, config: Config) -> list[CronLine]:
    """One line per schedule of every pipeline, in flank.yml order."""
    from flank_ops.schedule.zones import local_zone, pipeline_zone, same_zone, whole_hours_apart

    base = [
        f"FLANK_HOME={shlex.quote(str(paths.home.root))}",
        f"PATH={shlex.quote(task_path())}",
        *(shlex.quote(part) for part in flank_command()),
    ]
    vm_zone = local_zone()
    lines: list[CronLine] = []
    for pipeline in config.pipelines.values():
        if not pipeline.schedule:
            continue
        run = [*base, "run", shlex.quote(paths.name), shlex.quote(pipeline.name), "--trigger", RunTrigger.SCHEDULE]
        zone = pipeline_zone(pipeline)
        foreign = pipeline.timezone is not None and not same_zone(zone, vm_zone)
        whole_hours = whole_hours_apart(zone, vm_zone) if foreign else True
        for expr in pipeline.schedule:
            expr = expr.strip()
            if foreign:
                lines.append(
                    CronLine(
                        f"{pipeline.name}: {expr} in {pipeline.timezone} (checked by --if-due)",
                        _guarded_when(expr, whole_hours),
                        " ".join([*run, "--if-due", shlex.quote(expr)]),
                    )
                )
            elif len(pipeline.schedule) > 1:
                lines.append(CronLine(None, expr, " ".join([*run, "--if-due", shlex.quote(expr)])))
            else:
                lines.append(CronLine(None, expr, " ".join(run)))
    return lines


def reboot_line(paths: ProjectPaths, config: Config) -> CronLine | None:
    """`@reboot … flank catchup --boot PROJECT`: runs missed while the VM was off (schedule/catchup.py)."""
    if not any(p.schedule and p.catchup_s > 0 for p in config.pipelines.values()):
        return None
    base = [
        f"FLANK_HOME={shlex.quote(str(paths.home.root))}",
        f"PATH={shlex.quote(task_path())}",
        *(shlex.quote(part) for part in flank_command()),
    ]
    return CronLine(
        "after a reboot: the scheduled runs missed while the VM was off (catchup: in flank.yml)",
        "@reboot",
        " ".join([*base, "catchup", "--boot", shlex.quote(paths.name)]),
    )


def render_block(paths: ProjectPaths, lines: list[CronLine]) -> str:
    """The block as installed, or '' when the project has no schedules."""
    if not lines:
        return ""
    begin, end = markers(paths)
    note = f"# flank.yml schedules of project {paths.name}; rewritten on every push: edit flank.yml instead"
    return "\n".join([begin, note, *(line.text() for line in lines), end]) + "\n"


# --- the user's crontab ------------------------------------------------------


class CrontabError(Exception):
    """`crontab` is missing or refused; the message is a warning for the user."""


def _crontab_exe() -> str:
    exe = shutil.which("crontab")
    if exe is None:
        raise CrontabError(NO_CRONTAB)
    return exe


def read_crontab() -> str | None:
    """The user's crontab text, or None when they have none."""
    proc = subprocess.run([_crontab_exe(), "-l"], capture_output=True)
    if proc.returncode == 0:
        return proc.stdout.decode("utf-8", errors="surrogateescape")
    err = proc.stderr.decode("utf-8", errors="replace").strip()
    if "no crontab for" in err:
        return None
    raise CrontabError(f"cannot read your crontab ({err or f'crontab -l exited {proc.returncode}'})")


def write_crontab(text: str | None) -> None:
    """Install `text` as the user's crontab; None removes it."""
    exe = _crontab_exe()
    if text is None:
        proc = subprocess.run([exe, "-r"], capture_output=True)
        err = proc.stderr.decode("utf-8", errors="replace").strip()
        if proc.returncode != 0 and "no crontab for" not in err:
            raise CrontabError(f"crontab -r failed: {err}")
        return
    proc = subprocess.run([exe, "-"], input=text.encode("utf-8", errors="surrogateescape"), capture_output=True)
    if proc.returncode != 0:
        err = " ".join(proc.stderr.decode("utf-8", errors="replace").split())
        raise CrontabError(
            f"the crontab command refused flank's schedule ({err}); the schedule is not "
            "installed: fix the cause, or run `flank scheduler`"
        )


def replace_block(current: str, begin: str, end: str, block: str) -> str:
    """`current` with the lines from `begin` to `end` replaced by `block` ('' removes them).

    Everything else is kept byte for byte; a new block goes at the end.
    """
    lines = current.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.rstrip("\r\n") == begin]
    if not starts:
        if not block:
            return current
        if current and not current.endswith("\n"):
            current += "\n"
        return current + block
    start = starts[0]
    stop = next((i for i in range(start + 1, len(lines)) if lines[i].rstrip("\r\n") == end), None)
    if stop is None:
        raise CrontabError(
            f"flank's block in your crontab has its first line but not its last ({end!r}); "
            "fix it with `crontab -e`, then push again"
        )
    rest = lines[stop + 1 :]
    if len(starts) > 1 and any(line.rstrip("\r\n") == begin for line in rest):
        # A duplicated block (a hand edit): remove the later copies too.
        rest_text = replace_block("".join(rest), begin, end, "")
        return "".join(lines[:start]) + block + rest_text
    return "".join(lines[:start]) + block + "".join(rest)


def running_cron_daemon() -> str | None:
    """'cron (pid 123)' for a live cron daemon on this machine, else None."""
    proc = Path("/proc")
    if not proc.is_dir():
        return "cron (no /proc to look in)"  # can't tell: assume it runs, rather than warn wrongly
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            name = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if name in ("cron", "crond", "cronie", "busybox-crond") or name.startswith("systemd-cron"):
            return f"{name} (pid {entry.name})"
    return None


def cron_daemon_running() -> bool:
    return running_cron_daemon() is not None


def _install_block(paths: ProjectPaths, block: str) -> None:
    begin, end = markers(paths)
    with locked(crontab_lock()):
        current = read_crontab()
        updated = replace_block(current or "", begin, end, block)
        if updated != (current or ""):
            write_crontab(updated or None)  # nothing left: remove the crontab, as before flank


SCHEDULER_ONLY = (
    "schedule not installed in the crontab (flank.toml: [schedule] install_crontab = false); "
    "run `flank scheduler` to run it"
)


def crontab_enabled(paths: ProjectPaths) -> bool:
    """flank.toml's `[schedule] install_crontab` (default true) for this project."""
    from flank_ops.settings import settings_for

    table = settings_for(paths.home, paths.name).get("schedule") or {}
    return table.get("install_crontab", default("schedule", "install_crontab")) is not False


def install_schedule(paths: ProjectPaths, config: Config) -> list[str]:
    """Write paths.crontab_file and install the project's block; returns warnings for the user."""
    lines = cron_lines(paths, config)
    reboot = reboot_line(paths, config)
    block = render_block(paths, [*lines, reboot] if reboot else lines)
    atomic_write_text(paths.crontab_file, block or f"# project {paths.name}: no schedules in flank.yml\n")
    if not crontab_enabled(paths):
        # flank.toml says this VM schedules with `flank scheduler` (or the block is installed by hand).
        return [SCHEDULER_ONLY] if lines else []
    try:
        _install_block(paths, block)
    except CrontabError as exc:
        if str(exc) == NO_CRONTAB and not lines:
            return []  # nothing to schedule, nothing to warn about
        return [str(exc)]
    if lines and not cron_daemon_running():
        return [NO_DAEMON]
    return []


def has_block_for_home(home_root: Path) -> bool:
    """Does the user's crontab hold any flank block of this FLANK_HOME? (`flank scheduler` warns: double runs.)"""
    try:
        current = read_crontab() or ""
    except CrontabError:
        return False
    suffix = f" ({home_root}) >>>"
    return any(line.startswith("# >>> flank ") and line.endswith(suffix) for line in current.splitlines())


# --- blocks left behind -------------------------------------------------------


class InstalledBlock(NamedTuple):
    project: str
    home: str  # the FLANK_HOME named in the markers
    begin: str
    end: str

    def stale_reason(self) -> str | None:
        """Why this block fires for nothing (its FLANK_HOME or project is gone), or None."""
        home = Path(self.home)
        if not home.is_dir():
            return f"FLANK_HOME {self.home} is gone"
        if not (home / f"{self.project}.git" / "HEAD").exists():
            return f"project {self.project} is gone from {self.home}"
        return None


_BEGIN_RE = re.compile(r"^# >>> flank (\S+) \((.*)\) >>>$")


def installed_blocks(text: str) -> list[InstalledBlock]:
    """Every flank block in a crontab, of any FLANK_HOME."""
    blocks: list[InstalledBlock] = []
    for line in text.splitlines():
        found = _BEGIN_RE.match(line.rstrip("\r"))
        if found:
            project, home = found.groups()
            end = f"# <<< flank {project} ({home}) <<<"
            if not any(b.begin == line.rstrip("\r") for b in blocks):
                blocks.append(InstalledBlock(project, home, line.rstrip("\r"), end))
    return blocks


def stale_blocks() -> list[tuple[InstalledBlock, str]]:
    """Blocks whose FLANK_HOME or project was deleted by hand, with why. Raises CrontabError."""
    return [(b, why) for b in installed_blocks(read_crontab() or "") if (why := b.stale_reason())]


def remove_stale_blocks() -> list[tuple[InstalledBlock, str]]:
    """Take the stale blocks out of the crontab (everything else kept byte for byte); returns them."""
    with locked(crontab_lock()):
        current = read_crontab() or ""
        stale = [(b, why) for b in installed_blocks(current) if (why := b.stale_reason())]
        updated = current
        for block, _ in stale:
            updated = replace_block(updated, block.begin, block.end, "")
        if updated != current:
            write_crontab(updated or None)
    return stale
