"""The JSON Schema (draft 2020-12) of flank.yml, for editors that validate as you type.

It states the same rules as load.py, from the same constants, as far as JSON
Schema can: cron syntax, timezones, cycles and unknown `needs` are checked only
by `flank validate` (and the push).
"""

from __future__ import annotations

from typing import Any

from flank_ops.config import load
from flank_ops.config.durations import MAX_DURATION_S, MAX_DURATION_TEXT, POSITIVE_DURATION_PATTERN
from flank_ops.config.model import (
    AUTO_INPUT_KINDS,
    DEFAULT_NOTIFY,
    DEFAULT_RETRY_DELAY_S,
    DEFAULT_SETUP_KEYS,
    DEFAULT_SETUP_TIMEOUT_S,
    EXECUTOR_NAMES,
    NOTIFY_OUTCOMES,
    OVERLAP_POLICIES,
)

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

# Relative to the repo root: not absolute, not under ~, no '..' component.
RELATIVE_DIR = r"^(?!\s*[/~])(?!(.*/)?\.\.(/|$)).*\S.*$"


def _string_or_list(item: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "description": description,
        "anyOf": [
            {"type": "null"},
            item,
            {"type": "array", "items": item},
        ],
    }


def _setup_schema(command: dict[str, Any], relative_dir: dict[str, Any], duration: dict[str, Any]) -> dict[str, Any]:
    """issue 13: `setup:` as a command, a list of commands, or {run, key, timeout}."""
    commands = {"anyOf": [command, {"type": "array", "minItems": 1, "items": command}]}
    return {
        "description": "Installs what the code needs (renv::restore(), pip install ...) at deploy, in the new "
        "release before it goes live; runs again only when its key files change.",
        "anyOf": [
            commands,
            {
                "type": "object",
                "additionalProperties": False,
                "required": ["run"],
                "properties": {
                    "run": {**commands, "description": "The command(s), run by /bin/sh -c in the release."},
                    "key": _string_or_list(
                        relative_dir,
                        "Files (paths or globs) whose content decides when setup runs again "
                        f"(default: those of {', '.join(DEFAULT_SETUP_KEYS)} at the repo root).",
                    ),
                    "timeout": {
                        **duration,
                        "default": f"{DEFAULT_SETUP_TIMEOUT_S / 60:g}m",
                        "description": "Kill setup's whole process tree after this long; the deploy fails.",
                    },
                },
            },
        ],
    }


def _params_schema() -> dict[str, Any]:
    """issue 23: `params:` name -> default, or name -> {default, type, choices, description}."""
    from flank_ops.config.model import PARAM_TYPES

    scalar = {"type": ["string", "number", "boolean"]}
    return {
        "anyOf": [
            {"type": "null"},
            {
                "type": "object",
                "propertyNames": {"pattern": load.PARAM_NAME_RE.pattern},
                "additionalProperties": {
                    "oneOf": [
                        scalar,
                        {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["default"],
                            "properties": {
                                "default": scalar,
                                "type": {"enum": list(PARAM_TYPES)},
                                "choices": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                                "description": {"type": "string"},
                            },
                        },
                    ],
                },
            },
        ],
        "description": "Run parameters: tasks read each as FLANK_PARAM_<NAME>; scheduled runs use the defaults, "
        "`flank run -p NAME=VALUE` gives others.",
    }


