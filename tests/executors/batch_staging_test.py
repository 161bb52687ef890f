"""issue 26 item 3 on AWS Batch (moto's server; the job's "container" is the stand-in of helpers/batch_aws.py
running flank's real entrypoint in a folder of its own, so it sees only what S3 gives it): a Batch task's
declared inputs go up content-addressed and reach the job; its outputs and artifacts come back onto the VM
before the task counts as done, for a local dependent, the run's kept artifacts and the next run's fingerprint.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import xxhash
from conftest import run_flank

from helpers.batch_aws import BatchAWS
from helpers.deployed import deploy, record, runs_dir

pytestmark = pytest.mark.slow  # real runs (make test-fast leaves them out)

RAW = "raw rows from prep\n"
# a file the release does not have: written on the VM by a local task, new in each run
PREP_PER_RUN = "mkdir -p data && echo raw rows of run $FLANK_RUN_ID > data/raw.txt"
PREP_SAME = "mkdir -p data && cp seed.txt data/raw.txt"  # the same bytes each run


def staged_yml(prep: str) -> str:
    return (
        "pipelines:\n  nightly:\n    tasks:\n"
        f"      prep: {{run: '{prep}'}}\n"
        "      fit:\n"
        "        run: 'cat data/raw.txt data/ref.csv; mkdir -p out; tr a-z A-Z < data/raw.txt > out/fit.txt;"
        " echo plot of $FLANK_TASK > out/plot.txt'\n"
        "        needs: prep\n        executor: batch\n"
        "        inputs: [data/raw.txt, data/ref.csv]\n        outputs: [out/fit.txt]\n        artifacts: [out/plot.txt]\n"
        "      report: {run: 'echo report reads; cat out/fit.txt', needs: fit}\n"
    )


FILES = {"seed.txt": RAW, "data/ref.csv": "ref,1\n"}


def log_of(run_id: int, task: str) -> str:
    return (runs_dir() / str(run_id) / "logs" / f"{task}.log").read_text()


def staged_puts(aws: BatchAWS) -> list[str]:
    """The staged inputs flank uploaded since start_recording()."""
    return [r["path"].split("/staged/")[1] for r in aws.recorded() if r["method"] == "PUT" and "/staged/" in r["path"]]


def test_inputs_go_up_by_content_and_outputs_come_back_for_a_local_dependent(tmp_path: Path, aws: BatchAWS) -> None:
    deploy(tmp_path, staged_yml(PREP_PER_RUN), files=FILES)
    aws.start_recording()
    out = run_flank("run", "demo", "nightly")
    assert out.returncode == 0, out.stdout + out.stderr
    rec = record(1)
    assert [rec["tasks"][t]["status"] for t in ("prep", "fit", "report")] == ["success"] * 3
    raw = "raw rows of run 1\n"
    assert raw in log_of(1, "fit") and "ref,1\n" in log_of(1, "fit")
    # the inputs are in the bucket under their content's hash
    keys = {o["Key"] for o in aws.client("s3").list_objects_v2(Bucket=aws.bucket).get("Contents", [])}
    for content in (raw, "ref,1\n"):
        assert f"staged/xxh3_128-{xxhash.xxh3_128(content.encode()).hexdigest()}" in keys
    assert len(staged_puts(aws)) == 2
    # the output came back onto the VM before report started; the artifact is kept with the run
    assert "report reads\n" + raw.upper() in log_of(1, "report")
    kept = runs_dir() / "1" / "artifacts" / "fit" / "out" / "plot.txt"
    assert kept.read_text() == "plot of fit\n"
    assert [a["path"] for a in rec["tasks"]["fit"]["artifacts"]] == ["out/plot.txt"]

    # a second run (same commit, so the same release tarball): only the input that changed goes up,
    # and the job reads this run's file, not the one the release tarball caught in run 1
    aws.start_recording()
    out = run_flank("run", "demo", "nightly", "--force")
    assert out.returncode == 0, out.stdout + out.stderr
    raw = "raw rows of run 2\n"
    assert staged_puts(aws) == [f"xxh3_128-{xxhash.xxh3_128(raw.encode()).hexdigest()}"]
    assert raw in log_of(2, "fit")
    assert "report reads\n" + raw.upper() in log_of(2, "report")


def test_a_batch_tasks_outputs_count_for_the_next_runs_fingerprint(tmp_path: Path, aws: BatchAWS) -> None:
    deploy(tmp_path, staged_yml(PREP_SAME), files=FILES)
    assert run_flank("run", "demo", "nightly").returncode == 0
    aws.start_recording()
    out = run_flank("run", "demo", "nightly")
    assert out.returncode == 0, out.stdout + out.stderr
    rec = record(2)
    # prep ran again and wrote the same bytes: fit is skipped (early cut-off), no job is submitted
    assert rec["tasks"]["fit"]["status"] == "up_to_date", json.dumps(rec["tasks"]["fit"])
    assert not [r for r in aws.recorded() if r["path"].endswith("/v1/submitjob")]


def test_a_missing_output_fails_the_task_and_a_failed_jobs_artifacts_come_back(tmp_path: Path, aws: BatchAWS) -> None:
    deploy(
        tmp_path,
        "pipelines:\n  nightly:\n    tasks:\n"
        "      fit: {run: 'echo forgot', executor: batch, outputs: [out/fit.txt]}\n"
        "      broken: {run: 'echo half a plot > plot.txt; exit 3', executor: batch, artifacts: [plot.txt]}\n",
    )
    out = run_flank("run", "demo", "nightly")
    assert out.returncode == 1
    tasks = record(1)["tasks"]
    assert tasks["fit"]["status"] == "failed"
    assert "did not write its declared output out/fit.txt" in log_of(1, "fit")
    # a failed job's artifacts come back too (a half-made plot to debug), as a local task's are kept
    assert tasks["broken"]["status"] == "failed" and tasks["broken"]["exit_code"] == 3
    assert (runs_dir() / "1" / "artifacts" / "broken" / "plot.txt").read_text() == "half a plot\n"


def test_validate_says_a_staging_task_needs_the_bucket(tmp_path: Path, flank_home: Path) -> None:
    flank_home.mkdir(parents=True, exist_ok=True)
    (flank_home / "flank.toml").write_text(
        '[schedule]\ninstall_crontab = false\n\n[executors.batch]\njob_queue = "q"\njob_definition = "d"\n'
    )
    clone = deploy(tmp_path, staged_yml(PREP_SAME), files=FILES)
    proc = run_flank("validate", cwd=clone)  # on the VM
    assert (
        "warning: nightly.fit: its inputs:, outputs: and artifacts: go through S3 on AWS Batch, "
        "and [executors.batch] of flank.toml has no bucket" in proc.stderr
    ), proc.stderr
    assert 'bucket = "my-bucket"' in proc.stderr


def test_setups_build_goes_with_the_job_once_per_build_when_ship_setup_is_on(
    tmp_path: Path, aws: BatchAWS, flank_home: Path
) -> None:
    (flank_home / "flank.toml").write_text(
        "[schedule]\ninstall_crontab = false\n\n" + aws.toml() + "ship_setup = true\n"
    )
    deploy(
        tmp_path,
        "setup: mkdir -p lib && echo helper from setup > lib/helper.txt\n"
        "pipelines:\n  nightly:\n    tasks:\n      fit: {run: 'cat lib/helper.txt', executor: batch}\n",
    )
    aws.start_recording()
    out = run_flank("run", "demo", "nightly")
    assert out.returncode == 0, out.stdout + out.stderr + log_of(1, "fit")
    assert "helper from setup\n" in log_of(1, "fit")  # the release's lib/ is a link to setup's build
    sent = [r["path"] for r in aws.recorded() if r["method"] == "PUT" and "/setup/demo/" in r["path"]]
    assert len(sent) == 1 and sent[0].endswith("/lib.tar.gz")
    aws.start_recording()
    assert run_flank("run", "demo", "nightly").returncode == 0
    assert "helper from setup\n" in log_of(2, "fit")
    assert not [r for r in aws.recorded() if r["method"] == "PUT" and "/setup/demo/" in r["path"]]
