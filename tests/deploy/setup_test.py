"""issue 13: `setup:` at deploy, through real pushes into real hooks (venv + PyPI, R CMD INSTALL)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import commit_all, process_gone, run_flank, wait_for, write_files

from helpers.pushing import Project, flank_lines, head, new_project, push
from helpers.small_disk import mount_small_tmpfs

DEADLINE_S = 120.0

VENV_FLANK_YML = """\
setup: python3 -m venv .venv && .venv/bin/pip install -q -r requirements.txt
persist: [data]
pipelines:
  nightly:
    tasks:
      use: .venv/bin/python -c 'import six; print(six.__name__)' > data/out.txt
"""


def setup_lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in flank_lines(proc) if line.startswith("setup: ")]


def run_task(project: Project) -> str:
    out = project.dir / "persist" / "data" / "out.txt"
    if out.exists():
        out.unlink()
    run_flank("run", project.name, "nightly", check=True)
    return out.read_text().strip()


@pytest.mark.slow
def test_a_venv_setup_runs_once_per_key_and_its_venv_is_carried_over(tmp_path: Path) -> None:
    project = new_project(tmp_path, {"flank.yml": VENV_FLANK_YML, "requirements.txt": "six\n"})
    built_by = head(project.wc)

    first = push(project)

    assert first.returncode == 0, first.stderr
    lines = setup_lines(first)
    assert "setup: running (key changed (requirements.txt)); the push waits for it" in lines
    assert "setup: $ python3 -m venv .venv && .venv/bin/pip install -q -r requirements.txt" in lines
    assert any(line.startswith("setup: done in ") for line in lines)
    assert run_task(project) == "six"
    assert project.deploys()[-1]["setup"]["status"] == "ran"

    # Unchanged key: setup is not run; the new release still has the venv, and it works.
    write_files(project.wc, {"R/model.R": "1\n"})
    commit_all(project.wc, "second")
    second = push(project)

    assert second.returncode == 0, second.stderr
    assert [line for line in setup_lines(second) if "$ python3" in line] == []
    assert any(
        line.startswith(f"setup: reused (key unchanged since {built_by[:7]}: requirements.txt")
        for line in setup_lines(second)
    ), second.stderr
    assert os.path.islink(project.current / ".venv")
    assert run_task(project) == "six"
    assert project.deploys()[-1]["setup"]["status"] == "reused"

    # The release that built the venv can be pruned: later releases keep working.
    shutil.rmtree(project.dir / "releases" / project.deploys()[0]["sha"])
    assert run_task(project) == "six"


@pytest.mark.slow
def test_an_r_setup_installs_a_local_package_into_a_library_an_rscript_task_uses(tmp_path: Path) -> None:
    if shutil.which("R") is None:
        pytest.skip("R is not installed")
    project = new_project(
        tmp_path,
        {
            "flank.yml": """\
            setup:
              run: mkdir -p rlib && R CMD INSTALL --no-test-load -l rlib hellopkg
              key: [hellopkg]
            persist: [data]
            pipelines:
              nightly:
                tasks:
                  use: Rscript -e 'library(hellopkg, lib.loc = "rlib"); cat(hello(), file = "data/out.txt")'
            """,
            "hellopkg/DESCRIPTION": """\
            Package: hellopkg
            Version: 0.1
            Title: Hello
            Description: Says hello.
            License: MIT
            Author: Ada
            Maintainer: Ada <ada@example.org>
            """,
            "hellopkg/NAMESPACE": "export(hello)\n",
            "hellopkg/R/hello.R": 'hello <- function() "hello from R"\n',
        },
    )

    first = push(project)

    assert first.returncode == 0, first.stderr
    assert any("DONE (hellopkg)" in line for line in setup_lines(first)), first.stderr
    assert run_task(project) == "hello from R"

    write_files(project.wc, {"R/other.R": "1\n"})
    commit_all(project.wc, "second")
    second = push(project)

    assert second.returncode == 0, second.stderr
    assert any(line.startswith("setup: reused") for line in setup_lines(second))
    assert run_task(project) == "hello from R"

    # Changing the package (the key) builds again.
    write_files(project.wc, {"hellopkg/R/hello.R": 'hello <- function() "hello again"\n'})
    commit_all(project.wc, "third")
    third = push(project)
    assert any("DONE (hellopkg)" in line for line in setup_lines(third)), third.stderr
    assert run_task(project) == "hello again"


SHELL_SETUP_YML = """\
setup:
  run: {run}
  key: [deps.txt]
  timeout: {timeout}
