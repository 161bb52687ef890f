"""issue 26: when a matrix task's instances can go to Slurm as one job array (no cluster needed)."""

from __future__ import annotations

from pathlib import Path

from flank_ops.executors.slurm_array import array_cells
from flank_ops.task.task_exec import TaskSpec, encode_spec


def write_plan(tmp_path: Path, *specs: TaskSpec) -> list[str]:
    folder = tmp_path / "plan" / "nightly.tasks"
    folder.mkdir(parents=True)
    paths = []
    for spec in specs:
        path = folder / f"{spec.task}.spec"
        path.write_bytes(encode_spec(spec))
        paths.append(str(path))
    return paths


def cell(name: str, **changes: object) -> TaskSpec:
    base = TaskSpec(task=name, command="fit.R", cwd="/srv", executor="slurm", memory_mb=100, group="fit")
    return base._replace(**changes)  # type: ignore[arg-type]


def test_instances_that_share_resources_are_one_array_in_name_order(tmp_path: Path) -> None:
    specs = [cell("fit[b]"), cell("fit[a]"), cell("other", group="")]
    paths = write_plan(tmp_path, *specs)
    cells = array_cells(specs[0], paths[0])
    assert cells is not None and [c.task for c in cells] == ["fit[a]", "fit[b]"]


def test_no_array_for_one_instance_other_resources_a_checked_instance_or_another_executor(tmp_path: Path) -> None:
    one = tmp_path / "one"
    assert array_cells(cell("fit[a]"), write_plan(one, cell("fit[a]"))[0]) is None
    bigger = tmp_path / "bigger"
    assert array_cells(cell("fit[a]"), write_plan(bigger, cell("fit[a]"), cell("fit[b]", memory_mb=200))[0]) is None
    checked = tmp_path / "checked"
    paths = write_plan(checked, cell("fit[a]"), cell("fit[b]"))
    (checked / "plan" / "checks").mkdir()
    (checked / "plan" / "checks" / "fit[b].json").write_text("{}")  # has outputs: may be up to date
    assert array_cells(cell("fit[a]"), paths[0]) is None
    local = tmp_path / "local"
    paths = write_plan(local, cell("fit[a]", executor="local"), cell("fit[b]", executor="local"))
    assert array_cells(cell("fit[a]", executor="local"), paths[0]) is None
