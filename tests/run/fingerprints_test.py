"""The content hash cache and the fingerprint rules (issue 12), on real files."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from flank_ops.run import fingerprints as fpr


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
