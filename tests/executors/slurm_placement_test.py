"""issue 26: per-task placement on the real one-node Slurm cluster (two partitions on one node)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_flank

from helpers.deployed import deploy, record, runs_dir

pytestmark = [pytest.mark.xdist_group("slurm"), pytest.mark.slow]


def test_a_tasks_own_slurm_options_override_the_projects(tmp_path: Path, slurm, flank_home: Path) -> None:
    deploy(
        tmp_path,
        "slurm: {extra_args: --comment=project}\n"
        "pipelines:\n  nightly:\n    executor: slurm\n    tasks:\n"
        "      usual: echo usual on $SLURM_JOB_PARTITION\n"
        f"      placed:\n        run: echo placed on $SLURM_JOB_PARTITION\n"
        f"        slurm: {{partition: {slurm.second_partition}, extra_args: --comment=task}}\n",
    )
    out = run_flank("run", "demo", "nightly")
    assert out.returncode == 0, out.stdout + out.stderr
    rec = record(1)
    assert rec["tasks"]["usual"]["executor"]["queue"] == slurm.partition
    assert rec["tasks"]["placed"]["executor"]["queue"] == slurm.second_partition
    assert f"placed on {slurm.second_partition}" in (runs_dir() / "1" / "logs" / "placed.log").read_text()
    # flank doctor checks the partitions tasks name, not only the project's
    out = run_flank("doctor", "--no-cron")
    assert "executor slurm" in out.stdout and "FAIL" not in out.stdout, out.stdout


def test_doctor_names_a_tasks_partition_the_cluster_lacks(tmp_path: Path, slurm) -> None:
    deploy(
        tmp_path,
        "pipelines:\n  nightly:\n    executor: slurm\n    tasks:\n"
        "      gpu_fit: {run: 'echo', slurm: {partition: gpu, gres: 'gpu:1'}}\n",
    )
    out = run_flank("doctor", "--no-cron")
    assert out.returncode == 1
    assert (
        "FAIL  executor slurm (task nightly.gpu_fit): partition 'gpu' does not exist on the cluster "
        f"(it has: {slurm.partition}, {slurm.second_partition})" in out.stdout
    ), out.stdout


def test_queue_timeout_bounds_the_wait_of_a_held_job(tmp_path: Path, slurm) -> None:
    deploy(
        tmp_path,
        "pipelines:\n  nightly:\n    executor: slurm\n    tasks:\n"
        # sbatch --hold: the job waits in the queue until released, which nobody does
        "      held: {run: 'echo never', timeout: 1h, queue_timeout: 3, slurm: {extra_args: --hold}}\n",
    )
    out = run_flank("run", "demo", "nightly")
    assert out.returncode == 1
    task = record(1)["tasks"]["held"]
    assert task["status"] == "timed_out" and task["executor"]["state"] == "CANCELLED"
    log = (runs_dir() / "1" / "logs" / "held.log").read_text()
    assert f"waited 3s in the queue (queue_timeout: 3s); cancelling job {task['executor']['job_id']}" in log
    assert "never\n" not in log
    # the job never ran, so it has no exit code: not "exit 0" (found by the third trial)
    assert task["exit_code"] is None
    assert "  held                 timed_out (" in out.stdout and "exit 0" not in out.stdout, out.stdout
