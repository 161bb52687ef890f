"""issue 26: `matrix:` and `max_parallel:` in flank.yml — one declared task, one instance per cell."""

from __future__ import annotations

import textwrap

import pytest

from flank_ops.config.load import load_config
from flank_ops.errors import ConfigErrors


def config_of(body: str):  # type: ignore[no-untyped-def]
    text = "pipelines:\n  p:\n    tasks:\n" + textwrap.indent(textwrap.dedent(body), "      ")
    return load_config(text).pipelines["p"]


def errors_of(body: str) -> list[str]:
    text = "pipelines:\n  p:\n    tasks:\n" + textwrap.indent(textwrap.dedent(body), "      ")
    with pytest.raises(ConfigErrors) as info:
        load_config(text)
    return [str(e) for e in info.value.errors]


def test_a_table_is_one_instance_per_cell_with_its_values_in_the_env() -> None:
    p = config_of(
        """\
        prep: echo prep
        model:
          run: Rscript model.R
          needs: [prep]
          matrix: {region: [north, south], year: [2024, 2025]}
          env: {MODEL: glm}
        report:
          run: python report.py
          needs: [model]
        """
    )
    names = list(p.tasks)
    assert names == [
        "prep",
        "model[region=north,year=2024]",
        "model[region=north,year=2025]",
        "model[region=south,year=2024]",
        "model[region=south,year=2025]",
        "report",
    ]
    cell = p.tasks["model[region=south,year=2024]"]
    assert cell.env == {"MODEL": "glm", "FLANK_MATRIX_REGION": "south", "FLANK_MATRIX_YEAR": "2024"}
    assert cell.group == "model" and cell.needs == ("prep",)
    assert p.tasks["report"].needs == tuple(names[1:5])  # waits for every instance
    assert p.instances_of("model") == names[1:5]
    assert p.instances_of("prep") == ["prep"]


def test_a_list_and_needs_on_one_instance() -> None:
    p = config_of(
        """\
        fit:
          run: echo fit
          matrix: [north, south]
        north_report:
          run: echo report
          needs: ["fit[north]"]
        by_region:
          run: echo x
          matrix: {region: [north, south], year: [2024]}
        north_only:
          run: echo y
          needs: ["by_region[region=north]"]
        """
    )
    assert list(p.tasks)[:2] == ["fit[north]", "fit[south]"]
    assert p.tasks["fit[north]"].env == {"FLANK_MATRIX_VALUE": "north"}
    assert p.tasks["north_report"].needs == ("fit[north]",)
    assert p.tasks["north_only"].needs == ("by_region[region=north,year=2024]",)


def test_mistakes_are_reported_at_their_line_and_column() -> None:
    errors = errors_of(
        """\
        a:
          run: echo a
          matrix: {region: [north, "a b"], 2x: [1]}
        b:
          run: echo b
          needs: ["a[region=east]", "c[x=1]"]
        c:
          run: echo c
          matrix: []
          max_parallel: 0
        """
    )
    text = "\n".join(errors)
    assert "flank.yml:6:34: matrix: 'a b' is not a plain value" in text
    assert "flank.yml:6:42: matrix: '2x' is not a key" in text
    assert "flank.yml:9:17: needs: 'a[region=east]' matches no instance of 'a' (its values: region: north)" in text
    assert "flank.yml:9:35: needs: 'c[x=1]': task 'c' has no matrix:" in text
    assert "flank.yml:12:17: matrix: is empty" in text
    assert "flank.yml:13:23: max_parallel: must be at least 1, got 0" in text
    assert len(errors) == 6


def test_too_many_cells_is_one_clear_error() -> None:
    errors = errors_of(
        """\
        a:
          run: echo a
          matrix: {{x: [{}], y: [{}]}}
        """.format(", ".join(str(i) for i in range(100)), ", ".join(str(i) for i in range(100)))
    )
    assert len(errors) == 1
    assert errors[0].startswith("flank.yml:6:17: matrix: 10000 cells (100 x 100); at most 1000")


def test_max_parallel_is_kept_on_every_instance() -> None:
    p = config_of(
        """\
        a:
          run: echo a
          matrix: [1, 2, 3]
          max_parallel: 2
        """
    )
    assert [t.max_parallel for t in p.tasks.values()] == [2, 2, 2]


