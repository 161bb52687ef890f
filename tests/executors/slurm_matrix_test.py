"""issue 26 on the real one-node Slurm cluster: matrix instances are jobs of their own, memory grows per attempt."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import run_flank, wait_for

from helpers.deployed import deploy, record, runs_dir, start_flank

pytestmark = [pytest.mark.xdist_group("slurm"), pytest.mark.slow]


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


def test_the_tasks_of_a_run_share_one_scontrol_query(tmp_path: Path, slurm) -> None:
    # scontrol as installed, with each call written down (PATH puts this wrapper first)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "scontrol-calls"
    real = shutil.which("scontrol")
    (bin_dir / "scontrol").write_text(f'#!/bin/sh\necho "$*" >> {calls}\nexec {real} "$@"\n')
    (bin_dir / "scontrol").chmod(0o755)
    deploy(
        tmp_path,
        "pipelines:\n  nightly:\n    executor: slurm\n    concurrency: 6\n    tasks:\n"
        "      fit: {run: 'sleep 1; echo $FLANK_MATRIX_VALUE', matrix: [a, b, c, d, e, f]}\n",
    )
    out = run_flank("run", "demo", "nightly", env={"PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert out.returncode == 0, out.stdout + out.stderr
    rec = record(1)
    job_ids = {t["executor"]["job_id"] for t in rec["tasks"].values()}
    assert len(job_ids) == 6
    asked = calls.read_text().splitlines()
    assert "show job -o" in asked  # all the run's jobs at once ...
    assert not [c for c in asked if c.startswith("show job -o ")]  # ... never one job at a time
    shared = json.loads((runs_dir() / "1" / "jobs" / "slurm.poll.json").read_text())
    assert set(shared["states"]) == job_ids


def test_matrix_instances_that_share_resources_go_as_one_job_array(
    tmp_path: Path, slurm, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = tmp_path / "gate"
    gate.mkdir()
    monkeypatch.setenv("GATE", str(gate))
    deploy(
        tmp_path,
        "pipelines:\n  nightly:\n    executor: slurm\n    concurrency: 4\n    tasks:\n"
        "      fit:\n"
        "        run: 'echo cell $FLANK_MATRIX_VALUE is $FLANK_TASK; "
        'for i in $(seq 600); do [ -e "$GATE/open" ] && exit 0; sleep 0.1; done; exit 9\'\n'
        "        matrix: [a, b, c, d]\n"
        "        max_parallel: 2\n"
        "        memory: 100M\n"
        "      report: {run: 'echo all', needs: [fit], executor: local}\n",
    )
    env = {**os.environ, **slurm.env}
    proc = start_flank("run", "demo", "nightly")
    try:

        def array_lines() -> list[list[str]]:
            out = subprocess.run(["squeue", "-h", "-o", "%F|%K|%j|%T"], env=env, capture_output=True, text=True)
            return [line.split("|") for line in out.stdout.split() if "|flank-demo-nightly-1-" in line]

        lines = wait_for(lambda: (got := array_lines()) and any(t == "RUNNING" for *_, t in got) and got, "the array")
        assert {name for _, _, name, _ in lines} == {"flank-demo-nightly-1-fit"}  # one job, named after the task
        assert len({array for array, *_ in lines}) == 1  # one array job
        array = lines[0][0]
        shown = subprocess.run(["scontrol", "show", "job", array], env=env, capture_output=True, text=True).stdout
        assert "ArrayTaskThrottle=2" in shown  # max_parallel: Slurm's own bound
        (gate / "open").write_text("")
        assert proc.wait(timeout=120) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
        (gate / "open").write_text("")
    rec = record(1)
    cells = ["a", "b", "c", "d"]
    ids = {rec["tasks"][f"fit[{c}]"]["executor"]["job_id"] for c in cells}
    assert ids == {f"{array}_{i}" for i in range(4)}
    for cell in cells:
        task = rec["tasks"][f"fit[{cell}]"]
        assert task["status"] == "success" and task["executor"]["state"] == "COMPLETED"
        log = (runs_dir() / "1" / task["log"]).read_text()
        assert f"cell {cell} is fit[{cell}]" in log  # its own cell, its own log
        assert log.count("cell ") == 1
    assert rec["tasks"]["report"]["status"] == "success"
    jobs = runs_dir() / "1" / "jobs"
    assert not list(jobs.glob("*.env")) and not list(jobs.glob("*.out")) and not list(jobs.glob("*.rc"))


def test_slurm_tasks_with_outputs_are_up_to_date_when_nothing_changed(tmp_path: Path, slurm) -> None:
    """Found by the third trial: a Slurm task with outputs: ran on every run ('ran: no previous
    success' each time): its fingerprint was never written. The run folder and the release are on
    the file system the node shares, so the VM checks the outputs as for a local task."""
    from helpers.deployed import push

    clone = deploy(
        tmp_path,
        "persist: [out]\npipelines:\n  nightly:\n    executor: slurm\n    tasks:\n"
        "      fit:\n"
        "        run: cat in/$FLANK_MATRIX_VALUE.txt > out/fit_$FLANK_MATRIX_VALUE.txt\n"
        "        matrix: [north, south]\n"
        "        inputs: ['in/{value}.txt']\n"
        "        outputs: ['out/fit_{value}.txt']\n",
        {"in/north.txt": "1\n", "in/south.txt": "2\n"},
    )
    for _ in range(2):
        out = run_flank("run", "demo", "nightly")
        assert out.returncode == 0, out.stdout + out.stderr
    assert {n: t["status"] for n, t in record(2)["tasks"].items()} == {
        "fit[north]": "up_to_date",
        "fit[south]": "up_to_date",
    }, out.stdout
    push(clone, {"in/south.txt": "3\n"}, "south changed")
    out = run_flank("run", "demo", "nightly")
    assert out.returncode == 0, out.stdout + out.stderr
    tasks = record(3)["tasks"]
    assert tasks["fit[north]"]["status"] == "up_to_date"
    assert tasks["fit[south]"]["status"] == "success" and tasks["fit[south]"]["reason"] == "ran: in/south.txt changed"
    assert tasks["fit[south]"]["executor"]["kind"] == "slurm"
