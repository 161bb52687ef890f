"""`git push flank main` through the real hooks: what is accepted, what is refused, what the user reads."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from helpers.cli import run_flank
from helpers.pushing import SIMPLE_FLANK_YML, flank_lines, head, new_project, push
from helpers.repos import commit_all, git, write_files


@pytest.mark.slow
def test_first_push_deploys_and_says_so_briefly(tmp_path: Path) -> None:
    project = new_project(
        tmp_path, {"flank.yml": SIMPLE_FLANK_YML, "R/extract.R": "cat('hi')\n"}, message="fix model formula"
    )
    sha = head(project.wc)

    proc = push(project)

    assert proc.returncode == 0, proc.stderr
    lines = flank_lines(proc)
    assert lines[:3] == [
        "flank: flank.yml OK — 1 pipeline, 2 tasks",
        f'flank: deployed {sha[:7]} "fix model formula"',
        "flank: nightly  not scheduled",
    ], proc.stderr
    assert project.current_sha() == sha
    assert (project.current / "R" / "extract.R").read_text() == "cat('hi')\n"
    [entry] = project.deploys()
    assert entry["status"] == "accepted"
    assert entry["sha"] == sha and entry["short"] == sha[:7]
    assert entry["message"] == "fix model formula" and entry["author"] == "Ada Analyst"
    assert entry["ref"] == "refs/heads/main" and entry["pipelines"] == ["nightly"]
    assert not (project.dir / ".validated").exists() or not list((project.dir / ".validated").iterdir())


@pytest.mark.slow
def test_without_site_url_the_push_says_how_to_open_the_site(tmp_path: Path) -> None:
    # Nothing serves 127.0.0.1 on the pusher's laptop: say how to serve it and reach it over ssh.
    project = new_project(tmp_path)
    proc = push(project, env={"SSH_CONNECTION": "192.0.2.7 50222 198.51.100.4 22", "USER": "ada"})
    lines = flank_lines(proc)
    at = lines.index(
        f"flank: status site: run `flank serve` on the VM (or set site_url in {project.home}/flank.toml), then"
    )
    assert lines[at + 1] == (
        "flank:   from your laptop: ssh -L 8083:127.0.0.1:8083 ada@198.51.100.4 and open http://127.0.0.1:8083/proj/"
    )
    assert not [line for line in lines if line.startswith("flank: status site http")]


def test_next_run_in_push_output_names_the_zone() -> None:
    from flank_ops.config.load import load_config
    from flank_ops.deploy.deploy import schedule_lines

    config = load_config(
        b'pipelines:\n  nightly:\n    schedule: "0 2 * * *"\n    timezone: Asia/Tokyo\n    tasks: {a: echo a}\n',
        "flank.yml",
    )
    [line] = schedule_lines(config)
    assert re.fullmatch(r"nightly  0 2 \* \* \* \(Asia/Tokyo\) — next run \w{3} \d{2} \w{3} 02:00 JST", line), line


@pytest.mark.slow
def test_site_url_comes_from_flank_toml(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    (project.home / "flank.toml").write_text('site_url = "http://vm.example:8083"\n')
    proc = push(project)
    assert "flank: status site http://vm.example:8083/proj/" in flank_lines(proc)


@pytest.mark.slow
def test_invalid_flank_yml_is_refused_and_the_previous_deploy_stays(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    assert push(project).returncode == 0
    good = head(project.wc)
    write_files(project.wc, {"flank.yml": "pipeline:\n  nightly:\n    tasks: {a: echo a}\n"})
    bad = commit_all(project.wc, "typo")

    proc = push(project)

    assert proc.returncode != 0
    text = "\n".join(flank_lines(proc))
    assert "push refused" in text and "nothing was deployed" in text
    assert "flank.yml" in text
    assert "Traceback" not in proc.stderr
    assert project.remote_sha() == good  # git kept the old branch tip
    assert project.current_sha() == good
    assert project.releases() == [good]
    rejected = project.deploys()[-1]
    assert rejected["status"] == "rejected" and rejected["sha"] == bad
    assert rejected["message"] == "typo" and rejected["errors"]


@pytest.mark.slow
def test_yaml_syntax_error_is_refused_with_a_message(tmp_path: Path) -> None:
    project = new_project(tmp_path, {"flank.yml": "pipelines: [unclosed\n"})
    proc = push(project)
    assert proc.returncode != 0
    assert "flank.yml" in "\n".join(flank_lines(proc))
    assert "Traceback" not in proc.stderr
    assert project.current_sha() is None and project.remote_sha() is None


@pytest.mark.slow
def test_binary_flank_yml_is_refused(tmp_path: Path) -> None:
    project = new_project(tmp_path, {"README.md": "x\n"})
    (project.wc / "flank.yml").write_bytes(b"\x00\xff\xfe binary \x00" * 50)
    commit_all(project.wc, "binary")
    proc = push(project)
    assert proc.returncode != 0
    assert "flank.yml" in "\n".join(flank_lines(proc))
    assert "Traceback" not in proc.stderr
    assert project.current_sha() is None


@pytest.mark.slow
def test_huge_flank_yml_is_refused_without_reading_it(tmp_path: Path) -> None:
    project = new_project(tmp_path, {"flank.yml": SIMPLE_FLANK_YML + "#" + "x" * (3 * 1024 * 1024) + "\n"})
    proc = push(project)
    assert proc.returncode != 0
    # the words of `flank validate` for the same file
    assert refusal(proc) == [
        "flank.yml: is 3.0 MB; flank reads at most 1 MB (flank.yml describes pipelines; keep data out of it)"
    ]
    assert project.deploys()[-1]["status"] == "rejected"


@pytest.mark.slow
def test_no_flank_yml_is_refused_with_how_to_add_one(tmp_path: Path) -> None:
    project = new_project(tmp_path, {"R/extract.R": "1\n"})
    proc = push(project)
    assert proc.returncode != 0
    text = "\n".join(flank_lines(proc))
    assert "no flank.yml in the pushed commit" in text
    assert "git add flank.yml" in text
    assert project.remote_sha() is None


@pytest.mark.slow
def test_other_branches_are_stored_not_deployed(tmp_path: Path) -> None:
    project = new_project(tmp_path, {"notes.txt": "no flank.yml needed off the deploy branch\n"})
    proc = push(project, "main:dev")
    assert proc.returncode == 0, proc.stderr
    assert "flank: branch 'dev' stored, not deployed (this VM deploys 'main')" in flank_lines(proc)
    assert project.remote_sha("refs/heads/dev") == head(project.wc)
    assert project.current_sha() is None and project.deploys() == []


@pytest.mark.slow
def test_init_branch_changes_what_is_deployed(tmp_path: Path) -> None:
    project = new_project(tmp_path, init_args=("--branch", "prod"))
    proc = push(project, "main")
    assert proc.returncode == 0 and project.current_sha() is None
    assert "flank: branch 'main' stored, not deployed (this VM deploys 'prod')" in flank_lines(proc)
    proc = push(project, "main:prod")
    assert proc.returncode == 0, proc.stderr
    assert project.current_sha() == head(project.wc)


@pytest.mark.slow
def test_deleting_the_deploy_branch_is_refused(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    assert push(project).returncode == 0
    proc = push(project, ":main")
    assert proc.returncode != 0
    assert "the deploy branch 'main' cannot be deleted" in "\n".join(flank_lines(proc))
    assert project.remote_sha() == head(project.wc)


@pytest.mark.slow
def test_pushing_the_notes_ref_is_refused(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    git("notes", "--ref", "refs/notes/flank", "add", "-m", "forged run line", "HEAD", cwd=project.wc)
    proc = push(project, "refs/notes/flank")
    assert proc.returncode != 0
    assert "refs/notes/flank is written by flank on the VM" in "\n".join(flank_lines(proc))
    assert project.remote_sha("refs/notes/flank") is None


@pytest.mark.slow
def test_a_tracked_persist_dir_is_accepted_and_synced(tmp_path: Path) -> None:
    """issue 11: a persisted folder holding tracked files is an overlay, no longer refused."""
    project = new_project(tmp_path, {"flank.yml": SIMPLE_FLANK_YML, "data/raw.csv": "a,b\n"})
    proc = push(project)
    assert proc.returncode == 0, proc.stderr
    assert "persist: data: 1 tracked file synced into persist/data (1 new or changed, 0 removed)" in (
        "\n".join(flank_lines(proc))
    )


def refusal(proc) -> list[str]:
    """The problems a refused push lists, one per line, as `flank validate` prints them."""
    lines = flank_lines(proc)
    start = next(i for i, line in enumerate(lines) if line.startswith("flank: push refused"))
    return [line.strip() for line in lines[start + 1 :]]


@pytest.mark.slow
def test_validate_in_a_work_tree_refuses_what_the_push_refuses(tmp_path: Path) -> None:
    project = new_project(tmp_path, {"flank.yml": SIMPLE_FLANK_YML, "data": "a,b\n"})
    proc = push(project)
    assert proc.returncode != 0
    assert refusal(proc) == [
        "flank.yml:1:11: persist: 'data' is a file in the repo, not a folder (persist: names folders; "
        "drop it from persist:)"
    ]
    validate = run_flank("validate", cwd=project.wc)
    assert validate.returncode == 1
    assert validate.stderr.splitlines() == refusal(proc)


@pytest.mark.slow
def test_a_symlinked_flank_yml_is_refused_by_the_push_and_by_validate(tmp_path: Path) -> None:
    # The review's attack: the link's own text is valid YAML (a comment hides the path), while
    # following the link reads a file outside the repo that nobody validated.
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "real.yml").write_text("pipelines:\n  p:\n    tasks:\n      evil: touch pwned\n")
    decoy = "pipelines: {p: {tasks: {a: echo ok}}} #"
    project = new_project(tmp_path, {f"{decoy}/keep": "x\n"})
    os.symlink(decoy + "/" + "../" * 40 + str(outside / "real.yml").lstrip("/"), project.wc / "flank.yml")
    assert "evil" in (project.wc / "flank.yml").read_text()
    commit_all(project.wc, "flank.yml as a link")

    proc = push(project)

    assert proc.returncode != 0
    expected = (
        "flank.yml: is a symlink; flank reads only a flank.yml committed as a regular file "
        "(commit the file itself in place of the link)"
    )
    assert refusal(proc) == [expected]
    assert project.remote_sha() is None and project.current_sha() is None
    validate = run_flank("validate", cwd=project.wc)
    assert (validate.returncode, validate.stderr) == (1, expected + "\n")


@pytest.mark.slow
def test_dir_and_persist_leaving_the_repo_through_a_symlink_are_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    flank_yml = (
        "persist: [sym/data, gone/data, via/data]\n"
        "pipelines:\n"
        "  nightly:\n"
        "    tasks:\n"
        "      root: {run: pwd, dir: sub}\n"
        "      fine: {run: pwd, dir: inside/deeper}\n"
        "      file: {run: pwd, dir: R/x.R}\n"
    )
    project = new_project(tmp_path, {"flank.yml": flank_yml, "R/x.R": "1\n", "R/deeper/y.R": "2\n"})
    os.symlink("/", project.wc / "sub")
    os.symlink(str(outside), project.wc / "sym")
    os.symlink("missing", project.wc / "gone")
    os.symlink("R", project.wc / "inside")
    os.symlink("R/../..", project.wc / "via")
    commit_all(project.wc, "links")

    proc = push(project)

    assert proc.returncode != 0
    assert refusal(proc) == [
        f"flank.yml:1:11: persist: 'sym/data' leads out of the repo: 'sym' is a symlink to {str(outside)!r} "
        "(point the symlink at a folder inside the repo, or drop it from persist:)",
        "flank.yml:1:21: persist: 'gone/data' goes through 'gone', a symlink to 'missing', which is not in the "
        "repo (commit what it points to, or remove the symlink)",
        "flank.yml:1:32: persist: 'via/data' leads out of the repo: 'via' is a symlink to 'R/../..' "
        "(point the symlink at a folder inside the repo, or drop it from persist:)",
        "flank.yml:5:29: dir: 'sub' leads out of the repo: 'sub' is a symlink to '/' "
        "(point the symlink at a folder inside the repo, or change dir:)",
        "flank.yml:7:29: dir: 'R/x.R' is a file in the repo, not a folder",
    ]
    assert not (outside / "data").exists()
    assert project.remote_sha() is None
    validate = run_flank("validate", cwd=project.wc)
    assert validate.returncode == 1
    assert validate.stderr.splitlines() == refusal(proc) + ["5 errors"]

    # Symlinks that stay inside the repo are fine.
    write_files(project.wc, {"flank.yml": "pipelines:\n  nightly:\n    tasks:\n      a: {run: pwd, dir: inside}\n"})
    commit_all(project.wc, "only inside")
    proc = push(project)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.slow
def test_an_unchanged_flank_yml_is_checked_again_against_the_pushed_files(tmp_path: Path) -> None:
    """issue 22: a push that leaves flank.yml as it is does not parse it again (the deployed release's
    config is reused), but its dir: and persist: paths are checked against this commit's files all
    the same, with the words of a full validation."""
    flank_yml = "persist: [data]\npipelines:\n  nightly:\n    tasks:\n      a: {run: pwd, dir: sub}\n"
    project = new_project(tmp_path, {"flank.yml": flank_yml, "sub/x.R": "1\n"})
    assert push(project).returncode == 0
    first = head(project.wc)
    git("rm", "-q", "-r", "sub", cwd=project.wc)
    os.symlink("/", project.wc / "sub")
    write_files(project.wc, {"data": "a,b\n"})
    commit_all(project.wc, "sub leads out, data is a file")

    proc = push(project)

    assert proc.returncode != 0
    assert refusal(proc) == [
        "flank.yml:1:11: persist: 'data' is a file in the repo, not a folder (persist: names folders; "
        "drop it from persist:)",
        "flank.yml:5:26: dir: 'sub' leads out of the repo: 'sub' is a symlink to '/' "
        "(point the symlink at a folder inside the repo, or change dir:)",
    ]
    assert project.current_sha() == first and project.remote_sha() == first
    git("rm", "-q", "sub", "data", cwd=project.wc)
    write_files(project.wc, {"sub/y.R": "2\n"})
    fixed = commit_all(project.wc, "fixed")
    proc = push(project)
    assert proc.returncode == 0, proc.stderr
    assert flank_lines(proc)[:2] == ["flank: flank.yml OK — 1 pipeline, 1 task", f'flank: deployed {fixed[:7]} "fixed"']


@pytest.mark.slow
def test_hostile_numbers_and_a_lone_surrogate_are_refused_with_line_and_column(tmp_path: Path) -> None:
    """issue 20 items 7-9: the push says what `flank validate` says, never `unexpected error`."""
    flank_yml = (
        "pipelines:\n"
        "  nightly:\n"
        "    concurrency: " + "9" * 5000 + "\n"
        "    tasks:\n"
        '      a: "echo \\ud800 ok"\n'
        "      b:\n"
        "        run: echo b\n"
        "        retries: 1\n"
        "        retry_delay: 100000000000000000000\n"
    )
    project = new_project(tmp_path, {"flank.yml": flank_yml})
    proc = push(project)
    assert proc.returncode != 0
    assert refusal(proc) == [
        "flank.yml:3:18: concurrency: must be at most 1024, got 99999999999999999999…(5000 characters)",
        "flank.yml:5:10: run: contains \\ud800, half of a UTF-16 pair, which is not a character "
        "(write the character itself in place of the escape)",
        "flank.yml:9:22: retry_delay: must be at most 30d, got '100000000000000000000'",
    ]
    assert project.remote_sha() is None
    validate = run_flank("validate", cwd=project.wc)
    assert validate.returncode == 1
    assert validate.stderr.splitlines() == refusal(proc) + ["3 errors"]
