"""is_due with a fixed clock on both DST transitions, in a pipeline zone and in the VM's zone (TZ)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from flank_ops.config.model import Pipeline
from flank_ops.schedule.due import due_schedule, is_due

UTC = UTC


def pipeline(*schedule: str, tz: str | None = None) -> Pipeline:
    return Pipeline(name="nightly", tasks={}, schedule=schedule, timezone=tz)


def due_minutes(p: Pipeline, expr: str, start: datetime, hours: int) -> list[str]:
    """Every minute in [start, start+hours) at which cron's guard would start a run, as local ISO strings."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(p.timezone) if p.timezone else None
    out = []
    minute = start
    while minute < start + timedelta(hours=hours):
        if is_due(p, expr, minute):
            out.append(minute.astimezone(zone).isoformat() if zone else minute.isoformat())
        minute += timedelta(minutes=1)
    return out


# London: 2026-03-29 01:00 GMT -> 02:00 BST; 2026-10-25 02:00 BST -> 01:00 GMT.
# New York: 2026-03-08 02:00 EST -> 03:00 EDT; 2026-11-01 02:00 EDT -> 01:00 EST.
@pytest.mark.parametrize(
    ("tz", "expr", "start", "expected"),
    [
        # skipped by spring-forward: runs once, right after the jump
        ("Europe/London", "30 1 * * *", datetime(2026, 3, 28, 23, 0, tzinfo=UTC), ["2026-03-29T02:00:00+01:00"]),
        ("America/New_York", "0 2 * * *", datetime(2026, 3, 8, 4, 0, tzinfo=UTC), ["2026-03-08T03:00:00-04:00"]),
        ("America/New_York", "30 2 * * *", datetime(2026, 3, 8, 4, 0, tzinfo=UTC), ["2026-03-08T03:00:00-04:00"]),
        # repeated by fall-back: runs once, the first time
        ("Europe/London", "30 1 * * *", datetime(2026, 10, 24, 22, 0, tzinfo=UTC), ["2026-10-25T01:30:00+01:00"]),
        ("America/New_York", "30 1 * * *", datetime(2026, 11, 1, 3, 0, tzinfo=UTC), ["2026-11-01T01:30:00-04:00"]),
        ("America/New_York", "0 2 * * *", datetime(2026, 11, 1, 3, 0, tzinfo=UTC), ["2026-11-01T02:00:00-05:00"]),
        # not near a change: just the wall-clock time
        ("Europe/London", "0 2 * * *", datetime(2026, 7, 1, 0, 0, tzinfo=UTC), ["2026-07-01T02:00:00+01:00"]),
        ("America/New_York", "0 2 * * *", datetime(2026, 1, 15, 5, 0, tzinfo=UTC), ["2026-01-15T02:00:00-05:00"]),
    ],
)
def test_fixed_time_runs_once_across_dst(tz: str, expr: str, start: datetime, expected: list[str]) -> None:
    assert due_minutes(pipeline(expr, tz=tz), expr, start, 6) == expected


def test_wildcard_schedule_keeps_its_rhythm_like_debian_cron() -> None:
    p = pipeline("*/30 * * * *", tz="Europe/London")
    # fall-back: the repeated hour runs again (real time passes); spring-forward: the skipped hour does not
    assert due_minutes(p, "*/30 * * * *", datetime(2026, 10, 24, 23, 0, tzinfo=UTC), 3) == [
        "2026-10-25T00:00:00+01:00",
        "2026-10-25T00:30:00+01:00",
        "2026-10-25T01:00:00+01:00",
        "2026-10-25T01:30:00+01:00",
        "2026-10-25T01:00:00+00:00",
        "2026-10-25T01:30:00+00:00",
    ]
    assert due_minutes(p, "*/30 * * * *", datetime(2026, 3, 29, 0, 0, tzinfo=UTC), 2) == [
        "2026-03-29T00:00:00+00:00",
        "2026-03-29T00:30:00+00:00",
        "2026-03-29T02:00:00+01:00",
        "2026-03-29T02:30:00+01:00",
    ]


def test_any_second_within_the_minute_counts() -> None:
    p = pipeline("0 2 * * *", tz="Europe/London")
    assert is_due(p, "0 2 * * *", datetime(2026, 7, 1, 1, 0, 59, 999000, tzinfo=UTC))
    assert not is_due(p, "0 2 * * *", datetime(2026, 7, 1, 1, 1, 0, tzinfo=UTC))


def test_vm_zone_comes_from_tz(monkeypatch: pytest.MonkeyPatch) -> None:
    p = pipeline("0 2 * * *")  # no timezone: the VM's
    monkeypatch.setenv("TZ", "America/New_York")
    assert is_due(p, "0 2 * * *", datetime(2026, 7, 1, 6, 0, tzinfo=UTC))  # 02:00 EDT
    assert not is_due(p, "0 2 * * *", datetime(2026, 7, 1, 2, 0, tzinfo=UTC))
    assert is_due(p, "0 2 * * *", datetime(2026, 7, 1, 2, 0))  # naive: the VM's local time
    assert due_minutes(p, "0 2 * * *", datetime(2026, 3, 8, 4, 0, tzinfo=UTC), 6) == ["2026-03-08T07:00:00+00:00"]
    monkeypatch.setenv("TZ", "Europe/London")
    assert is_due(p, "0 2 * * *", datetime(2026, 7, 1, 1, 0, tzinfo=UTC))


def test_two_schedules_in_one_minute_start_one_run() -> None:
    p = pipeline("0 2 * * *", "0 */2 * * *", tz="Europe/London")
    at_two = datetime(2026, 7, 1, 1, 0, tzinfo=UTC)  # 02:00 BST: both match
    assert is_due(p, "0 2 * * *", at_two)
    assert not is_due(p, "0 */2 * * *", at_two)
    assert due_schedule(p, at_two) == "0 2 * * *"
    at_four = datetime(2026, 7, 1, 3, 0, tzinfo=UTC)
    assert not is_due(p, "0 2 * * *", at_four)
    assert is_due(p, "0 */2 * * *", at_four)
    assert due_schedule(p, datetime(2026, 7, 1, 3, 1, tzinfo=UTC)) is None


def test_bad_expression_is_a_clear_error() -> None:
    from flank_ops.errors import UserError

    with pytest.raises(UserError, match=r"bad schedule '0 0 L \* \*': 'L' \(last day\) is not supported"):
        is_due(pipeline("0 0 L * *"), "0 0 L * *", datetime(2026, 7, 1, tzinfo=UTC))
