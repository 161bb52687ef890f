"""'did you mean ...?' for misspelt keys, task names and timezones."""

from __future__ import annotations

import functools
from collections.abc import Iterable


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice `word` was most likely meant to be, or None."""
    return _closest(word, tuple(choices))


@functools.lru_cache(maxsize=1024)  # a file repeating one typo pays for difflib once
def _closest(word: str, options: tuple[str, ...]) -> str | None:
    import difflib  # lazy: only an error path pays for it

    lowered = {c.lower(): c for c in options}
    if word.lower() in lowered:
        return lowered[word.lower()]
    match = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if match:
        return match[0]
    # Case slips and long names ('Europe/london', 'Amercia/New_York').
    match = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[match[0]] if match else None


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """A hint like "did you mean 'needs'?", or None when nothing is close."""
    match = closest(word, choices)
    return f"did you mean {match!r}?" if match is not None else None


def choices_hint(name: str, choices: list[str], what: str) -> str:
    """ "did you mean 'x'? (pipelines: a, b)", or just the list: the hint of an unknown name."""
    known = f"{what}: {', '.join(choices)}" if choices else f"there are no {what}"
    guess = did_you_mean(name, choices)
    return f"{guess} ({known})" if guess else known
