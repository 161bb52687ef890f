"""Tests wait on conditions, never on fixed sleeps: poll with a deadline."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 60.0, interval: float = 0.02) -> Any:
    """Poll `condition` until it returns something truthy (and return that); fail saying
    what never happened once `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False
