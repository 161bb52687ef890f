"""A run record's artifact paths are read back, never trusted (issue 20 item 5): a crafted entry
pointing out of the run's folder publishes nothing and changes no file's mode, on the run page and
in latest/; publishing a kept file never changes its mode."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from helpers.cli import run_flank
from helpers.deployed import deploy, record, runs_dir

SECRET = "s3cr3t-value-of-the-project"
FLANK_YML = "persist: [results]\npipelines:\n  nightly:\n    tasks:\n      model:\n        run: sh model.sh\n        artifacts: [results/*.csv]\n"
MODEL_SH = "printf 'a,b\\n1,2\\n' > results/table.csv\n"


def _site_files(home: Path) -> list[Path]:
    return [p for p in (home / "site").rglob("*") if p.is_file()]


@pytest.mark.slow
def test_a_crafted_artifact_path_publishes_nothing_from_outside_the_run(tmp_path: Path, flank_home: Path) -> None:
    deploy(tmp_path, FLANK_YML, files={"model.sh": MODEL_SH})
    run_flank("secrets", "set", "demo", "API_KEY", input=SECRET + "\n", check=True)
    secrets_env = flank_home / "demo" / "secrets.env"
    run_flank("run", "demo", "nightly", check=True)
    kept = runs_dir() / "1" / "artifacts" / "model" / "results" / "table.csv"
    kept_mode = stat.S_IMODE(kept.stat().st_mode)
    before = secrets_env.stat()

    crafted = record(1)
    crafted["tasks"]["model"]["artifacts"] += [
        {"path": "../../../../../secrets.env", "size": 10, "kept": True, "note": None},
        {"path": "/" + str(secrets_env).lstrip("/"), "size": 10, "kept": True, "note": None},
    ]
    crafted["tasks"]["../../../.."] = dict(crafted["tasks"]["model"])
    (runs_dir() / "1" / "run.json").write_text(json.dumps(crafted))
    os.symlink(secrets_env, kept.parent / "link.csv")  # a kept "file" that is a symlink out
    crafted["tasks"]["model"]["artifacts"].append({"path": "results/link.csv", "size": 10, "kept": True, "note": None})
    (runs_dir() / "1" / "run.json").write_text(json.dumps(crafted))

    proc = run_flank("site", "--rebuild")
    assert "Traceback" not in proc.stderr, proc.stderr

    after = secrets_env.stat()
    assert stat.S_IMODE(after.st_mode) == 0o600 and after.st_nlink == before.st_nlink == 1
    leaked = [p for p in _site_files(flank_home) if SECRET in p.read_text(errors="replace")]
    assert not leaked, leaked
    outside = [
        p
        for p in flank_home.rglob("*")
        if p.is_file() and not p.is_symlink() and SECRET in p.read_text(errors="replace")
    ]
    assert outside == [secrets_env], outside  # no copy anywhere in FLANK_HOME
    published = [p for p in _site_files(flank_home) if p.name == "table.csv"]
    assert published, "the real kept file is still published (run page and latest/)"
    assert stat.S_IMODE(kept.stat().st_mode) == kept_mode  # publishing changed no source file's mode
