"""S3 upload of run records and logs against a real S3 server (moto, SigV4 checked), and its outages."""

from __future__ import annotations

import json

import pytest

from flank_ops import s3
from flank_ops.storage import uploads
from flank_ops.store import pending, records
from helpers.sample_runs import finished_run, make_project
from helpers.servers import http_recorder, refused_port, s3_server


def s3_toml(endpoint: str, bucket: str, extra: str = "") -> str:
    return f"""\
        site_url = "http://vm.example:8083/"
        [s3]
        bucket = "{bucket}"
        prefix = "backups/flank"
        endpoint_url = "{endpoint}"
        publish_site = false
        timeout = 1
        {extra}
        """


@pytest.fixture
def s3env(monkeypatch: pytest.MonkeyPatch):
    server = s3_server()
    for k, v in server.env().items():
        monkeypatch.setenv(k, v)
    return server


def pending_runs(paths) -> list[tuple[str, int]]:
    if not paths.s3_pending.exists():
        return []
    return [(r["pipeline"], r["run_id"]) for r in json.loads(paths.s3_pending.read_text())["runs"]]


def test_not_configured_does_nothing() -> None:
    paths = make_project()
    record = finished_run(paths)
    assert uploads.upload_finished_run(paths, record.pipeline, record.run_id) is None
    assert not paths.s3_pending.exists()


@pytest.mark.slow
def test_uploads_record_task_results_and_logs_with_content_types(s3env) -> None:
    bucket = s3env.new_bucket()
    paths = make_project(settings_toml=s3_toml(s3env.url, bucket))
    record = finished_run(paths)

    line = uploads.upload_finished_run(paths, record.pipeline, record.run_id)

    assert line == "s3: uploaded 5 files"
    objects = s3env.objects(bucket)
    base = "backups/flank/demo/runs/nightly/1/"
    assert sorted(objects) == sorted(
        base + rel
        for rel in ("run.json", "tasks/extract.json", "tasks/model.json", "logs/extract.log", "logs/model.log")
    )
    assert objects[base + "logs/model.log"]["ContentType"] == "text/plain; charset=utf-8"
    assert objects[base + "run.json"]["ContentType"] == "application/json; charset=utf-8"
    body = s3env.client().get_object(Bucket=bucket, Key=base + "logs/model.log")["Body"].read()
    assert body == b"fitting\nError: singular fit\n"
    assert pending_runs(paths) == []


@pytest.mark.slow
def test_large_log_goes_up_as_multipart(s3env) -> None:
    bucket = s3env.new_bucket()
    paths = make_project(settings_toml=s3_toml(s3env.url, bucket, "multipart_mb = 5"))
    big = "x" * 99 + "\n"
    record = finished_run(paths, logs={"model": big * 110_000})  # 11 MB: three 5 MB parts

    assert uploads.upload_finished_run(paths, record.pipeline, record.run_id) == "s3: uploaded 3 files"

    head = s3env.objects(bucket)["backups/flank/demo/runs/nightly/1/logs/model.log"]
    assert head["ContentLength"] == 11_000_000
    assert head["ETag"].strip('"').endswith("-3")  # S3's mark of a 3-part multipart upload


@pytest.mark.slow
def test_server_down_keeps_the_run_pending_and_the_next_run_uploads_it(s3env, flank_home) -> None:
    bucket = s3env.new_bucket()
    with refused_port() as port:
        paths = make_project(settings_toml=s3_toml(f"http://127.0.0.1:{port}", bucket))
        first = finished_run(paths)
        line = uploads.upload_finished_run(paths, first.pipeline, first.run_id)
    assert line == (
        f"s3: upload failed (cannot connect to http://127.0.0.1:{port}); will retry on the next run or `flank sync`"
    )
    assert pending_runs(paths) == [("nightly", 1)]
    entry = pending.read_pending(paths)[0]
    assert entry["attempts"] == 1 and "cannot connect" in entry["last_error"]

    # S3 is back: the next run's upload takes the earlier one along
    (flank_home / "flank.toml").write_text(s3_toml(s3env.url, bucket))
    second = finished_run(paths, status="success")
    assert (
        uploads.upload_finished_run(paths, second.pipeline, second.run_id)
        == "s3: uploaded 10 files (with 1 earlier pending run)"
    )
    assert pending_runs(paths) == []
    keys = s3env.objects(bucket)
    assert "backups/flank/demo/runs/nightly/1/logs/model.log" in keys
    assert "backups/flank/demo/runs/nightly/2/run.json" in keys


