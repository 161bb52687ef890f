"""Publishing the static site to S3: only changed files, right Content-Type, deletions, outages."""

from __future__ import annotations

import os

import pytest

from flank_ops.paths import Home
from flank_ops.settings import S3Settings
from flank_ops.storage.site_publish import publish_site
from helpers.sample_runs import site_file
from helpers.servers import refused_port, s3_server


@pytest.fixture
def s3env(monkeypatch: pytest.MonkeyPatch):
    server = s3_server()
    for k, v in server.env().items():
        monkeypatch.setenv(k, v)
    return server


def settings_for_bucket(endpoint: str, bucket: str) -> S3Settings:
    return S3Settings(
        bucket=bucket,
        prefix="",
        region=None,
        endpoint_url=endpoint,
        publish_site=True,
        site_bucket=bucket,
        site_prefix="site/",
        multipart_mb=8,
        timeout_s=1.0,
    )


@pytest.mark.slow
def test_publishes_changed_files_only(s3env, flank_home) -> None:
    bucket = s3env.new_bucket()
    settings = settings_for_bucket(s3env.url, bucket)
    home = Home()
    site_file(flank_home, "index.html", "<h1>home</h1>")
    site_file(flank_home, "style.css", "body{}")
    site_file(flank_home, "demo/nightly/1/index.html", "<h1>run 1</h1>")
    site_file(flank_home, "demo/nightly/1/model.log", "Error\n")
    site_file(flank_home, "demo/nightly/dag.svg", "<svg/>")
    site_file(flank_home, ".index.html.123.tmp", "half-written")  # an atomic write in progress

    first = publish_site(home, settings)

    assert first.line() == "site: 5 changed files published"
    objects = s3env.objects(bucket)
    assert sorted(objects) == [
        "site/demo/nightly/1/index.html",
        "site/demo/nightly/1/model.log",
        "site/demo/nightly/dag.svg",
        "site/index.html",
        "site/style.css",
    ]
    assert objects["site/index.html"]["ContentType"] == "text/html; charset=utf-8"
    assert objects["site/index.html"]["CacheControl"] == "no-cache"
    assert objects["site/style.css"]["ContentType"] == "text/css; charset=utf-8"
    assert objects["site/demo/nightly/dag.svg"]["ContentType"] == "image/svg+xml; charset=utf-8"
    assert objects["site/demo/nightly/1/model.log"]["ContentType"] == "text/plain; charset=utf-8"

    assert publish_site(home, settings).line() == "site: up to date"

    # a rebuild rewrites a page with the same bytes (new mtime): nothing to send
    page = site_file(flank_home, "demo/nightly/1/index.html", "<h1>run 1</h1>")
    os.utime(page, ns=(1, 1))
    # a new run and a changed home page; a pruned run's log is gone
    site_file(flank_home, "demo/nightly/2/index.html", "<h1>run 2</h1>")
    site_file(flank_home, "index.html", "<h1>home, 2 runs</h1>")
    (flank_home / "site/demo/nightly/1/model.log").unlink()

    result = publish_site(home, settings)

    assert result.line() == "site: 2 changed files published, 1 removed"
    objects = s3env.objects(bucket)
    assert "site/demo/nightly/2/index.html" in objects
    assert "site/demo/nightly/1/model.log" not in objects
    body = s3env.client().get_object(Bucket=bucket, Key="site/index.html")["Body"].read()
    assert body == b"<h1>home, 2 runs</h1>"


@pytest.mark.slow
def test_outage_is_reported_and_the_next_publish_sends_everything(s3env, flank_home) -> None:
    bucket = s3env.new_bucket()
    site_file(flank_home, "index.html", "<h1>home</h1>")
    site_file(flank_home, "style.css", "body{}")
    with refused_port() as port:
        down = publish_site(Home(), settings_for_bucket(f"http://127.0.0.1:{port}", bucket))
    assert down.line() == (
        f"site publish failed (cannot connect to http://127.0.0.1:{port}); will retry on the next run or `flank sync`"
    )

    back = publish_site(Home(), settings_for_bucket(s3env.url, bucket))
    assert back.line() == "site: 2 changed files published"
    assert sorted(s3env.objects(bucket)) == ["site/index.html", "site/style.css"]


@pytest.mark.slow
def test_no_site_yet_is_not_an_error(s3env) -> None:
    result = publish_site(Home(), settings_for_bucket(s3env.url, "any-bucket"))
    assert result.error is None and result.uploaded == 0


@pytest.mark.slow
def test_a_projects_own_bucket_gets_that_project_and_nothing_of_the_others(s3env, flank_home) -> None:
    """Only [projects.down.s3]: `flank sync down` and down's runs send down's runs and pages (and the
    CSS they use) to down's bucket; the home page and the other project's pages and logs stay home."""
    from flank_ops.storage import uploads
    from helpers.cli import run_flank
    from helpers.sample_runs import finished_run, make_project

    down_bucket, vm_bucket = s3env.new_bucket(), s3env.new_bucket()
    down = make_project("down")
    other = make_project("other")
    finished_run(down)
    finished_run(other)
    (flank_home / "flank.toml").write_text(
        f'[projects.down.s3]\nbucket = "{down_bucket}"\nendpoint_url = "{s3env.url}"\ntimeout = 5\n'
    )
    run_flank("site", check=True)

    proc = run_flank("sync", "down", "--all")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    keys = set(s3env.objects(down_bucket))
    assert "down/runs/nightly/1/logs/model.log" in keys
    assert {
        "site/down/index.html",
        "site/down/nightly/1/index.html",
        "site/down/nightly/1/logs/model.txt",
        "site/_static/style.css",
    } <= keys
    assert [k for k in keys if "other" in k] == []
    assert "site/index.html" not in keys  # the home page lists every project

    # a run of the other project, with S3 for the whole VM: its bucket gets everything, down's stays down's
    with open(flank_home / "flank.toml", "a") as f:
        f.write(f'[s3]\nbucket = "{vm_bucket}"\nendpoint_url = "{s3env.url}"\ntimeout = 5\n')
    record = finished_run(other)
    run_flank("site", check=True)
    line = uploads.upload_finished_run(other, record.pipeline, record.run_id)
    assert line.startswith("s3: uploaded 5 files; site: ")
    vm_keys = set(s3env.objects(vm_bucket))
    assert {"site/index.html", "site/other/nightly/2/index.html", "site/down/index.html"} <= vm_keys
    assert "other/runs/nightly/2/run.json" in vm_keys and not any(k.startswith("down/runs/") for k in vm_keys)
    record = finished_run(down)
    run_flank("site", check=True)
    uploads.upload_finished_run(down, record.pipeline, record.run_id)
    assert [k for k in s3env.objects(down_bucket) if "other" in k or k == "site/index.html"] == []
