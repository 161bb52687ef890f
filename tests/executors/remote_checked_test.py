"""issue 26: a remote task with outputs is fingerprinted by its executor loop (executors/remote.py with
task/checked_task.py), on the real one-node Slurm cluster, whose jobs write to the VM's own disk as a shared
file system would: skipped when nothing changed, failed when it did not write a declared output."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_flank

from helpers.deployed import deploy, record, runs_dir

pytestmark = [pytest.mark.xdist_group("slurm"), pytest.mark.slow]


def test_a_slurm_task_with_outputs_is_skipped_when_nothing_changed_and_checked(tmp_path: Path, slurm) -> None:
    deploy(
        tmp_path,
        "pipelines:\n  nightly:\n    executor: slurm\n    tasks:\n"
        "      fit: {run: 'mkdir -p out && echo fitted > out/fit.txt', outputs: [out/fit.txt]}\n"
        "      lazy: {run: 'echo forgot', outputs: [out/lazy.txt]}\n",
    )
    assert run_flank("run", "demo", "nightly").returncode == 1
    first = record(1)["tasks"]
    assert first["fit"]["status"] == "success" and first["fit"]["executor"]["kind"] == "slurm"
    assert first["lazy"]["status"] == "failed"
    lazy_log = (runs_dir() / "1" / "logs" / "lazy.log").read_text()
    assert "did not write its declared output out/lazy.txt" in lazy_log

    run_flank("run", "demo", "nightly")
    second = record(2)["tasks"]
    assert second["fit"]["status"] == "up_to_date"  # no job submitted: nothing it depends on changed
    assert "executor" not in second["fit"] or not (second["fit"].get("executor") or {}).get("job_id")
    assert second["lazy"]["status"] == "failed"
