"""The FLANK_HOME layout: one name, one file — locks of different pipelines never share a file."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

from flank_ops.config.load import NAME_RE
from flank_ops.paths import Home

PIPELINE_LOCKS = ("run", "run-id", "reconcile")  # per-pipeline locks the runner and records take
PROJECT_LOCKS = ("deploy", "notes", "s3", "secrets")  # project-wide ones


def _pipeline_names() -> list[str]:
    """Names built to collide when joined with '-' (foo / id-foo / run-id-foo ...), plus random ones."""
    parts = ["foo", "id", "run", "run-id", "reconcile", "id-foo", "-", "_", "lock", "a"]
    names = {"".join(p) for n in (1, 2, 3) for p in itertools.product(parts, repeat=n)}
    rng = random.Random(10)
    names |= {"".join(rng.choice("adinru-_") for _ in range(rng.randint(1, 12))) for _ in range(3000)}
    return sorted(n for n in names if NAME_RE.match(n))


def test_lock_files_are_one_per_kind_and_pipeline(flank_home: Path) -> None:
    paths = Home().project("demo")
    names = _pipeline_names()
    assert {"foo", "id-foo", "run-id-foo"} <= set(names)
    locks = [(kind, None) for kind in PROJECT_LOCKS] + [(kind, p) for kind in PIPELINE_LOCKS for p in names]
    files = {paths.lock_file(kind, pipeline) for kind, pipeline in locks}
    assert len(files) == len(locks)  # no two (kind, pipeline) pairs share a lock file
    assert all(f.is_relative_to(paths.locks_dir) for f in files)
