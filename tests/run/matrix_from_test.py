"""issue 26: reading a matrix_from: file into cells, and the instances they make (no run: plain files)."""

from __future__ import annotations

from pathlib import Path

import pytest

from flank_ops.config.model import Task
from flank_ops.errors import UserError
from flank_ops.run.matrix_from import instances, read_cells


def cells_of(tmp_path: Path, name: str, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / name
    path.write_text(text)
    return read_cells(path, f"outputs/{name}")


def problem(tmp_path: Path, name: str, text: str) -> str:
    with pytest.raises(UserError) as info:
        cells_of(tmp_path, name, text)
    return str(info.value)


def test_lines_and_tables(tmp_path: Path) -> None:
    assert cells_of(tmp_path, "regions.txt", "north\n\n  south \r\neast") == (
        [(("value", "north"),), (("value", "south"),), (("value", "east"),)],
        True,
    )
    assert cells_of(tmp_path, "cells.csv", "region, year\nnorth,2024\n\nsouth, 2025\n") == (
        [(("region", "north"), ("year", "2024")), (("region", "south"), ("year", "2025"))],
        False,
    )


def test_each_problem_is_one_line_with_what_to_do(tmp_path: Path) -> None:
    assert problem(tmp_path, "none.txt", "\n \n").startswith("outputs/none.txt has no cells: it is empty")
    assert problem(tmp_path, "twice.txt", "a\nb\na\n") == "outputs/twice.txt:3: 'a' is listed twice (first at line 1)"
    assert problem(tmp_path, "bad.txt", "a\nno rth\n").startswith("outputs/bad.txt:2: 'no rth' is not a plain value")
    many = "\n".join(f"r{i}" for i in range(1001))
    assert problem(tmp_path, "many.txt", many).startswith("outputs/many.txt has 1001 cells; at most 1000 per task")
    assert problem(tmp_path, "head.csv", "region,2x\na,b\n").startswith("outputs/head.csv:1: '2x' is not a key")
    assert problem(tmp_path, "row.csv", "region,year\na\n") == "outputs/row.csv:2: 1 values for 2 keys (region, year)"
    with pytest.raises(UserError) as info:
        read_cells(tmp_path / "absent.txt", "outputs/absent.txt")
    assert str(info.value).startswith("outputs/absent.txt does not exist")


def test_a_tables_placeholders_are_checked_when_it_is_read(tmp_path: Path) -> None:
    task = Task(name="fit", run="echo", matrix_from="outputs/cells.csv", outputs=("out/{region}_{year}.rds",))
    cells, plain = cells_of(tmp_path, "cells.csv", "region,year\nnorth,2024\nnorth,2025\n")
    made = instances(task, cells, plain)
    assert [t.name for t in made] == ["fit[region=north,year=2024]", "fit[region=north,year=2025]"]
    assert made[1].outputs == ("out/north_2025.rds",)
    assert made[1].env == {"FLANK_MATRIX_REGION": "north", "FLANK_MATRIX_YEAR": "2025"}
    with pytest.raises(UserError) as info:
        instances(Task(name="fit", run="echo", matrix_from="x.csv", outputs=("out/{regoin}.rds",)), cells, plain)
    assert str(info.value).startswith("outputs: 'out/{regoin}.rds' names {regoin}, which x.csv has no column for")
    with pytest.raises(UserError) as info:
        instances(Task(name="fit", run="echo", matrix_from="x.csv", outputs=("out/{region}.rds",)), cells, plain)
    assert str(info.value).startswith(
        "outputs: fit[region=north,year=2024] and fit[region=north,year=2025] would both write out/north.rds"
    )
