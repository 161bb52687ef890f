"""memory: and cpus: of local tasks (issue 14 item 1), executor options in flank.yml, and what
the push and `flank validate` on the VM say about executors the VM lacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_flank

from flank_ops.config.load import load_config
from flank_ops.errors import ConfigErrors
from flank_ops.executors.resources import size_text, vm_cpus, vm_memory_mb
from flank_ops.task.launcher import IMPLEMENTATION_ENV
from helpers.deployed import WAIT_FOR_GATE, deploy, open_gate, record, runs_dir, start_flank, task_status
from helpers.waiting import wait_for

VM_MB = vm_memory_mb()


def log_of(run_id: int, task: str) -> str:
    return (runs_dir() / str(run_id) / "logs" / f"{task}.log").read_text()


@pytest.mark.slow
def test_a_local_task_needing_more_memory_than_the_vm_fails_at_once_saying_what_to_do(tmp_path: Path) -> None:
    deploy(
        tmp_path,
        "pipelines:\n  nightly:\n    tasks:\n"
        "      model: {run: 'echo should not run', memory: 400T}\n"
        "      report: {run: 'echo report', needs: model}\n"
        "      other: {run: 'echo other ran', memory: 10M, cpus: 1}\n",
    )
    out = run_flank("run", "demo", "nightly")
    assert out.returncode == 1
    rec = record(1)
    model = rec["tasks"]["model"]
    assert model["status"] == "failed" and model["memory_mb"] == 400 * 1024 * 1024
    expected = f"model needs 400T, this VM has {size_text(VM_MB)} — use executor: slurm/batch or a bigger VM"
    assert size_text(400 * 1024 * 1024) == "409600G"  # a size is said in G from 1G up
    expected = expected.replace("400T", "409600G")
    assert f"flank: {expected}\n" == log_of(1, "model")
    assert "should not run" not in log_of(1, "model")
    assert rec["tasks"]["report"]["status"] == "upstream_failed"
    assert rec["tasks"]["other"]["status"] == "success" and "other ran" in log_of(1, "other")
    assert rec["tasks"]["other"]["memory_mb"] == 10 and rec["tasks"]["other"]["cpus"] == 1


@pytest.mark.slow
def test_a_local_task_with_memory_and_outputs_is_skipped_when_nothing_changed(tmp_path: Path) -> None:
    deploy(
        tmp_path,
        "pipelines:\n  nightly:\n    tasks:\n"
        "      model: {run: 'echo model > model.txt', outputs: [model.txt], memory: 10M}\n"
        "      lazy: {run: 'echo forgot', outputs: [lazy.txt], cpus: 1}\n",
    )
    assert run_flank("run", "demo", "nightly").returncode == 1
    assert "did not write its declared output lazy.txt" in log_of(1, "lazy")
    run_flank("run", "demo", "nightly")
    assert record(2)["tasks"]["model"]["status"] == "up_to_date"


@pytest.mark.slow
def test_too_many_cpus_too(tmp_path: Path) -> None:
    deploy(tmp_path, f"pipelines:\n  nightly:\n    tasks:\n      fit: {{run: 'echo no', cpus: {vm_cpus() + 1}}}\n")
    assert run_flank("run", "demo", "nightly").returncode == 1
    assert log_of(1, "fit") == (
        f"flank: fit needs {vm_cpus() + 1} CPUs, this VM has {vm_cpus()} — use executor: slurm/batch or a bigger VM\n"
    )


@pytest.mark.slow
def test_tasks_whose_declared_memory_sum_exceeds_the_vm_run_one_after_the_other(tmp_path: Path) -> None:
    share = f"{int(VM_MB * 0.6)}M"  # two of them do not fit at once
    deploy(
        tmp_path,
        "pipelines:\n  nightly:\n    concurrency: 2\n    tasks:\n"
        f"      a: {{run: 'sleep 1; echo a', memory: {share}}}\n"
        f"      b: {{run: 'sleep 1; echo b', memory: {share}}}\n",
    )
    out = run_flank("run", "demo", "nightly")
    assert out.returncode == 0, out.stdout + out.stderr
    tasks = record(1)["tasks"]
    first, second = sorted(("a", "b"), key=lambda n: tasks[n]["ended_at"])
    # the second one's launcher started only after the first had ended
    assert tasks[second]["started_at"] >= tasks[first]["ended_at"]
    assert "waiting for memory" in log_of(1, second)


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["c", "python"])
def test_memory_per_attempt_is_reserved_and_recorded_attempt_by_attempt(
    tmp_path: Path, launcher: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """memory: [10M, big]: the first attempt holds 10M (so `hold` fits beside it), the second waits until
    `hold` lets its memory go; the record says what the attempt that ran asked for."""
    if launcher == "python":
        monkeypatch.setenv(IMPLEMENTATION_ENV, "python")
    big = int(VM_MB * 0.6)  # two of these do not fit at once
    deploy(
        tmp_path,
        "persist: [gate]\npipelines:\n  nightly:\n    concurrency: 2\n    tasks:\n"
        f"      hold: {{run: '{WAIT_FOR_GATE}', memory: {big}M}}\n"
        f"      fit: {{run: 'test -e tried && echo second sees ${{FLANK_MEMORY_RESERVATIONS:-nothing}} "
        f"|| {{ touch tried; exit 1; }}', memory: [10M, {big}M], "
        "retries: 1, retry_delay: 1s}\n",
    )
    proc = start_flank("run", "demo", "nightly")
    try:
        # the first attempt ran beside `hold` (10M fits); the second waits for `hold`'s memory
        wait_for(lambda: "waiting for memory" in _log_or_empty(1, "fit"), "fit's second attempt to wait for memory")
        assert task_status(1, "hold") == "running"
        # the launcher says it in the log, then in its result: wait for the result too
        wait_for(lambda: task_status(1, "fit") == "queued", "fit's result to say it is queued")
        waiting = json.loads((runs_dir() / "1" / "tasks" / "fit.json").read_text())
        assert waiting["status"] == "queued" and waiting["memory_mb"] == big
        assert f"attempt 2 needs {size_text(big)}" in log_of(1, "fit")
    finally:
        open_gate()
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, out + err
    rec = record(1)["tasks"]
    assert rec["fit"]["status"] == "success" and rec["fit"]["attempts"] == 2
    assert rec["fit"]["memory_mb"] == big  # what the attempt that ran asked for (and held)
    assert "waiting for memory" not in log_of(1, "hold")
    assert "second sees nothing" in log_of(1, "fit")  # flank's own bookkeeping never reaches the task


def _log_or_empty(run_id: int, task: str) -> str:
    try:
        return log_of(run_id, task)
    except OSError:
        return ""


@pytest.mark.slow
def test_push_and_validate_on_the_vm_warn_about_an_executor_it_lacks_and_tasks_too_big(
    tmp_path: Path, flank_home: Path
) -> None:
    yml = (
        "pipelines:\n  nightly:\n    tasks:\n      fit: {run: 'echo', executor: slurm}\n"
        "      model: {run: 'echo', memory: 400T}\n"
    )
    clone = deploy(tmp_path, yml)
    out = run_flank("deploy", "demo")
    pushed = out.stdout + out.stderr
    assert "executor: slurm is not configured on this VM" in pushed and "[executors.slurm]" in pushed
    assert "model needs 409600G" in pushed
    proc = run_flank("validate", cwd=clone)
    assert proc.returncode == 0
    assert "warning: nightly.fit: executor: slurm is not configured on this VM" in proc.stderr
    assert 'partition = "compute"' in proc.stderr
    assert "warning: nightly: model needs 409600G, this VM has" in proc.stderr
    # the file to add the lines to is named as it is on this machine (a laptop has no $FLANK_HOME set)
    assert f"add to {flank_home / 'flank.toml'}\n" in proc.stderr
    proc = run_flank("run", "--local", "nightly", "--task", "fit", cwd=clone)
    assert proc.returncode == 1
    assert f"executor: slurm is not configured on this VM: add to {flank_home / 'flank.toml'}\n" in proc.stdout
    (flank_home / "flank.toml").write_text('[executors.slurm]\npartition = "compute"\n')
    proc = run_flank("validate", cwd=clone)
    assert "slurm is not configured" not in proc.stderr


def test_executor_memory_and_slurm_options_are_validated_with_line_and_column() -> None:
    with pytest.raises(ConfigErrors) as caught:
        load_config(
            "slurm:\n  partion: x\npipelines:\n  p:\n    executor: slurn\n    tasks:\n"
            "      a: {run: echo, memory: 400, cpus: 0}\n"
        )
    text = str(caught.value)
    assert "flank.yml:2:3: unknown key 'partion' (did you mean 'partition'?)" in text
    assert "flank.yml:5:15: executor: 'slurn' is not one of local, slurm, batch (did you mean 'slurm'?)" in text
    assert "memory: expected a size like 512M, 16G or 400G, got the number 400" in text
    assert "cpus: must be at least 1, got 0" in text
    config = load_config(
        "slurm: {partition: big}\npipelines:\n  p:\n    executor: slurm\n    tasks:\n"
        "      a: {run: echo, memory: 1.5G}\n      b: {run: echo, executor: local}\n"
    )
    p = config.pipelines["p"]
    assert (p.executor_of("a"), p.executor_of("b")) == ("slurm", "local")
    assert p.tasks["a"].memory_mb == 1536 and config.slurm == {"partition": "big"}


@pytest.mark.slow
def test_the_generated_makefile_sends_remote_and_resource_checked_tasks_through_the_executors_entry(
    tmp_path: Path,
) -> None:
    from flank_ops.run import makefile
    from flank_ops.task.task_exec import read_spec_file

    config = load_config(
        "slurm: {partition: big}\npipelines:\n  p:\n    tasks:\n"
        "      plain: echo\n      sized: {run: echo, memory: 1G}\n"
        "      remote: {run: echo, executor: slurm, cpus: 2, timeout: 90}\n"
    )
    plan = makefile.write_run_plan(tmp_path, config.pipelines["p"], config, tmp_path)
    text = plan.read_text()
    assert "\t@$(FLANK_LAUNCHER) $(FLANK_SPECS)/plain.spec $(RUN_DIR)" in text
    assert "\t@$(FLANK_EXECUTOR) $(FLANK_SPECS)/sized.spec $(RUN_DIR) $(FLANK_LAUNCHER)" in text
    assert "\t@$(FLANK_EXECUTOR) $(FLANK_SPECS)/remote.spec $(RUN_DIR)\n" in text
    assert "#   (timeout 90s, executor slurm, cpus 2)" in text
    spec = read_spec_file(str(tmp_path / "plan" / "p.tasks" / "remote.spec"))
    assert spec is not None
    assert (spec.executor, spec.cpus, spec.memory_mb, spec.options) == ("slurm", 2, 0, (("partition", "big"),))
    plain = read_spec_file(str(tmp_path / "plan" / "p.tasks" / "plain.spec"))
    assert plain is not None and plain.executor == "local"


@pytest.mark.parametrize("module", ["remote.py", "resources.py"])
def test_the_executors_status_strings_are_task_statuses(module: str) -> None:
    import re

    from flank_ops.executors import remote
    from flank_ops.store.model import TaskStatus

    source = (Path(remote.__file__).parent / module).read_text()
    written = set(re.findall(r'"status": "(\w+)"', source))
    assert "queued" in written  # the parse found them
    assert written <= {s.value for s in TaskStatus}, written - {s.value for s in TaskStatus}