persist: [data]
pipelines:
  nightly:
    tasks:
      use: cat built/stamp > data/out.txt
"""


def shell_project(tmp_path: Path, run: str, timeout: str = "10m") -> Project:
    return new_project(
        tmp_path,
        {
            "flank.yml": SHELL_SETUP_YML.format(run=run, timeout=timeout),
            "deps.txt": "v1\n",
        },
    )


@pytest.mark.slow
def test_a_failing_setup_refuses_the_push_and_leaves_the_branch_where_it_was(tmp_path: Path) -> None:
    """issue 28 item 3: setup runs in pre-receive, so its failure is a refused push (as Heroku, piku)."""
    project = shell_project(tmp_path, "'mkdir -p built && cat deps.txt > built/stamp && grep -q v1 deps.txt'")
    assert push(project).returncode == 0
    first = head(project.wc)
    write_files(project.wc, {"deps.txt": "v2\n"})
    second = commit_all(project.wc, "break deps")

    proc = push(project)

    assert proc.returncode != 0
    lines = flank_lines(proc)
    assert "setup: $ mkdir -p built && cat deps.txt > built/stamp && grep -q v1 deps.txt" in lines
    assert "flank: push refused, 1 problem; nothing was deployed:" in lines, proc.stderr
    assert f"setup exited 1: {second[:7]} is not deployed, {first[:7]} stays current and main stays at {first[:7]}" in (
        proc.stderr
    )
    assert "[remote rejected] main -> main (pre-receive hook declined)" in proc.stderr
    assert project.remote_sha() == first
    assert project.current_sha() == first
    assert run_task(project) == "v1"
    entry = project.deploys()[-1]
    assert entry["status"] == "rejected" and entry["setup"]["status"] == "failed"
    assert entry["errors"][0].startswith("setup exited 1: ")
    page = pushes_page(project, "setup: failed after ")
    assert "setup output, last lines" in page and "$ mkdir -p built" in page
    # Third trial: the terminal's pointers ("its output is above", "the whole log: the Pushes page")
    # were recorded with the refusal and shown on the Pushes page and the project page, where the
    # output is not above and the reader is on the Pushes page already: they stay in the terminal.
    assert "its output is above (the whole log: the Pushes page); fix it, commit and push again" in proc.stderr
    assert entry["errors"][0].endswith(" stays at " + first[:7] + "\n  fix it, commit and push again"), entry
    assert "fix it, commit and push again" in page and "its output is above" not in page

    # Fixed and pushed again: built in pre-receive, linked by the deploy, recorded once as ran.
    write_files(project.wc, {"deps.txt": "v1\nv3\n"})
    third = commit_all(project.wc, "fix deps")
    fixed = push(project)

    assert fixed.returncode == 0, fixed.stderr
    assert project.current_sha() == third
    assert [line for line in setup_lines(fixed) if line.startswith("setup: running")] == [
        "setup: running (key changed (deps.txt)); the push waits for it"
    ]
    assert project.deploys()[-1]["setup"]["status"] == "ran"
    assert run_task(project) == "v1\nv3"
    from flank_ops.paths import Home
    from flank_ops.store.deploy_log import release_setup_build

    build = release_setup_build(Home().project("proj"), project.current.resolve().name)
    assert build is not None and build.startswith(project.deploys()[-1]["setup"]["key"] + "-")


@pytest.mark.slow
def test_push_options_skip_and_force_setup_and_a_wrong_one_is_refused(tmp_path: Path) -> None:
    project = shell_project(tmp_path, "'mkdir -p built && date +%s%N > built/stamp'")
    assert push(project).returncode == 0
    built = run_task(project)

    write_files(project.wc, {"R/a.R": "1\n"})
    commit_all(project.wc, "a")
    forced = push(project, "-o", "setup=force", "main")
    assert any(line.startswith("setup: running (forced (-o setup=force))") for line in setup_lines(forced))
    rebuilt = run_task(project)
    assert rebuilt != built

    write_files(project.wc, {"deps.txt": "v2\n"})
    commit_all(project.wc, "new key")
    skipped = push(project, "-o", "setup=skip", "main")
    assert skipped.returncode == 0, skipped.stderr
    assert any(
        line.startswith("setup: skipped (-o setup=skip); the release uses the environment of")
        for line in setup_lines(skipped)
    )
    assert project.current_sha() == head(project.wc)
    assert run_task(project) == rebuilt, skipped.stderr
    assert project.deploys()[-1]["setup"]["status"] == "skipped"

    write_files(project.wc, {"R/b.R": "1\n"})
    commit_all(project.wc, "b")
    refused = push(project, "-o", "setup=later", "main")
    assert refused.returncode != 0
    assert "-o setup=later: flank knows -o setup=skip and -o setup=force" in refused.stderr


@pytest.mark.slow
def test_a_hanging_setup_is_killed_with_its_process_tree_at_its_timeout(tmp_path: Path) -> None:
    project = shell_project(tmp_path, "'sleep 300 & echo $! > \"$FLANK_PERSIST_DATA/child\"; wait'", timeout="2s")

    proc = push(project)

    assert proc.returncode != 0
    assert (
        f"setup timed out after 2.0s (its processes were killed): {head(project.wc)[:7]} is not deployed, "
        "nothing is deployed yet and main stays at nothing" in proc.stderr
    )
    assert project.remote_sha() is None
    child = int((project.dir / "persist" / "data" / "child").read_text())
    wait_for(lambda: process_gone(child), "the background child of setup to be gone", timeout=10)
    assert project.current_sha() is None


@pytest.mark.slow
def test_megabytes_of_output_show_a_bounded_tail_and_the_full_log_is_kept(tmp_path: Path) -> None:
    project = shell_project(tmp_path, "'mkdir -p built && echo ok > built/stamp && seq 1 100000'")

    proc = push(project)

    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = setup_lines(proc)
    assert len(lines) < 400
    assert "setup: 100000" in lines and "setup: 5000" not in lines
    log = project.dir / "setup" / "logs" / project.deploys()[-1]["setup"]["log"]
    assert log.read_text().splitlines()[-1] == "100000"
    assert len(log.read_text().splitlines()) == 100001


@pytest.mark.slow
def test_setup_has_no_stdin_and_its_output_masks_secrets(tmp_path: Path) -> None:
    project = shell_project(
        tmp_path, "'read answer || echo no input; echo token=$API_TOKEN; mkdir -p built && echo ok > built/stamp'"
    )
    run_flank("secrets", "set", "proj", "API_TOKEN", input="s3cr3t-value", check=True)

    proc = push(project)

    assert proc.returncode == 0, proc.stderr
    lines = setup_lines(proc)
    assert "setup: no input" in lines
    assert "setup: token=***" in lines
    log = project.dir / "setup" / "logs" / project.deploys()[-1]["setup"]["log"]
    assert "s3cr3t-value" not in log.read_text() and "token=***" in log.read_text()

    # The Pushes page says setup ran, how long, and links its (masked) log.
    page = pushes_page(project, "setup: ran in ")
    link = re.search(r'setup: ran in [^<]*<a href="\.\./(proj/_setup/[^"]+)">log</a>', page)
    assert link, page
    shown = (project.home / "site" / link.group(1)).read_text()
    assert "token=***" in shown and "s3cr3t-value" not in shown


def pushes_page(project: Project, text: str) -> str:
    page = project.home / "site" / project.name / "deploys.html"
    return wait_for(
        lambda: page.exists() and text in page.read_text() and page.read_text(), f"the Pushes page to show {text!r}"
    )


@pytest.mark.slow
def test_the_renv_hint_names_the_setup_to_add(tmp_path: Path) -> None:
    project = new_project(
        tmp_path,
        {
            "flank.yml": "pipelines:\n  nightly:\n    tasks:\n      a: echo a\n",
            "renv.lock": "{}\n",
        },
    )
    proc = push(project)
    assert (
        "flank: hint: renv.lock is in the repo but flank.yml has no setup:, so its packages are not installed "
        "on deploy; add: setup: {run: \"Rscript -e 'renv::restore(prompt = FALSE)'\", key: [renv.lock]}"
        in flank_lines(proc)
    )


@pytest.mark.slow
def test_a_push_during_another_push_s_setup_waits_then_is_told_to_fetch(tmp_path: Path) -> None:
    """issue 28 item 3: setup runs before git moves the branch, holding the push's turn on it: a second
    push waits for it, then is refused (git could not move the branch from where that push saw it)."""
    gate = 'while [ ! -e "$FLANK_PERSIST_DATA/open" ]; do sleep 0.05; done'
    project = shell_project(
        tmp_path, f"'touch \"$FLANK_PERSIST_DATA/waiting\"; {gate}; mkdir -p built && cat deps.txt > built/stamp'"
    )
    data = project.dir / "persist" / "data"
    older_sha = head(project.wc)
    older = start_push(project, stderr=tmp_path / "older.err")
    wait_for(lambda: (data / "waiting").exists(), "the first push's setup to start", timeout=DEADLINE_S)
    write_files(project.wc, {"R/newer.R": "1\n"})
    newer_sha = commit_all(project.wc, "newer")
    newer_err = tmp_path / "newer.err"
    newer = start_push(project, stderr=newer_err)
    wait_for(lambda: "this push waits for it" in newer_err.read_text(), "the newer push to wait", timeout=DEADLINE_S)
    assert project.remote_sha() is None  # nothing moved while setup runs
    (data / "open").write_text("")

    assert older.wait(timeout=DEADLINE_S) == 0, (tmp_path / "older.err").read_text()
    assert newer.wait(timeout=DEADLINE_S) != 0
    assert "'main' moved to " + older_sha[:7] + " while this push was on its way" in newer_err.read_text()
    assert project.current_sha() == older_sha
    assert [d["status"] for d in project.deploys()] == ["rejected", "accepted"]
    assert project.deploys()[-1]["setup"]["status"] == "ran"

    again = push(project)  # what the refusal says to do (here the branch already has older_sha)
    assert again.returncode == 0, again.stderr
    assert project.current_sha() == newer_sha
    assert project.deploys()[-1]["setup"]["status"] == "reused"
    assert run_task(project) == "v1"


def start_push(project: Project, *args: str, stderr: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_DIR")}
    with open(stderr, "w") as err:
        return subprocess.Popen(
            ["git", "push", "flank", *(args or ("main",))],
            cwd=project.wc,
            env=env,
            text=True,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )


@pytest.mark.slow
def test_doctor_reports_r_and_python_and_the_renv_lock_packages_rscript_cannot_load(tmp_path: Path) -> None:
    if shutil.which("Rscript") is None:
        pytest.skip("R is not installed")
    project = new_project(
        tmp_path,
        {
            "flank.yml": "pipelines:\n  nightly:\n    tasks:\n      a: echo a\n",
            "renv.lock": '{"R": {"Version": "4.2.0"}, "Packages": {"stats": {"Package": "stats"}, '
            '"notapkg": {"Package": "notapkg"}}}\n',
        },
    )
    assert push(project).returncode == 0

    out = run_flank("doctor", "--no-cron").stdout

    lines = out.splitlines()
    assert any(line.startswith("OK    R: Rscript (R) version") for line in lines), out
    assert any(line.startswith("OK    Python: Python 3") for line in lines), out
    assert f"FAIL  proj renv.lock: Rscript cannot load 1 of 2 packages in {head(project.wc)[:7]}: notapkg" in lines, out


@pytest.mark.slow
def test_a_full_disk_during_setup_keeps_the_previous_release_and_says_so(tmp_path: Path, flank_home: Path) -> None:
    mount_small_tmpfs(flank_home, size="8m")
    try:
        project = shell_project(
            tmp_path,
            "'mkdir -p built && cat deps.txt > built/stamp && "
            "if grep -q big deps.txt; then head -c 20000000 /dev/zero > built/big; fi'",
        )
        assert push(project).returncode == 0
        first = head(project.wc)
        write_files(project.wc, {"deps.txt": "big\n"})
        second = commit_all(project.wc, "needs a big library")

        proc = push(project)

        assert any("No space left on device" in line for line in setup_lines(proc)), proc.stderr
        assert (
            f"setup exited 1: {second[:7]} is not deployed, {first[:7]} stays current and main stays at {first[:7]}"
            in proc.stderr
        ), proc.stderr
        assert proc.returncode != 0 and project.remote_sha() == first
        assert "Traceback" not in proc.stderr
        assert project.current_sha() == first
        assert run_task(project) == "v1"
        assert len(list((project.dir / "setup" / "builds").iterdir())) == 1  # the failed build is gone
    finally:
        subprocess.run(["umount", "-l", str(flank_home)])


@pytest.mark.slow
def test_a_setup_that_exits_0_without_making_anything_is_named_and_the_task_says_what_is_missing(
    tmp_path: Path,
) -> None:
    project = shell_project(tmp_path, "'echo installed, supposedly'")

    proc = push(project)

    assert proc.returncode == 0, proc.stderr
    assert (
        "setup: warning: setup exited 0 but created no files in the release, so nothing is carried over to "
        "later releases; if it installs into a library folder, check that the folder is inside the repo"
        in setup_lines(proc)
    )
    assert project.current_sha() == head(project.wc)
    assert run_flank("run", "proj", "nightly").returncode != 0  # cat built/stamp: no such file


@pytest.mark.slow
def test_a_setup_that_closes_its_output_early_is_waited_for_not_killed(tmp_path: Path) -> None:
    project = shell_project(
        tmp_path, "'echo quiet from now on; exec >/dev/null 2>&1; sleep 1; mkdir -p built && echo late > built/stamp'"
    )

    proc = push(project)

    assert proc.returncode == 0, proc.stderr
    assert project.current_sha() == head(project.wc), proc.stderr
    assert run_task(project) == "late"


@pytest.mark.slow
def test_tracked_files_under_a_persisted_folder_give_no_setup_warning(tmp_path: Path) -> None:
    """issue 19 bug 3: .flank-tracked is flank's own folder, never a setup product nor "in the commit"."""
    project = new_project(
        tmp_path,
        {
            "flank.yml": SHELL_SETUP_YML.format(run="'mkdir -p built && cat deps.txt > built/stamp'", timeout="10m"),
            "deps.txt": "v1\n",
            "data/_raw/a.csv": "1\n",
        },
    )

    first = push(project)
    write_files(project.wc, {"R/a.R": "1\n"})
    commit_all(project.wc, "second")
    second = push(project)

    for proc in (first, second):
        assert proc.returncode == 0, proc.stderr
        assert not [line for line in setup_lines(proc) if "warning" in line], proc.stderr
    assert project.deploys()[0]["setup"]["products"] == ["built"]
    assert run_task(project) == "v1"