def test_memory_per_attempt() -> None:
    p = config_of(
        """\
        a:
          run: echo a
          memory: [4G, 8G, 16G]
          retries: 2
        """
    )
    assert p.tasks["a"].memory_per_attempt_mb == (4096, 8192, 16384) and p.tasks["a"].memory_mb == 4096
    errors = errors_of(
        """\
        a:
          run: echo a
          memory: [4G, 8G, lots]
        b:
          run: echo b
          memory: [4G, 8G]
        """
    )
    assert errors == [
        "flank.yml:6:26: memory: expected a size like 512M, 16G or 400G, got the string 'lots' (write a number and a unit: M, G or T)",
        "flank.yml:9:17: memory: 2 sizes, but the task has 1 attempt (add retries: 1, or list fewer sizes)",
    ]


def test_the_json_schema_takes_what_the_loader_takes() -> None:
    import jsonschema
    import yaml

    from flank_ops.config.schema import json_schema

    validator = jsonschema.Draft202012Validator(json_schema())
    good = yaml.safe_load(
        "pipelines:\n  p:\n    tasks:\n      a:\n        run: echo\n        matrix: {region: [north, south], year: 2024}\n"
        "        max_parallel: 2\n        memory: [4G, 8G]\n        retries: 1\n"
    )
    assert not list(validator.iter_errors(good))
    bad = yaml.safe_load("pipelines:\n  p:\n    tasks:\n      a:\n        run: echo\n        matrix: {2x: ['a b']}\n")
    assert list(validator.iter_errors(bad))


def test_per_task_placement_is_read_and_checked() -> None:
    p = config_of(
        """\
        fit:
          run: echo
          executor: slurm
          slurm: {partition: gpu, gres: "gpu:1"}
        big:
          run: echo
          executor: batch
          batch: {queue: big-queue, job_definition: r-image}
        """
    )
    assert p.tasks["fit"].executor_options("slurm", {"partition": "cpu", "qos": "low"}) == {
        "partition": "gpu",
        "qos": "low",
        "gres": "gpu:1",
    }
    assert p.tasks["big"].executor_options("batch", {}) == {"job_queue": "big-queue", "job_definition": "r-image"}
    errors = errors_of(
        """\
        fit:
          run: echo
          slurm: {partion: gpu}
          batch: {queue: "", imag: "r:4"}
        """
    )
    assert errors == [
        "flank.yml:6:17: unknown key 'partion' (did you mean 'partition'?)",
        "flank.yml:7:24: batch: queue is empty",
        "flank.yml:7:28: unknown key 'imag' (did you mean 'image'?)",
    ]


def test_a_tasks_own_batch_image_is_read_and_checked() -> None:
    p = config_of("fit: {run: echo, executor: batch, batch: {image: 'ghcr.io/lab/r-geo:4.4'}}\n")
    assert p.tasks["fit"].executor_options("batch", {}) == {"image": "ghcr.io/lab/r-geo:4.4"}
    errors = errors_of(
        """\
        fit: {run: echo, batch: {job_definition: r-job, image: "r:4"}}
        map: {run: echo, batch: {image: "r 4"}}
        """
    )
    assert errors == [
        "flank.yml:4:31: batch: give job_definition or image, not both "
        "(image alone gets a job definition like the project's, with that image)",
        "flank.yml:5:39: batch: image 'r 4' is not an image name (no spaces)",
    ]


def test_queue_timeout_is_a_duration() -> None:
    p = config_of("a: {run: echo, executor: slurm, queue_timeout: 15m}\n")
    assert p.tasks["a"].queue_timeout_s == 900
    assert errors_of("a: {run: echo, queue_timeout: soon}\n")[0].startswith(
        "flank.yml:4:37: queue_timeout: 'soon' is not a duration"
    )


def test_placeholders_give_each_instance_its_own_files() -> None:
    p = config_of(
        """\
        model:
          run: Rscript model.R
          matrix: {region: [north, south], year: [2024]}
          inputs: ["data/{region}.csv"]
          outputs: ["out/model_{region}_{year}.rds"]
          artifacts: ["plots/{region}.png"]
        """
    )
    north = p.tasks["model[region=north,year=2024]"]
    assert north.inputs == ("data/north.csv",)
    assert north.outputs == ("out/model_north_2024.rds",)
    assert north.artifacts == ("plots/north.png",)
    assert p.tasks["model[region=south,year=2024]"].outputs == ("out/model_south_2024.rds",)


