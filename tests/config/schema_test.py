"""`flank schema`: a JSON Schema that agrees with the validator on good and bad files.

Uses the `jsonschema` package (a test-only dependency) as an editor would.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import jsonschema
import pytest
import yaml

from flank_ops.config.load import load_config
from flank_ops.errors import ConfigErrors

SPEC_EXAMPLE = (Path(__file__).parent / "spec_example.yml").read_text()


def tasks(body: str) -> str:
    return "pipelines:\n  p:\n    tasks:\n" + textwrap.indent(textwrap.dedent(body), "      ")


def pipeline(body: str) -> str:
    return "pipelines:\n  p:\n" + textwrap.indent(textwrap.dedent(body), "    ") + "    tasks:\n      a: echo a\n"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    from helpers.cli import run_flank  # the CLI, as a user runs it

    proc = run_flank("schema")
    assert proc.returncode == 0, proc.stderr
    schema = json.loads(proc.stdout)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


GOOD = [
    SPEC_EXAMPLE,
    tasks("a: echo a\n"),
    pipeline("schedule: ['0 2 * * *', '@hourly']\nnotify: success\nping_url: https://hc-ping.com/x\n"),
    "persist: data\nenv: {YEAR: 2024, NAME: x}\n"
    + tasks("a: {run: x, needs: b, timeout: 90}\nb: {run: x, retry_delay: 1.5h}\n"),
    pipeline("auto_inputs: false\n"),
    tasks("a: {run: x, auto_inputs: [scripts, sources]}\nb: {run: x, auto_inputs: setup}\n"),
    # issue 23
    pipeline("params:\n  day: '2026-11-01'\n  n: 3\n  model: {type: choice, choices: [lm, glm], default: lm}\n"),
]

# Bad for both the schema and the validator (the cases JSON Schema can express).
BAD = [
    "- a\n",
    "persist: [data]\n",
    "pipelines: {}\n",
    "pipeline:\n  p:\n    tasks: {a: x}\n",
    pipeline("schedul: '0 2 * * *'\n"),
    pipeline("overlap: queu\n"),
    pipeline("concurrency: 0\n"),
    pipeline("notify: [failure, sucess]\n"),
    pipeline("on_push: 'true'\n"),
    pipeline("ping_url: ftp://example.org/x\n"),
    tasks("load data: echo\n"),
    tasks("a:\n  needs: []\n"),
    tasks("a:\n  run: x\n  need: [b]\n"),
    tasks("a:\n  run: x\n  retries: -1\n"),
    tasks("a:\n  run: x\n  retries: 1000\n"),
    tasks("a:\n  run: x\n  timeout: 5x\n"),
    tasks("a:\n  run: x\n  retry_delay: 0s\n"),
    tasks("a:\n  run: x\n  dir: /srv/R\n"),
    tasks("a:\n  run: x\n  dir: R/../../etc\n"),
    tasks("a:\n  run: [Rscript, a.R]\n"),
    "persist: [../shared]\n" + tasks("a: x\n"),
    "env:\n  MY-VAR: x\n" + tasks("a: x\n"),
    "env:\n  A: {b: 1}\n" + tasks("a: x\n"),
    tasks("a:\n  run: x\n  auto_inputs: [imports]\n"),
    tasks("a:\n  run: x\n  timeout: 100000000000000000000\n"),
    pipeline("params:\n  9x: 1\n"),
    pipeline("params:\n  n: {type: int}\n"),
    pipeline("params:\n  n: {default: 1, kind: int}\n"),
]


@pytest.mark.parametrize("text", GOOD)
def test_schema_accepts_valid_files(validator, text: str) -> None:
    load_config(text)  # the validator agrees
    assert list(validator.iter_errors(yaml.safe_load(textwrap.dedent(text)))) == []


@pytest.mark.parametrize("text", BAD)
def test_schema_rejects_what_the_validator_rejects(validator, text: str) -> None:
    with pytest.raises(ConfigErrors):
        load_config(text)
    assert list(validator.iter_errors(yaml.safe_load(text))) != []


def test_schema_documents_every_key(validator) -> None:
    schema = validator.schema
    pipeline_props = schema["$defs"]["pipeline"]["properties"]
    task_props = schema["$defs"]["task"]["oneOf"][1]["properties"]
    from flank_ops.config import load

    # every key the loader takes, and no other (issue 14 added slurm, executor, memory, cpus)
    assert set(schema["properties"]) == set(load.TOP_KEYS) >= {"persist", "env", "pipelines", "slurm", "setup"}
    assert (
        set(pipeline_props)
        == set(load.PIPELINE_KEYS)
        >= {
            "schedule",
            "timezone",
            "on_push",
            "concurrency",
            "overlap",
            "notify",
            "ping_url",
            "catchup",
            "tasks",
            "executor",
        }
    )
    assert (
        set(task_props)
        == set(load.TASK_KEYS)
        >= {
            "run",
            "needs",
            "retries",
            "retry_delay",
            "timeout",
            "dir",
            "env",
            "memory",
            "cpus",
            "executor",
            "inputs",
            "outputs",
            "artifacts",
        }
    )
    for props in (schema["properties"], pipeline_props, task_props):
        for key, prop in props.items():
            assert prop.get("description"), f"{key} has no description"
