"""Which cron expressions Debian's cron runs the way flank computes them.

flank computes schedules with croniter (next run times, `flank scheduler`, the
timezone guard), but the VM runs them with Debian's cron (Vixie cron 3.0pl1 as
patched by Debian). The two disagree more often than one would think: croniter
accepts `L`, `W`, `#`, `?`, `H` and 6 fields, reads `7-7` as "every day",
wraps `22-2` around midnight, and ORs day-of-month with weekday where Debian
ANDs them (Debian ANDs whenever either field *starts* with `*`, so `*/2`
counts as a star). Debian silently drops what follows a value it understood
(`5#3` runs every Friday, `*-5` every minute).

So this module parses an expression exactly as Debian's entry.c does
(`parse_expression`), refuses everything Debian would misread or drop, then
compares the minute/hour/day/month/weekday sets and the day-matching rule
with croniter's expansion. `check_expression` returns None only when both
agree on every field.
"""

from __future__ import annotations

from typing import NamedTuple

MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
DOW_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


class Field(NamedTuple):
    name: str
    low: int
    high: int
    names: tuple[str, ...]  # symbolic names, value = index + low


FIELDS = (
    Field("minute", 0, 59, ()),
    Field("hour", 0, 23, ()),
    Field("day-of-month", 1, 31, ()),
    Field("month", 1, 12, MONTH_NAMES),
    Field("weekday", 0, 7, DOW_NAMES),
)

# Debian's @keywords (case-sensitive) as 5 fields; @weekly/@monthly/@yearly set
# the star flags exactly as entry.c does, which the 5-field form reproduces.
KEYWORDS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

FORMAT_HINT = "5 fields: minute hour day-of-month month weekday, e.g. '0 2 * * *'"


class CronSyntaxError(ValueError):
    """An expression Debian's cron would refuse, misread, or never run."""


class CronSpec(NamedTuple):
    """An expression as Debian's cron reads it."""

    expression: str  # as written in flank.yml (stripped)
    fields: tuple[str, ...]  # the 5 field texts (keywords expanded)
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0-6, Sunday = 0 (7 folded into 0)
    day_star: bool  # day-of-month field starts with '*'
    weekday_star: bool  # weekday field starts with '*'
    # Debian's "wildcard job": minute or hour starts with '*'. Across DST, cron
    # runs these at every real matching minute, and fixed-time jobs once.
    wildcard: bool

    @property
    def five_fields(self) -> str:
        return " ".join(self.fields)


def _unsupported(token: str, field: Field) -> str | None:
    """A message for the non-Debian extensions people copy from other crons."""
    upper = token.upper()
    if "#" in token:
        return (
            f"'{token}' (the nth weekday of the month) is not supported by Debian cron, which would read it "
            f"as just '{token.split('#')[0]}'; schedule the whole week (e.g. day-of-month '15-21', weekday '*') "
            "and check the weekday in the task"
        )
    if any(part in ("L", "LW") or (part.endswith("L") and part[:-1].isdigit()) for part in upper.split(",")):
        return "'L' (last day) is not supported by Debian cron; schedule days 28-31 and check the date in the task"
    if upper.endswith("W") and upper[:-1].isdigit():
        return f"'{token}' (nearest weekday) is not supported by Debian cron"
    if token == "?":
        return "'?' is not supported by Debian cron; write '*'"
    if upper.startswith("H") and (len(upper) == 1 or upper[1] in "(/"):
        return f"'{token}' (hashed value) is not supported by Debian cron; pick a fixed {field.name}"
    return None


MAX_DIGITS = 9  # longer numbers are far out of every field's range (and cron itself refuses them)


def _long(text: str) -> str:
    return text if len(text) <= 20 else f"{text[:12]}…({len(text)} digits)"


def _number(text: str, field: Field, item: str) -> int:
    """One value as entry.c's get_number reads it: digits, or a name in month/weekday."""
    if not text:
        raise CronSyntaxError(f"'{item}' in the {field.name} field is missing a number")
    if text.isdigit() and text.isascii() and len(text) > MAX_DIGITS:  # never int() of 5,000 digits
        raise CronSyntaxError(f"{_long(text)} is out of range for the {field.name} field ({field.low}-{field.high})")
    if text.isdigit() and text.isascii():
        value = int(text)
    elif text.isalnum() and text.lower() in field.names:
        value = field.names.index(text.lower()) + field.low
    elif field.names:
        shown = ", ".join(field.names)
        raise CronSyntaxError(f"'{text}' is not a {field.name} name: use {shown} or {field.low}-{field.high}")
    else:
        raise CronSyntaxError(
            f"'{text}' is not a number in the {field.name} field ({field.low}-{field.high}); "
            "names work only in the month and weekday fields"
        )
    if not field.low <= value <= field.high:
        raise CronSyntaxError(f"{value} is out of range for the {field.name} field ({field.low}-{field.high})")
    return value


