"""incremental/up_to_date.py: the last all-up-to-date decision is reused only while nothing it
read has changed (issue 22: a no-change run skips the per-task checks).

Each test runs a real working copy once with the real CLI, ages every file out of the racy
window (as files saved a while ago are), lets decide() keep its answer, then changes one thing
the way a user would and asks again: the task it touches must run, for the same reason the full
decision gives. decide() is called in-process so that a test can also see that an unchanged
project is answered without fingerprinting a single task.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flank_ops.incremental import fingerprints as fpr
from flank_ops.incremental import plan
from flank_ops.run.runner import resolve_deployed
from helpers.cli import run_flank
from helpers.repos import age

FLANK_YML = """\
pipelines:
  p:
    tasks:
      copy:
        run: cat in/a.txt > out/a.txt
        inputs: [in/a.txt]
        outputs: [out/a.txt]
      tables:
        run: cat data/*.csv > out/all.csv
        inputs: ["data/*.csv"]
        outputs: [out/all.csv]
      job:
        run: python3 scripts/job.py > out/job.txt
        outputs: [out/job.txt]
      report:
        run: cat out/a.txt out/all.csv > out/report.txt
        needs: [copy, tables]
        outputs: [out/report.txt]
"""

JOB = """\
try:
    import helpers  # noqa: F401 - not there yet: a later save adds it
except ImportError:
    pass
print("job")
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "proj"
    for folder in ("in", "data", "scripts", "out"):
        (repo / folder).mkdir(parents=True)
    (repo / "flank.yml").write_text(FLANK_YML)
    (repo / "in" / "a.txt").write_text("a\n")
    (repo / "data" / "x.csv").write_text("x\n")
    (repo / "scripts" / "job.py").write_text(JOB)
    run_flank("run", "--local", "p", cwd=repo, check=True)
    age(repo)
    return repo


class Counted:
    def __init__(self) -> None:
        self.fingerprints = 0


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counted]:
    """How many tasks decide() fingerprints."""
    seen = Counted()
    real = fpr.fingerprint

    def counting(files: fpr.TaskFiles, cache: fpr.HashCache) -> dict[str, object]:
        seen.fingerprints += 1
        return real(files, cache)

    monkeypatch.setattr(fpr, "fingerprint", counting)
    yield seen


def decide(repo: Path, **params: str) -> dict[str, tuple[str, str]]:
    deployed = resolve_deployed(None, repo)
    pipeline = deployed.config.pipelines["p"]
    env = {f"FLANK_PARAM_{k.upper()}": v for k, v in params.items()} if params else None
    decisions = plan.decide(
        deployed.paths, pipeline, deployed.config, deployed.release_dir, list(pipeline.tasks), params_env=env
    )
    return {name: (d.action, d.reason) for name, d in decisions.items()}


ALL_UP_TO_DATE = {name: (plan.UP_TO_DATE, plan.UP_TO_DATE) for name in ("copy", "tables", "job", "report")}


def kept(repo: Path) -> Path:
    return repo / ".flank" / "fingerprints" / ".up-to-date" / "p.json"


def test_an_unchanged_project_is_answered_without_fingerprinting_a_task(repo: Path, counted: Counted) -> None:
    assert decide(repo) == ALL_UP_TO_DATE  # in full: 4 tasks fingerprinted, the answer kept
    assert counted.fingerprints == 4 and kept(repo).is_file()
    assert decide(repo) == ALL_UP_TO_DATE
    assert counted.fingerprints == 4  # the second answer read no task's files


@pytest.mark.parametrize(
    ("change", "task", "reason"),
    [
        # an input's bytes (another size)
        (lambda r: (r / "in" / "a.txt").write_text("a, edited\n"), "copy", "ran: in/a.txt changed"),
        # an input saved again with the same size and other bytes: its mtime tells
        (lambda r: (r / "in" / "a.txt").write_text("b\n"), "copy", "ran: in/a.txt changed"),
        # a new file a glob matches
        (lambda r: (r / "data" / "y.csv").write_text("y\n"), "tables", "ran: data/y.csv changed"),
        # a module the script imports, created: its folder's listing tells
        (lambda r: (r / "scripts" / "helpers.py").write_text("X = 1\n"), "job", "ran: scripts/helpers.py changed"),
        # an output edited by hand
        (
            lambda r: (r / "out" / "job.txt").write_text("by hand\n"),
            "job",
            "ran: output out/job.txt changed since its last success",
        ),
        # an output deleted
        (lambda r: (r / "out" / "all.csv").unlink(), "tables", "ran: outputs missing (out/all.csv)"),
        # the command in flank.yml
        (
            lambda r: (r / "flank.yml").write_text(FLANK_YML.replace("> out/job.txt", ">out/job.txt")),
            "job",
            "ran: command changed",
        ),
    ],
    ids=["input", "input-same-size", "glob", "import", "output-edited", "output-deleted", "command"],
)
def test_a_change_is_seen_after_an_all_up_to_date_answer_was_kept(
    repo: Path, change: object, task: str, reason: str
) -> None:
    assert decide(repo) == ALL_UP_TO_DATE and kept(repo).is_file()
    change(repo)  # type: ignore[operator]
    age(repo, 5)  # out of the racy window too, and unlike the kept stats
    decided = decide(repo)
    assert decided[task] == (plan.RUN, reason)


def test_a_task_that_ran_since_is_seen_through_its_state_file(repo: Path) -> None:
    assert decide(repo) == ALL_UP_TO_DATE and kept(repo).is_file()
    (repo / "in" / "a.txt").write_text("a, edited\n")
    run_flank("run", "--local", "p", "--task", "copy", cwd=repo, check=True)  # copy alone: its state rewritten
    age(repo, 5)
    # report's own files are as kept, but its upstream copy wrote something else since
    assert decide(repo)["report"] == (plan.RUN, "ran: upstream copy changed out/a.txt")


def test_other_parameters_are_another_question(repo: Path, counted: Counted) -> None:
    assert decide(repo) == ALL_UP_TO_DATE and kept(repo).is_file()
    before = counted.fingerprints
    decide(repo, day="2026-12-06")
    assert counted.fingerprints == before + 4  # decided in full, not answered from the kept one


def test_an_answer_that_read_a_file_saved_just_now_is_not_kept(repo: Path, counted: Counted) -> None:
    (repo / "in" / "a.txt").write_text("a\n")  # same bytes, saved now: its stat cannot be trusted yet
    assert decide(repo) == ALL_UP_TO_DATE
    assert not kept(repo).exists()
    assert decide(repo) == ALL_UP_TO_DATE
    assert counted.fingerprints == 8  # both decided in full


def test_what_plan_prints_for_a_kept_answer_and_after_a_change(repo: Path) -> None:
    first = run_flank("plan", "--local", "p", cwd=repo, check=True).stdout
    assert kept(repo).is_file()
    assert run_flank("plan", "--local", "p", cwd=repo, check=True).stdout == first
    (repo / "data" / "y.csv").write_text("y\n")
    age(repo, 5)
    after = run_flank("plan", "--local", "p", cwd=repo, check=True).stdout
    assert "data/y.csv changed" in after and after != first


def test_the_question_changes_with_everything_a_fingerprint_is_made_of_but_files() -> None:
    from flank_ops.incremental import up_to_date

    base = fpr.TaskFiles("t", "/r", None, "make x", {"A": "1"}, ("in",), ("out",), {}, setup="k1-1")
    variants = [
        base._replace(setup="k2-1"),  # a package bump: another setup build
        base._replace(env={"A": "2"}),  # an env value or a parameter (their digests)
        base._replace(command="make y"),
        base._replace(inputs=("in", "more")),
        base._replace(upstream={"u": (None, ("u.txt",))}),
        base._replace(release_dir="/r2"),
    ]
    key = up_to_date.question(plan, ["t"], [base])
    assert key == up_to_date.question(plan, ["t"], [base])
    assert len({key, *(up_to_date.question(plan, ["t"], [v]) for v in variants)}) == 1 + len(variants)
