"""What a push prints back to the pusher: one line on stderr, which git shows as `remote: flank: ...`
(`remote: setup: ...` for setup's output). A pusher who went away (Ctrl-C, a dropped connection) is no
reason to stop a deploy half-way: the line is lost, the deploy goes on and its logs keep everything."""

from __future__ import annotations

import contextlib
import sys


def say(message: str, prefix: str = "flank") -> None:
    with contextlib.suppress(OSError, ValueError):
        print(f"{prefix}: {message}", file=sys.stderr, flush=True)