def _parse_item(item: str, field: Field) -> set[int]:
    """range = '*' ['/' step] | value ['-' value ['/' step]], as Debian's get_range."""
    base, slash, step_text = item.partition("/")
    if slash:
        if not step_text.isdigit() or not step_text.isascii():
            raise CronSyntaxError(f"step '/{step_text}' in '{item}' must be a whole number")
        if len(step_text) > MAX_DIGITS:
            raise CronSyntaxError(f"step '/{_long(step_text)}' in the {field.name} field is too large")
        step = int(step_text)
        if step == 0:
            raise CronSyntaxError(f"step 0 in '{item}' never advances; write a step of 1 or more")
    else:
        step = 1
    if base == "*":
        first, last = field.low, field.high
    elif "-" in base:
        left, _, right = base.partition("-")
        first, last = _number(left, field, item), _number(right, field, item)
        if first > last:
            top = 6 if field.name == "weekday" and first < 7 else field.high
            wrap = [
                f"{first}-{top}" if first < top else str(first),
                f"{field.low}-{last}" if last > field.low else str(field.low),
            ]
            suffix = f"/{step}" if slash else ""
            raise CronSyntaxError(
                f"the range '{item}' goes backwards: Debian cron never runs it (croniter would "
                f"wrap around); write '{','.join(w + suffix for w in wrap)}'"
            )
    else:
        value = _number(base, field, item)
        if slash:
            top = 6 if field.name == "weekday" else field.high
            instead = f"'{value}-{top}/{step}' (every {step} from {value}) or just " if value + step <= top else ""
            raise CronSyntaxError(
                f"'{item}': Debian cron takes a step only after '*' or a range; write {instead}'{value}'"
            )
        return {value}
    return set(range(first, last + 1, step))


def _parse_field(text: str, field: Field) -> frozenset[int]:
    message = _unsupported(text, field)
    if message:
        raise CronSyntaxError(message)
    values: set[int] = set()
    for item in text.split(","):
        if not item:
            raise CronSyntaxError(f"empty item in the {field.name} field '{text}' (a stray comma?)")
        bad = next((c for c in item if not (c.isascii() and (c.isalnum() or c in "*-/"))), None)
        if bad is not None:
            raise CronSyntaxError(f"'{bad}' is not allowed in the {field.name} field '{text}'")
        if item.count("-") > 1 or item.count("/") > 1 or ("*" in item and not (item == "*" or item.startswith("*/"))):
            # Debian would read the front of it and silently drop the rest.
            raise CronSyntaxError(
                f"'{item}' is not a valid {field.name}: write a value, a range 'a-b', "
                "'*', optionally followed by '/step'"
            )
        values |= _parse_item(item, field)
    if field.name == "weekday" and 7 in values:
        values = (values - {7}) | {0}  # Debian: 0 and 7 are both Sunday
    return frozenset(values)


def parse_expression(expr: str) -> CronSpec:
    """Read `expr` as Debian's cron does; raise CronSyntaxError saying what is wrong and what to write."""
    if not isinstance(expr, str):
        raise CronSyntaxError(f"a schedule must be a string like '0 2 * * *', not {type(expr).__name__}")
    text = expr.strip()
    if not text:
        raise CronSyntaxError(f"empty schedule: write {FORMAT_HINT}")
    if "\n" in text or "\r" in text:
        raise CronSyntaxError("a schedule must be on one line")
    if text.startswith("@"):
        if text == "@reboot":
            raise CronSyntaxError("@reboot cannot be scheduled by flank; use on_push: true to run after a deploy")
        if text not in KEYWORDS:
            known = ", ".join(k for k in KEYWORDS if k != "@annually")
            lower = text.lower()
            hint = f" (Debian cron's keywords are lowercase: write '{lower}')" if lower in KEYWORDS else ""
            raise CronSyntaxError(f"'{text}' is not a Debian cron keyword{hint}; use {known}")
        parts = KEYWORDS[text].split()
    else:
        parts = text.split()
    if len(parts) != 5:
        extra = " and has no seconds or years field" if len(parts) > 5 else ""
        raise CronSyntaxError(
            f"{len(parts)} field{'s' if len(parts) != 1 else ''}: Debian cron takes 5 "
            f"(minute hour day-of-month month weekday){extra}; e.g. '0 2 * * *'"
        )
    minutes, hours, days, months, weekdays = (_parse_field(p, f) for p, f in zip(parts, FIELDS))
    spec = CronSpec(
        expression=text,
        fields=tuple(parts),
        minutes=minutes,
        hours=hours,
        days=days,
        months=months,
        weekdays=weekdays,
        day_star=parts[2].startswith("*"),
        weekday_star=parts[4].startswith("*"),
        wildcard=parts[0].startswith("*") or parts[1].startswith("*"),
    )
    _check_runs_at_all(spec)
    return spec