def test_placeholder_mistakes_are_said_at_push() -> None:
    errors = errors_of(
        """\
        model:
          run: echo
          matrix: {region: [north, south], year: [2024, 2025]}
          outputs: [out/model.rds, "out/{region}.rds", "out/{reigon}_{year}.rds"]
        plain:
          run: echo
          outputs: ["out/plain_{region}.rds"]
        one:
          run: echo
          matrix: [north]
          outputs: [out/one.rds]
        """
    )
    assert errors == [
        "flank.yml:7:19: outputs: 'out/model.rds' would be the same file for every instance of 'model' "
        "(give each instance its own: e.g. out/model_{region}_{year}.rds)",
        "flank.yml:7:34: outputs: 'out/{region}.rds' does not name {year}: instances that differ only in year "
        "would write the same file (give each instance its own: e.g. out/{region}_{year}.rds)",
        "flank.yml:7:54: outputs: {reigon} is not a key of 'model''s matrix (its keys: {region}, {year})",
        "flank.yml:10:19: outputs: {region} names a matrix key, but task 'plain' has no matrix: "
        "(placeholders like {region} are for the instances of a matrix: or matrix_from: task)",
    ]  # a one-cell matrix may keep a plain path


def test_matrix_from_stays_one_task_until_the_run_reads_its_file() -> None:
    p = config_of(
        """\
        regions:
          run: python list_regions.py
          outputs: [outputs/regions.txt]
        model:
          run: Rscript model.R
          needs: [regions]
          matrix_from: outputs/regions.txt
          outputs: ["outputs/model_{value}.rds"]
          max_parallel: 2
        report:
          run: echo
          needs: [model]
        """
    )
    assert list(p.tasks) == ["regions", "model", "report"]
    model = p.tasks["model"]
    assert model.matrix_from == "outputs/regions.txt" and model.max_parallel == 2
    assert p.tasks["report"].needs == ("model",)
    north = model.instance((("value", "north"),), plain_list=True)
    assert north.name == "model[north]" and north.outputs == ("outputs/model_north.rds",)
    assert north.env == {"FLANK_MATRIX_VALUE": "north"} and north.matrix_from is None
    table = config_of(
        """\
        cells:
          run: echo
          dir: py
          outputs: [../outputs/cells.csv]
        model:
          run: echo
          needs: [cells]
          matrix_from: outputs/cells.csv
          outputs: ["outputs/{region}_{year}.rds"]
        """
    )
    assert table.tasks["model"].matrix_from == "outputs/cells.csv"  # a table: its keys are read at run time


def test_matrix_from_mistakes_are_said_at_push() -> None:
    errors = errors_of(
        """\
        regions:
          run: echo
          outputs: [outputs/regions.txt]
        model:
          run: echo
          matrix_from: outputs/regions.txt
          outputs: ["outputs/{region}.rds"]
        other:
          run: echo
          needs: [regions]
          matrix_from: "outputs/*.txt"
        both:
          run: echo
          needs: [regions]
          matrix: [a, b]
          matrix_from: outputs/regions.txt
        nowhere:
          run: echo
          needs: [regions]
          matrix_from: outputs/none.txt
        one:
          run: echo
          needs: ["model[north]"]
        """
    )
    assert errors == [
        "flank.yml:9:22: matrix_from: 'outputs/regions.txt' is not an output of a task 'model' needs "
        "(add needs: [regions])",
        "flank.yml:10:19: outputs: {region} is not a key of 'model''s matrix (its keys: {value})",
        "flank.yml:14:22: matrix_from: 'outputs/*.txt' must name one file (no glob, no placeholder) "
        "(e.g. matrix_from: outputs/regions.txt (one value a line) or outputs/cells.csv (a table))",
        "flank.yml:19:22: matrix_from: and matrix: both give the cells (keep one of them)",
        "flank.yml:23:22: matrix_from: 'outputs/none.txt' is not an output of a task 'nowhere' needs "
        "(the task that writes it goes in needs:, and the file in that task's outputs:)",
        "flank.yml:26:17: needs: 'model[north]': the cells of 'model' are known only when the run reads "
        "outputs/regions.txt (need all of them: needs: [model])",
    ]
