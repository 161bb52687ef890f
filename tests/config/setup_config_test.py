"""issue 13: `setup:` in flank.yml — its forms, its mistakes (to the line and column), its schema."""

from __future__ import annotations

import textwrap

import jsonschema
import pytest
import yaml

from flank_ops.config.load import load_config
from flank_ops.config.model import DEFAULT_SETUP_TIMEOUT_S, Setup
from flank_ops.config.schema import json_schema
from flank_ops.errors import ConfigErrors

PIPELINES = "pipelines:\n  p:\n    tasks:\n      a: echo a\n"


def setup_of(text: str) -> Setup | None:
    return load_config(textwrap.dedent(text) + PIPELINES).setup


def errors_of(text: str) -> list[str]:
    with pytest.raises(ConfigErrors) as info:
        load_config(textwrap.dedent(text) + PIPELINES)
    return [str(e) for e in info.value.errors]


def test_the_short_form_the_list_form_and_the_mapping() -> None:
    assert setup_of("setup: pip install -r requirements.txt\n") == Setup(("pip install -r requirements.txt",))
    assert setup_of("setup: [make deps, make build]\n") == Setup(("make deps", "make build"))
    assert setup_of("""\
        setup:
          run: Rscript -e 'renv::restore(prompt = FALSE)'
          key: [renv.lock, "R/pkg/"]
          timeout: 30m
        """) == Setup(("Rscript -e 'renv::restore(prompt = FALSE)'",), key=("renv.lock", "R/pkg"), timeout_s=1800.0)
    assert setup_of("setup: {run: make}\n") == Setup(("make",), key=None, timeout_s=DEFAULT_SETUP_TIMEOUT_S)
    assert setup_of("") is None


def test_setup_mistakes_are_named_at_their_line_and_column() -> None:
    assert errors_of("setup:\n") == [
        "flank.yml:1:1: 'setup:' is empty (give the command that installs what the code needs, e.g. "
        "setup: pip install -r requirements.txt)"
    ]
    assert errors_of("setup:\n  key: [renv.lock]\n  tmeout: 5m\n") == [
        "flank.yml:1:1: setup has no 'run:' (add run: <command>, e.g. run: pip install -r requirements.txt)",
        "flank.yml:3:3: unknown key 'tmeout' (did you mean 'timeout'?)",
    ]
    assert errors_of("setup:\n  run: make\n  key: [../outside.lock]\n  timeout: soon\n") == [
        "flank.yml:3:9: setup: key: '../outside.lock' must stay inside the repo ('..' is not allowed)",
        "flank.yml:4:12: setup: timeout: 'soon' is not a duration (write a number with an optional unit: "
        "90, 90s, 15m, 2h, 1d)",
    ]
    assert errors_of("setup: ['']\n") == ["flank.yml:1:9: run: the command is empty"]


@pytest.mark.parametrize(
    "text",
    [
        "setup: make\n",
        "setup: [a, b]\n",
        "setup: {run: make, key: renv.lock, timeout: 90}\n",
        "setup: {run: [a, b], key: [a.txt, 'req*.txt'], timeout: 1h}\n",
    ],
)
def test_the_schema_accepts_what_the_validator_accepts(text: str) -> None:
    load_config(text + PIPELINES)
    validator = jsonschema.Draft202012Validator(json_schema())
    assert list(validator.iter_errors(yaml.safe_load(text + PIPELINES))) == []


@pytest.mark.parametrize(
    "text",
    [
        "setup: {key: [a]}\n",
        "setup: {run: make, when: always}\n",
        "setup: []\n",
        "setup: {run: make, timeout: 0}\n",
    ],
)
def test_the_schema_refuses_what_the_validator_refuses(text: str) -> None:
    with pytest.raises(ConfigErrors):
        load_config(text + PIPELINES)
    validator = jsonschema.Draft202012Validator(json_schema())
    assert list(validator.iter_errors(yaml.safe_load(text + PIPELINES))) != []
