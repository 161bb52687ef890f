"""flank_ops/run/site_writer.py: the coalescing thread that draws a run's pages beside it.

The draw here is a stand-in that records its calls (the real pages are drawn in
runner_site_test.py); it blocks on events so the test decides when a draw is in progress.
"""

from __future__ import annotations

import threading

from helpers.waiting import wait_for

from flank_ops.run.site_writer import SiteWriter


class Draws:
    def __init__(self) -> None:
        self.calls: list[bool] = []
        self.started = threading.Event()
        self.go_on = threading.Event()

    def __call__(self, whole: bool) -> None:
        self.calls.append(whole)
        self.started.set()
        self.go_on.wait(30)


def test_requests_made_while_drawing_become_one_draw_and_close_waits_for_it() -> None:
    draws = Draws()
    writer = SiteWriter(draws, every_s=0)
    writer.request(whole=True)
    assert draws.started.wait(30)
    for _ in range(5):
        writer.request()  # while the first draw is in progress
    draws.started.clear()
    draws.go_on.set()
    wait_for(lambda: len(draws.calls) == 2, "the second draw")
    writer.close()
    assert draws.calls == [True, False]  # latest wins: five requests, one draw


def test_a_waiting_whole_request_stays_whole() -> None:
    draws = Draws()
    writer = SiteWriter(draws, every_s=0)
    writer.request()
    assert draws.started.wait(30)
    writer.request(whole=True)
    writer.request()  # does not turn the waiting whole draw into a partial one
    draws.go_on.set()
    wait_for(lambda: len(draws.calls) == 2, "the second draw")
    writer.close()
    assert draws.calls == [False, True]


def test_close_drops_a_waiting_request_and_ends_the_thread() -> None:
    draws = Draws()
    writer = SiteWriter(draws, every_s=3600)  # after one draw, the next may come only in an hour
    draws.go_on.set()
    writer.request()
    wait_for(lambda: draws.calls == [False], "the first draw")
    writer.request()  # waits for its turn...
    writer.close()  # ...and is dropped: the after-run step draws the final pages
    assert draws.calls == [False]
    assert not writer._thread.is_alive()