@pytest.mark.slow
def test_flank_deploy_by_hand_runs_setup_without_mentioning_a_push_and_says_a_failure_once(tmp_path: Path) -> None:
    """issue 19 bug 7 (deploy side): no "the push waits" by hand; "deploy failed" said once in the record."""
    project = shell_project(tmp_path, "'mkdir -p built && cat deps.txt > built/stamp && grep -q v1 deps.txt'")
    assert push(project).returncode == 0

    shutil.rmtree(project.dir / "setup")
    by_hand = run_flank("deploy", "proj")

    assert by_hand.returncode == 0, by_hand.stderr
    assert "setup: running (first run of these commands" not in by_hand.stderr
    assert any(line.startswith("setup: running (key changed (deps.txt))") for line in by_hand.stderr.splitlines())
    assert "push" not in "\n".join(line for line in by_hand.stderr.splitlines() if line.startswith("setup: running"))

    write_files(project.wc, {"deps.txt": "v2\n"})
    commit_all(project.wc, "break deps")
    assert push(project, "-o", "setup=skip", "main").returncode == 0
    failed = run_flank("deploy", "proj")

    assert failed.returncode == 1
    assert "deploy failed: deploy failed" not in failed.stderr + run_flank("status", "proj").stdout
    assert project.deploys()[-1]["errors"] == ["setup exited 1"]


