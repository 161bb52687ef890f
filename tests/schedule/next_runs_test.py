"""next_runs: merged, de-duplicated, aware in the pipeline's zone, and the same instants is_due picks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from flank_ops.config.model import Pipeline
from flank_ops.schedule.due import is_due
from flank_ops.schedule.next_runs import next_runs

UTC = UTC


def pipeline(*schedule: str, tz: str | None = None) -> Pipeline:
    return Pipeline(name="nightly", tasks={}, schedule=schedule, timezone=tz)


def iso(times: list[datetime]) -> list[str]:
    return [t.isoformat() for t in times]


def test_next_runs_of_one_schedule() -> None:
    after = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    assert iso(next_runs(pipeline("0 2 * * *", tz="UTC"), 3, after)) == [
        "2026-11-24T02:00:00+00:00",
        "2026-11-25T02:00:00+00:00",
        "2026-11-26T02:00:00+00:00",
    ]
    assert iso(next_runs(pipeline("@weekly", tz="UTC"), 1, after)) == ["2026-11-29T00:00:00+00:00"]


def test_after_is_exclusive_and_count_defaults_to_one() -> None:
    runs = next_runs(pipeline("0 2 * * *", tz="UTC"), after=datetime(2026, 11, 24, 2, 0, tzinfo=UTC))
    assert iso(runs) == ["2026-11-25T02:00:00+00:00"]


def test_a_list_of_schedules_is_merged_without_duplicates() -> None:
    p = pipeline("0 2 * * *", "0 2 * * 1", "30 6 * * 1-5", tz="Europe/London")
    runs = next_runs(p, 5, datetime(2026, 11, 22, 12, 0, tzinfo=UTC))  # a Sunday
    assert iso(runs) == [
        "2026-11-23T02:00:00+00:00",
        "2026-11-23T06:30:00+00:00",
        "2026-11-24T02:00:00+00:00",
        "2026-11-24T06:30:00+00:00",
        "2026-11-25T02:00:00+00:00",
    ]
    assert all(t.tzinfo is not None and t.tzinfo.key == "Europe/London" for t in runs)


def test_times_are_in_the_pipeline_zone_across_dst() -> None:
    p = pipeline("30 1 * * *", tz="Europe/London")
    assert iso(next_runs(p, 3, datetime(2026, 3, 28, 12, 0, tzinfo=UTC))) == [
        "2026-03-29T02:00:00+01:00",  # 01:30 does not exist that night: right after the jump
        "2026-03-30T01:30:00+01:00",
        "2026-03-31T01:30:00+01:00",
    ]
    assert iso(next_runs(p, 2, datetime(2026, 10, 24, 12, 0, tzinfo=UTC))) == [
        "2026-10-25T01:30:00+01:00",
        "2026-10-26T01:30:00+00:00",
    ]  # once in the repeated hour
    ny = pipeline("0 9 * * 1-5", tz="America/New_York")
    assert iso(next_runs(ny, 2, datetime(2026, 11, 20, 15, 0, tzinfo=UTC))) == [
        "2026-11-23T09:00:00-05:00",
        "2026-11-24T09:00:00-05:00",
    ]


def test_no_timezone_means_the_vm_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "America/New_York")
    runs = next_runs(pipeline("0 2 * * *"), 1, datetime(2026, 7, 1, 0, 0, tzinfo=UTC))
    assert iso(runs) == ["2026-07-01T02:00:00-04:00"]
    naive = next_runs(pipeline("0 2 * * *"), 1, datetime(2026, 7, 1, 2, 0))  # naive: VM local time
    assert iso(naive) == ["2026-07-02T02:00:00-04:00"]


def test_no_schedule_no_runs() -> None:
    assert next_runs(pipeline(), 3) == []
    assert next_runs(pipeline("0 2 * * *"), 0) == []


def test_default_after_is_now() -> None:
    before = datetime.now(UTC)
    (nxt,) = next_runs(pipeline("* * * * *", tz="UTC"))
    assert before < nxt <= before + timedelta(minutes=1)


@pytest.mark.parametrize("tz", ["Europe/London", "America/New_York"])
@pytest.mark.parametrize("expr", ["30 1 * * *", "0 2 * * *", "*/20 * * * *", "0 * * * *", "15 1,2 * * 0"])
@pytest.mark.parametrize("day", ["spring", "fall"])
def test_next_runs_agrees_with_is_due(tz: str, expr: str, day: str) -> None:
    """What the site promises is what cron's guard and `flank scheduler` do, minute by minute."""
    start = {
        ("Europe/London", "spring"): datetime(2026, 3, 28, 22, 0, tzinfo=UTC),
        ("Europe/London", "fall"): datetime(2026, 10, 24, 22, 0, tzinfo=UTC),
        ("America/New_York", "spring"): datetime(2026, 3, 8, 3, 0, tzinfo=UTC),
        ("America/New_York", "fall"): datetime(2026, 11, 1, 2, 0, tzinfo=UTC),
    }[(tz, day)]
    p = pipeline(expr, tz=tz)
    end = start + timedelta(hours=6)
    scanned = []
    minute = start
    while minute < end:
        if is_due(p, expr, minute):
            scanned.append(minute)
        minute += timedelta(minutes=1)
    predicted = [t for t in next_runs(p, 40, start - timedelta(minutes=1)) if t < end]
    assert [t.astimezone(UTC) for t in predicted] == scanned


def test_firings_in_a_range_are_the_minutes_is_due_picks() -> None:
    """issue 23 (backfill): every scheduled minute in [start, end), oldest first, the DST rules included."""
    from flank_ops.schedule.next_runs import firings

    p = pipeline("30 1 * * *", "*/30 1 * * *", tz="Europe/London")
    start = datetime(2026, 10, 24, 23, 0, tzinfo=UTC)
    end = datetime(2026, 10, 25, 2, 0, tzinfo=UTC)
    got = firings(p, start, end, 100)
    assert iso(got) == [
        "2026-10-25T01:00:00+01:00",
        "2026-10-25T01:30:00+01:00",  # both schedules: one run
        "2026-10-25T01:00:00+00:00",  # the repeated hour: the wildcard schedule keeps its rhythm
        "2026-10-25T01:30:00+00:00",
    ]
    minute = start
    due = []
    while minute < end:
        if any(is_due(p, expr, minute) for expr in p.schedule):
            due.append(minute)
        minute += timedelta(minutes=1)
    assert [t.astimezone(UTC) for t in got] == due
    assert len(firings(p, start, end, 3)) == 3  # at most the limit
    assert firings(p, start, start + timedelta(minutes=59), 10) == []
