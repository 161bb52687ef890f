"""The docs cannot go stale: generated references match the code, every flank.yml example validates,
the README stays short, and `--help` points at the reference."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from flank_ops import reference
from helpers.cli import REPO_ROOT, run_flank
from helpers.repos import git, make_repo

DOCS = REPO_ROOT / "docs"
README = REPO_ROOT / "README.md"
PAGES = [README, *sorted(DOCS.rglob("*.md"))]


@pytest.mark.parametrize("name", sorted(reference.PAGES))
def test_each_generated_reference_page_matches_the_code(name: str) -> None:
    committed = (DOCS / "reference" / name).read_text(encoding="utf-8")
    assert committed == reference.PAGES[name](), f"docs/reference/{name} is out of date: run `make docs`"


def _yaml_blocks() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for m in re.finditer(r"^```yaml[^\n]*\n(.*?)^```", text, flags=re.S | re.M):
            line = text[: m.start()].count("\n") + 1
            found.append((f"{page.relative_to(REPO_ROOT)}:{line}", m.group(1)))
    return found


PROJECT_KEYS = {"setup", "persist", "env", "slurm", "pipelines"}


def as_flank_yml(snippet: str) -> dict:
    """A whole flank.yml from a snippet: a fragment of project keys gets a pipeline, a fragment of tasks is
    put in one, and tasks it `needs:` but does not show are added as plain commands."""
    data = yaml.safe_load(_dedent(snippet)) or {}
    if "pipelines" not in data and not set(data) <= PROJECT_KEYS:
        data = {"pipelines": {"p": {"tasks": data}}}
    data.setdefault("pipelines", {"p": {"tasks": {"t": "true"}}})
    for pipeline in data["pipelines"].values():
        tasks = pipeline["tasks"]
        named = {
            n.split("[")[0] for t in tasks.values() if isinstance(t, dict) for n in _as_list(t.get("needs"))
        }  # model[x=1]: model
        for name in named - set(tasks):
            tasks[name] = "true"
    return data


def _as_list(value: object) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])  # type: ignore[call-overload]


def _dedent(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    indent = min((len(line) - len(line.lstrip()) for line in lines), default=0)
    return "\n".join(line[indent:] for line in text.splitlines())


BLOCKS = _yaml_blocks()


def test_the_docs_have_flank_yml_examples() -> None:
    assert len(BLOCKS) >= 8


@pytest.mark.parametrize("where,snippet", BLOCKS, ids=[w for w, _ in BLOCKS])
def test_every_flank_yml_example_validates(where: str, snippet: str, tmp_path: Path) -> None:
    target = tmp_path / "flank.yml"
    target.write_text(yaml.safe_dump(as_flank_yml(snippet), sort_keys=False), encoding="utf-8")
    proc = run_flank("validate", str(target))
    assert proc.returncode == 0, f"{where}: the example does not validate:\n{proc.stdout}{proc.stderr}"


def test_the_readme_is_short_and_leads_with_the_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250
    head = "\n".join(text.splitlines()[:8])
    assert "make demo" in head and "make test" in head


def test_help_ends_with_the_reference_page(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLANK_DOCS_URL", "https://docs.example/flank/")
    top = run_flank("--help")
    assert top.stdout.rstrip().endswith("docs: https://docs.example/flank/index.md")
    run_help = run_flank("run", "--help")
    assert run_help.stdout.rstrip().endswith("docs: https://docs.example/flank/reference/commands.md#flank-run")
    assert "## flank run" in (DOCS / "reference" / "commands.md").read_text(encoding="utf-8")


def _quickstart() -> str:
    text = README.read_text(encoding="utf-8")
    start, end = text.index("[start:quickstart]"), text.index("[end:quickstart]")
    return text[start:end]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("Rscript") is None, reason="Rscript is not installed (apt-get install r-base-core)")
def test_the_quick_start_works_as_written(tmp_path: Path, flank_home: Path) -> None:
    """The README's quick start, run as a reader would (the push goes to a local path instead of over ssh)."""
    quick = _quickstart()
    flank_yml = re.search(r"```yaml\n(.*?)```", quick, flags=re.S)
    assert flank_yml is not None
    flank_home.mkdir(parents=True)
    (flank_home / "flank.toml").write_text("[schedule]\ninstall_crontab = false\n")
    assert "flank init myproj" in quick
    run_flank("init", "myproj", check=True)
    scripts = {
        "flank.yml": flank_yml.group(1),
        "R/extract.R": 'dir.create("data", showWarnings = FALSE); writeLines("1,2,3", "data/raw.csv")\n',
        "R/model.R": 'dir.create("results", showWarnings = FALSE); saveRDS(lm(dist ~ speed, cars), "results/model.rds")\n',
        "py/report.py": 'open("results/report.html", "w").write("<h1>report</h1>")\n',
    }
    clone = make_repo(tmp_path / "myproj", scripts, message="first pipeline")
    assert "git push flank main" in quick and "git remote add flank" in quick
    git("remote", "add", "flank", str(flank_home / "myproj.git"), cwd=clone)
    pushed = git("push", "flank", "main", cwd=clone)
    assert "flank.yml OK — 1 pipeline, 3 tasks" in pushed.stderr
    assert "nightly" in pushed.stderr and "Europe/London" in pushed.stderr

    run = run_flank("run", "myproj", "nightly")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "git fetch flank refs/notes/flank:refs/notes/flank" in quick
    git("fetch", "flank", "refs/notes/flank:refs/notes/flank", cwd=clone)
    note = git("log", "--notes=flank", "-1", cwd=clone).stdout
    assert "nightly #1 success" in note
