"""flank status warns about what the integrations could not do (webhook, ping, S3), not only run.json."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers.cli import run_flank
from helpers.deployed import deploy
from helpers.servers import http_recorder, refused_port


@pytest.mark.slow
def test_outages_of_the_last_run_are_warnings_in_status(tmp_path: Path) -> None:
    with http_recorder(status=500) as hooks, refused_port() as s3_port, refused_port() as ping_port:
        deploy(
            tmp_path,
            f"""\
            pipelines:
              nightly:
                ping_url: http://127.0.0.1:{ping_port}/ping/uuid
                tasks:
                  model: exit 1
            """,
        )
        Path(os.environ["FLANK_HOME"], "flank.toml").write_text(f"""\
[notify.webhook]
url = "{hooks.url}/hook"

[s3]
bucket = "team-data"
endpoint_url = "http://127.0.0.1:{s3_port}"
timeout = 2
""")
        env = {
            "AWS_ACCESS_KEY_ID": "x",
            "AWS_SECRET_ACCESS_KEY": "y",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }
        assert run_flank("run", "demo", "nightly", env=env).returncode == 1
        status = run_flank("status", "demo")
        assert status.returncode == 0, status.stderr
        warnings = [line for line in status.stderr.splitlines() if line.startswith("flank: warning: ")]
        [notify] = [w for w in warnings if w.startswith("flank: warning: demo/nightly #1: notify: ")]
        assert f"webhook failed (HTTP 500 from {hooks.url})" in notify
        [ping] = [w for w in warnings if w.startswith("flank: warning: demo/nightly #1: ping: ")]
        assert f"ping /fail failed (cannot connect to http://127.0.0.1:{ping_port}" in ping
        assert any(
            w.startswith("flank: warning: demo: not uploaded to S3 yet: nightly #1 (") and "flank sync" in w
            for w in warnings
        ), warnings

        # The webhook is back: the newest run's notifications went out, so only S3 is still to warn about.
        hooks.status = 200
        assert run_flank("run", "demo", "nightly", env=env).returncode == 1
        warnings = [line for line in run_flank("status", "demo").stderr.splitlines() if "warning" in line]
    assert not any("webhook failed" in w for w in warnings), warnings
    assert any("not uploaded to S3 yet: nightly #1, nightly #2 (" in w for w in warnings), warnings
