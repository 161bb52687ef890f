"""flank report resources and flank cost plan on the seed case's records."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from flank_ops.cost.resources import memory_steps
from helpers.cli import run_flank
from helpers.cost_fixtures import SEED_YML, write_runs, write_toml
from helpers.deployed import deploy, push

NOW = "2026-11-26T12:00:00+00:00"


def test_run_peak_is_the_largest_sum_of_tasks_running_together() -> None:
    # a: 0-10 (5), b: 2-6 (3), c: 6-12 (4) starts as b ends: a+b = 8, a+c = 9
    peak, steps = memory_steps([(0, 10, 5), (2, 6, 3), (6, 12, 4)])
    assert peak == 9
    assert steps == ((0, 5), (2, 8), (6, 9), (10, 4), (12, 0))
    assert memory_steps([(0, 5, 7), (5, 9, 7)])[0] == 7  # one after the other: never both
    assert memory_steps([])[0] == 0


@pytest.mark.slow
def test_report_shows_run_peak_task_peaks_and_the_vm(tmp_path: Path) -> None:
    write_toml()
    deploy(tmp_path, SEED_YML)
    write_runs()
    out = run_flank("report", "resources", "demo", check=True).stdout
    assert re.search(r"this VM: [\d.]+ [KMGT]iB memory, \d+ CPUs", out)
    assert "demo/nightly: 30 recent runs, typical 2h45m (median of 30 full runs)" in out
    assert "run peak memory 200.0 GiB" in out and "up to 2 tasks at once" in out
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ") and line.split()}
    assert "120.0 GiB" in lines["model_a"] and "2h00m" in lines["model_a"]
    assert "80.0 GiB" in lines["model_b"]
    chart = re.search(r"memory over #30 \(the newest full run, 2h45m, peak 200.0 GiB\): \|(.*)\|", out).group(1)
    assert len(chart) == 48 and chart.count("█") >= 30  # the two models together most of the run


@pytest.mark.slow
def test_seed_case_figures_are_reproduced(tmp_path: Path) -> None:
    """256 GB 24/7 costs about $1,320 a month; shrinking outside the window about $247."""
    write_toml()
    deploy(tmp_path, SEED_YML)
    write_runs()
    write_toml('[cost]\nregion = "us-east-1"\nfamilies = ["r6a"]\ncurrent_type = "r6a.8xlarge"\n')
    out = run_flank("cost", "plan", "--now", NOW, check=True).stdout
    assert "demo/nightly: r6a.8xlarge (32 vCPU, 256 GiB" in out  # 200 GB + 25% headroom
    assert "idle: r6a.large (2 vCPU, 16 GiB" in out
    today = float(re.search(r"24/7 — \$([\d,]+)/month", out).group(1).replace(",", ""))
    planned = float(re.search(r"planned: \$([\d,]+)/month", out).group(1).replace(",", ""))
    assert abs(today - 1320) / 1320 < 0.01, out
    assert abs(planned - 247) / 247 < 0.02, out
    assert "cron(45 1 * * ? *)" in out and "Europe/London" in out  # 15 min before 02:00 London


@pytest.mark.slow
def test_cost_settings_errors_are_one_clear_line(tmp_path: Path) -> None:
    write_toml()
    deploy(tmp_path, SEED_YML)
    write_runs()
    cases = {
        "[cost]\nheadrom = 0.3\n": "unknown key 'headrom'",
        '[cost]\nheadroom = "lots"\n': "headroom must be a int or float",
        '[cost]\nregion = "mars-1"\n': "no x86_64 instance types priced for region 'mars-1'",
        '[cost]\nfamilies = ["t3"]\n': "no allowed instance type holds demo/nightly",
        '[cost]\ncurrent_type = "r9z.huge"\n': "instance type 'r9z.huge' is not in the price table",
    }
    for toml, message in cases.items():
        write_toml(toml)
        proc = run_flank("cost", "plan", "--now", NOW)
        assert proc.returncode == 1 and message in proc.stderr, (toml, proc.stderr)
        assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_windows_that_touch_merge_and_size_for_runs_that_overlap(tmp_path: Path) -> None:
    """nightly runs 02:00-04:45 at 200 GB. A 20 GB report at 05:00 opens its window (04:45) before
    nightly's closes (04:55, the resize margin): one window, and as the runs never overlap it
    still fits 256 GiB. Moved to 04:30, the report runs beside nightly: 220 GB + 25% needs 384."""
    write_toml('[cost]\nfamilies = ["r6a"]\ncurrent_type = "r6a.8xlarge"\n')
    report = (
        "pipelines:\n  report:\n    schedule: '0 5 * * *'\n    timezone: Europe/London\n    tasks:\n      pdf: 'true'\n"
    )
    clone = deploy(tmp_path, SEED_YML.replace("pipelines:\n", report))
    write_runs()
    write_runs(pipeline="report", tasks=[("pdf", 0, 30, 20)])
    out = run_flank("cost", "plan", "--now", NOW, check=True).stdout
    assert "note: the windows of demo/nightly and demo/report touch: planned as one window" in out
    assert "demo/report: r6a.8xlarge" in out and "demo/nightly: r6a.8xlarge" in out

    push(
        clone,
        {"flank.yml": SEED_YML.replace("pipelines:\n", report.replace("'0 5 * * *'", "'30 4 * * *'"))},
        "report at 04:30",
    )
    out = run_flank("cost", "plan", "--now", NOW, check=True).stdout
    assert "demo/report: r6a.12xlarge" in out and "demo/nightly: r6a.12xlarge" in out


def _add_run(runs: Path, like: int, run_id: int, *, seconds: float, status: str = "success", **changes) -> None:
    """A run after the seed's: a copy of run `like` with the given duration, task statuses and selection."""
    from flank_ops.store import records
    from flank_ops.store.model import RunStatus, Selection, TaskStatus

    record = records.read_record(runs / str(like))
    record.run_id, record.status, record.duration_s = run_id, RunStatus(status), seconds
    if "selection" in changes:
        record.selection = Selection.from_json(
            {"task": None, "from": None, "rerun_of": None, **changes.pop("selection")}
        )
    for name, task_status in changes.pop("tasks", {}).items():
        task = record.tasks[name]
        task.status = TaskStatus(task_status)
        if task.status in (TaskStatus.UP_TO_DATE, TaskStatus.SKIPPED):
            task.started_at = task.ended_at = task.duration_s = task.peak_rss_kb = None
            task.attempts = 0
    (runs / str(run_id)).mkdir()
    records.write_record(runs / str(run_id), record)
    (runs / "last_id").write_text(f"{run_id}\n")


