"""Durations in flank.yml: `90`, `90s`, `15m`, `2h`, `1d` (a bare number is seconds)."""

from __future__ import annotations

import re

# A number with an optional unit: the one pattern of the validator (parse_duration) and the JSON
# Schema (schema.py; ASCII digits only, as JSON Schema's regexes mean by [0-9]).
DURATION_PATTERN = r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([smhd]?)\s*$"
# The same, longer than 0, for the JSON Schema, which cannot compare the number: flank.yml's durations
# must be longer than 0 (load.py says so in its own words).
POSITIVE_DURATION_PATTERN = r"^(?=\s*[0-9.]*[1-9])" + DURATION_PATTERN[1:]
DURATION_RE = re.compile(DURATION_PATTERN)
UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
# issue 20 item 9: every duration of flank.yml is at most this (a timeout, a retry delay, a catch-up
# window, setup's timeout); far beyond what a pipeline needs, far below what a sleep or a timer
# could overflow (a retry delay of 1e20 s once became no wait at all).
MAX_DURATION_S = 30 * 86400
MAX_DURATION_TEXT = "30d"


def parse_duration(text: str) -> float | None:
    """Seconds, or None when `text` is not a duration."""
    match = DURATION_RE.match(text)
    if not match:
        return None
    number, unit = match.groups()
    return float(number) * UNIT_SECONDS[unit]
