"""How elapsed times read everywhere a person sees them: the CLI, git notes, the site."""
from __future__ import annotations


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
