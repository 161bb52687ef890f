"""post-receive deploys: releases, `current`, persisted data, races, failures, push options."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from flank_ops.fileio import locked
from flank_ops.paths import Home
from helpers.cli import run_flank
from helpers.pushing import SIMPLE_FLANK_YML, Project, flank_lines, head, new_project, push
from helpers.repos import commit_all, git, write_files
from helpers.small_disk import mount_small_tmpfs
from helpers.waiting import wait_for

DEADLINE_S = 60.0


@pytest.mark.slow
def test_force_push_and_re_pushing_an_old_commit_deploy_it(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    assert push(project).returncode == 0
    first = head(project.wc)
    write_files(project.wc, {"R/model.R": "2\n"})
    second = commit_all(project.wc, "second")
    assert push(project).returncode == 0
    assert project.current_sha() == second

    # Back to the first commit: its release still exists and is reused.
    git("reset", "-q", "--hard", first, cwd=project.wc)
    proc = push(project, "--force", "main")

    assert proc.returncode == 0, proc.stderr
    assert f'flank: deployed {first[:7]} "first"' in flank_lines(proc)
    assert project.current_sha() == first
    assert project.releases() == sorted([first, second])
    assert not (project.current / "R" / "model.R").exists()
    assert [d["sha"] for d in project.deploys()] == [first, second, first]


@pytest.mark.slow
def test_persisted_data_is_linked_into_every_release_and_survives_deploys(tmp_path: Path) -> None:
    project = new_project(
        tmp_path,
        {
            "flank.yml": SIMPLE_FLANK_YML.replace("persist: [data]", "persist: [data, out/figures]"),
        },
    )
    assert push(project).returncode == 0
    (project.current / "data" / "raw.csv").write_text("a,b\n1,2\n")
    (project.current / "out" / "figures" / "plot.png").write_text("png")
    write_files(project.wc, {"R/new.R": "1\n"})
    second = commit_all(project.wc, "second")

    assert push(project).returncode == 0

    release = project.dir / "releases" / second
    assert os.path.islink(release / "data")
    assert (release / "data" / "raw.csv").read_text() == "a,b\n1,2\n"
    assert (release / "out" / "figures" / "plot.png").read_text() == "png"
    assert (project.dir / "persist" / "data" / "raw.csv").is_file()


@pytest.mark.slow
def test_concurrent_pushes_both_succeed_and_the_newest_commit_is_deployed(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    first = head(project.wc)
    # A second clone of the same history, one commit ahead.
    other = tmp_path / "wc-other"
    git("clone", "-q", str(project.wc), str(other), cwd=tmp_path)
    write_files(other, {"R/other.R": "1\n"})
    second = commit_all(other, "from the other clone")
    other_project = project._replace(wc=other)
    git("remote", "add", "flank", str(project.bare), cwd=other)

    # Hold the deploy lock so both pushes are inside post-receive at once.
    paths = Home(project.home).project(project.name)
    with locked(paths.lock_file("deploy")):
        a = start_push(project)
        wait_for(lambda: project.remote_sha() == first, "the first push to update main")
        b = start_push(other_project)
        wait_for(lambda: project.remote_sha() == second, "the second push to update main")
    out_a, out_b = a.communicate(timeout=DEADLINE_S), b.communicate(timeout=DEADLINE_S)

    assert a.returncode == 0, out_a
    assert b.returncode == 0, out_b
    assert project.current_sha() == second
    assert project.releases() == [second]  # each deploy takes the branch tip once it holds the lock
    accepted = [d["sha"] for d in project.deploys() if d["status"] == "accepted"]
    assert accepted == [second]
    assert project.remote_sha() == second


def start_push(project: Project, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("GIT_DIR")}, **(env or {})}
    return subprocess.Popen(
        ["git", "push", "flank", *(args or ("main",))],
        cwd=project.wc,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.mark.slow
def test_a_failed_deploy_leaves_the_previous_release_current_and_no_half_release(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    assert push(project).returncode == 0
    first = head(project.wc)
    write_files(project.wc, {"R/new.R": "1\n"})
    second = commit_all(project.wc, "second")
    # Running as root, a read-only or full FLANK_HOME cannot be simulated with chmod; a file
    # squatting on the release's path makes the final rename fail the same way a full disk would.
    (project.dir / "releases" / second).write_text("in the way")

    proc = push(project)

    text = "\n".join(flank_lines(proc))
    assert f"deploy of {second[:7]} failed" in text
    assert f"still deployed: {first[:7]}" in text
    assert project.current_sha() == first
    assert not [p for p in (project.dir / "releases").iterdir() if p.name.startswith(".")]
    assert project.deploys()[-1]["status"] == "failed"
    status = run_flank("status", "proj").stdout
    assert f"proj: branch at {second[:7]}, deployed {first[:7]} (deploy failed: " in status, status
    assert status.rstrip().endswith("— `flank deploy proj` retries)")


@pytest.mark.slow
def test_push_option_run_starts_the_pipeline_and_unknown_ones_are_named(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    proc = push(project, "-o", "run=nightly", "-o", "run=nope", "-o", "colour=blue", "main")
    assert proc.returncode == 0, proc.stderr
    lines = flank_lines(proc)
    # issue 19 friction 7: which run it started, and its page
    assert "flank: started nightly #1 — http://127.0.0.1:8083/proj/nightly/1/" in lines, lines
    assert "flank: -o run=nope: no pipeline 'nope' in flank.yml (pipelines: nightly); nothing started" in lines
    assert "flank: ignored push option 'colour=blue' (flank knows: -o run=PIPELINE, -o setup=skip|force)" in lines


@pytest.mark.slow
def test_on_push_pipelines_start_after_the_deploy(tmp_path: Path) -> None:
    project = new_project(
        tmp_path,
        {
            "flank.yml": SIMPLE_FLANK_YML.replace("  nightly:\n", "  nightly:\n    on_push: true\n"),
        },
    )
    proc = push(project)
    lines = flank_lines(proc)
    assert "flank: nightly  not scheduled; runs on every push" in lines
    started = next(i for i, line in enumerate(lines) if line.startswith("flank: started nightly #1 — "))
    assert started > lines.index(f'flank: deployed {head(project.wc)[:7]} "first"')


@pytest.mark.slow
def test_missing_make_is_a_warning_at_push(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    # A PATH with git but without make.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    os.symlink(shutil.which("git"), bin_dir / "git")
    proc = push(project, env={"PATH": str(bin_dir)})
    assert proc.returncode == 0, proc.stderr
    assert (
        "flank: warning: GNU make is not installed on this machine, so runs will fail; "
        "install it: sudo apt-get install make"
    ) in flank_lines(proc)
    assert project.current_sha() == head(project.wc)


def test_hook_outside_a_flank_repo_says_what_it_is(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "flank_ops", "hook", "pre-receive"],
        cwd=plain,
        input="",
        text=True,
        capture_output=True,
        env={**os.environ, "GIT_DIR": str(plain)},
    )
    assert proc.returncode == 1
    assert "is not a flank project repo" in proc.stderr


@pytest.mark.slow
def test_a_full_disk_during_deploy_keeps_the_previous_release(tmp_path: Path, flank_home: Path) -> None:
    # A real full disk: FLANK_HOME on a 4 MB tmpfs; a 6 MB file of one byte repeated is tiny in git's
    # compressed objects (the push gets in) but does not fit in the checked-out release.
    mount_small_tmpfs(flank_home)
    try:
        project = new_project(tmp_path)
        assert push(project).returncode == 0
        first = head(project.wc)
        (project.wc / "big.bin").write_bytes(b"x" * (6 * 1024 * 1024))
        second = commit_all(project.wc, "big file")

        proc = push(project)

        text = "\n".join(flank_lines(proc))
        assert f"deploy of {second[:7]} failed: no space left on the device" in text
        assert f"still deployed: {first[:7]}" in text
        assert "Traceback" not in proc.stderr
        assert project.current_sha() == first
        assert project.releases() == [first]
        assert not [p for p in (project.dir / "releases").iterdir() if p.name.startswith(".")]
        assert project.deploys()[-1]["status"] == "failed"
    finally:
        subprocess.run(["umount", "-l", str(flank_home)])


@pytest.mark.slow
def test_a_read_only_flank_home_refuses_the_push_and_loses_nothing(tmp_path: Path, flank_home: Path) -> None:
    mount_small_tmpfs(flank_home)
    try:
        project = new_project(tmp_path)
        assert push(project).returncode == 0
        first = head(project.wc)
        # The site is redrawn after the push returned: the home is busy until it is written.
        wait_for(
            lambda: subprocess.run(["mount", "-o", "remount,ro", str(flank_home)], capture_output=True).returncode == 0,
            "the home to be remounted read-only (once the redraw after the push is written)",
        )
        write_files(project.wc, {"R/new.R": "1\n"})
        commit_all(project.wc, "second")

        proc = push(project)

        assert proc.returncode != 0  # git itself cannot store the objects: a plain git error
        assert project.current_sha() == first
        assert project.remote_sha() == first
        assert project.releases() == [first]
    finally:
        subprocess.run(["umount", "-l", str(flank_home)])


@pytest.mark.slow
def test_runs_use_the_flank_yml_the_deploy_validated_not_the_file_on_disk(tmp_path: Path) -> None:
    project = new_project(tmp_path, {"flank.yml": "pipelines:\n  nightly:\n    tasks:\n      a: echo validated\n"})
    assert push(project).returncode == 0
    # Anything that changes the release's copy after the push (a hand edit, a task, a link)
    # must not change what runs.
    (project.current / "flank.yml").write_text("pipelines:\n  nightly:\n    tasks:\n      a: echo tampered\n")

    proc = run_flank("run", project.name, "nightly")

    assert proc.returncode == 0, proc.stderr
    run_dir = project.dir / "runs" / "nightly" / "1"
    assert (run_dir / "logs" / "a.log").read_text() == "validated\n"

    # A release deployed before flank kept that copy: read from git's objects, still not the checkout.
    stored = Home(project.home).project(project.name).release_config(head(project.wc))
    assert stored.read_text() == "pipelines:\n  nightly:\n    tasks:\n      a: echo validated\n"
    stored.unlink()
    assert run_flank("run", project.name, "nightly").returncode == 0
    assert (project.dir / "runs" / "nightly" / "2" / "logs" / "a.log").read_text() == "validated\n"


def test_deploy_never_creates_folders_outside_flank_home(tmp_path: Path, flank_home: Path) -> None:
    # Validation refuses such a flank.yml; the deploy must hold even without it.
    from flank_ops.git.releases import link_persist

    outside = tmp_path / "outside"
    outside.mkdir()
    paths = Home().project("demo")
    release = paths.release_dir("a" * 40)
    release.mkdir(parents=True)
    os.symlink(str(outside), release / "sym")
    os.symlink("missing", release / "gone")

    warnings = link_persist(paths, release, ("sym/data", "gone/data", "out/figures"))

    assert list(outside.iterdir()) == []
    assert (release / "out" / "figures").resolve() == (paths.persist_dir / "out" / "figures").resolve()
    assert warnings == [
        "persist: 'sym/data' leads out of the release through a symlink; not linked",
        "persist: 'gone/data' leads out of the release through a symlink; not linked",
    ]


def clone_with_commit(project: Project, tmp_path: Path, name: str, files: dict[str, str]) -> tuple[Project, str]:
    """Another working copy of the project (remote flank = the bare repo), one new commit ahead."""
    wc = tmp_path / name
    git("clone", "-q", str(project.wc), str(wc), cwd=tmp_path)
    git("remote", "add", "flank", str(project.bare), cwd=wc)
    write_files(wc, files)
    return project._replace(wc=wc), commit_all(wc, f"from {name}")


@pytest.mark.slow
def test_every_concurrent_push_is_exactly_one_line_and_the_pushes_page_shows_them(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    assert push(project).returncode == 0
    first = head(project.wc)
    accepted = [clone_with_commit(project, tmp_path, f"wc-{i}", {f"R/{i}.R": f"{i}\n"}) for i in range(12)]
    bad_yml = SIMPLE_FLANK_YML.replace("tasks:", "taks:")
    refused = [clone_with_commit(project, tmp_path, f"bad-{i}", {"flank.yml": bad_yml}) for i in range(3)]
    git("notes", "--ref", "refs/notes/flank", "add", "-m", "forged", "HEAD", cwd=refused[0][0].wc)

    # Twelve pushes in post-receive at once: hold the deploy lock until each one's ref update is in.
    # (git itself refuses a push whose ref moved since it connected, so they are started one by one.)
    paths = Home(project.home).project(project.name)
    procs: list[tuple[str, subprocess.Popen[str]]] = []
    with locked(paths.lock_file("deploy")):
        refusals = [
            start_push(refused[0][0], "refs/notes/flank"),
            start_push(refused[1][0], ":main"),
            start_push(refused[2][0], "--force", "main"),
        ]
        for clone, sha in accepted:
            procs.append((sha, start_push(clone, "--force", "main")))
            wait_for(lambda sha=sha: project.remote_sha() == sha, f"the push of {sha[:7]} to update main")
        for proc in refusals:
            proc.communicate(timeout=DEADLINE_S)
            assert proc.returncode != 0
    for _, proc in procs:
        out = proc.communicate(timeout=DEADLINE_S)
        assert proc.returncode == 0, out

    newest = accepted[-1][1]
    assert project.current_sha() == newest
    entries = project.deploys()[1:]  # after the first push's line
    assert len(entries) == 12 + 3, entries
    by_sha = {e["sha"]: e for e in entries if e["status"] in ("accepted", "superseded")}
    assert sorted(by_sha) == sorted(sha for _, sha in accepted)
    assert by_sha[newest]["status"] == "accepted"
    assert all(
        by_sha[sha]["status"] == "superseded" and by_sha[sha]["superseded_by"] == newest for _, sha in accepted[:-1]
    )
    rejected = [e for e in entries if e["status"] == "rejected"]
    assert sorted(e["ref"] for e in rejected) == ["refs/heads/main", "refs/heads/main", "refs/notes/flank"]
    assert any("cannot be deleted" in " ".join(e["errors"]) for e in rejected)
    assert first != newest

    # The Pushes page was redrawn by the refusals too (just after the push returned).
    late, late_sha = clone_with_commit(project, tmp_path, "late", {"flank.yml": bad_yml})
    assert push(late, "--force", "main").returncode != 0
    pushes_page = project.home / "site" / project.name / "deploys.html"
    page = wait_for(
        lambda: late_sha[:7] in pushes_page.read_text() and pushes_page.read_text(),
        "the Pushes page to show the refused push",
    )
    assert all(sha[:7] in page for _, sha in accepted)


@pytest.mark.slow
@pytest.mark.parametrize("point", ["before-switch", "after-switch"])
def test_a_killed_deploy_shows_in_status_and_on_the_site_and_flank_deploy_redoes_it(tmp_path: Path, point: str) -> None:
    project = new_project(tmp_path)
    assert push(project).returncode == 0
    first = head(project.wc)
    write_files(
        project.wc,
        {"flank.yml": SIMPLE_FLANK_YML.replace("  nightly:", "  weekly:\n    tasks: {a: echo a}\n  nightly:")},
    )
    second = commit_all(project.wc, "add weekly")

    # The hook blocks at `point` (a test-only switch), and is killed there as a reboot would.
    pid_file = tmp_path / "hook.pid"
    proc = start_push(project, env={"FLANK_TEST_DEPLOY_PAUSE": f"{point}:{pid_file}"})
    pid = int(wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), "the hook to reach " + point))
    os.kill(pid, signal.SIGKILL)
    proc.communicate(timeout=DEADLINE_S)
    assert proc.returncode == 0  # git push itself says nothing went wrong: flank must
    assert project.remote_sha() == second
    assert project.current_sha() == (first if point == "before-switch" else second)
    assert not (project.dir / "pipelines" / "weekly.mk").exists()

    status = run_flank("status", "proj")
    if point == "before-switch":
        expected = (
            f"proj: branch at {second[:7]}, deployed {first[:7]} (deploy interrupted — `flank deploy proj` retries)"
        )
    else:
        expected = (
            f"proj: branch at {second[:7]}, deployed {second[:7]} but its deploy was interrupted; "
            "Makefiles, crontab and site may be stale — `flank deploy proj` retries"
        )
    assert expected in status.stdout.splitlines(), status.stdout
    site = project.home / "site"
    for page in (site / "index.html", site / "proj" / "index.html", site / "proj" / "deploys.html"):
        assert "`flank deploy proj` retries" in page.read_text(), page

    fixed = run_flank("deploy", "proj")

    assert fixed.returncode == 0, fixed.stderr
    lines = fixed.stderr.splitlines()
    assert f"flank: deploying {second[:7]} by hand (the tip of main)" in lines
    assert f'flank: deployed {second[:7]} "add weekly"' in lines
    assert project.current_sha() == second
    assert (project.dir / "pipelines" / "weekly.mk").is_file()
    last = project.deploys()[-1]
    assert (last["status"], last["sha"], last["via"]) == ("accepted", second, "flank deploy")
    status = run_flank("status", "proj", check=True)
    assert "branch at" not in status.stdout and "weekly" in status.stdout
    for page in (site / "index.html", site / "proj" / "deploys.html"):
        assert "retries" not in page.read_text()
    assert "by hand (flank deploy)" in (site / "proj" / "deploys.html").read_text()


@pytest.mark.slow
def test_flank_deploy_of_an_older_commit_and_of_nothing(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    missing = run_flank("deploy", "proj")
    assert missing.returncode == 1
    assert "nothing pushed to 'main' yet, so nothing to deploy" in missing.stderr
    assert "Traceback" not in missing.stderr
    assert push(project).returncode == 0
    first = head(project.wc)
    write_files(project.wc, {"R/x.R": "1\n"})
    second = commit_all(project.wc, "second")
    assert push(project).returncode == 0

    back = run_flank("deploy", "proj", first[:9])

    assert back.returncode == 0, back.stderr
    assert f"flank: deploying {first[:7]} by hand (main is at {second[:7]})" in back.stderr.splitlines()
    assert project.current_sha() == first
    status = run_flank("status", "proj", check=True).stdout
    assert (
        f"proj: branch at {second[:7]}, deployed {first[:7]} by hand (`flank deploy proj` deploys the branch)"
        in status.splitlines()
    )
    unknown = run_flank("deploy", "proj", "nosuchcommit")
    assert unknown.returncode == 1 and "no commit 'nosuchcommit'" in unknown.stderr


@pytest.mark.slow
def test_twelve_pushes_at_once_are_twelve_lines_and_no_bare_git_lock_errors(tmp_path: Path) -> None:
    # Truly at once: git moves a ref only if it is still where the pusher saw it, so all but the first
    # lose the race; each loser must be refused by flank with a reason and a line, not by git's lock error.
    project = new_project(tmp_path)
    assert push(project).returncode == 0
    clones = [clone_with_commit(project, tmp_path, f"wc-{i}", {f"R/{i}.R": f"{i}\n"}) for i in range(12)]

    procs = [(sha, start_push(clone, "--force", "main")) for clone, sha in clones]
    outputs = {sha: proc.communicate(timeout=DEADLINE_S) for sha, proc in procs}

    entries = project.deploys()[1:]
    assert len(entries) == 12, entries
    assert sorted(e["sha"] for e in entries) == sorted(sha for sha, _ in procs)
    for sha, proc in procs:
        [entry] = [e for e in entries if e["sha"] == sha]
        stderr = outputs[sha][1]
        assert "failed to update ref" not in stderr
        if proc.returncode == 0:
            assert entry["status"] in ("accepted", "superseded"), entry
        else:
            assert entry["status"] == "rejected" and "another push came first" in entry["errors"][0]
            assert "fetch it, then push again: git pull flank main && git push flank main" in stderr
    assert project.current_sha() == project.remote_sha()
    # Whoever held the turn let go once its ref update was in: the next push needs no wait.
    paths = Home(project.home).project(project.name)
    wait_for(lambda: _free(paths.lock_file("receive")), "the receive lock to be free")


def _free(lock: Path) -> bool:
    with locked(lock, blocking=False) as held:
        return held


@pytest.mark.slow
def test_a_killed_first_deploy_says_nothing_is_deployed_yet(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    sha = head(project.wc)
    pid_file = tmp_path / "hook.pid"
    proc = start_push(project, env={"FLANK_TEST_DEPLOY_PAUSE": f"before-switch:{pid_file}"})
    os.kill(
        int(wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), "the hook to pause")), signal.SIGKILL
    )
    proc.communicate(timeout=DEADLINE_S)

    status = run_flank("status", "proj").stdout
    assert (
        f"proj: branch at {sha[:7]}, deployed nothing yet (deploy interrupted — `flank deploy proj` retries)"
        in status.splitlines()
    ), status
    home = (project.home / "site" / "index.html").read_text()
    assert "not deployed yet" in home and "deployed nothing yet (deploy interrupted" in home
    assert run_flank("deploy", "proj").returncode == 0
    assert project.current_sha() == sha
