"""The JSON Schema (draft 2020-12) of flank.yml, for editors that validate as you type.

It states the same rules as load.py, from the same constants, as far as JSON
Schema can: cron syntax, timezones, cycles and unknown `needs` are checked only
by `flank validate` (and the push).
"""
from __future__ import annotations

from typing import Any

from flank_ops.config import load
from flank_ops.config.durations import POSITIVE_DURATION_PATTERN
from flank_ops.config.model import DEFAULT_NOTIFY, DEFAULT_RETRY_DELAY_S, NOTIFY_OUTCOMES, OVERLAP_POLICIES

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


def json_schema() -> dict[str, Any]:
    name = {"type": "string", "pattern": load.NAME_RE.pattern}
    duration = {
        "anyOf": [
            {"type": "number", "exclusiveMinimum": 0},
            {"type": "string", "pattern": POSITIVE_DURATION_PATTERN},
        ],
    }
    relative_dir = {"type": "string", "pattern": RELATIVE_DIR}
    command = {"type": "string", "minLength": 1, "pattern": r"\S",
               "description": "The shell command (run by /bin/sh -c in the repo root or `dir`)."}
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
                        "type": "integer", "minimum": 0, "maximum": load.MAX_RETRIES, "default": 0,
                        "description": "Extra attempts after a failure.",
                    },
                    "retry_delay": {
                        **duration, "default": f"{DEFAULT_RETRY_DELAY_S:g}s",
                        "description": "Wait before the first retry; doubles each retry (90, 90s, 15m, 2h, 1d).",
                    },
                    "timeout": {
                        **duration,
                        "description": "Kill the task's whole process tree after this long (90, 90s, 15m, 2h, 1d).",
                    },
                    "dir": {
                        **relative_dir,
                        "description": "Working directory, relative to the repo root (default: the root).",
                    },
                    "env": {"$ref": "#/$defs/env", "description": "Environment variables for this task."},
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
                "Cron expression(s), Debian cron syntax, e.g. \"0 2 * * *\" or @daily.",
            ),
            "timezone": {
                "type": "string", "examples": ["Europe/London", "UTC", "America/New_York"],
                "description": "IANA timezone of the schedule (default: the VM's local zone).",
            },
            "catchup": {
                "anyOf": [{"const": 0}, {"const": "0"}, duration],
                "default": "6h",
                "description": "Run once when the VM comes back if it was off at a scheduled minute within this "
                               "long (default 6h; 0 = never).",
            },
            "on_push": {"type": "boolean", "default": False,
                        "description": "Run this pipeline after every successful deploy."},
            "concurrency": {
                "type": "integer", "minimum": 1, "maximum": load.MAX_CONCURRENCY,
                "description": "Most tasks running at once (default: the number of CPUs).",
            },
            "overlap": {"enum": list(OVERLAP_POLICIES), "default": "skip",
                        "description": "What a trigger does while a run is going on: skip it, or queue it."},
            "notify": {
                "description": "Which run outcomes send a notification.",
                "default": list(DEFAULT_NOTIFY),
                "anyOf": [
                    {"type": "null"},
                    {"enum": list(NOTIFY_OUTCOMES)},
                    {"type": "array", "items": {"enum": list(NOTIFY_OUTCOMES)}},
                ],
            },
            "ping_url": {"type": "string", "pattern": r"^https?://[^\s/?#]+[^\s]*$", "format": "uri",
                         "description": "Pinged on start, success and failure (healthchecks.io style)."},
            "tasks": {
                "type": "object", "minProperties": 1, "propertyNames": name,
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
            "pipelines": {
                "type": "object", "minProperties": 1, "propertyNames": name,
                "additionalProperties": {"$ref": "#/$defs/pipeline"},
                "description": "The pipelines, by name (ASCII letters, digits, '_' and '-').",
            },
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
