"""`flank scheduler`: the schedules of every project in FLANK_HOME, run in the foreground.

For machines without cron (containers, CI). Once a minute, on the minute, it
reads each project's deployed flank.yml and starts
`flank run PROJECT PIPELINE --trigger schedule` for every pipeline due in that
minute (due.py: the pipeline's timezone and DST included), without waiting
for it. Runs start in their own session, so stopping the scheduler (Ctrl-C,
SIGTERM) never kills a run in progress.
"""

from __future__ import annotations

import shlex
import signal
import subprocess
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from flank_ops.config.model import Config
from flank_ops.paths import Home
from flank_ops.schedule.due import MINUTE, due_schedule, floor_minute

# After a stall (a suspended VM), catch up on missed minutes only this far back,
# like Debian cron after a small clock jump; beyond it, just carry on from now.
MAX_CATCH_UP = timedelta(hours=3)


class DueRun(NamedTuple):
    project: str
    pipeline: str
    schedule: str  # the expression that made it due
    timezone: str | None


def deployed_configs(home: Home) -> tuple[dict[str, Config], list[str]]:
    """Every project's deployed flank.yml; projects never deployed are left out, broken ones warned about."""
    from flank_ops.errors import UserError
    from flank_ops.git.release_config import deployed_config

    configs: dict[str, Config] = {}
    problems: list[str] = []
    for name in home.projects():
        try:
            config = deployed_config(home.project(name))
        except UserError as exc:
            problems.append(f"{name}: deployed flank.yml cannot be read: {exc.message}")
            continue
        if config is not None:
            configs[name] = config
    return configs, problems


def due_at(configs: dict[str, Config], minute: datetime) -> list[DueRun]:
    """Which (project, pipeline) start a run in this minute. Pure: no I/O, no clock."""
    due: list[DueRun] = []
    for project, config in sorted(configs.items()):
        for pipeline in config.pipelines.values():
            expr = due_schedule(pipeline, minute)
            if expr is not None:
                due.append(DueRun(project, pipeline.name, expr, pipeline.timezone))
    return due


def default_command() -> str:
    from flank_ops.schedule.crontab import flank_command

    return (
        " ".join(shlex.quote(p) for p in flank_command())
        + " run {project} {pipeline} --trigger schedule --scheduled-at {scheduled_at}"
    )


def command_for(template: str, run: DueRun, scheduled_at: datetime | None = None) -> list[str]:
    """The argv that starts `run`: the template split like a shell would, then {project}/{pipeline} (and
    {scheduled_at}: the due minute, ISO) filled in (after splitting, so names can never inject arguments)."""
    when = scheduled_at.isoformat() if scheduled_at is not None else ""
    return [
        part.replace("{project}", run.project).replace("{pipeline}", run.pipeline).replace("{scheduled_at}", when)
        for part in shlex.split(template)
    ]


class Scheduler:
    """The loop's state: started children to reap, the last minute handled."""

    def __init__(self, home: Home, template: str, out: Callable[[str], None]) -> None:
        self.home = home
        self.template = template
        self.out = out
        self.children: list[subprocess.Popen] = []
        self.last_minute: datetime | None = None

    def reap(self) -> None:
        self.children = [c for c in self.children if c.poll() is None]

    def tick(self, now: datetime) -> list[DueRun]:
        """Start every run due in the minutes since the last tick (just `now`'s minute on the first)."""
        self.reap()
        minute = floor_minute(now)
        first = minute
        if self.last_minute is not None and timedelta(0) < minute - self.last_minute <= MAX_CATCH_UP:
            first = self.last_minute + MINUTE
        elif self.last_minute is not None and minute <= self.last_minute:
            return []  # this minute was handled already (clock stepped back)
        self.last_minute = minute
        configs, problems = deployed_configs(self.home)
        for problem in problems:
            self.out(f"flank scheduler: {problem}")
        started: dict[tuple[str, str], tuple[DueRun, datetime]] = {}
        m = first
        while m <= minute:
            for run in due_at(configs, m):
                started.setdefault((run.project, run.pipeline), (run, m))  # one run per pipeline per tick
            m += MINUTE
        for run, due_minute in started.values():
            self.start(run, minute, due_minute)
        return [run for run, _ in started.values()]

    def start(self, run: DueRun, minute: datetime, due_minute: datetime | None = None) -> None:
        argv = command_for(self.template, run, due_minute or minute)
        local = minute.astimezone()
        zone = f" in {run.timezone}" if run.timezone else ""
        try:
            child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True)
        except OSError as exc:
            self.out(f"{local:%Y-%m-%d %H:%M} could not start {run.project} {run.pipeline}: {exc}")
            return
        self.children.append(child)
        self.out(
            f"{local:%Y-%m-%d %H:%M} started {run.project} {run.pipeline} "
            f"(schedule '{run.schedule}'{zone}, pid {child.pid})"
        )


def run_forever(scheduler: Scheduler, banner: list[str]) -> None:
    """Print `banner` once SIGTERM is handled, then tick on every minute until SIGTERM or Ctrl-C."""
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    try:
        for line in banner:
            scheduler.out(line)
        while not stop.is_set():
            scheduler.tick(datetime.now(UTC))
            now = datetime.now(UTC)
            next_minute = now.replace(second=0, microsecond=0) + MINUTE
            stop.wait((next_minute - now).total_seconds())
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        scheduler.reap()


def print_line(line: str) -> None:
    print(line, flush=True)
