"""Notifications after a run, delivered to real servers on 127.0.0.1 (HTTP webhook, SMTP with STARTTLS+AUTH)."""

from __future__ import annotations

from pathlib import Path

import pytest

from flank_ops.task.secrets import set_secret
from helpers.sample_runs import finished_run, make_project, notify_and_ping
from helpers.servers import http_recorder, refused_port, smtp_server

FAILURE_AND_RECOVERY = """\
    pipelines:
      nightly:
        notify: [failure, recovery]
        tasks:
          extract: Rscript R/extract.R
          model: {run: Rscript R/model.R, needs: [extract]}
    """


def webhook_toml(url: str, timeout: float = 5) -> str:
    return f'site_url = "http://vm.example:8083"\n[notify.webhook]\nurl = "{url}"\ntimeout = {timeout}\n'


def test_failure_posts_a_slack_message_with_the_log_tail_masked(capsys) -> None:
    with http_recorder() as hook:
        paths = make_project(
            flank_yml=FAILURE_AND_RECOVERY, settings_toml=webhook_toml(hook.url + "/services/T000/B000/XXXX")
        )
        set_secret(paths, "DB_PASSWORD", "hunter2")
        log = "".join(f"step {i}\n" for i in range(1, 31)) + "\x1b[31mError\x1b[0m: could not log in with hunter2\n"
        record = finished_run(paths, logs={"extract": "ok\n", "model": log})

        line = notify_and_ping(paths, record)

    assert line == "notify failure: webhook sent"
    [request] = hook.requests
    assert request.method == "POST" and request.path == "/services/T000/B000/XXXX"
    assert request.headers["Content-Type"] == "application/json"
    text = request.json()["text"]
    assert text.startswith("*flank: demo nightly #1 failed*\n")
    assert "failed tasks: model (exit 1, 3 attempts)" in text
    assert 'commit 0000000 "fix model formula" (Ada Analyst)' in text
    assert "last 20 lines of model.log:" in text
    assert "step 12\n" in text and "step 11\n" not in text  # only the tail
    assert "Error: could not log in with ***" in text  # ANSI colours removed, secret masked
    assert "hunter2" not in text
    assert "<http://vm.example:8083/demo/nightly/1/|run page>" in text
    assert capsys.readouterr().err == ""


@pytest.mark.slow
def test_email_over_starttls_with_login_from_a_project_secret(tmp_path: Path) -> None:
    with smtp_server(tmp_path) as smtp:
        paths = make_project(
            settings_toml=f"""\
            site_url = "http://vm.example:8083/"
            [notify.email]
            host = "{smtp.host}"
            port = {smtp.port}
            username = "flank"
            password_env = "TEST_SMTP_PASSWORD"
            ca_file = "{smtp.ca_file}"
            from = "flank@vm.example"
            to = ["ada@example.org", "ops@example.org"]
            timeout = 5
            """
        )
        set_secret(paths, "TEST_SMTP_PASSWORD", "s3cret")  # not in flank.toml
        record = finished_run(paths)

        line = notify_and_ping(paths, record)

        assert line == "notify failure: email sent to ada@example.org, ops@example.org"
        assert smtp.logins == ["flank"]
        [mail] = smtp.messages
    assert mail["Subject"] == "flank: demo nightly #1 failed"
    assert mail["From"] == "flank@vm.example"
    assert mail["To"] == "ada@example.org, ops@example.org"
    body = mail.get_content().replace("\r\n", "\n")  # SMTP line endings
    assert "demo nightly #1 failed — 1/2 ok; model failed (exit 1, 3 attempts)" in body
    assert "last 2 lines of model.log:\n    fitting\n    Error: singular fit\n" in body
    assert "run page: http://vm.example:8083/demo/nightly/1/" in body


def test_success_notifies_nobody_when_only_failures_are_asked_for() -> None:
    with http_recorder() as hook:
        paths = make_project(
            flank_yml=FAILURE_AND_RECOVERY.replace("failure, recovery", "failure"), settings_toml=webhook_toml(hook.url)
        )
        record = finished_run(paths, status="success")
        assert notify_and_ping(paths, record) is None
        assert hook.requests == []


def test_recovery_is_the_first_success_after_failures() -> None:
    with http_recorder() as hook:
        paths = make_project(flank_yml=FAILURE_AND_RECOVERY, settings_toml=webhook_toml(hook.url))
        failed = finished_run(paths)
        assert notify_and_ping(paths, failed) == "notify failure: webhook sent"
        recovered = finished_run(paths, status="success")
        assert notify_and_ping(paths, recovered) == "notify recovery: webhook sent"
        again = finished_run(paths, status="success")
        assert notify_and_ping(paths, again) is None  # an ordinary success: not asked for
        texts = [r.json()["text"] for r in hook.requests]
    assert len(texts) == 2
    assert texts[1].startswith("*flank: demo nightly #2 recovered*")


def test_notify_success_also_covers_recoveries() -> None:
    with http_recorder() as hook:
        paths = make_project(
            flank_yml=FAILURE_AND_RECOVERY.replace("failure, recovery", "success"), settings_toml=webhook_toml(hook.url)
        )
        assert notify_and_ping(paths, finished_run(paths)) is None
        assert notify_and_ping(paths, finished_run(paths, status="success")) == "notify recovery: webhook sent"
        assert notify_and_ping(paths, finished_run(paths, status="success")) == "notify success: webhook sent"


