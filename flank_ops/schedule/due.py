"""When a schedule fires, in a pipeline's time zone, across DST — without CRON_TZ.

Debian's cron has no CRON_TZ: it reads every crontab line in the VM's zone. A
pipeline with `timezone:` different from the VM's gets a *guarded* cron line
instead (see crontab.py): it fires at every minute that could be a run time in
any UTC offset (the expression's minutes plus minute 0, every hour) and calls

    flank run PROJECT PIPELINE --trigger schedule --if-due 'EXPR'

The runner asks `is_due(pipeline, EXPR)` and exits 0 silently when it is not.
So a wrong offset can never make a run late or early; it only costs a short
Python start once an hour.

What "due" means follows Debian cron's own DST rules (cron.c), applied to the
pipeline's wall clock:

* A *fixed-time* schedule (neither minute nor hour starts with '*', e.g.
  `30 1 * * *`, `@daily`) runs once per matching wall-clock time. A time skipped
  by the spring-forward jump runs once, right after the jump; a time repeated
  by the fall-back runs once, at its first occurrence.
* A *wildcard* schedule (`*/15 * * * *`, `0 * * * *`, `@hourly`) runs at every
  real minute whose wall-clock time matches: twice in a repeated hour, not at
  all in a skipped one — it simply keeps its rhythm.

The decision is a pure function of (expression, zone, minute), so it needs no
state file: each real minute is asked about once (by cron or `flank scheduler`).
When a pipeline has several schedules that fire in the same minute, only the
first listed one is due, so one minute never starts two runs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

from flank_ops.config.cron_syntax import CronSpec, CronSyntaxError, parse_expression
from flank_ops.config.model import Pipeline
from flank_ops.errors import UserError
from flank_ops.schedule.zones import local_zone, pipeline_zone

MINUTE = timedelta(minutes=1)
# Debian cron makes up skipped fixed-time jobs only for jumps under 3 hours;
# a bigger jump is a clock being set, not DST.
MAX_MAKE_UP = timedelta(hours=3)


def spec_for(expr: str) -> CronSpec:
    try:
        return parse_expression(expr)
    except CronSyntaxError as exc:
        raise UserError(f"bad schedule {expr!r}: {exc}", "fix it in flank.yml and push again") from None


def floor_minute(moment: datetime | None) -> datetime:
    """`moment` (None = now; naive = the VM's local time) as an aware UTC minute."""
    if moment is None:
        moment = datetime.now(UTC)
    elif moment.tzinfo is None:
        moment = moment.replace(tzinfo=local_zone())
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def wall_clock(minute_utc: datetime, zone: tzinfo) -> datetime:
    """The naive wall-clock time shown in `zone` at an instant."""
    return minute_utc.astimezone(zone).replace(tzinfo=None)


def _matches(spec: CronSpec, wall: datetime) -> bool:
    from croniter import croniter  # lazy: keeps the hook and task paths light

    return bool(croniter.match(spec.five_fields, wall))


def _next_match(spec: CronSpec, wall: datetime) -> datetime:
    """The first matching wall-clock minute strictly after `wall`."""
    from croniter import croniter

    return croniter(spec.five_fields, wall).get_next(datetime)


def is_repeat(minute_utc: datetime, zone: tzinfo) -> bool:
    """True when this instant's wall-clock time already happened (the second pass of a fall-back hour)."""
    wall = wall_clock(minute_utc, zone)
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    return first < minute_utc


def skipped_before(minute_utc: datetime, zone: tzinfo) -> tuple[datetime, datetime] | None:
    """If the wall clock jumped forward just before this minute, the skipped wall times [start, end)."""
    wall = wall_clock(minute_utc, zone)
    previous = wall_clock(minute_utc - MINUTE, zone)
    if MINUTE < wall - previous <= MAX_MAKE_UP + MINUTE:
        return previous + MINUTE, wall
    return None


def fires_at(spec: CronSpec, zone: tzinfo, minute_utc: datetime) -> bool:
    """Does this schedule fire in this real minute (aware, floored to the minute)?"""
    wall = wall_clock(minute_utc, zone)
    if spec.wildcard:
        return _matches(spec, wall)
    if _matches(spec, wall) and not is_repeat(minute_utc, zone):
        return True
    gap = skipped_before(minute_utc, zone)
    if gap is not None:
        start, end = gap
        return _next_match(spec, start - MINUTE) < end
    return False


def is_due(pipeline: Pipeline, expr: str, now: datetime | None = None) -> bool:
    """True when schedule `expr` of `pipeline` should start a run in the minute of `now` (default: now).

    Evaluated on the pipeline's wall clock (its `timezone:`, else the VM's zone),
    with Debian cron's DST rules (module docstring). When an earlier schedule of
    the same pipeline also fires in this minute, that one wins and this is False.
    """
    zone = pipeline_zone(pipeline)
    minute = floor_minute(now)
    if not fires_at(spec_for(expr), zone, minute):
        return False
    for earlier in pipeline.schedule:
        if earlier.strip() == expr.strip():
            break
        if fires_at(spec_for(earlier), zone, minute):
            return False
    return True


def due_schedule(pipeline: Pipeline, now: datetime | None = None) -> str | None:
    """The schedule that starts a run of `pipeline` in this minute, or None (what `flank scheduler` asks)."""
    zone = pipeline_zone(pipeline)
    minute = floor_minute(now)
    for expr in pipeline.schedule:
        if fires_at(spec_for(expr), zone, minute):
            return expr
    return None


def scheduled_at(pipeline: Pipeline, minute: datetime) -> str:
    """The minute a scheduled run stands for, as tasks see it in FLANK_SCHEDULED_AT: ISO 8601 with
    the offset of the pipeline's zone, e.g. 2026-11-24T02:00:00+01:00 (like Airflow's logical date)."""
    return floor_minute(minute).astimezone(pipeline_zone(pipeline)).isoformat()