def _check_runs_at_all(spec: CronSpec) -> None:
    """Debian accepts '0 0 30 2 *' and simply never runs it; say so instead."""
    if not (spec.day_star or spec.weekday_star):
        return  # day OR weekday: some date always has one of the weekdays
    # AND: every (month, day) pair eventually falls on every weekday, so it runs
    # if any listed day exists in any listed month (Feb 29 counts: leap years).
    import calendar  # here: only a schedule naming days of the month needs it

    if any(day <= calendar.monthrange(2024, month)[1] for month in spec.months for day in spec.days):
        return
    names = ", ".join(MONTH_NAMES[m - 1].capitalize() for m in sorted(spec.months))
    raise CronSyntaxError(f"'{spec.expression}' never runs: no day {min(spec.days)} in {names}")


def _croniter_reading(five_fields: str) -> tuple[list[frozenset[int]], bool] | str:
    """croniter's field sets and whether it ORs the day fields; or why it refuses."""
    from croniter import croniter  # lazy: the git hooks import this module

    try:
        it = croniter(five_fields)
    except Exception as exc:  # noqa: BLE001 - croniter raises several types for bad input
        return str(exc)
    full = [range(0, 60), range(0, 24), range(1, 32), range(1, 13), range(0, 7)]
    sets = []
    for values, span in zip(it.expanded[:5], full):
        if values == ["*"]:
            sets.append(frozenset(span))
        elif all(isinstance(v, int) for v in values):
            sets.append(frozenset(values))
        else:
            return f"croniter reads {values!r} specially"
    if it.nth_weekday_of_month:
        return "croniter reads a '#' weekday"
    day_or = it.expanded[2][0] != "*" and it.expanded[4][0] != "*"
    return sets, day_or


ALL_DAYS = frozenset(range(1, 32))
ALL_WEEKDAYS = frozenset(range(0, 7))


def check_expression(expr: str) -> str | None:
    """None when Debian cron runs `expr` exactly as croniter computes it; else what is wrong and what to write."""
    try:
        spec = parse_expression(expr)
    except CronSyntaxError as exc:
        return str(exc)
    reading = _croniter_reading(spec.five_fields)
    if isinstance(reading, str):
        return f"'{spec.expression}': flank's scheduler cannot read it the way Debian cron does ({reading})"
    sets, croniter_or = reading
    debian_sets = [spec.minutes, spec.hours, spec.days, spec.months, spec.weekdays]
    for field, ours, theirs, text in zip(FIELDS, debian_sets, sets, spec.fields):
        if ours != theirs:
            return (
                f"the {field.name} field '{text}' means {_show(ours)} to Debian cron but {_show(theirs)} to "
                "flank's scheduler (croniter); write the values out as a list"
            )
    debian_or = not (spec.day_star or spec.weekday_star)
    if debian_or != croniter_or and not (spec.days == ALL_DAYS and spec.weekdays == ALL_WEEKDAYS):
        day, weekday = spec.fields[2], spec.fields[4]
        if debian_or:
            return (
                f"day-of-month '{day}' with weekday '{weekday}': Debian cron runs when either matches, "
                "croniter only when both do; write '*' for the field you mean to cover every day"
            )
        return (
            f"day-of-month '{day}' with weekday '{weekday}': Debian cron runs only when both match (a field "
            "starting with '*' makes it AND), croniter when either does; list the days out without '*' "
            "(e.g. '1,15') to mean either, or keep one field '*' and check the other in the task"
        )
    return None


def _show(values: frozenset[int]) -> str:
    if not values:
        return "nothing"
    return "{" + ",".join(str(v) for v in sorted(values)) + "}"
