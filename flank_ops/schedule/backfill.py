"""Backfill (issue 23): one run per scheduled minute of a past range, oldest first.

    flank backfill PROJECT PIPELINE --from 2026-11-01 --to 2026-11-07 [--parallel N] [--yes] [-p NAME=VALUE]

`plan_backfill` checks everything before anything starts: the pipeline, its parameters, the
range (dates or ISO times, read in the pipeline's zone; a date `--to` takes its whole day;
minutes from now on are left to the schedule) and its size (none is refused, more than
MAX_WITHOUT_YES needs --yes, more than MAX_RUNS never). The minutes are the ones cron would
have started runs in (next_runs.firings: Debian cron's rules, DST included).

Each run is a plain `flank run --trigger backfill --scheduled-at T --backfill ID` (so tasks get
FLANK_SCHEDULED_AT like catch-up runs, and records, overlap and secrets behave as any run's),
started by the *driver*: `flank backfill` itself, or a detached `flank backfill --drive ID` for
the web form (`start_backfill`). At most --parallel runs go at once; with more than one they run
beside each other (not waiting for the pipeline's overlap lock), else one after the other.

Files (paths.py `backfills_dir`), plain JSON a person can read:
    runs/<pipeline>/backfills/<id>.json     the plan and its progress (written by the driver only)
    runs/<pipeline>/backfills/<id>.cancel   present once `flank cancel --backfill ID` asked
Cancelling: the request file first, then each of the backfill's running runs is cancelled as
`flank cancel` does; the driver starts no run once the file exists, and cancels a run it started
just before (it looks again once the run has its id), so no run slips through.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from flank_ops.config.model import ParamValue, Pipeline
from flank_ops.errors import UserError
from flank_ops.fileio import atomic_write_text
from flank_ops.hints import flank_command
from flank_ops.humanize import NOTE, clock
from flank_ops.paths import ProjectPaths
from flank_ops.store import records
from flank_ops.store.model import Runner, RunStatus

TRIGGER = "backfill"  # the record's trigger (store/model.py RunTrigger)
MAX_WITHOUT_YES = 100
MAX_RUNS = 1000  # a backfill bigger than this is a mistake, --yes or not
MAX_PARALLEL = 16
POLL_S = 0.2
CANCEL_SUFFIX = ".cancel"
RUNNING, DONE, CANCELLED, INTERRUPTED = "running", "done", "cancelled", "interrupted"


class BackfillPlan(NamedTuple):
    """What a backfill will run, checked (see plan_backfill)."""

    project: str
    paths: ProjectPaths
    pipeline: Pipeline
    minutes: list[datetime]  # aware, in the pipeline's zone, oldest first
    params: dict[str, ParamValue]
    parallel: int
    clipped: bool  # the range went past now: those minutes are left to the schedule


def _bound(text: str, option: str, zone: Any, end: bool) -> datetime:
    """--from/--to: a date (a whole day) or an ISO date and time; naive = the pipeline's zone."""
    text = text.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime(day.year, day.month, day.day, tzinfo=zone)
            return moment + timedelta(days=1) if end else moment
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(
            f"{option} {text!r} is not a date", "write a date like 2026-11-01, or a time like 2026-11-01T02:00"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment + timedelta(minutes=1) if end else moment  # --to a minute includes that minute


def plan_backfill(
    project: str,
    pipeline_name: str,
    start: str,
    end: str,
    *,
    params: Mapping[str, str] | None = None,
    parallel: int = 1,
    yes: bool = False,
    now: datetime | None = None,
    yes_hint: str = "add --yes to start them all",
) -> BackfillPlan:
    """Check a backfill (the CLI's and the web form's words); raises UserError, starting nothing.
    `yes_hint`: how to say "yes" where the refusal is shown (the web form has a checkbox)."""
    from flank_ops.config.params import parse_params
    from flank_ops.run.runner import find_pipeline, resolve_deployed
    from flank_ops.schedule.due import floor_minute
    from flank_ops.schedule.next_runs import firings
    from flank_ops.schedule.zones import pipeline_zone

    deployed = resolve_deployed(project)
    pipeline = find_pipeline(deployed.config, pipeline_name, deployed.paths)
    if not pipeline.schedule:
        raise UserError(
            f"pipeline {pipeline.name!r} has no schedule: there is nothing to backfill",
            f"run it once with: flank run {project} {pipeline.name}",
        )
    if not 1 <= parallel <= MAX_PARALLEL:
        raise UserError(f"--parallel must be 1 to {MAX_PARALLEL}, got {parallel}")
    values = parse_params(pipeline, params or {})
    zone = pipeline_zone(pipeline)
    first, last = _bound(start, "--from", zone, False), _bound(end, "--to", zone, True)
    if last <= first:
        raise UserError(f"--to {end} is before --from {start}", "give the older date first")
    now_minute = floor_minute(now)
    clipped = last > now_minute
    minutes = firings(pipeline, first, min(last, now_minute), MAX_RUNS + 1)
    schedule = ", ".join(pipeline.schedule)
    where = pipeline.timezone or "the VM's zone"
    if not minutes:
        past = " before now" if clipped else ""
        raise UserError(
            f"{pipeline.name} has no scheduled minute from {start} to {end}{past} (schedule: {schedule}, {where})",
            "widen the range",
        )
    if len(minutes) > MAX_RUNS:
        raise UserError(
            f"that is more than {MAX_RUNS} runs of {pipeline.name} (schedule: {schedule})",
            "backfill a shorter range at a time",
        )
    if len(minutes) > MAX_WITHOUT_YES and not yes:
        raise UserError(
            f"that is {len(minutes)} runs of {pipeline.name}, from {minute_text(minutes[0], pipeline.timezone)} "
            f"to {minute_text(minutes[-1], pipeline.timezone)}",
            yes_hint,
        )
    return BackfillPlan(project, deployed.paths, pipeline, minutes, values, parallel, clipped)


# --- the plan on disk ----------------------------------------------------------------


def backfill_file(paths: ProjectPaths, pipeline: str, backfill_id: str) -> Path:
    if not backfill_id or "/" in backfill_id or backfill_id.startswith("."):
        raise UserError(f"{backfill_id!r} is not a backfill id", f"see them with: flank status {paths.name}")
    return paths.backfills_dir(pipeline) / f"{backfill_id}.json"


def minute_text(minute: str | datetime, tz: str | None) -> str:
    """A backfill's minute as every line about it says it: `2026-11-16 02:00 CET`, in the pipeline's zone
    (with the year: a backfill reaches into the past)."""
    return clock(minute, tz, NOTE)


def _cancel_file(paths: ProjectPaths, pipeline: str, backfill_id: str) -> Path:
    return paths.backfills_dir(pipeline) / f"{backfill_id}{CANCEL_SUFFIX}"


def create_backfill(plan: BackfillPlan, run_options: tuple[str, ...] = ()) -> str:
    """Write the plan (status running, no runs yet); -> its id, e.g. 20261206-104400. `run_options`:
    more `flank run` options for each of its runs (the web form says who asked, and from where)."""
    paths = plan.paths
    folder = paths.backfills_dir(plan.pipeline.name)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    state = {
        "project": plan.project,
        "pipeline": plan.pipeline.name,
        "status": RUNNING,
        "created_at": records.now_iso(),
        "ended_at": None,
        "timezone": plan.pipeline.timezone,
        "minutes": [m.isoformat() for m in plan.minutes],
        "params": plan.params,
        "parallel": plan.parallel,
        "run_options": list(run_options),
        "driver": None,
        "runs": {},  # minute -> run id, as they start
    }
    for n in range(1, 1000):
        backfill_id = stamp if n == 1 else f"{stamp}-{n}"
        try:
            fd = os.open(folder / f"{backfill_id}.json", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        os.close(fd)
        state["id"] = backfill_id
        _write(paths, plan.pipeline.name, state)
        return backfill_id
    raise UserError("could not name the backfill", "try again in a second")


def _write(paths: ProjectPaths, pipeline: str, state: dict[str, Any]) -> None:
    atomic_write_text(backfill_file(paths, pipeline, state["id"]), json.dumps(state, indent=1) + "\n", 0o600)


def _read(paths: ProjectPaths, pipeline: str, backfill_id: str) -> dict[str, Any]:
    try:
        state = json.loads(backfill_file(paths, pipeline, backfill_id).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise UserError(
            f"no backfill {backfill_id!r} of {pipeline}",
            f"see them with: {flank_command('backfill', paths.name, pipeline, '--list')}",
        ) from None
    if not isinstance(state, dict):
        raise UserError(f"backfill {backfill_id!r} of {pipeline} is not a backfill file")
    return state


def read_backfill(paths: ProjectPaths, pipeline: str, backfill_id: str) -> dict[str, Any]:
    """The backfill's plan and progress. Its status, as people are told it: `cancelled` once asked,
    `interrupted` when its driver died, `done` once every run ended (the driver writes that last)."""
    state = _read(paths, pipeline, backfill_id)
    if state.get("status") == RUNNING:
        if cancel_requested(paths, pipeline, backfill_id):
            state["status"] = CANCELLED
        elif state.get("driver") and not records.runner_alive(Runner.from_json(state["driver"])):
            state["status"] = INTERRUPTED
    return state


def list_backfills(paths: ProjectPaths, pipeline: str) -> list[dict[str, Any]]:
    """Every backfill of the pipeline, newest first (the pipeline page groups its runs by them)."""
    folder = paths.backfills_dir(pipeline)
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob("*.json"), reverse=True):
        try:
            found.append(read_backfill(paths, pipeline, path.stem))
        except UserError:
            continue
    return found


# --- starting and driving ---------------------------------------------------------------


def start_backfill(plan: BackfillPlan, run_options: tuple[str, ...] = ()) -> str:
    """Start a checked backfill in the background (the web form: `start_backfill(plan_backfill(...))`);
    -> its id. `run_options` as create_backfill's."""
    from flank_ops.run.launch import spawn_detached

    backfill_id = create_backfill(plan, run_options)
    paths = plan.paths
    argv = drive_argv(plan.project, plan.pipeline.name, backfill_id)
    spawn_detached(argv, cwd=paths.home.root if paths.home.root.is_dir() else None)
    return backfill_id


def drive_argv(project: str, pipeline: str, backfill_id: str) -> list[str]:
    import sys

    return [sys.executable, "-m", "flank_ops", "backfill", project, pipeline, "--drive", backfill_id]


class _Stop(Exception):
    """SIGTERM/SIGINT to the driver: cancel the backfill as a whole."""


def _raise_stop(signum: int, frame: object) -> None:
    raise _Stop()


def drive(paths: ProjectPaths, pipeline: str, backfill_id: str, out: Callable[[str], None] = print) -> int:
    """Run the backfill's runs, oldest first, at most `parallel` at once; -> 0 when every run succeeded."""
    from flank_ops.config.params import as_options
    from flank_ops.run.launch import start_detached_reporting

    state = _read(paths, pipeline, backfill_id)
    state["driver"] = records.runner_identity().to_json()
    state["status"] = RUNNING
    _write(paths, pipeline, state)
    parallel = int(state.get("parallel") or 1)
    options_base = ["--trigger", TRIGGER, "--backfill", backfill_id, *as_options(state.get("params") or {})]
    options_base += [str(o) for o in state.get("run_options") or ()]
    if parallel > 1:
        options_base.append("--alongside")
    pending = [m for m in state["minutes"] if m not in state["runs"]]
    active: dict[int, str] = {}  # run id -> minute
    outcomes: dict[str, str] = {}
    old_term = signal.signal(signal.SIGTERM, _raise_stop)
    old_int = signal.signal(signal.SIGINT, _raise_stop)
    try:
        while pending or active:
            while pending and len(active) < parallel and not cancel_requested(paths, pipeline, backfill_id):
                minute = pending.pop(0)
                run_id = start_detached_reporting(paths.name, pipeline, [*options_base, "--scheduled-at", minute])
                if run_id is None:
                    outcomes[minute] = "did not start"
                    out(f"  {minute_text(minute, state.get('timezone'))}  did not start")
                    continue
                state["runs"][minute] = run_id
                _write(paths, pipeline, state)
                active[run_id] = minute
                if cancel_requested(paths, pipeline, backfill_id):
                    _cancel_run(paths, pipeline, run_id)  # asked while it was starting
            if cancel_requested(paths, pipeline, backfill_id):
                pending = []
            for run_id in [r for r in active if _finished(paths, pipeline, r)]:
                minute = active.pop(run_id)
                status = str(records.read_record(paths.run_dir(pipeline, run_id)).status)
                outcomes[minute] = status
                out(f"  {minute_text(minute, state.get('timezone'))}  #{run_id} {status}")
            if active:
                time.sleep(POLL_S)
    except _Stop:
        _request_cancel(paths, pipeline, backfill_id)
        for run_id in active:
            _cancel_run(paths, pipeline, run_id)
    finally:
        signal.signal(signal.SIGTERM, old_term)
        signal.signal(signal.SIGINT, old_int)
    cancelled = cancel_requested(paths, pipeline, backfill_id)
    state["status"] = CANCELLED if cancelled else DONE
    state["ended_at"] = records.now_iso()
    _write(paths, pipeline, state)
    ok = sum(1 for s in outcomes.values() if s == "success")
    not_started = len(state["minutes"]) - len(state["runs"])
    summary = f"{ok}/{len(state['minutes'])} runs succeeded"
    if cancelled:
        summary += f", cancelled ({not_started} not started)"
    out(f"flank: backfill {backfill_id} of {pipeline} {'cancelled' if cancelled else 'done'}: {summary}")
    return 0 if ok == len(state["minutes"]) else 1


def _finished(paths: ProjectPaths, pipeline: str, run_id: int) -> bool:
    try:  # as it is now: a run whose runner died is over
        return records.current(paths.run_dir(pipeline, run_id), names=[]).status != RunStatus.RUNNING
    except (OSError, ValueError):
        return False


# --- cancelling ----------------------------------------------------------------------


def cancel_requested(paths: ProjectPaths, pipeline: str, backfill_id: str) -> bool:
    return _cancel_file(paths, pipeline, backfill_id).exists()


def _request_cancel(paths: ProjectPaths, pipeline: str, backfill_id: str) -> None:
    import getpass

    atomic_write_text(_cancel_file(paths, pipeline, backfill_id), f"{getpass.getuser()} {records.now_iso()}\n")


def _cancel_run(paths: ProjectPaths, pipeline: str, run_id: int) -> bool:
    import getpass

    from flank_ops.run import cancel

    try:
        cancel.request(cancel.find_target(paths, pipeline, run_id), getpass.getuser())
    except (cancel.NothingToCancel, UserError):
        return False
    return True


def cancel_backfill(paths: ProjectPaths, pipeline: str, backfill_id: str, wait_s: float = 60.0) -> dict[str, Any]:
    """Stop a backfill as a whole: its running runs are cancelled, no more start. -> its final state.

    Raises UserError for an unknown id, run.cancel.NothingToCancel for a backfill that is not running."""
    from flank_ops.run.cancel import NothingToCancel

    state = read_backfill(paths, pipeline, backfill_id)
    if state["status"] != RUNNING:
        raise NothingToCancel(f"backfill {backfill_id} of {pipeline} is not running (it is {state['status']})")
    _request_cancel(paths, pipeline, backfill_id)
    for run_id in list(state["runs"].values()):
        _cancel_run(paths, pipeline, int(run_id))
    for record in records.find_running(paths, pipeline):  # one the driver started since it wrote its file
        if record.backfill == backfill_id:
            _cancel_run(paths, pipeline, record.run_id)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:  # until its driver has written the end
        state = _read(paths, pipeline, backfill_id)
        if state.get("status") != RUNNING or not records.runner_alive(Runner.from_json(state.get("driver"))):
            break
        time.sleep(POLL_S)
    return read_backfill(paths, pipeline, backfill_id)