@pytest.mark.slow
def test_slow_server_times_out_instead_of_hanging_the_run(s3env) -> None:
    with http_recorder(hang=True) as slow:
        paths = make_project(settings_toml=s3_toml(slow.url, "some-bucket"))
        record = finished_run(paths)
        line = uploads.upload_finished_run(paths, record.pipeline, record.run_id)
    assert (
        line == f"s3: upload failed ({slow.url} did not answer within 1s); will retry on the next run or `flank sync`"
    )
    assert pending_runs(paths) == [("nightly", 1)]


@pytest.mark.slow
def test_server_errors_keep_the_run_pending(s3env) -> None:
    with http_recorder(status=500) as broken:
        paths = make_project(settings_toml=s3_toml(broken.url, "some-bucket"))
        record = finished_run(paths)
        line = uploads.upload_finished_run(paths, record.pipeline, record.run_id)
    assert line.startswith("s3: upload failed (InternalError from http://127.0.0.1:")
    assert line.endswith("; will retry on the next run or `flank sync`")
    assert len(broken.requests) >= 2  # botocore retried once before giving up
    assert pending_runs(paths) == [("nightly", 1)]


@pytest.mark.slow
def test_bad_credentials_are_named_and_the_run_stays_pending(s3env, monkeypatch) -> None:
    bucket = s3env.new_bucket()
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    paths = make_project(settings_toml=s3_toml(s3env.url, bucket))
    record = finished_run(paths)

    line = uploads.upload_finished_run(paths, record.pipeline, record.run_id)

    assert line.startswith("s3: upload failed (SignatureDoesNotMatch from ")
    assert "check the AWS credentials" in line
    assert pending_runs(paths) == [("nightly", 1)]
    assert s3env.objects(bucket) == {}


def test_missing_bucket_setting_is_a_status_line_not_an_exception() -> None:
    paths = make_project(settings_toml="[s3]\nprefix = 'x'\n")
    record = finished_run(paths)
    assert (
        uploads.upload_finished_run(paths, record.pipeline, record.run_id)
        == "s3: not uploaded: flank.toml: [s3] needs a bucket"
    )


@pytest.mark.slow
def test_a_pruned_pending_run_is_dropped(s3env) -> None:
    import shutil

    bucket = s3env.new_bucket()
    paths = make_project(settings_toml=s3_toml(s3env.url, bucket))
    old = finished_run(paths)
    pending.add_pending(paths, "nightly", old.run_id)
    shutil.rmtree(paths.run_dir("nightly", old.run_id))
    new = finished_run(paths, status="success")
    assert uploads.upload_finished_run(paths, new.pipeline, new.run_id) == "s3: uploaded 5 files"
    assert pending_runs(paths) == []
    assert records.list_run_ids(paths, "nightly") == [2]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("logs/model.log", "text/plain; charset=utf-8"),
        ("index.html", "text/html; charset=utf-8"),
        ("style.css", "text/css; charset=utf-8"),
        ("dag.svg", "image/svg+xml; charset=utf-8"),
        ("run.json", "application/json; charset=utf-8"),
        ("data.bin", "application/octet-stream"),
    ],
)
def test_content_types(name: str, expected: str) -> None:
    assert s3.content_type(name) == expected
