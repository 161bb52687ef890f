"""`flank doctor` through the real CLI, against real S3 (moto), SMTP (aiosmtpd) and HTTP servers."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.cli import run_flank
from helpers.sample_runs import make_project
from helpers.servers import http_recorder, refused_port, s3_server, smtp_server
from helpers.user_crontab import user_crontab  # noqa: F401 - fixture


def lines_of(proc, prefix: str) -> list[str]:
    return [line for line in proc.stdout.splitlines() if line.startswith(prefix)]


@pytest.mark.slow
def test_healthy_vm(flank_home, monkeypatch, tmp_path) -> None:
    server = s3_server()
    for k, v in server.env().items():
        monkeypatch.setenv(k, v)
    bucket = server.new_bucket()
    with smtp_server(tmp_path) as smtp, http_recorder(status=405) as hook:
        make_project(
            settings_toml=f"""\
            [s3]
            bucket = "{bucket}"
            prefix = "flank"
            endpoint_url = "{server.url}"
            [notify.webhook]
            url = "{hook.url}/services/T/B/SECRET"
            [notify.email]
            host = "{smtp.host}"
            port = {smtp.port}
            username = "flank"
            password_env = "DOCTOR_SMTP_PASSWORD"
            ca_file = "{smtp.ca_file}"
            to = "ada@example.org"
            """
        )
        proc = run_flank("doctor", "--no-cron", env={"DOCTOR_SMTP_PASSWORD": "s3cret"})
        assert [r.method for r in hook.requests] == ["GET"]  # reachable, nothing posted
        assert smtp.messages == [] and smtp.logins == ["flank"]

    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert lines_of(proc, "OK    git: git version ")
    assert lines_of(proc, "OK    make: GNU Make ")
    assert f"OK    FLANK_HOME: {flank_home} is writable" in out
    assert lines_of(proc, "OK    disk: ")
    assert f"OK    s3: s3://{bucket}/flank/ writable" in out
    assert f"OK    smtp: {smtp.host}:{smtp.port} (STARTTLS, logged in as flank)" in out
    assert f"OK    webhook: {hook.url} answers (HTTP 405)" in out
    assert "SECRET" not in out
    assert "cron" not in out
    assert out.endswith("all checks passed\n")
    assert server.objects(bucket) == {}  # the probe object was deleted


@pytest.mark.slow
def test_broken_integrations_say_what_to_fix(flank_home, monkeypatch, tmp_path) -> None:
    server = s3_server()
    for k, v in server.env().items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIANOTAREALKEY00000")
    with smtp_server(tmp_path) as smtp, refused_port() as port:
        make_project(
            settings_toml=f"""\
            [s3]
            bucket = "some-bucket"
            endpoint_url = "{server.url}"
            [notify.webhook]
            url = "http://127.0.0.1:{port}/hook"
            timeout = 2
            [notify.email]
            host = "{smtp.host}"
            port = {smtp.port}
            username = "flank"
            password_env = "DOCTOR_SMTP_PASSWORD"
            ca_file = "{smtp.ca_file}"
            to = "ada@example.org"
            """
        )
        proc = run_flank("doctor", "--no-cron", env={"DOCTOR_SMTP_PASSWORD": "wrong"})

    assert proc.returncode == 1
    out = proc.stdout
    assert f"FAIL  s3: InvalidAccessKeyId from {server.url}: " in out
    assert "      fix: check [s3] in flank.toml and the AWS credentials" in out
    assert f"FAIL  smtp: SMTP login as flank refused by {smtp.host}:{smtp.port} (535)" in out
    assert f"FAIL  webhook: cannot connect to http://127.0.0.1:{port} (connection refused)" in out
    assert out.endswith("3 problems found\n")
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_send_test_posts_and_mails(flank_home, tmp_path) -> None:
    with smtp_server(tmp_path) as smtp, http_recorder() as hook:
        make_project(
            settings_toml=f"""\
            [notify.webhook]
            url = "{hook.url}/hook"
            [notify.email]
            host = "{smtp.host}"
            port = {smtp.port}
            username = "flank"
            password_env = "DOCTOR_SMTP_PASSWORD"
            ca_file = "{smtp.ca_file}"
            to = "ada@example.org"
            """
        )
        proc = run_flank("doctor", "--no-cron", "--send-test", env={"DOCTOR_SMTP_PASSWORD": "s3cret"})
        assert "OK    webhook: test message posted" in proc.stdout
        assert "OK    smtp: test email sent to ada@example.org" in proc.stdout
        assert hook.requests[0].json()["text"].startswith("flank doctor: test message from ")
        assert [m["Subject"] for m in smtp.messages] == ["flank doctor: test message"]
    assert "SKIP  s3: not configured" in proc.stdout


def test_cron_checks(flank_home) -> None:
    paths = make_project()
    # a schedule line no real crontab holds (doctor only reads the crontab, never installs)
    paths.crontab_file.write_text("# flank demo\n17 3 * * * /nonexistent/flank run demo doctor-test-pipeline\n")
    proc = run_flank("doctor")

    [cron] = lines_of(proc, "OK    cron:") + lines_of(proc, "FAIL  cron:")
    if cron.startswith("FAIL"):  # e.g. a container or CI machine without a cron daemon
        assert "no cron daemon is running" in cron
        assert "flank doctor --no-cron" in proc.stdout
    [block] = lines_of(proc, "FAIL  crontab (demo):")
    assert "1 of 1 schedule line not installed (first: 17 3 * * * /nonexistent/flank" in block
    assert "fix: push again (git push flank main) to reinstall it" in proc.stdout
    assert proc.returncode == 1


@pytest.mark.slow
def test_missing_flank_home(flank_home) -> None:
    proc = run_flank("doctor", "--no-cron")
    assert f"FAIL  FLANK_HOME: {flank_home} does not exist" in proc.stdout
    assert "fix: create your first project: flank init NAME" in proc.stdout
    assert lines_of(proc, "OK    disk: ")  # measured on the nearest existing parent
    assert proc.returncode == 1


def test_bad_settings_are_a_fail_line(flank_home) -> None:
    make_project(settings_toml="[s3]\nprefix = 'x'\n")
    proc = run_flank("doctor", "--no-cron")
    assert "FAIL  s3 (demo): flank.toml: [s3] needs a bucket" in proc.stdout
    assert "SKIP  s3" not in proc.stdout
    assert proc.returncode == 1


@pytest.mark.slow
def test_crontab_blocks_of_deleted_homes_and_projects_are_listed_and_removed(
    user_crontab, flank_home, tmp_path
) -> None:
    from flank_ops.schedule.crontab import read_crontab, write_crontab

    make_project("live")
    gone_home = tmp_path / "deleted-by-hand"

    def block(project: str, home: Path) -> str:
        return (
            f"# >>> flank {project} ({home}) >>>\n# generated\n"
            f"0 2 * * * FLANK_HOME={home} /venv/bin/flank run {project} nightly --trigger schedule\n"
            f"# <<< flank {project} ({home}) <<<\n"
        )

    mine = "# my own jobs\nMAILTO=ada@example.org\n0 5 * * * /usr/bin/backup   \n"
    kept = mine + block("live", flank_home)
    write_crontab(kept + block("old", gone_home) + block("dropped", flank_home))

    proc = run_flank("doctor")
    [stale] = lines_of(proc, "FAIL  crontab: ")
    assert stale.startswith("FAIL  crontab: 2 blocks fire for nothing: ")
    assert f"old (FLANK_HOME {gone_home} is gone)" in stale
    assert f"dropped (project dropped is gone from {flank_home})" in stale
    assert "fix: remove them: flank doctor --fix-crontab" in proc.stdout
    assert proc.returncode == 1

    fixed = run_flank("doctor", "--fix-crontab")
    assert f"removed the crontab block of old ({gone_home}): FLANK_HOME {gone_home} is gone" in fixed.stdout
    assert f"removed the crontab block of dropped ({flank_home}): project dropped is gone" in fixed.stdout
    assert read_crontab() == kept  # the user's lines and the live project's block, byte for byte
    assert lines_of(fixed, "OK    crontab: no blocks left behind")
    assert run_flank("doctor", "--fix-crontab").stdout.startswith("no crontab blocks to remove\n")


@pytest.mark.slow
def test_state_readable_by_other_users_is_a_fail_with_the_chmod_that_fixes_it(flank_home) -> None:
    import os
    import subprocess

    paths = make_project()  # made the way an older flank did, under umask 022
    os.chmod(paths.dir, 0o755)
    os.chmod(paths.bare_repo, 0o755)
    proc = run_flank("doctor", "--no-cron", env={"FLANK_DOCS_URL": "https://docs.example/flank/"})
    [line] = lines_of(proc, "FAIL  permissions: ")
    assert line == f"FAIL  permissions: readable by other users: {paths.dir} {paths.bare_repo}"
    fix = f"chmod -R go-rwx {paths.dir} {paths.bare_repo}"
    assert f"fix: {fix} (see https://docs.example/flank/operating/files.md#who-can-read-what)" in proc.stdout
    assert "who-can-read-what" in _anchors(DOCS / "operating" / "files.md")

    subprocess.run(fix.split(), check=True)
    again = run_flank("doctor", "--no-cron")
    assert lines_of(again, "OK    permissions: the state of 1 project is readable by you only")


def test_crontab_off_by_flank_toml_is_not_a_failure(flank_home) -> None:
    """install_crontab = false is deliberate (`flank scheduler` runs the schedules): doctor says so."""
    paths = make_project()
    (flank_home / "flank.toml").write_text("[schedule]\ninstall_crontab = false\n")
    paths.crontab_file.write_text("# flank demo\n17 3 * * * /nonexistent/flank run demo doctor-test-pipeline\n")
    proc = run_flank("doctor")
    assert not lines_of(proc, "FAIL  crontab (demo)")
    [block] = lines_of(proc, "SKIP  crontab (demo):")
    assert "off by flank.toml ([schedule] install_crontab = false): run `flank scheduler`" in block


@pytest.mark.slow
def test_a_misspelt_flank_toml_key_is_named_with_the_likely_one(flank_home) -> None:
    make_project(settings_toml="[s3]\nbucket = 'b'\nprefx = 'x'\n[projects.demo.cost]\nregoin = 'eu-west-2'\n")
    proc = run_flank("doctor", "--no-cron")
    line = next(line for line in proc.stdout.splitlines() if "flank.toml" in line and "FAIL" in line)
    assert "unknown key 'prefx' in [s3]" in line and "(and 1 more)" in line
    assert "did you mean 'prefix'?" in proc.stdout
    assert proc.returncode == 1


DOCS = Path(__file__).resolve().parents[2] / "docs"


def _anchors(page: Path) -> set[str]:
    """The heading anchors mkdocs makes of a docs page (python-markdown's toc slugify)."""
    import re

    heads = re.findall(r"^#+ (.+)$", page.read_text(encoding="utf-8"), flags=re.M)
    slugs = (re.sub(r"[^\w\s-]", "", h.replace("`", "")).strip().lower() for h in heads)
    return {re.sub(r"[-\s]+", "-", s) for s in slugs}


def test_doctor_points_at_the_docs_pages_not_the_readme(flank_home) -> None:
    """Found by a trial: 'see the README' for settings the README no longer holds."""
    make_project()
    proc = run_flank("doctor", "--no-cron", env={"FLANK_DOCS_URL": "https://docs.example/flank/"})
    assert "README" not in proc.stdout
    import re

    links = re.findall(r"https://docs\.example/flank/([\w/.-]+\.md)#([\w-]+)", proc.stdout)
    skipped = lines_of(proc, "SKIP  ")
    for kind in ("s3", "webhook", "smtp", "executors"):
        [line] = [s for s in skipped if s.startswith(f"SKIP  {kind}:")]
        assert "https://docs.example/flank/" in line, line
    assert len(links) >= 4
    for page, anchor in links:
        assert anchor in _anchors(DOCS / page), f"{page}#{anchor}: no such heading"
