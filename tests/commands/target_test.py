"""PROJECT PIPELINE / --local PIPELINE: one reading of the target words for run, plan, logs and cancel."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.cli import run_flank

VERBS = {"run": "", "plan": "", "logs": " [RUN] [TASK]", "cancel": " [RUN_ID]"}


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_a_missing_pipeline_or_extra_words_get_the_same_answer_from_every_command(
    verb: str, flank_home: Path, tmp_path: Path
) -> None:
    usage = f"usage: flank {verb} PROJECT PIPELINE{VERBS[verb]}  (or: flank {verb} --local PIPELINE{VERBS[verb]})"
    extra = {"run": ["7"], "plan": ["7"], "logs": ["7", "model", "more"], "cancel": ["7", "more"]}[verb]
    cases = [
        ([verb, "demo"], "which pipeline?"),
        ([verb, "--local"], "which pipeline?"),
        ([verb, "demo", "nightly", *extra], f"unexpected {' '.join(extra[-1:])!r}"),
    ]
    for argv, message in cases:
        proc = run_flank(*argv, cwd=tmp_path)
        assert proc.returncode == 1, (argv, proc.stderr)
        assert proc.stderr.splitlines()[0].endswith(message), (argv, proc.stderr)
        assert usage in proc.stderr and "Traceback" not in proc.stderr, (argv, proc.stderr)


def test_through_flank_remote_the_usage_is_the_laptops(flank_home: Path, tmp_path: Path) -> None:
    """`flank remote cancel nightly abc` runs `flank cancel demo nightly abc` on the VM with FLANK_REMOTE set
    (remote/ssh.py): the usage it prints back must be the one the laptop types."""
    proc = run_flank("cancel", "demo", "nightly", "abc", cwd=tmp_path, env={"FLANK_REMOTE": "flank"})
    assert proc.returncode == 1 and "'abc' is not a run id" in proc.stderr, proc.stderr
    assert "usage: flank remote cancel PIPELINE [RUN_ID]" in proc.stderr and "PROJECT" not in proc.stderr
