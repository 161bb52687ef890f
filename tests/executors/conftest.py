"""The private Slurm cluster the executor tests share (tests/helpers/slurm_cluster.py): started once per
test process, stopped by pid at the end. Tests that use it are in the xdist group "slurm", so
`make test` (--dist loadgroup) starts one cluster, in one worker. And `aws`: moto's Batch, S3 and
CloudWatch Logs (tests/helpers/batch_aws.py) with a FLANK_HOME whose flank.toml points at them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers.batch_aws import CREDENTIALS, batch_aws_for_a_test
from helpers.slurm_cluster import SlurmCluster, slurm_available


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    why = slurm_available()
    if why:
        pytest.skip(why)
    with SlurmCluster(tmp_path_factory.mktemp("slurm")) as cluster:
        yield cluster


@pytest.fixture
def slurm(slurm_cluster: SlurmCluster, monkeypatch: pytest.MonkeyPatch, flank_home: Path) -> SlurmCluster:
    """The cluster, with SLURM_CONF set and the test's FLANK_HOME configured for it."""
    for key, value in slurm_cluster.env.items():
        monkeypatch.setenv(key, value)
    flank_home.mkdir(parents=True, exist_ok=True)
    (flank_home / "flank.toml").write_text(
        f'[schedule]\ninstall_crontab = false\n\n[executors.slurm]\npartition = "{slurm_cluster.partition}"\n'
    )
    return slurm_cluster


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, flank_home: Path) -> Any:
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    aws = batch_aws_for_a_test()
    flank_home.mkdir(parents=True, exist_ok=True)
    (flank_home / "flank.toml").write_text("[schedule]\ninstall_crontab = false\n\n" + aws.toml())
    yield aws
    aws.release_jobs()
