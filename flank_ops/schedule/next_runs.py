"""Next scheduled run times of a pipeline, for push output, `flank status` and the site.

Computed with croniter on the pipeline's wall clock, then mapped to real
instants with the same DST rules as due.py (a skipped fixed time runs right
after the jump; a repeated one runs once; wildcard schedules keep their
rhythm), so what the site promises is what cron and `flank scheduler` do.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

from flank_ops.config.cron_syntax import CronSpec
from flank_ops.config.model import Pipeline
from flank_ops.schedule.due import MINUTE, spec_for
from flank_ops.schedule.zones import local_zone, pipeline_zone

# Wall times near `after` can map to instants on either side of it around a
# DST change, so start the wall-clock walk a little early and look a little past.
MARGIN = timedelta(hours=3)
MAX_STEPS = 100_000


def _exists(wall: datetime, zone: tzinfo, fold: int) -> datetime | None:
    """The instant of `wall` with that fold, or None when the wall time does not exist (a DST gap)."""
    aware = wall.replace(tzinfo=zone, fold=fold)
    instant = aware.astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) != wall:
        return None
    return instant


def _gap_end(wall: datetime, zone: tzinfo) -> datetime:
    """The first real minute after the jump that skipped `wall`."""
    # fold=1 maps a skipped time with the offset after the jump: an instant before it.
    instant = wall.replace(tzinfo=zone, fold=1).astimezone(UTC).replace(second=0, microsecond=0)
    while instant.astimezone(zone).replace(tzinfo=None) < wall:
        instant += MINUTE
    return instant


def _instants(spec: CronSpec, zone: tzinfo, wall: datetime) -> list[datetime]:
    first = _exists(wall, zone, 0)
    if first is None:
        return [] if spec.wildcard else [_gap_end(wall, zone)]
    second = _exists(wall, zone, 1)
    if spec.wildcard and second is not None and second != first:
        return [first, second]
    return [first]


def schedule_times(expr: str, zone: tzinfo, after: datetime, count: int) -> list[datetime]:
    """The next `count` real instants (UTC, aware) strictly after `after` at which `expr` fires in `zone`."""
    from croniter import croniter  # lazy: the hook path imports this module

    spec = spec_for(expr)
    start_wall = after.astimezone(zone).replace(tzinfo=None, second=0, microsecond=0) - MARGIN
    walk = croniter(spec.five_fields, start_wall)
    found: list[datetime] = []
    for _ in range(MAX_STEPS):
        wall = walk.get_next(datetime)
        found.extend(t for t in _instants(spec, zone, wall) if t > after)
        if len(found) >= count and wall - MARGIN > sorted(found)[count - 1].astimezone(zone).replace(tzinfo=None):
            break
    return sorted(set(found))[:count]


def next_runs(pipeline: Pipeline, count: int = 1, after: datetime | None = None) -> list[datetime]:
    """The next `count` run times of all the pipeline's schedules merged, aware, in its timezone.

    `after` defaults to now; a naive `after` is read in the VM's local zone.
    Empty when the pipeline has no schedule.
    """
    if count <= 0 or not pipeline.schedule:
        return []
    zone = pipeline_zone(pipeline)
    if after is None:
        after = datetime.now(UTC)
    elif after.tzinfo is None:
        after = after.replace(tzinfo=local_zone())
    after = after.astimezone(UTC)
    merged: set[datetime] = set()
    for expr in pipeline.schedule:
        merged.update(schedule_times(expr, zone, after, count))
    return [t.astimezone(zone) for t in sorted(merged)[:count]]


def firings(pipeline: Pipeline, start: datetime, end: datetime, limit: int) -> list[datetime]:
    """The instants in [start, end) at which the pipeline's schedules fire, oldest first, at most
    `limit` (ask for one more than you allow to tell "too many"); aware, in its timezone.

    The same minutes cron and `flank scheduler` start runs in (Debian cron's DST rules above;
    two schedules firing in one minute make one run): what `flank backfill` runs once each."""
    found: list[datetime] = []
    after = start - MINUTE  # next_runs is exclusive of `after`
    while len(found) < limit:
        upcoming = next_runs(pipeline, min(256, limit - len(found)), after=after)
        if not upcoming:
            break
        for moment in upcoming:
            if moment >= end:
                return found
            found.append(moment)
        after = upcoming[-1]
    return found[:limit]
