"""`flank doctor` checks the AWS Batch executor (issue 14 item 5) through the real CLI, against moto's server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import run_flank

from helpers.batch_aws import CREDENTIALS, BatchAWS, batch_aws


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Any:
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    return batch_aws()


def batch_line(stdout: str) -> list[str]:
    return [
        line
        for line in stdout.splitlines()
        if line.startswith(("OK    executor batch", "FAIL  executor batch", "FAIL  executors"))
    ]


@pytest.mark.slow
def test_doctor_says_the_queue_and_definition_are_usable(aws: BatchAWS, flank_home: Path) -> None:
    flank_home.mkdir(parents=True, exist_ok=True)
    (flank_home / "flank.toml").write_text(aws.toml())
    proc = run_flank("doctor", "--no-cron")
    assert batch_line(proc.stdout) == ["OK    executor batch: reachable, as configured"]


@pytest.mark.slow
def test_doctor_names_what_is_missing(aws: BatchAWS, flank_home: Path) -> None:
    flank_home.mkdir(parents=True, exist_ok=True)
    (flank_home / "flank.toml").write_text(aws.toml().replace(f'"{aws.job_queue}"', '"no-such-queue"'))
    proc = run_flank("doctor", "--no-cron")
    assert proc.returncode == 1
    assert batch_line(proc.stdout) == [
        "FAIL  executor batch: AWS Batch job queue 'no-such-queue' does not exist (region us-east-1)"
    ]
    assert "Traceback" not in proc.stderr


def test_doctor_with_half_the_batch_settings(flank_home: Path) -> None:
    flank_home.mkdir(parents=True, exist_ok=True)
    (flank_home / "flank.toml").write_text('[executors.batch]\njob_queue = "q"\n')
    proc = run_flank("doctor", "--no-cron")
    assert proc.returncode == 1
    assert batch_line(proc.stdout) == [
        "FAIL  executors: flank.toml: [executors.batch] needs job_definition, bucket (executor: batch is not "
        "configured on this VM)"
    ]
    assert "Traceback" not in proc.stderr
