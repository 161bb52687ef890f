"""flank_ops/run/site_writer.py: the coalescing thread that draws a run's pages beside it.

The draw here is a stand-in that counts its calls (the real pages are drawn in
runner_site_test.py); it blocks on an event so the test decides when a draw is in progress.
"""

from __future__ import annotations

import threading

from flank_ops.run.site_writer import SiteWriter
from helpers.waiting import wait_for


class Draws:
    def __init__(self) -> None:
        self.count = 0
        self.started = threading.Event()
        self.go_on = threading.Event()

    def __call__(self) -> None:
        self.count += 1
        self.started.set()
        self.go_on.wait(30)


def test_requests_made_while_drawing_become_one_draw_and_close_waits_for_it() -> None:
    draws = Draws()
    writer = SiteWriter(draws, every_s=0)
    writer.request()
    assert draws.started.wait(30)
    for _ in range(5):
        writer.request()  # while the first draw is in progress
    draws.go_on.set()
    wait_for(lambda: draws.count == 2, "the second draw")
    writer.close()
    assert draws.count == 2  # latest wins: five requests, one draw


def test_close_drops_a_waiting_request_and_ends_the_thread() -> None:
    draws = Draws()
    writer = SiteWriter(draws, every_s=3600)  # after one draw, the next may come only in an hour
    draws.go_on.set()
    writer.request()
    wait_for(lambda: draws.count == 1, "the first draw")
    writer.request()  # waits for its turn...
    writer.close()  # ...and is dropped: the after-run step draws the final pages
    assert draws.count == 1
    assert not writer._thread.is_alive()