@pytest.mark.slow
def test_builds_no_kept_release_uses_are_pruned_and_doctor_shows_setup_s_disk_use(tmp_path: Path) -> None:
    """issue 28 item 8: setup/builds/ holds only builds a kept release uses (KEEP_RELEASES = 5)."""
    from flank_ops.git.releases import KEEP_RELEASES

    project = shell_project(tmp_path, "'mkdir -p built && cat deps.txt > built/stamp'")
    outputs = []
    for version in range(1, KEEP_RELEASES + 3):
        write_files(project.wc, {"deps.txt": f"v{version}\n"})
        commit_all(project.wc, f"deps v{version}")
        outputs.append(push(project))
        assert outputs[-1].returncode == 0, outputs[-1].stderr

    builds = project.dir / "setup" / "builds"
    assert len(list(builds.iterdir())) == KEEP_RELEASES
    assert len(project.releases()) == KEEP_RELEASES
    assert any(
        re.fullmatch(r"flank: setup: removed 1 build no kept release uses \(.+\)", line)
        for line in flank_lines(outputs[-1])
    )
    assert run_task(project) == f"v{KEEP_RELEASES + 2}"
    # The key of a pruned build builds again (its state went with it).
    write_files(project.wc, {"deps.txt": "v1\n"})
    commit_all(project.wc, "back to v1")
    again = push(project)
    assert any(line.startswith("setup: running (key changed (deps.txt))") for line in setup_lines(again))

    doctor = run_flank("doctor", "--no-cron").stdout
    assert re.search(rf"^OK    proj setup: {KEEP_RELEASES} builds take .+ \(\d+% of the disk\)$", doctor, re.M), doctor

    # flank prune removes a build whose release went by hand, and says so.
    shutil.rmtree(project.dir / "releases" / project.deploys()[-2]["sha"])
    pruned = run_flank("prune", "proj", "--keep", "10")
    assert re.search(r"^flank: proj: setup: removed 1 build no kept release uses \(.+\)$", pruned.stdout, re.M), (
        pruned.stdout
    )
    assert len(list(builds.iterdir())) == KEEP_RELEASES - 1


