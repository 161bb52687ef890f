"""flank.toml's one list of keys (settings_catalogue.py) agrees with the readers that use them."""

from __future__ import annotations

import tomllib

import pytest

from flank_ops import settings
from flank_ops.cost.settings import KNOWN_KEYS as COST_KEYS
from flank_ops.cost.settings import cost_settings
from flank_ops.paths import Home
from flank_ops.schedule.crontab import crontab_enabled
from flank_ops.settings_catalogue import SECTIONS, describe, example_toml, section, unknown_keys


def _parsed(name: str) -> dict:
    return tomllib.loads(example_toml(section(name)))


@pytest.mark.parametrize("sec", SECTIONS, ids=lambda s: s.name or "top")
def test_each_example_is_toml_with_no_unknown_key(sec) -> None:
    parsed = tomllib.loads(example_toml(sec))
    assert unknown_keys(parsed) == []


def test_the_readers_take_every_example() -> None:
    s3 = settings.s3_settings(_parsed("s3"))
    assert s3 is not None and s3.bucket == "my-bucket" and s3.multipart_mb == 8
    assert settings.webhook_settings(_parsed("notify.webhook")) is not None
    email = settings.email_settings(_parsed("notify.email"))
    assert email is not None and email.to == ("ada@example.org",)
    assert settings.ping_timeout(_parsed("ping")) == 10
    batch = settings.batch_settings(_parsed("executors.batch"))
    assert batch is not None and batch.job_queue == "flank-queue"
    assert settings.artifacts_max_mb(_parsed("artifacts")) == 500
    assert cost_settings(_parsed("cost")).region == "us-east-1"
    assert settings.site_url(_parsed("")) == "http://vm.example:8083/"


def test_cost_keys_are_the_catalogues() -> None:
    assert sorted(COST_KEYS) == sorted(k.name for k in section("cost").keys)


def test_per_project_overrides_are_checked_too() -> None:
    found = unknown_keys(tomllib.loads("[projects.p.s3]\nbuckt = 'b'\n[projects.p]\nsite_url = 'x'\n"))
    assert found == [("[projects.p.s3]", "buckt", sorted(k.name for k in section("s3").keys))]


def _unset(home: Home) -> dict:
    """(section, key) -> what its reader uses when flank.toml leaves the key out."""
    s3 = settings.s3_settings({"s3": {"bucket": "b"}})
    webhook = settings.webhook_settings({"notify": {"webhook": {"url": "https://hooks.example/x"}}})
    email = settings.email_settings({"notify": {"email": {"host": "smtp.example.org", "to": "ada@example.org"}}})
    batch = settings.batch_settings_from_table({"job_queue": "q", "job_definition": "d", "bucket": "b"})
    cost = cost_settings({})
    serve = settings.serve_settings(home)
    assert s3 and webhook and email
    return {
        ("", "site_url"): settings.site_url({}),
        ("schedule", "install_crontab"): crontab_enabled(home.project("demo")),
        ("serve", "actions"): serve.actions,
        ("serve", "session_hours"): serve.session_hours,
        ("artifacts", "max_mb_per_run"): settings.artifacts_max_mb({}),
        ("s3", "prefix"): s3.prefix,
        ("s3", "publish_site"): s3.publish_site,
        ("s3", "multipart_mb"): s3.multipart_mb,
        ("s3", "timeout"): s3.timeout_s,
        ("notify.webhook", "timeout"): webhook.timeout_s,
        ("notify.email", "ssl"): email.ssl,
        ("notify.email", "timeout"): email.timeout_s,
        ("ping", "timeout"): settings.ping_timeout({}),
        ("executors.batch", "prefix"): batch.prefix,
        ("executors.batch", "log_group"): batch.log_group,
        ("executors.batch", "poll_interval"): batch.poll_interval_s,
        ("executors.batch", "timeout"): batch.timeout_s,
        ("executors.batch", "ship_setup"): batch.ship_setup,
        ("cost", "region"): cost.region,
        ("cost", "headroom"): cost.headroom,
        ("cost", "idle_memory_gib"): cost.idle_memory_gib,
        ("cost", "idle_cpus"): cost.idle_cpus,
        ("cost", "grow_lead_minutes"): cost.grow_lead_minutes,
    }


def test_a_default_the_catalogue_states_is_the_one_its_reader_uses(flank_home) -> None:
    """Polish b: one home per default. Each key whose default is a value holds it in the catalogue;
    the readers take it from there, and the reference (docs/reference/flank-toml.md) says it."""
    stated = {(sec.name, k.name): k.default for sec in SECTIONS for k in sec.keys if k.default is not None}
    assert stated == _unset(Home())
    key = next(k for k in section("s3").keys if k.name == "multipart_mb")
    assert describe(key).endswith("(default 8)")
    assert describe(section("").keys[0]).endswith('(default "http://127.0.0.1:8083/")')
