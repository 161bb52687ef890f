"""issue 26 on the real one-node Slurm cluster: matrix instances are jobs of their own, memory grows per attempt."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import run_flank
from run.deployed import deploy, record, runs_dir

pytestmark = pytest.mark.xdist_group("slurm")


def test_matrix_instances_are_slurm_jobs_and_memory_grows_per_attempt(tmp_path: Path, slurm) -> None:
    deploy(
        tmp_path,
        "pipelines:\n  nightly:\n    executor: slurm\n    tasks:\n"
        "      fit:\n"
        "        run: 'echo fit $FLANK_MATRIX_REGION with ${SLURM_MEM_PER_NODE}M; test $SLURM_MEM_PER_NODE -ge 200'\n"
        "        matrix: {region: [north, south]}\n"
        "        memory: [100M, 200M]\n"
        "        retries: 1\n"
        "        retry_delay: 1\n"
        "      report: {run: 'echo all', needs: [fit]}\n",
    )
    out = run_flank("run", "demo", "nightly")
    assert out.returncode == 0, out.stdout + out.stderr
    rec = record(1)
    for region in ("north", "south"):
        task = rec["tasks"][f"fit[region={region}]"]
        assert task["status"] == "success" and task["attempts"] == 2
        assert task["executor"]["kind"] == "slurm" and task["executor"]["state"] == "COMPLETED"
        assert task["memory_mb"] == 200
        log = (runs_dir() / "1" / task["log"]).read_text()
        assert f"fit {region} with 100M" in log and f"fit {region} with 200M" in log
        assert "attempt 2 asks for 200M of memory" in log
        assert f"flank-demo-nightly-1-fit[region={region}]" in log  # the job's name says which instance
    assert rec["tasks"]["report"]["status"] == "success"
