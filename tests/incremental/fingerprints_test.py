"""The content hash cache and the fingerprint rules (issue 12), on real files."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from flank_ops.incremental import fingerprints as fpr


def aged(path: Path, seconds: float = 10.0) -> os.stat_result:
    """Give the file an mtime in the past (out of the racy window), as a file saved a while ago has."""
    then = time.time_ns() - int(seconds * 1e9)
    os.utime(path, ns=(then, then))
    return path.stat()


def test_an_unchanged_file_is_not_read_again_and_a_changed_one_is(tmp_path: Path) -> None:
    data = tmp_path / "big.csv"
    data.write_bytes(b"a,b\n1,2\n")
    st = aged(data)
    cache_file = tmp_path / "hash-cache.tsv"
    cache = fpr.HashCache(cache_file)
    first = cache.digest(str(data), "big.csv")
    cache.save()
    assert str(data.resolve()) in cache_file.read_text()  # plain text, readable with cat
    # same size, mtime and inode but other bytes: the cache answers, so the file was not read
    data.write_bytes(b"a,b\n9,9\n")
    os.utime(data, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert fpr.HashCache(cache_file).digest(str(data), "big.csv") == first
    # a real change (a new mtime): read and hashed again
    aged(data, 5)
    assert fpr.HashCache(cache_file).digest(str(data), "big.csv") != first


def test_a_file_just_written_is_hashed_but_not_cached(tmp_path: Path) -> None:
    data = tmp_path / "fresh.txt"
    data.write_text("x")
    cache = fpr.HashCache(tmp_path / "cache.tsv")
    cache.digest(str(data), "fresh.txt")
    cache.save()
    assert not (tmp_path / "cache.tsv").exists()


def test_one_entry_for_a_persisted_file_seen_through_two_releases(tmp_path: Path) -> None:
    persist = tmp_path / "persist" / "data"
    persist.mkdir(parents=True)
    (persist / "x.parquet").write_bytes(b"p" * 1000)
    aged(persist / "x.parquet")
    for release in ("r1", "r2"):
        (tmp_path / release).mkdir()
        (tmp_path / release / "data").symlink_to(persist)
    cache = fpr.HashCache(tmp_path / "cache.tsv")
    one = cache.digest(str(tmp_path / "r1" / "data" / "x.parquet"), "data/x.parquet")
    two = cache.digest(str(tmp_path / "r2" / "data" / "x.parquet"), "data/x.parquet")
    cache.save()
    assert one == two and len((tmp_path / "cache.tsv").read_text().splitlines()) == 1


def test_directories_and_missing_files_are_said(tmp_path: Path) -> None:
    cache = fpr.HashCache(tmp_path / "cache.tsv")
    (tmp_path / "R").mkdir()
    with pytest.raises(fpr.FingerprintError, match="input R is a directory; list its files instead"):
        cache.digest(str(tmp_path / "R"), "input R")
    with pytest.raises(fpr.FingerprintError, match="input gone.csv does not exist"):
        cache.digest(str(tmp_path / "gone.csv"), "input gone.csv")


def test_scripts_named_in_the_command_count_as_inputs(tmp_path: Path) -> None:
    (tmp_path / "R").mkdir()
    (tmp_path / "R" / "model.R").write_text("1")
    (tmp_path / "lib.sh").write_text("true")
    found = fpr.command_scripts(
        "source lib.sh && Rscript R/model.R --seed=3 missing.R | tee -a log.txt", None, str(tmp_path)
    )
    assert found == ["lib.sh", "R/model.R"]
    assert fpr.command_scripts("Rscript model.R", "R", str(tmp_path)) == ["R/model.R"]


def test_files_named_anywhere_in_the_command_count_and_what_it_writes_does_not(tmp_path: Path) -> None:
    """issue 19 friction 4: not just the first argument."""
    for name in ("R/run_step.R", "R/05_PCA_model.R", "conf.yml", "py/jobs/nightly.py", "report.Rmd", "log.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("1")

    def found(command: str) -> list[str]:
        return fpr.command_scripts(command, None, str(tmp_path))

    # an argument of a runner script, found beside that script
    assert found("Rscript R/run_step.R 05_PCA_model.R") == ["R/run_step.R", "R/05_PCA_model.R"]
    assert found("CONFIG=conf.yml python -m py.jobs.nightly --config=conf.yml") == ["conf.yml", "py/jobs/nightly.py"]
    assert found("""Rscript -e "rmarkdown::render('report.Rmd')" """) == ["report.Rmd"]
    # written by the command: an output, never an input
    assert found("Rscript R/run_step.R > log.txt 2>&1") == ["R/run_step.R"]
    assert found("Rscript R/run_step.R >>log.txt") == ["R/run_step.R"]
    assert found("Rscript R/run_step.R | tee -a log.txt; cat conf.yml") == ["R/run_step.R", "conf.yml"]
    assert found("sort conf.yml -o log.txt") == ["conf.yml"]


def test_what_a_script_sources_or_imports_counts_one_level(tmp_path: Path) -> None:
    """issue 28 item 10: R source()/sys.source() and Python imports of the repo's own files, literal names."""
    from flank_ops.incremental import script_refs

    files = {
        "R/model.R": (
            'source("R/helpers.R")\n'
            "sys.source('R/consts.R', envir = e)\n"
            '# source("R/commented.R")\n'
            'source(file = "beside.R")\n'
            "source(file.path('R', name))\n"
            'source("https://example.org/x.R")\n'
        ),
        "R/helpers.R": 'source("R/deeper.R")\n',
        "R/consts.R": "k <- 1\n",
        "R/beside.R": "b <- 1\n",
        "R/commented.R": "c <- 1\n",
        "R/deeper.R": "d <- 1\n",
        "py/summarise.py": (
            "import os, common\nfrom data_reader import load\nimport pkg.stats as st\nfrom pkg import plots\n"
            "import pandas as pd\nfrom . import rel\n"
        ),
        "py/common.py": "import deeper\n",
        "py/deeper.py": "",
        "py/data_reader.py": "",
        "py/pkg/__init__.py": "",
        "py/pkg/stats.py": "",
        "py/pkg/plots.py": "",
        "py/rel.py": "",
        "py/broken.py": "import (\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)

    def refs(script: str) -> list[str]:
        return script_refs.referenced_files(str(tmp_path), script, None, f"digest of {script}")

    assert refs("R/model.R") == ["R/helpers.R", "R/consts.R", "R/beside.R"]
    assert refs("py/summarise.py") == [
        "py/common.py",
        "py/data_reader.py",
        "py/pkg/__init__.py",
        "py/pkg/stats.py",
        "py/pkg/plots.py",
        "py/rel.py",
    ]
    assert refs("py/broken.py") == []

    # through the fingerprint: one level, and not with auto_inputs: false
    task = fpr.TaskFiles("t", str(tmp_path), None, "Rscript R/model.R && python py/summarise.py", {}, (), (), {})
    cache = fpr.HashCache(tmp_path / "cache.tsv")
    inputs = fpr.fingerprint(task, cache)["inputs"]
    assert sorted(inputs) == sorted(["R/model.R", "py/summarise.py", *refs("R/model.R"), *refs("py/summarise.py")])
    assert "R/deeper.R" not in inputs and "py/deeper.py" not in inputs
    scripts_only = fpr.fingerprint(task._replace(auto=("scripts",)), cache)["inputs"]
    assert sorted(scripts_only) == ["R/model.R", "py/summarise.py"]
    assert fpr.fingerprint(task._replace(auto=()), cache)["inputs"] == {}
    sources_only = fpr.fingerprint(task._replace(auto=("sources",)), cache)["inputs"]
    assert sorted(sources_only) == sorted([*refs("R/model.R"), *refs("py/summarise.py")])


def test_the_setup_build_is_an_input_unless_the_task_opts_out() -> None:
    """issue 28 item 1: the why names the key before and after."""
    base = {"command": "c", "dir": None, "env": {}, "inputs": {}, "upstream": {}}
    old = {"format": fpr.FORMAT, "hash": fpr.HASH_NAME, **base, "setup": "3f2a1c0d9e8f7a6b-1701"}
    assert fpr.own_change(old, {**base, "setup": "3f2a1c0d9e8f7a6b-1701"}) is None
    assert (
        fpr.own_change(old, {**base, "setup": "9b1e0d2c3b4a5f6e-1702"})
        == "ran: environment changed (setup key 3f2a1c0… → 9b1e0d2…)"
    )
    assert (
        fpr.own_change(old, {**base, "setup": "3f2a1c0d9e8f7a6b-1799"})
        == "ran: environment changed (setup key 3f2a1c0… rebuilt)"
    )
    assert fpr.own_change(old, {**base, "setup": None}) == "ran: environment changed (setup key 3f2a1c0… → none)"
    assert fpr.own_change(old, base) is None  # auto_inputs without setup: not compared
    # a state recorded before the environment counted: one run records it; without setup: nothing
    before = {k: v for k, v in old.items() if k != "setup"}
    assert (
        fpr.own_change(before, {**base, "setup": "9b1e0d2c3b4a5f6e-1702"})
        == "ran: environment changed (setup key unrecorded → 9b1e0d2…)"
    )
    assert fpr.own_change(before, {**base, "setup": None}) is None
