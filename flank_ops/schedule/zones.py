"""Time zones: the VM's local zone, a pipeline's zone, and how two zones relate.

The VM's zone is what cron uses: $TZ when set (tests and the odd server set it),
else /etc/localtime. Python's own `datetime.astimezone()` gives only a fixed
offset, which is wrong across DST, so we load a real ZoneInfo.
"""

from __future__ import annotations

import functools
import os
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flank_ops.config.model import Pipeline

LOCALTIME = "/etc/localtime"


@functools.lru_cache(maxsize=8)
def _local_zone_for(tz_env: str | None) -> tuple[tzinfo, str | None]:
    if tz_env is not None:
        key = tz_env.lstrip(":")
        if not key:
            return UTC, "UTC"
        try:
            if key.startswith("/"):
                with open(key, "rb") as f:
                    return ZoneInfo.from_file(f, key=key), None
            return ZoneInfo(key), key
        except (ZoneInfoNotFoundError, OSError, ValueError):
            # A POSIX rule string like "EST5EDT,M3.2.0,M11.1.0": ZoneInfo can't
            # read it; the fixed offset in force now is the best we can do.
            return datetime.now().astimezone().tzinfo or UTC, None
    try:
        target = os.path.realpath(LOCALTIME)
        if "/zoneinfo/" in target:
            key = target.split("/zoneinfo/", 1)[1]
            try:
                return ZoneInfo(key), key
            except (ZoneInfoNotFoundError, ValueError):
                pass
        with open(LOCALTIME, "rb") as f:
            return ZoneInfo.from_file(f), None
    except OSError:
        return UTC, "UTC"


def local_zone() -> tzinfo:
    """The VM's zone, as cron sees it."""
    return _local_zone_for(os.environ.get("TZ"))[0]


def local_zone_name() -> str | None:
    """The IANA name of the VM's zone, when it has one."""
    return _local_zone_for(os.environ.get("TZ"))[1]


def pipeline_zone(pipeline: Pipeline) -> tzinfo:
    """The zone the pipeline's schedules are written in."""
    if not pipeline.timezone:
        return local_zone()
    try:
        return ZoneInfo(pipeline.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        from flank_ops.errors import UserError

        raise UserError(
            f"unknown timezone {pipeline.timezone!r} in pipeline {pipeline.name!r}",
            "use an IANA name such as Europe/London or America/New_York",
        ) from None


SAMPLE_DAYS = 2 * 366  # two years covers every DST rule in force


def _offset_at(zone: tzinfo, ts: int) -> float:
    return datetime.fromtimestamp(ts, zone).utcoffset().total_seconds()  # type: ignore[union-attr]


@functools.lru_cache(maxsize=32)
def _offset_profile(zone: tzinfo, start_ts: int) -> tuple[tuple[int, float], ...]:
    """(hour, offset) at the start and at every change of the zone's UTC offset over SAMPLE_DAYS,
    to the hour: daily samples, refined hourly on the days where the offset changes."""
    profile = [(0, _offset_at(zone, start_ts))]
    for day in range(SAMPLE_DAYS):
        if _offset_at(zone, start_ts + (day + 1) * 86400) == profile[-1][1]:
            continue
        for hour in range(day * 24 + 1, day * 24 + 25):
            offset = _offset_at(zone, start_ts + hour * 3600)
            if offset != profile[-1][1]:
                profile.append((hour, offset))
    return tuple(profile)


def _sample_start() -> int:
    """Half past this hour, as a timestamp: samples fall mid-hour (never on a DST change) and the
    cache key changes once an hour."""
    return int(datetime.now(UTC).timestamp()) // 3600 * 3600 + 1800


def same_zone(a: tzinfo, b: tzinfo) -> bool:
    """True when a and b give the same UTC offset at every hour of the next two years."""
    if a is b or (getattr(a, "key", None) is not None and getattr(a, "key", None) == getattr(b, "key", None)):
        return True
    start = _sample_start()
    return _offset_profile(a, start) == _offset_profile(b, start)


def whole_hours_apart(a: tzinfo, b: tzinfo) -> bool:
    """True when both zones keep whole-hour UTC offsets (so DST changes fall on the hour), hence a minute
    in one is the same minute in the other."""
    start = _sample_start()
    return all(off % 3600 == 0 for zone in (a, b) for _, off in _offset_profile(zone, start))
