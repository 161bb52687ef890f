"""A real run's artifacts go to a real S3 server (moto) with the run, and the published site's Outputs
and latest/ links work from the bucket (issue 11)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import run_flank

from helpers.deployed import deploy
from helpers.servers import s3_server

pytestmark = pytest.mark.slow

FLANK_YML = """\
pipelines:
  nightly:
    tasks:
      model:
        run: mkdir -p results && printf 'PNG' > results/plot.png && printf 'a\\n1\\n' > results/t.csv && printf '<p>r</p>' > results/report.html && head -c 6000000 /dev/zero > results/big.rds
        artifacts: [results/*]
"""


@pytest.fixture
def s3env(monkeypatch: pytest.MonkeyPatch):
    server = s3_server()
    for k, v in server.env().items():
        monkeypatch.setenv(k, v)
    return server


def test_artifacts_are_uploaded_with_the_run_and_the_published_site_links_them(tmp_path: Path, s3env) -> None:
    bucket = s3env.new_bucket()
    deploy(tmp_path, FLANK_YML)
    (Path(os.environ["FLANK_HOME"]) / "flank.toml").write_text(
        f'[schedule]\ninstall_crontab = false\n[s3]\nbucket = "{bucket}"\nprefix = "flank"\n'
        f'endpoint_url = "{s3env.url}"\nmultipart_mb = 5\ntimeout = 5\n'
    )
    proc = run_flank("run", "demo", "nightly")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    objects = s3env.objects(bucket)
    run = "flank/demo/runs/nightly/1/artifacts/model/results/"
    assert objects[run + "plot.png"]["ContentType"] == "image/png"
    assert objects[run + "t.csv"]["ContentType"] == "text/csv; charset=utf-8"
    assert objects[run + "report.html"]["ContentType"] == "text/html; charset=utf-8"
    assert objects[run + "big.rds"]["ETag"].strip('"').endswith("-2")  # streamed up in 5 MB parts
    site = "flank/site/demo/nightly/"
    assert objects[site + "1/artifacts/model/results/plot.png"]["ContentType"] == "image/png"
    latest = objects[site + "latest/model/results/report.html"]
    assert latest["ContentType"] == "text/html; charset=utf-8" and latest["CacheControl"] == "no-cache"
    assert objects[site + "latest/model/results/t.csv"]["CacheControl"] == "no-cache"
    page = s3env.client().get_object(Bucket=bucket, Key=site + "1/index.html")["Body"].read().decode()
    assert 'href="../../../demo/nightly/1/artifacts/model/results/t.csv"' in page  # relative: works from S3 too
