"""Durations in flank.yml: `90`, `90s`, `15m`, `2h`, `1d` (a bare number is seconds)."""
from __future__ import annotations

import re

DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float | None:
    """Seconds, or None when `text` is not a duration."""
    match = DURATION_RE.match(text)
    if not match:
        return None
    number, unit = match.groups()
    return float(number) * UNIT_SECONDS[unit]
