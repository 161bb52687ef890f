"""The run's pages are drawn beside the run, never in its way (issue 22).

The runner asks for a redraw whenever its record changed (`request`); one thread draws, at most
every `every_s` — less often when drawing is slow, so it never takes more than a fifth of the
time — and a request made while it draws replaces any older waiting one (latest wins: each
draw reads the record as it is then). `close` waits for a draw in progress and drops a waiting
one: the final page is drawn after it by the after-run step, from the final record, so it is
exact. A draw that fails is said on stderr by `draw` and never reaches the run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class SiteWriter:
    def __init__(self, draw: Callable[[], None], every_s: float) -> None:
        """draw(): redraw the run's pages; must not raise."""
        self._draw = draw
        self._every_s = every_s
        self._wake = threading.Condition()
        self._wanted = False  # a request is waiting
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="flank-site-writer", daemon=True)
        self._thread.start()

    def request(self) -> None:
        with self._wake:
            self._wanted = True
            self._wake.notify()

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wanted = False
            self._wake.notify()
        self._thread.join()

    def _loop(self) -> None:
        not_before = 0.0
        while True:
            with self._wake:
                while not self._closed and (not self._wanted or time.monotonic() < not_before):
                    self._wake.wait(not_before - time.monotonic() if self._wanted else None)
                if self._closed:
                    return
                self._wanted = False
            began = time.monotonic()
            self._draw()
            ended = time.monotonic()
            not_before = ended + max(self._every_s, 4 * (ended - began))