def json_schema() -> dict[str, Any]:
    name = {"type": "string", "pattern": load.NAME_RE.pattern}
    duration = {
        "anyOf": [
            {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_DURATION_S},
            {"type": "string", "pattern": POSITIVE_DURATION_PATTERN},
        ],
        "$comment": f"at most {MAX_DURATION_TEXT}",
    }
    relative_dir = {"type": "string", "pattern": RELATIVE_DIR}
    auto_inputs = {
        "anyOf": [
            {"type": "boolean"},
            {"enum": list(AUTO_INPUT_KINDS)},
            {"type": "array", "items": {"enum": list(AUTO_INPUT_KINDS)}},
        ],
        "default": True,
        "description": "The inputs flank finds itself, beside inputs: (true: all, false: none, or a list): "
        "scripts (repo files named in the command), sources (what those scripts source() or import, one "
        "level), setup (the environment setup: built). On a pipeline: the default of its tasks.",
    }
    matrix_value = {"type": ["string", "integer", "number"], "pattern": load.MATRIX_VALUE_RE.pattern}
    executor = {
        "enum": list(EXECUTOR_NAMES),
        "default": "local",
        "description": "Where tasks run: on this VM (local), on Slurm (sbatch) or on AWS Batch.",
    }
    command = {
        "type": "string",
        "minLength": 1,
        "pattern": r"\S",
        "description": "The shell command (run by /bin/sh -c in the repo root or `dir`).",
    }
    task = {
        "description": "A task: its command, or a mapping with `run:` and options.",
        "oneOf": [
            command,
            {
                "type": "object",
                "additionalProperties": False,
                "required": ["run"],
                "properties": {
                    "run": command,
                    "needs": _string_or_list(name, "Tasks that must succeed before this one starts."),
                    "retries": {
                        "type": "integer",
                        "minimum": 0,
                        "maximum": load.MAX_RETRIES,
                        "default": 0,
                        "description": "Extra attempts after a failure.",
                    },
                    "retry_delay": {
                        **duration,
                        "default": f"{DEFAULT_RETRY_DELAY_S:g}s",
                        "description": "Wait before the first retry; doubles each retry (90, 90s, 15m, 2h, 1d).",
                    },
                    "timeout": {
                        **duration,
                        "description": "Kill the task's whole process tree after this long (90, 90s, 15m, 2h, 1d).",
                    },
                    "queue_timeout": {  # issue 26
                        **duration,
                        "description": "Slurm/Batch: cancel the job after waiting this long in the queue "
                        "(timeout: counts its running time).",
                    },
                    "dir": {
                        **relative_dir,
                        "description": "Working directory, relative to the repo root (default: the root).",
                    },
                    "env": {"$ref": "#/$defs/env", "description": "Environment variables for this task."},
                    # issue 14
                    "memory": {
                        "anyOf": [
                            {"type": "string", "pattern": load.MEMORY_PATTERN},
                            {  # issue 26: one size per attempt
                                "type": "array",
                                "minItems": 1,
                                "items": {"type": "string", "pattern": load.MEMORY_PATTERN},
                            },
                        ],
                        "examples": ["512M", "16G", ["4G", "8G", "16G"]],
                        "description": "Memory the task needs; checked on the VM, requested from a cluster. "
                        "A list gives one size per attempt (retries ask for more).",
                    },
                    "cpus": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": load.MAX_CPUS,
                        "description": "CPUs the task needs; checked on the VM, requested from a cluster.",
                    },
                    "executor": executor,
                    # issue 12
                    "inputs": _string_or_list(
                        {"type": "string", "minLength": 1},
                        "Files the task reads (paths or globs, relative to `dir`); with outputs:, "
                        "a change to one makes the task run again.",
                    ),
                    "outputs": _string_or_list(
                        {"type": "string", "minLength": 1},
                        "Files the task writes (paths or globs, relative to `dir`); a task with outputs is "
                        "skipped while nothing it depends on changed.",
                    ),
                    # issue 26: fan-out
                    "matrix": {
                        "description": "One task instance per value (a list) or per combination of values "
                        "(a mapping of lists); each sees FLANK_MATRIX_<KEY>.",
                        "anyOf": [
                            {"type": "array", "minItems": 1, "items": matrix_value},
                            {
                                "type": "object",
                                "minProperties": 1,
                                "propertyNames": {"pattern": load.MATRIX_KEY_RE.pattern},
                                "additionalProperties": {
                                    "anyOf": [matrix_value, {"type": "array", "minItems": 1, "items": matrix_value}]
                                },
                            },
                        ],
                    },
                    "matrix_from": {
                        "type": "string",
                        "minLength": 1,
                        "pattern": r"^(?!/|~)[^*?\[{]*[^/]$",
                        "examples": ["outputs/regions.txt", "outputs/cells.csv"],
                        "description": "One task instance per line of this file (a .csv: per row, its header the "
                        "keys), written by a task in needs:; read when the run reaches the task.",
                    },
                    "slurm": {  # issue 26: per-task placement
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {key: {"type": "string"} for key in load.SLURM_KEYS},
                        "description": "This task's sbatch options (partition, account, qos, gres, extra_args), "
                        "over the project's slurm:.",
                    },
                    "batch": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {key: {"type": "string", "minLength": 1} for key in load.BATCH_TASK_KEYS},
                        "description": "This task's AWS Batch job queue and job definition (or image: a job "
                        "definition like the project's with that container image), over flank.toml's.",
                    },
                    "max_parallel": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": load.MAX_MATRIX_CELLS,
                        "description": "At most this many instances of a matrix: task run at once.",
                    },
                    "artifacts": {  # issue 11
                        "type": ["array", "string"],
                        "items": {"type": "string", "pattern": r"^(?!/|~)"},
                        "description": "Files kept with each run and shown on the site: paths or globs relative "
                        "to the task's dir (e.g. results/*.png), no '..'.",
                    },
                    "auto_inputs": auto_inputs,
                },
            },
        ],
    }
    pipeline = {
        "type": "object",
        "description": "A pipeline: a DAG of tasks, with its schedule and policies.",
        "additionalProperties": False,
        "required": ["tasks"],
        "properties": {
            "schedule": _string_or_list(
                {"type": "string", "minLength": 1, "pattern": r"\S"},
                'Cron expression(s), Debian cron syntax, e.g. "0 2 * * *" or @daily.',
            ),
            "timezone": {
                "type": "string",
                "examples": ["Europe/London", "UTC", "America/New_York"],
                "description": "IANA timezone of the schedule (default: the VM's local zone).",
            },
            "catchup": {
                "anyOf": [{"const": 0}, {"const": "0"}, duration],
                "default": "6h",
                "description": "Run once when the VM comes back if it was off at a scheduled minute within this "
                "long (default 6h; 0 = never).",
            },
            "on_push": {
                "type": "boolean",
                "default": False,
                "description": "Run this pipeline after every successful deploy.",
            },
            "concurrency": {
                "type": "integer",
                "minimum": 1,
                "maximum": load.MAX_CONCURRENCY,
                "description": "Most tasks running at once (default: the number of CPUs).",
            },
            "overlap": {
                "enum": list(OVERLAP_POLICIES),
                "default": "skip",
                "description": "What a trigger does while a run is going on: skip it, or queue it.",
            },
            "notify": {
                "description": "Which run outcomes send a notification.",
                "default": list(DEFAULT_NOTIFY),
                "anyOf": [
                    {"type": "null"},
                    {"enum": list(NOTIFY_OUTCOMES)},
                    {"type": "array", "items": {"enum": list(NOTIFY_OUTCOMES)}},
                ],
            },
            "ping_url": {
                "type": "string",
                "pattern": r"^https?://[^\s/?#]+[^\s]*$",
                "format": "uri",
                "description": "Pinged on start, success and failure (healthchecks.io style).",
            },
            "executor": executor,
            "auto_inputs": auto_inputs,
            "params": _params_schema(),  # issue 23
            "tasks": {
                "type": "object",
                "minProperties": 1,
                "propertyNames": name,
                "additionalProperties": {"$ref": "#/$defs/task"},
                "description": "The tasks, by name (ASCII letters, digits, '_' and '-').",
            },
        },
    }
    return {
        "$schema": SCHEMA_DIALECT,
        "title": "flank.yml",
        "description": "A flank_ops project: pipelines of tasks that GNU make runs and cron schedules.",
        "type": "object",
        "additionalProperties": False,
        "required": ["pipelines"],
        "properties": {
            "persist": _string_or_list(relative_dir, "Directories kept across deploys (linked into each release)."),
            "env": {"$ref": "#/$defs/env", "description": "Environment variables for every task."},
            "slurm": {
                "type": "object",
                "additionalProperties": False,
                "properties": {key: {"type": "string"} for key in load.SLURM_KEYS},
                "description": "sbatch options of `executor: slurm` tasks (partition, account, qos, gres, extra_args).",
            },
            "pipelines": {
                "type": "object",
                "minProperties": 1,
                "propertyNames": name,
                "additionalProperties": {"$ref": "#/$defs/pipeline"},
                "description": "The pipelines, by name (ASCII letters, digits, '_' and '-').",
            },
            # issue 13
            "setup": _setup_schema(command, relative_dir, duration),
        },
        "$defs": {
            "pipeline": pipeline,
            "task": task,
            "env": {
                "anyOf": [
                    {"type": "null"},
                    {
                        "type": "object",
                        "propertyNames": {"pattern": load.ENV_NAME_RE.pattern},
                        "additionalProperties": {"type": ["string", "number"]},
                    },
                ],
            },
        },
    }