@pytest.mark.slow
def test_setup_builds_over_a_fifth_of_the_disk_are_a_doctor_warning_and_on_the_resources_page(
    tmp_path: Path, flank_home: Path
) -> None:
    mount_small_tmpfs(flank_home, size="8m")
    try:
        project = shell_project(tmp_path, "'mkdir -p built && head -c 2500000 /dev/urandom > built/lib'")
        assert push(project).returncode == 0

        doctor = run_flank("doctor", "--no-cron")

        assert re.search(
            r"^WARN  proj setup: 1 build takes 2\.\d MiB \(3\d% of the disk\), more than 20%$", doctor.stdout, re.M
        ), doctor.stdout
        assert "each deploy and `flank prune` remove the builds no kept release uses" in doctor.stdout
        run_flank("site", check=True)
        page = (flank_home / "site" / "proj" / "resources.html").read_text()
        assert re.search(r"Setup's environments: <strong>1 build, 2\.\d MiB</strong> \(3\d% of the disk\)", page), page
        assert "⚠ More than 20% of the disk." in page
    finally:
        subprocess.run(["umount", "-l", str(flank_home)])


@pytest.mark.slow
def test_doctor_checks_a_python_venv_s_requirements_and_python_version(tmp_path: Path) -> None:
    """issue 28 item 9: as for renv.lock, without the network: the venv gets a package's metadata by hand."""
    site = ".venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()[\"purelib\"])'"
    make_pkg = (
        "d=$(" + site + ')/tinypkg-1.0.dist-info && mkdir -p "$d" && '
        'printf "Metadata-Version: 2.1\\nName: tinypkg\\nVersion: 1.0\\n" > "$d/METADATA"'
    )
    project = new_project(
        tmp_path,
        {
            "flank.yml": "setup:\n  - python3 -m venv --without-pip .venv\n  - "
            + json.dumps(make_pkg)
            + "\npipelines:\n  nightly:\n    tasks:\n      a: .venv/bin/python -c 'print(1)'\n",
            "requirements.txt": "# what the scripts import\ntinypkg==1.0\n",
        },
    )
    assert push(project).returncode == 0

    ok = run_flank("doctor", "--no-cron").stdout

    assert re.search(
        rf"^OK    proj Python: Python 3\.\d+\.\d+ \(\.venv in {head(project.wc)[:7]}\) has the 1 requirement of "
        r"requirements.txt$",
        ok,
        re.M,
    ), ok

    write_files(project.wc, {"requirements.txt": "tinypkg==1.1\nmissingpkg>=2\n", ".python-version": "2.7\n"})
    commit_all(project.wc, "wants more")
    assert push(project, "-o", "setup=skip", "main").returncode == 0

    bad = run_flank("doctor", "--no-cron").stdout

    line = next(line for line in bad.splitlines() if line.startswith("FAIL  proj Python: "))
    assert ".python-version asks for Python 2.7, .venv in " in line
    assert "1 of 2 requirements not installed: missingpkg" in line
    assert "other versions installed: tinypkg==1.1 (has 1.0)" in line
