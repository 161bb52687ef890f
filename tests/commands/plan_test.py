"""flank plan: what a run would do, one line per task, in a working copy (--local)."""

from __future__ import annotations

import re
from pathlib import Path

from helpers.cli import run_flank
from helpers.repos import make_repo

LONG_CELLS = """\
pipelines:
  nightly:
    tasks:
      prep: {run: echo prep > prep.txt, outputs: [prep.txt]}
      model:
        run: echo "$FLANK_MATRIX_REGION" > "model_$FLANK_MATRIX_REGION.txt"
        needs: [prep]
        matrix: {region: [north, south_and_the_islands_far_away]}
"""


def test_plan_lines_keep_one_column_for_long_matrix_cell_names(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "myproj", {"flank.yml": LONG_CELLS})
    proc = run_flank("plan", "--local", "nightly", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith("  ")]
    assert [line.split()[0] for line in lines] == [
        "prep",
        "model[region=north]",
        "model[region=south_and_the_islands_far_away]",
    ]
    # the decision starts in the same column on every line, after the longest name and a space
    columns = {re.match(r"  \S+ +", line).end() for line in lines}  # type: ignore[union-attr]
    assert len(columns) == 1, proc.stdout
