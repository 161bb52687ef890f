"""How elapsed times and clock times read everywhere a person sees them: the CLI, git notes,
notifications, the site.

One rule for clock times: everything of a project (its pages, its rows in `flank status`, its
pushes) is shown in its pipelines' `timezone:` when they share one, else in the VM's local zone
(`page_zone`), and always with the zone's abbreviation (`02:00 CET`), so two times on one screen
can never silently be in two zones.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, tzinfo


def duration(seconds: float | None) -> str:
    """0.4s, 42s, 14m32s, 2h05m, 1d03h — short, and exact enough to compare runs."""
    if seconds is None:
        return "–"
    s = max(float(seconds), 0.0)
    if s < 10:
        return f"{s:.1f}s"
    if s < 60:
        return f"{s:.0f}s"
    m, sec = divmod(int(round(s)), 60)
    if m < 60:
        return f"{m}m{sec:02d}s"
    h, m = divmod(m, 60)
    if h < 24:
        return f"{h}h{m:02d}m"
    d, h = divmod(h, 24)
    return f"{d}d{h:02d}h"


def zone(name: str | tzinfo | None) -> tzinfo | None:
    """The IANA zone, or None (= the VM's local zone) when unset or unknown."""
    if name is None or isinstance(name, tzinfo):
        return name
    if not name:
        return None
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # here: a run that shows no time never loads it

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def page_zone(zones: Iterable[str | None]) -> str | None:
    """The zone of what shows the times of several pipelines (a project's pages, the home page):
    theirs when they all share one, else None (the VM's local zone). None among `zones` is the VM's."""
    names = set(zones)
    return names.pop() if len(names) == 1 else None


def parse_option_time(text: str, option: str = "--now") -> datetime:
    """A time a person typed on the command line (ISO 8601); one clear error otherwise."""
    from flank_ops.errors import UserError

    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise UserError(
            f"{option} {text!r} is not an ISO date and time", "write it like 2026-11-24T02:00 or 2026-11-24T02:00+01:00"
        ) from None


def parse_time(value: str | datetime | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None


# The shapes a clock time takes; every one ends with the zone's abbreviation.
LONG = "%a %d %b %Y %H:%M"  # Tue 24 Nov 2026 02:00 GMT   (run pages)
MEDIUM = "%a %d %b %H:%M"  # Tue 24 Nov 02:00 GMT        (push output, next runs)
SHORT = "%d %b %H:%M"  # 24 Nov 02:00 GMT            (cards, tables)
NOTE = "%Y-%m-%d %H:%M"  # 2026-11-24 02:00 GMT        (git notes, CLI tables, backfills)


def clock(value: str | datetime | None, tz: str | tzinfo | None = None, shape: str = MEDIUM) -> str:
    """`value` (ISO text or datetime) in zone `tz` (name or tzinfo; None = the VM's local zone),
    formatted with `shape` and the zone's abbreviation; '–' when there is no time."""
    t = parse_time(value)
    if t is None:
        return "–"
    if t.tzinfo is None:  # naive times are the VM's local time
        t = t.astimezone()
    local = t.astimezone(zone(tz))
    return f"{local.strftime(shape)} {local.tzname()}"


# Sizes: memory in KiB (peak RSS) and file sizes in bytes, one rule for every page and message.
# The steps are 1024, so the labels are the binary ones (issue 26: "GB" that was GiB).
def fmt_kb(kb: float | None, missing: str = "–") -> str:
    """`kb` KiB as people read it (`51.2 MiB`); `missing` when there is no figure (e.g. "unknown")."""
    if kb is None:
        return missing
    value = float(kb)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "KiB" else f"{value:.1f} {unit}"
        value /= 1024
    return missing


def fmt_bytes(n: int | None) -> str:
    if n is None:
        return "–"
    if n < 1024:
        return f"{n} B"
    return fmt_kb(n / 1024)