# --- outages: named in the status line, never raised ---------------------------


def test_webhook_server_down(capsys) -> None:
    with refused_port() as port:
        paths = make_project(settings_toml=webhook_toml(f"http://127.0.0.1:{port}/services/SECRET-TOKEN"))
        line = notify_and_ping(paths, finished_run(paths))
    assert line == f"notify failure: webhook failed (cannot connect to http://127.0.0.1:{port} (connection refused))"
    assert "SECRET-TOKEN" not in line  # the webhook URL is a credential
    assert f"flank: {line}" in capsys.readouterr().err


@pytest.mark.slow
def test_webhook_slow_server_times_out() -> None:
    with http_recorder(hang=True) as slow:
        paths = make_project(settings_toml=webhook_toml(slow.url, timeout=0.5))
        line = notify_and_ping(paths, finished_run(paths))
    assert line == f"notify failure: webhook failed ({slow.url} did not answer within 0.5s)"


def test_webhook_server_error() -> None:
    with http_recorder(status=500) as broken:
        paths = make_project(settings_toml=webhook_toml(broken.url))
        line = notify_and_ping(paths, finished_run(paths))
    assert line == f"notify failure: webhook failed (HTTP 500 from {broken.url})"


def test_email_bad_password_and_missing_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with smtp_server(tmp_path) as smtp:
        toml = f"""\
            [notify.webhook]
            url = "http://127.0.0.1:1/unused"
            timeout = 1
            [notify.email]
            host = "{smtp.host}"
            port = {smtp.port}
            username = "flank"
            password_env = "TEST_SMTP_PASSWORD"
            ca_file = "{smtp.ca_file}"
            to = "ada@example.org"
            timeout = 5
            """
        paths = make_project(settings_toml=toml)
        line = notify_and_ping(paths, finished_run(paths))
        assert "email failed (no SMTP password for flank (set the env var TEST_SMTP_PASSWORD" in line

        monkeypatch.setenv("TEST_SMTP_PASSWORD", "wrong")
        line = notify_and_ping(paths, finished_run(paths))
        # both channels are tried; each failure is named
        assert line.startswith("notify failure: webhook failed (cannot connect to http://127.0.0.1:1")
        assert (
            f"email failed (SMTP login as flank refused by {smtp.host}:{smtp.port} (535); "
            "check the username and password)"
        ) in line
        assert smtp.messages == []


def test_email_untrusted_certificate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "s3cret")
    with smtp_server(tmp_path) as smtp:
        paths = make_project(
            settings_toml=f"""\
            [notify.email]
            host = "{smtp.host}"
            port = {smtp.port}
            username = "flank"
            password_env = "TEST_SMTP_PASSWORD"
            to = "ada@example.org"
            """
        )
        line = notify_and_ping(paths, finished_run(paths))
    assert f"email failed (TLS certificate of {smtp.host}:{smtp.port} not trusted" in line
    assert "set ca_file" in line


def test_email_server_down() -> None:
    with refused_port() as port:
        paths = make_project(settings_toml=f'[notify.email]\nhost = "127.0.0.1"\nport = {port}\nto = "a@b.c"\n')
        line = notify_and_ping(paths, finished_run(paths))
    assert line == f"notify failure: email failed (cannot connect to 127.0.0.1:{port} (connection refused))"


def test_bad_settings_are_a_status_line() -> None:
    paths = make_project(settings_toml='[notify.webhook]\nurl = "hooks.slack.com/x"\n')
    line = notify_and_ping(paths, finished_run(paths))
    assert (
        line == "notify failure: webhook failed (flank.toml: [notify.webhook] url must be an http:// or https:// URL)"
    )


def test_nothing_configured() -> None:
    """notify: asked for in flank.yml with no destination: the record says it went nowhere (issue 19 bug 8)."""
    paths = make_project()
    line = notify_and_ping(paths, finished_run(paths))
    assert line == "notify failure: not sent (no [notify.webhook] or [notify.email] in flank.toml)"


def test_slack_markup_from_a_commit_or_a_log_is_escaped_for_the_webhook_only() -> None:
    """`<!here>` in a commit subject must not page a whole channel; `<url|text>` must not become a link."""
    with http_recorder() as hook:
        paths = make_project(flank_yml=FAILURE_AND_RECOVERY, settings_toml=webhook_toml(hook.url + "/hook"))
        record = finished_run(paths, logs={"extract": "ok\n", "model": "Error: a < b && c > d <@U024BE7LH>\n"})
        record.commit.message = "fix <!here> see <http://evil.example|the docs> & more"
        assert notify_and_ping(paths, record) == "notify failure: webhook sent"
    text = hook.requests[0].json()["text"]
    assert "fix &lt;!here&gt; see &lt;http://evil.example|the docs&gt; &amp; more" in text
    assert "Error: a &lt; b &amp;&amp; c &gt; d &lt;@U024BE7LH&gt;" in text
    assert "<!here>" not in text and "<http://evil.example" not in text and "<@U024BE7LH>" not in text
    assert "<http://vm.example:8083/demo/nightly/1/|run page>" in text  # flank's own link stays a link
    # plain text (email, ping bodies) is shown as written
    from flank_ops.notify.message import build_message

    plain = build_message(paths, record, "failure", "http://vm.example:8083/").as_text()
    assert "fix <!here> see <http://evil.example|the docs> & more" in plain
