"""`flank sync`: the real CLI retries uploads an outage left pending, and publishes the site."""

from __future__ import annotations

import json

import pytest

from flank_ops.storage import uploads
from flank_ops.store import pending
from helpers.cli import run_flank
from helpers.sample_runs import finished_run, make_project, site_file
from helpers.servers import refused_port, s3_server


def s3_toml(endpoint: str, bucket: str) -> str:
    return f'[s3]\nbucket = "{bucket}"\nendpoint_url = "{endpoint}"\ntimeout = 1\n'


@pytest.mark.slow
def test_sync_uploads_what_an_outage_left_pending(flank_home, monkeypatch) -> None:
    server = s3_server()
    for k, v in server.env().items():
        monkeypatch.setenv(k, v)
    bucket = server.new_bucket()
    with refused_port() as port:
        paths = make_project(settings_toml=s3_toml(f"http://127.0.0.1:{port}", bucket))
        record = finished_run(paths)
        site_file(flank_home, "index.html", "<h1>home</h1>")
        assert "upload failed" in uploads.upload_finished_run(paths, record.pipeline, record.run_id)

        still_down = run_flank("sync")
        assert still_down.returncode == 1
        assert (
            f"demo: uploaded 0 of 1 runs (0 files); failed: cannot connect to http://127.0.0.1:{port}"
            in still_down.stdout
        )
        assert "1 still pending" in still_down.stdout
    assert [r["run_id"] for r in pending.read_pending(paths)] == [1]

    (flank_home / "flank.toml").write_text(s3_toml(server.url, bucket))
    proc = run_flank("sync", "demo")

    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "demo: uploaded 1 run (5 files)",
        f"s3://{bucket}/site/ site: 1 changed file published",
    ]
    assert pending.read_pending(paths) == []
    keys = server.objects(bucket)
    assert "demo/runs/nightly/1/logs/model.log" in keys and "site/index.html" in keys

    again = run_flank("sync")
    assert again.stdout.splitlines() == ["demo: nothing pending", f"s3://{bucket}/site/ site: up to date"]


@pytest.mark.slow
def test_sync_all_uploads_every_finished_run(flank_home, monkeypatch) -> None:
    server = s3_server()
    for k, v in server.env().items():
        monkeypatch.setenv(k, v)
    bucket = server.new_bucket()
    paths = make_project()  # S3 turned on after two runs
    finished_run(paths)
    finished_run(paths, status="success")
    (flank_home / "flank.toml").write_text(s3_toml(server.url, bucket) + "publish_site = false\n")

    proc = run_flank("sync", "--all")

    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["demo: uploaded 2 runs (10 files)"]
    record = json.loads(server.client().get_object(Bucket=bucket, Key="demo/runs/nightly/2/run.json")["Body"].read())
    assert record["status"] == "success"


def test_sync_without_s3_settings_says_how_to_configure(flank_home) -> None:
    make_project()
    proc = run_flank("sync")
    assert proc.returncode == 1
    assert "flank: S3 is not configured" in proc.stderr
    assert "add an [s3] table with a bucket" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_sync_unknown_project(flank_home) -> None:
    make_project()
    proc = run_flank("sync", "nope")
    assert proc.returncode == 1
    assert "no project 'nope'" in proc.stderr and "known projects: demo" in proc.stderr
