"""Run parameters (issue 23): a pipeline's `params:`, typed values, and what tasks see of them.

    params:
      day: 2026-11-01                      # short form: the default's YAML type is the type
      model: {type: choice, choices: [lm, glm], default: lm, description: "which fit"}

Every run has a value for every parameter: the default unless `flank run -p NAME=VALUE` (or
the web form) gave another. Tasks get each as FLANK_PARAM_<NAME> (upper case). Values are
typed: str (string, choice, and date as YYYY-MM-DD), int, float (number), bool; that is how the
run record keeps them (plain JSON). `parse_params` is the one check of raw text, for the CLI
and the web form alike; `param_fields` describes them for a form.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import NamedTuple

from flank_ops.config.model import PARAM_TYPES, Param, ParamValue, Pipeline
from flank_ops.errors import UserError

ENV_PREFIX = "FLANK_PARAM_"
MAX_TEXT = 1000  # a parameter is a word or a date, not data
MAX_INT = 10**15
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
INT_RE = re.compile(r"^[+-]?\d+$")
TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")


def env_name(name: str) -> str:
    """The environment variable a task reads the parameter from."""
    return ENV_PREFIX + name.upper()


def env_text(value: ParamValue) -> str:
    """A value as a task sees it: true/false, 3, 0.5, 2026-11-01, text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def param_env(values: Mapping[str, ParamValue]) -> dict[str, str]:
    """FLANK_PARAM_<NAME> -> text, for every parameter of the run."""
    return {env_name(name): env_text(value) for name, value in values.items()}


def parse_value(param: Param, raw: str) -> ParamValue:
    """Raw text (the command line's, a form's) as the parameter's type. Raises ValueError saying why."""
    text = raw.strip() if param.type != "string" else raw
    if "\0" in raw:
        raise ValueError("contains a NUL character")
    if len(raw) > MAX_TEXT:
        raise ValueError(f"is {len(raw)} characters long; at most {MAX_TEXT}")
    if param.type == "string":
        return raw
    if param.type == "int":
        if not INT_RE.match(text):
            raise ValueError(f"{raw!r} is not a whole number")
        number = int(text)
        if abs(number) > MAX_INT:
            raise ValueError(f"{raw!r} is out of range (at most {MAX_INT:.0e} either way)")
        return number
    if param.type == "number":
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{raw!r} is not a number") from None
        if not math.isfinite(value):
            raise ValueError(f"{raw!r} is not a finite number")
        return value
    if param.type == "bool":
        if text.lower() in TRUE_WORDS:
            return True
        if text.lower() in FALSE_WORDS:
            return False
        raise ValueError(f"{raw!r} is not true or false")
    if param.type == "date":
        from datetime import date

        try:
            if not DATE_RE.match(text):
                raise ValueError
            return date.fromisoformat(text).isoformat()
        except ValueError:
            raise ValueError(f"{raw!r} is not a date like 2026-11-01") from None
    if param.type == "choice":
        if text in param.choices:
            return text
        from flank_ops.config.suggest import did_you_mean

        guess = did_you_mean(text, param.choices)
        raise ValueError(f"{raw!r} is not one of {', '.join(param.choices)}" + (f" ({guess})" if guess else ""))
    raise AssertionError(param.type)


def _example(param: Param) -> str:
    return {
        "int": "3",
        "number": "0.5",
        "bool": "true",
        "date": "2026-11-01",
        "choice": param.choices[0] if param.choices else "x",
    }.get(param.type, "text")


def parse_params(pipeline: Pipeline, raw: Mapping[str, str]) -> dict[str, ParamValue]:
    """Every parameter's value for a run: `raw` (name -> text, from `-p` or a form) over the defaults.

    Raises UserError (one line and a hint) for an unknown name or a value of the wrong type:
    the web form and `flank run -p` share these words. Nothing is started before this passes.
    """
    params = pipeline.params
    for name in raw:
        if name not in params:
            from flank_ops.config.suggest import did_you_mean

            if not params:
                raise UserError(
                    f"pipeline {pipeline.name!r} has no parameter {name!r} (it has no parameters)",
                    "declare it in flank.yml under the pipeline's params:",
                )
            known = ", ".join(params)
            guess = did_you_mean(name, list(params))
            raise UserError(
                f"pipeline {pipeline.name!r} has no parameter {name!r}",
                f"{guess} (parameters: {known})" if guess else f"parameters: {known}",
            )
    values: dict[str, ParamValue] = {}
    for name, param in params.items():
        if name not in raw:
            values[name] = param.default
            continue
        try:
            values[name] = parse_value(param, raw[name])
        except ValueError as exc:
            raise UserError(f"parameter {name!r} ({param.type}): {exc}", f"e.g. -p {name}={_example(param)}") from None
    return values


def split_assignments(items: list[str]) -> dict[str, str]:
    """`-p NAME=VALUE` options -> {name: raw value}. Raises UserError."""
    raw: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UserError(f"-p {item!r} is not NAME=VALUE", "e.g. -p day=2026-11-01")
        if name in raw:
            raise UserError(f"parameter {name!r} is given twice", "give each -p NAME=VALUE once")
        raw[name] = value
    return raw


def as_options(values: Mapping[str, ParamValue]) -> list[str]:
    """Typed values back as `-p NAME=VALUE` options (a detached run, a backfill's runs)."""
    options: list[str] = []
    for name, value in values.items():
        options += ["-p", f"{name}={env_text(value)}"]
    return options


def non_default(pipeline: Pipeline, values: Mapping[str, ParamValue]) -> list[str]:
    """The names whose value is not the default (what pages, notes and notifications show)."""
    return [n for n, v in values.items() if n in pipeline.params and v != pipeline.params[n].default]


class ParamField(NamedTuple):
    """One parameter, described for a form (`flank serve --actions`)."""

    name: str
    type: str  # one of PARAM_TYPES
    default: ParamValue
    choices: tuple[str, ...]
    description: str


def param_fields(pipeline: Pipeline) -> list[ParamField]:
    """The pipeline's parameters in flank.yml order, for a form (typed inputs, defaults filled)."""
    return [ParamField(p.name, p.type, p.default, p.choices, p.description) for p in pipeline.params.values()]


def shown(values: Mapping[str, ParamValue], names: list[str]) -> str:
    """'day=2026-11-01, model=glm': the non-default values, as pages, notes and notifications say them."""
    return ", ".join(f"{n}={env_text(values[n])}" for n in names if n in values)


__all__ = ["PARAM_TYPES", "ParamField", "env_name", "param_fields", "parse_params", "parse_value", "shown"]