@pytest.mark.slow
def test_up_to_date_partial_and_skipped_runs_are_not_typical(tmp_path: Path) -> None:
    """issue 19 bug 6: an incremental run of 8 s is not what a full run takes, for the report, the page or the plan."""
    write_toml('[cost]\nfamilies = ["r6a"]\n')
    deploy(tmp_path, SEED_YML)
    runs = write_runs()
    everything = {name: "up_to_date" for name in ("extract", "model_a", "model_b", "report")}
    _add_run(runs, 30, 31, seconds=8.0, tasks=everything)
    _add_run(
        runs,
        30,
        32,
        seconds=900.0,
        selection={"task": "extract", "from": None, "rerun_of": None},
        tasks={"model_a": "skipped", "model_b": "skipped", "report": "skipped"},
    )
    _add_run(runs, 30, 33, seconds=0.0, status="skipped", tasks=everything)
    out = run_flank("report", "resources", "demo", check=True).stdout
    assert "typical 2h45m (median of 28 full runs)" in out, out
    assert re.search(r"memory over #30 \(the newest full run, 2h45m, peak 200.0 GiB\)", out), out
    plan = run_flank("cost", "plan", "--now", NOW, check=True).stdout
    assert "typical run 2h45m (median of 28 full runs)" in plan, plan
    run_flank("site", check=True)
    page = (Path(__import__("os").environ["FLANK_HOME"]) / "site" / "demo" / "resources.html").read_text()
    assert "Typical run: 2h45m (median of 28 full runs)" in page
    assert re.search(r"Memory in use over <a [^>]*>nightly #30</a>", page), page


@pytest.mark.slow
def test_without_full_runs_the_longest_recent_run_is_typical_and_says_so(tmp_path: Path) -> None:
    write_toml('[cost]\nfamilies = ["r6a"]\n')
    deploy(tmp_path, SEED_YML)
    runs = write_runs(count=1)
    _add_run(runs, 1, 2, seconds=600.0, tasks={"model_a": "up_to_date"})
    _add_run(runs, 1, 3, seconds=300.0, tasks={"model_b": "up_to_date"})
    (runs / "1" / "run.json").unlink()  # pruned
    out = run_flank("report", "resources", "demo", check=True).stdout
    assert "typical 10m00s (the longest of the last 2 runs: none ran every task)" in out, out


def test_a_run_with_no_measured_task_gets_no_empty_chart(flank_home: Path) -> None:
    """Found by the third trial: every task of the chart's run on Slurm without accounting printed
    'memory over #1 (…, peak 0 KiB): ||'."""
    from flank_ops.paths import Home
    from flank_ops.store import records
    from helpers.site_records import make_project, make_run

    paths = make_project(Home())
    run_dir = paths.run_dir("nightly", make_run(paths))
    record = records.read_record(run_dir).to_json()
    for task in record["tasks"].values():
        task.update(peak_rss_kb=None, executor={"name": "slurm", "job_id": "42", "max_rss_kb": None})
    records.write_record(run_dir, records.RunRecord.from_json(record))
    out = run_flank("report", "resources", "demo")
    assert out.returncode == 0, out.stderr
    assert "demo/nightly: 1 recent runs" in out.stdout and "model" in out.stdout
    assert "memory over" not in out.stdout and "0 KiB" not in out.stdout, out.stdout
    assert "run peak memory unknown (no task's memory was measured)" in out.stdout
