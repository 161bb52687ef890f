"""inputs: and outputs: in flank.yml (issue 12): read as written, bad ones reported with line and column."""

from __future__ import annotations

import textwrap

import pytest

from flank_ops.config.load import load_config
from flank_ops.errors import ConfigErrors


def tasks(body: str) -> str:
    return "pipelines:\n  p:\n    tasks:\n" + textwrap.indent(textwrap.dedent(body), "      ")


def errors_of(text: str) -> list[str]:
    with pytest.raises(ConfigErrors) as info:
        load_config(text)
    return [str(e) for e in info.value.errors]


def test_inputs_and_outputs_are_read() -> None:
    config = load_config(
        tasks("""\
        model:
          run: Rscript R/model.R
          dir: R
          inputs: [model.R, ../data/clean.parquet, 'sql/*.sql']
          outputs: ../data/model.rds
        plain: echo hi
    """)
    )
    model = config.pipelines["p"].tasks["model"]
    assert model.inputs == ("model.R", "../data/clean.parquet", "sql/*.sql")
    assert model.outputs == ("../data/model.rds",)
    assert config.pipelines["p"].tasks["plain"].outputs == ()


def test_bad_paths_are_reported_where_they_are_written() -> None:
    errors = errors_of(
        tasks("""\
        a:
          run: x
          inputs: [/etc/passwd, data/, '']
          outputs: [../../out.txt, 7]
    """)
    )
    assert errors == [
        "flank.yml:6:18: inputs: '/etc/passwd' must be relative to the task's dir, not absolute "
        "(e.g. data/clean.parquet)",
        "flank.yml:6:31: inputs: 'data/' is a directory; flank fingerprints files "
        "(list its files with a glob, e.g. data/**/*)",
        "flank.yml:6:38: inputs: the path is empty",
        "flank.yml:7:19: outputs: '../../out.txt' leads out of the repo ('..' past its root)",
        "flank.yml:7:34: outputs: expected a path (a string), got the number 7 (put it in quotes)",
    ]


def test_an_output_that_is_also_an_input_and_an_output_declared_twice() -> None:
    errors = errors_of(
        tasks("""\
        a:
          run: x
          inputs: ['data/*.csv']
          outputs: [data/a.csv]
        b:
          run: y
          dir: sub
          outputs: [../data/a.csv]
    """)
    )
    assert errors == [
        "flank.yml:7:19: outputs: 'data/a.csv' is also an input of task 'a' "
        "(a task cannot depend on what it writes: remove it from inputs:)",
        "flank.yml:11:19: outputs: '../data/a.csv' is also an output of task 'a' "
        "(each file has one task that writes it; give one of them another path)",
    ]
