"""issue 23: a pipeline's params: — validated with line:col, typed, parsed from -p text and forms."""

from __future__ import annotations

import textwrap

import pytest

from flank_ops.config.load import load_config
from flank_ops.config.params import param_env, param_fields, parse_params
from flank_ops.errors import ConfigErrors, UserError

GOOD = """\
pipelines:
  p:
    params:
      day: 2026-11-01
      n: 3
      ratio: 0.5
      dry: false
      label: hello
      model: {type: choice, choices: [lm, glm], default: lm, description: which fit}
      since: {type: date, default: "2026-01-31"}
    tasks:
      a: echo a
"""


def errors_of(params_body: str) -> list[str]:
    text = "pipelines:\n  p:\n    params:\n" + textwrap.indent(textwrap.dedent(params_body), "      ")
    text += "    tasks:\n      a: echo a\n"
    with pytest.raises(ConfigErrors) as info:
        load_config(text)
    return [str(e) for e in info.value.errors]


def test_short_and_long_forms_are_typed() -> None:
    pipeline = load_config(GOOD).pipelines["p"]
    fields = {f.name: f for f in param_fields(pipeline)}
    assert [(f.name, f.type, f.default) for f in fields.values()] == [
        ("day", "date", "2026-11-01"),
        ("n", "int", 3),
        ("ratio", "number", 0.5),
        ("dry", "bool", False),
        ("label", "string", "hello"),
        ("model", "choice", "lm"),
        ("since", "date", "2026-01-31"),
    ]
    assert fields["model"].choices == ("lm", "glm")
    assert fields["model"].description == "which fit"


def test_raw_text_is_parsed_over_the_defaults() -> None:
    pipeline = load_config(GOOD).pipelines["p"]
    values = parse_params(pipeline, {"n": "7", "dry": "yes", "model": "glm", "ratio": "2"})
    assert values["n"] == 7 and values["dry"] is True and values["model"] == "glm" and values["ratio"] == 2.0
    assert values["day"] == "2026-11-01"  # the default
    env = param_env(values)
    assert env["FLANK_PARAM_N"] == "7"
    assert env["FLANK_PARAM_DRY"] == "true"
    assert env["FLANK_PARAM_DAY"] == "2026-11-01"


@pytest.mark.parametrize(
    ("raw", "message", "hint"),
    [
        ({"nn": "1"}, "pipeline 'p' has no parameter 'nn'", "did you mean 'n'?"),
        ({"n": "three"}, "parameter 'n' (int): 'three' is not a whole number", "e.g. -p n=3"),
        ({"day": "2026-13-01"}, "parameter 'day' (date): '2026-13-01' is not a date like 2026-11-01", None),
        ({"model": "glmm"}, "parameter 'model' (choice): 'glmm' is not one of lm, glm (did you mean 'glm'?)", None),
        ({"dry": "maybe"}, "parameter 'dry' (bool): 'maybe' is not true or false", None),
        ({"ratio": "nan"}, "parameter 'ratio' (number): 'nan' is not a finite number", None),
        ({"n": "1" * 40}, "is out of range", None),
    ],
)
def test_bad_values_get_one_clear_message(raw: dict[str, str], message: str, hint: str | None) -> None:
    pipeline = load_config(GOOD).pipelines["p"]
    with pytest.raises(UserError) as info:
        parse_params(pipeline, raw)
    assert message in info.value.message
    if hint:
        assert hint in (info.value.hint or "")


def test_bad_params_are_reported_with_line_and_column() -> None:
    errors = errors_of(
        """\
        n: {type: int, default: many}
        m: {type: choice, default: x}
        c: {choices: [a, b], default: z}
        9lives: 1
        k: {default: 1, colour: red}
        e:
        """
    )
    assert errors == [
        "flank.yml:4:31: params: n: the default 'many' is not a whole number (type int)",
        "flank.yml:5:11: params: m: type: choice needs a list of choices: (e.g. choices: [lm, glm])",
        "flank.yml:6:37: params: c: the default 'z' is not one of a, b (type choice)",
        "flank.yml:7:7: params: '9lives' is not a valid parameter name (use letters, digits and '_' (at most 64), "
        "not starting with a digit: tasks read FLANK_PARAM_<NAME>)",
        "flank.yml:8:23: unknown key 'colour' (known keys: default, type, choices, description)",
        "flank.yml:9:9: params: e has no default (scheduled runs use the default: give one, e.g. default: 2026-11-01)",
    ]


def test_names_that_meet_in_one_variable_are_refused() -> None:
    errors = errors_of("day: 1\nDAY: 2\n")
    assert errors == [
        "flank.yml:5:7: params: 'DAY' and 'day' are both FLANK_PARAM_DAY for tasks (give one of them another name)"
    ]
