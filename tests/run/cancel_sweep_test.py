"""A cancel is never lost (issue 20 item 1): a small seeded sweep; bench/cancel.py runs a bigger one."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.cancel_sweep import busy_home, cancel_at, delays


@pytest.mark.slow
def test_a_cancel_at_any_instant_of_a_run_ends_it_cancelled(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    busy_home(tmp_path, projects=25, pid_file=pid_file)
    results = [cancel_at(i + 1, delay, pid_file) for i, delay in enumerate(delays(seed=20, count=8, longest_s=1.5))]
    lost = [r for r in results if r.lost]
    assert not lost, "\n".join(f"{r}" for r in lost)
    assert all("cancelled" in r.cancel_out for r in results)
