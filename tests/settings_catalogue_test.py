"""flank.toml's one list of keys (settings_catalogue.py) agrees with the readers that use them."""

from __future__ import annotations

import tomllib

import pytest

from flank_ops import settings
from flank_ops.cost.settings import KNOWN_KEYS as COST_KEYS
from flank_ops.cost.settings import cost_settings
from flank_ops.settings_catalogue import SECTIONS, example_toml, section, unknown_keys


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
