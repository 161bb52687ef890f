"""pre-receive: decide whether a push is accepted, before any ref moves.

The pushed objects are still in git's quarantine directory, visible only to git
commands that keep the hook's GIT_* environment (keep_git_env=True).
"""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import NamedTuple

from flank_ops.errors import ConfigErrors, UserError
from flank_ops.git.gitcmd import clean_env, git_executable, run_git

ZERO_SHA = "0" * 40
NOTES_REF = "refs/notes/flank"
FLANK_YML = "flank.yml"
# flank.yml is a small text file; anything bigger is a mistake and must not be read into memory.
MAX_FLANK_YML_BYTES = 1024 * 1024


class RefUpdate(NamedTuple):
    old: str
    new: str
    ref: str

    @property
    def deleted(self) -> bool:
        return self.new == ZERO_SHA


class PushVerdict(NamedTuple):
    errors: list[str]  # empty = accept
    summary: str | None = None  # "1 pipeline, 4 tasks" when the deploy branch's flank.yml is valid
    deploy: RefUpdate | None = None  # the deploy-branch update, if the push has one


def parse_updates(stdin_text: str) -> list[RefUpdate]:
    updates = []
    for line in stdin_text.splitlines():
        parts = line.split()
        if len(parts) == 3:
            updates.append(RefUpdate(*parts))
    return updates


HOW_TO_ADD_FLANK_YML = (
    "add one to the root of your repo, e.g.\n"
    "      pipelines:\n"
    "        nightly:\n"
    "          tasks:\n"
    "            extract: Rscript R/extract.R\n"
    "    then: git add flank.yml && git commit -m 'Add flank.yml' && git push"
)


def check_push(git_dir: Path, branch: str, updates: list[RefUpdate]) -> PushVerdict:
    """Every reason to refuse this push (all at once), and what to say when it is fine."""
    deploy_ref = f"refs/heads/{branch}"
    errors: list[str] = []
    summary = None
    deploy = None
    for update in updates:
        if update.ref == NOTES_REF or update.ref.startswith(NOTES_REF + "/"):
            errors.append(
                f"{update.ref} is written by flank on the VM (run summaries); it cannot be pushed\n"
                "  fetch it instead; to push your other refs, leave it out of the push"
            )
        elif update.ref == deploy_ref and update.deleted:
            errors.append(
                f"the deploy branch {branch!r} cannot be deleted: it is what this VM runs\n"
                "  push another commit to it instead"
            )
        elif update.ref == deploy_ref:
            deploy = update
            found, summary = check_commit(git_dir, update.new)
            errors += found
    return PushVerdict(errors, summary if not errors else None, deploy)


def check_commit(git_dir: Path, sha: str) -> tuple[list[str], str | None]:
    """Validate flank.yml at `sha` (and that its persist: dirs are not tracked files)."""
    text, problem = read_flank_yml(git_dir, sha)
    if problem:
        return [problem], None
    from flank_ops.config.load import describe, load_config

    try:
        config = load_config(text, FLANK_YML)
    except ConfigErrors as exc:
        return [str(e) for e in exc.errors], None
    except UserError as exc:
        return [str(exc)], None
    tracked = tracked_persist_paths(git_dir, sha, config.persist)
    if tracked:
        return [
            f"{FLANK_YML}: persist: {p!r} is tracked in git; persisted folders live on the VM and are "
            f"linked into each release\n  stop tracking it (git rm -r --cached {p}, add it to .gitignore) "
            "or drop it from persist:"
            for p in tracked
        ], None
    return [], describe(config)


def read_flank_yml(git_dir: Path, sha: str) -> tuple[bytes, str | None]:
    """flank.yml's bytes at `sha`, or a message saying why there are none to read."""
    # One `cat-file --batch` call; the header tells the size before any content is read.
    proc = subprocess.Popen(
        [git_executable(), f"--git-dir={git_dir}", "cat-file", "--batch"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        env=clean_env(keep_git=True),
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(f"{sha}:{FLANK_YML}\n".encode())
        proc.stdin.close()
        header = proc.stdout.readline().decode("utf-8", "replace").split()
        if len(header) != 3 or header[1] == "missing" or header[-1] == "missing":
            return b"", f"no {FLANK_YML} in the pushed commit {sha[:7]}, so there is nothing to deploy\n  {HOW_TO_ADD_FLANK_YML}"
        if header[1] != "blob":
            return b"", f"{FLANK_YML} in the pushed commit is a {header[1]}, not a file"
        size = int(header[2])
        if size > MAX_FLANK_YML_BYTES:
            return b"", (
                f"{FLANK_YML} is {size / 1024 / 1024:.1f} MB; flank reads at most "
                f"{MAX_FLANK_YML_BYTES // 1024 // 1024} MB\n  flank.yml describes pipelines; keep data out of it"
            )
        return proc.stdout.read(size), None
    finally:
        proc.stdout.close()
        proc.kill()
        proc.wait()


def tracked_persist_paths(git_dir: Path, sha: str, persist: tuple[str, ...]) -> list[str]:
    if not persist:
        return []
    out = run_git(
        ["ls-tree", "-z", "--name-only", sha, "--", *persist], git_dir=git_dir, keep_git_env=True
    ).stdout.decode("utf-8", "replace")
    names = [n for n in out.split("\0") if n]
    return [p for p in persist if any(n == p.rstrip("/") or n.startswith(p.rstrip("/") + "/") for n in names)]
