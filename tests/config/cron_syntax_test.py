"""Which cron expressions flank accepts: those Debian's cron runs exactly as croniter computes them."""

from __future__ import annotations

import subprocess

import pytest

from flank_ops.config.cron_syntax import check_expression, parse_expression
from flank_ops.fileio import locked
from flank_ops.schedule.crontab import crontab_lock, read_crontab, write_crontab
from helpers.user_crontab import user_crontab  # noqa: F401 - fixture

OK = None
# (expression, None when accepted else a piece of the message, does Debian's `crontab` itself accept it?)
# The last column is checked against the real crontab command below (None: not checked).
CASES = [
    ("0 2 * * *", OK, True),
    ("*/15 * * * *", OK, True),
    ("0 9-17 * * 1-5", OK, True),
    ("1,2-5/2,*/20 * * * *", OK, True),
    ("0 0 * JAN mOn", OK, True),  # names are case-insensitive
    ("0 0 * jan-mar mon-fri/2", OK, True),
    ("0 0 * * 7", OK, True),  # 7 = Sunday
    ("0 0 * * 0,7", OK, True),
    ("0 0 * * 5-7", OK, True),
    ("0 0 * * 1-7/2", OK, True),
    ("00 002 * * *", OK, True),  # leading zeros
    ("*/60 * * * *", OK, True),  # a step past the end: just the first value
    ("0 0 29 2 *", OK, True),  # leap years only, but it runs
    ("0 0 1,15 * 1", OK, True),  # neither starts with '*': day OR weekday, in both
    ("0 0 1-31 * 1", OK, True),
    ("@daily", OK, True),
    ("@midnight", OK, True),
    ("@hourly", OK, True),
    ("@weekly", OK, True),
    ("@monthly", OK, True),
    ("@yearly", OK, True),
    ("@annually", OK, True),
    ("  0 2 * * *  ", OK, None),  # surrounding blanks are fine
    # rejected: Debian cron refuses it
    ("0 0 L * *", "'L' (last day) is not supported by Debian cron", False),
    ("0 0 1W * *", "'1W' (nearest weekday) is not supported by Debian cron", False),
    ("0 0 ? * *", "'?' is not supported by Debian cron; write '*'", False),
    ("60 * * * *", "60 is out of range for the minute field (0-59)", False),
    ("0 24 * * *", "24 is out of range for the hour field (0-23)", False),
    ("0 0 0 * *", "0 is out of range for the day-of-month field (1-31)", False),
    ("0 0 1 13 *", "13 is out of range for the month field (1-12)", False),
    ("0 0 * * 8", "8 is out of range for the weekday field (0-7)", False),
    ("*/0 * * * *", "step 0 in '*/0' never advances", False),
    ("0-59/0 * * * *", "step 0 in '0-59/0' never advances", None),
    ("5/15 * * * *", "Debian cron takes a step only after '*' or a range; write '5-59/15'", False),
    ("59/15 * * * *", "'59/15': Debian cron takes a step only after '*' or a range; write '59'", False),
    ("0 0 * * 1/2", "write '1-6/2'", False),
    ("0 0 * * monday", "'monday' is not a weekday name: use sun, mon, tue", False),
    ("0 mon * * *", "names work only in the month and weekday fields", False),
    ("1, * * * *", "empty item in the minute field '1,'", False),
    (",1 * * * *", "empty item", False),
    ("0 0 * * 7/2", "write '7'", False),
    ("@Daily", "Debian cron's keywords are lowercase: write '@daily'", False),
    ("@every 5m", "not a Debian cron keyword", None),
    ("* * * *", "4 fields: Debian cron takes 5 (minute hour day-of-month month weekday)", None),
    ("0 0 1 1 * 2030", "6 fields: Debian cron takes 5", None),
    ("0 0 0 1 1 * 2030", "7 fields", None),
    ("H * * * *", "'H' (hashed value) is not supported by Debian cron", None),
    ("", "empty schedule", None),
    # rejected: Debian accepts it but reads it differently from croniter (or never runs it)
    (
        "0 0 * * 5#3",
        "'5#3' (the nth weekday of the month) is not supported by Debian cron, which would read it as just '5'",
        True,
    ),
    ("5#3 * * * *", "nth weekday", True),
    ("*x * * * *", "'*x' is not a valid minute", True),
    ("*-5 * * * *", "'*-5' is not a valid minute", True),
    ("1-5-7 * * * *", "'1-5-7' is not a valid minute", True),
    ("1-5/2/3 * * * *", "not a valid minute", True),
    (
        "0 22-2 * * *",
        "the range '22-2' goes backwards: Debian cron never runs it (croniter would wrap around); write '22-23,0-2'",
        True,
    ),
    ("0 0 * * 6-0", "write '6,0'", None),
    (
        "0 0 * * 7-7",
        "the weekday field '7-7' means {0} to Debian cron but {0,1,2,3,4,5,6} to flank's scheduler (croniter)",
        True,
    ),
    (
        "0 0 */2 * 1",
        "Debian cron runs only when both match (a field starting with '*' makes it AND), croniter when either does",
        True,
    ),
    ("0 0 1-15 * */2", "runs only when both match", True),
    ("0 0 30 2 *", "'0 0 30 2 *' never runs: no day 30 in Feb", True),
    ("0 0 31 4,6,9,11 *", "never runs: no day 31 in Apr, Jun, Sep, Nov", True),
    ("@reboot", "@reboot cannot be scheduled by flank; use on_push: true", True),
]


@pytest.mark.parametrize(("expr", "expected", "debian"), CASES, ids=[c[0] or "empty" for c in CASES])
def test_check_expression(expr: str, expected: str | None, debian: bool | None) -> None:
    message = check_expression(expr)
    if expected is None:
        assert message is None
    else:
        assert message is not None and expected in message, message


def test_the_table_is_big_enough() -> None:
    assert len(CASES) >= 25
    assert sum(1 for c in CASES if c[1] is None) >= 10


def test_debian_crontab_agrees_with_the_table(user_crontab) -> None:  # noqa: F811 - fixture
    """The third column is what Debian's real `crontab` command says; check it, one install per case."""
    checked = [(expr, debian) for expr, _, debian in CASES if debian is not None]
    with locked(crontab_lock()):
        before = read_crontab()
        try:
            verdicts = {}
            for expr, _ in checked:
                proc = subprocess.run(["crontab", "-"], input=f"{expr} true\n", text=True, capture_output=True)
                verdicts[expr] = proc.returncode == 0
        finally:
            write_crontab(before)
    assert {e: v for e, v in verdicts.items()} == dict(checked)


def test_parsed_sets_follow_debian() -> None:
    spec = parse_expression("*/20 9-17/4 * jan,JUL sun,7")
    assert sorted(spec.minutes) == [0, 20, 40]
    assert sorted(spec.hours) == [9, 13, 17]
    assert sorted(spec.months) == [1, 7]
    assert sorted(spec.weekdays) == [0]
    assert spec.wildcard and spec.day_star and not spec.weekday_star
    assert not parse_expression("@daily").wildcard
    assert parse_expression("@hourly").wildcard
    assert parse_expression("@weekly").five_fields == "0 0 * * 0"
