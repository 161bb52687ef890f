"""`flank validate [PATH]` and `flank schema` as a user runs them (real CLI subprocess)."""

from __future__ import annotations

import json
from pathlib import Path

GOOD = "pipelines:\n  nightly:\n    tasks:\n      extract: Rscript R/extract.R\n      model:\n        run: Rscript R/model.R\n        needs: [extract]\n"
BAD = """\
pipelines:
  nightly:
    schedule: "0 2 * * *"
    tasks:
      extract: Rscript R/extract.R
      clean_data:
        run: Rscript R/clean.R
        need: [extract]
      model:
        run: Rscript R/model.R
        needs: [clean_dta]
        timeout: 2 hours
"""


def test_valid_file_in_the_current_directory(tmp_path: Path, flank) -> None:
    (tmp_path / "flank.yml").write_text(GOOD)
    proc = flank("validate", cwd=tmp_path)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "flank.yml OK — 1 pipeline, 2 tasks\n", "")


def test_spec_example_passes(tmp_path: Path, flank) -> None:
    example = Path(__file__).parent / "spec_example.yml"
    proc = flank("validate", str(example))
    assert proc.returncode == 0
    assert proc.stdout == f"{example} OK — 1 pipeline, 4 tasks\n"


def test_a_directory_means_its_flank_yml(tmp_path: Path, flank) -> None:
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "flank.yml").write_text(GOOD)
    proc = flank("validate", "repo", cwd=tmp_path)
    assert (proc.returncode, proc.stdout) == (0, "repo/flank.yml OK — 1 pipeline, 2 tasks\n")


def test_every_error_is_printed_with_file_line_and_column(tmp_path: Path, flank) -> None:
    (tmp_path / "flank.yml").write_text(BAD)
    proc = flank("validate", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "flank.yml:8:9: unknown key 'need' (did you mean 'needs'?)",
        "flank.yml:11:17: needs: unknown task 'clean_dta' (did you mean 'clean_data'?)",
        "flank.yml:12:18: timeout: '2 hours' is not a duration (write a number with an optional unit: "
        "90, 90s, 15m, 2h, 1d)",
        "3 errors",
    ]


def test_missing_file(tmp_path: Path, flank) -> None:
    proc = flank("validate", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr == "flank.yml: no such file (run this in your repo's root, or pass the path of flank.yml)\n"


def test_binary_and_unreadable_input_never_give_a_traceback(tmp_path: Path, flank) -> None:
    (tmp_path / "flank.yml").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    proc = flank("validate", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr == "flank.yml:3:1: binary file (contains NUL bytes) (flank.yml must be a UTF-8 text file)\n"
    (tmp_path / "big.yml").write_bytes(b"#" * (2 * 1024 * 1024))
    proc = flank("validate", "big.yml", cwd=tmp_path)
    assert (proc.returncode, proc.stderr) == (
        1,
        "big.yml: is 2.0 MB; flank reads at most 1 MB (flank.yml describes pipelines; keep data out of it)\n",
    )
    assert "Traceback" not in proc.stderr


def test_schema_prints_json(flank) -> None:
    proc = flank("schema")
    assert proc.returncode == 0
    schema = json.loads(proc.stdout)
    assert schema["title"] == "flank.yml"
    assert schema["required"] == ["pipelines"]
