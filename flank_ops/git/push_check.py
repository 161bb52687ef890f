"""pre-receive: decide whether a push is accepted, before any ref moves.

The pushed objects are still in git's quarantine directory, visible only to git
commands that keep the hook's GIT_* environment (keep_git_env=True).
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

from flank_ops.config.load import FILENAME as FLANK_YML
from flank_ops.config.load import MAX_BYTES as MAX_FLANK_YML_BYTES
from flank_ops.config.model import Config
from flank_ops.errors import ConfigErrors, UserError
from flank_ops.fileio import atomic_write_bytes
from flank_ops.git.gitcmd import cat_file_batch
from flank_ops.git.notes import NOTES_REF
from flank_ops.paths import ProjectPaths

ZERO_SHA = "0" * 40


class RefUpdate(NamedTuple):
    old: str
    new: str
    ref: str

    @property
    def deleted(self) -> bool:
        return self.new == ZERO_SHA


class PushVerdict(NamedTuple):
    errors: list[str]  # empty = accept
    config: Config | None = None  # the deploy branch's flank.yml, when valid
    deploy: RefUpdate | None = None  # the deploy-branch update, if the push has one
    flank_yml: bytes = b""  # the bytes `config` was validated from


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


# flank.yml's bytes -> the Config validated from those very bytes before, if any (git/release_config.py
# validated_before): what a push of an unchanged flank.yml checks instead of parsing it again.
ValidatedBefore = Callable[[bytes], "Config | None"]


def check_push(
    git_dir: Path,
    branch: str,
    updates: list[RefUpdate],
    validated_before: ValidatedBefore | None = None,
    batch: subprocess.Popen[bytes] | None = None,
) -> PushVerdict:
    """Every reason to refuse this push (all at once), and what to say when it is fine. batch: a
    `git cat-file --batch` started already (gitcmd.cat_file_batch), used and ended here."""
    deploy_ref = f"refs/heads/{branch}"
    errors: list[str] = []
    config = None
    deploy = None
    text = b""
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
            found, config, text = _check_commit(git_dir, update.new, validated_before, batch)
            batch = None
            errors += found
    if batch is not None:  # not needed after all
        _end(batch)
    return PushVerdict(errors, config if not errors else None, deploy, text if not errors else b"")


def check_commit(git_dir: Path, sha: str) -> tuple[list[str], Config | None]:
    """Validate flank.yml at `sha`, and its dir: and persist: paths against the commit's files.

    The rules are load_config's (with the commit's tree), the same `flank validate` applies
    in a work tree: whatever one refuses, the other refuses in the same words.
    """
    errors, config, _ = _check_commit(git_dir, sha)
    return errors, config


def _check_commit(
    git_dir: Path,
    sha: str,
    validated_before: ValidatedBefore | None = None,
    batch: subprocess.Popen[bytes] | None = None,
) -> tuple[list[str], Config | None, bytes]:
    """check_commit, and the bytes of flank.yml it validated. With `validated_before`, an unchanged
    flank.yml is not parsed again: its Config is checked against this commit's tree (still_valid),
    and validated in full only when that finds a problem, so the words are load_config's."""
    from flank_ops.config.load import load_config, still_valid, symlink_error
    from flank_ops.git.trees import CommitTree

    try:
        with object_reader(git_dir, batch) as read_object:  # the tree and flank.yml: one git process
            tree = CommitTree(git_dir, sha, keep_git_env=True, read_object=read_object)
            entry = (tree.folder("") or {}).get(FLANK_YML)
            if entry is not None and entry.kind == "link":
                return [str(e) for e in symlink_error(FLANK_YML).errors], None, b""
            text, problem = read_flank_yml(read_object, sha)
            if problem:
                return [problem], None, b""
            known = validated_before(text) if validated_before is not None else None
            if known is not None and still_valid(known, tree):
                return [], known, text
            config = load_config(text, FLANK_YML, tree=tree)
    except ConfigErrors as exc:
        return [str(e) for e in exc.errors], None, b""
    except UserError as exc:
        return [str(exc)], None, b""
    return [], config, text


ObjectReader = Callable[[str, bool], tuple[str, int, bytes]]


@contextlib.contextmanager
def object_reader(git_dir: Path, proc: subprocess.Popen[bytes] | None = None) -> Iterator[ObjectReader]:
    """read(name, want_content) -> (type or "missing", size, content) through one `git cat-file --batch`
    (`proc`, if started already: gitcmd.cat_file_batch).

    Keeps the hook's GIT_* environment, so quarantined (just pushed) objects are visible.
    Content is only read into memory when wanted and no bigger than MAX_FLANK_YML_BYTES.
    """
    if proc is None:
        proc = cat_file_batch(git_dir)
    assert proc.stdin is not None and proc.stdout is not None
    stdin, stdout = proc.stdin, proc.stdout

    def read(name: str, want_content: bool) -> tuple[str, int, bytes]:
        stdin.write(name.encode("utf-8", "surrogateescape") + b"\n")
        stdin.flush()
        header = stdout.readline().decode("utf-8", "replace").split()
        if len(header) != 3 or header[-1] == "missing":
            return "missing", 0, b""
        kind, size = header[1], int(header[2])
        if want_content and size <= MAX_FLANK_YML_BYTES:
            content = stdout.read(size)
        else:
            content = b""
            remaining = size
            while remaining:  # skip it in chunks: never hold a big object in memory
                chunk = stdout.read(min(remaining, 1 << 16))
                if not chunk:
                    break
                remaining -= len(chunk)
        stdout.read(1)  # the newline after each object
        return kind, size, content

    try:
        yield read
    finally:
        _end(proc)


def _end(proc: subprocess.Popen[bytes]) -> None:
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
    proc.kill()
    proc.wait()


def read_flank_yml(read_object: ObjectReader, sha: str) -> tuple[bytes, str | None]:
    """flank.yml's bytes at `sha`, or a message saying why there are none to read."""
    kind, size, content = read_object(f"{sha}:{FLANK_YML}", True)
    if kind == "missing":
        return (
            b"",
            f"no {FLANK_YML} in the pushed commit {sha[:7]}, so there is nothing to deploy\n  {HOW_TO_ADD_FLANK_YML}",
        )
    if kind != "blob":
        return b"", f"{FLANK_YML} in the pushed commit is a {kind}, not a file"
    if size > MAX_FLANK_YML_BYTES:
        from flank_ops.config.load import too_large_error

        return b"", str(too_large_error(FLANK_YML, size).errors[0])
    return content, None


def save_validated(
    paths: ProjectPaths, sha: str, config: Config, flank_yml: bytes = b"", *, in_memory: bool = False
) -> None:
    """Hand the validated Config to post-receive, so it need not load the validator again, and
    the bytes it was validated from, so the deploy stores them without asking git again
    (git/release_config.py; written as that copy is: durably, 0644 under the umask).
    in_memory: the deploy runs in this very process (deploy/hooks.py), so the Config stays here."""
    if flank_yml:
        atomic_write_bytes(paths.validated_flank_yml(sha), flank_yml, mode=0o644)
    if in_memory:
        _kept[sha] = config
        return
    import pickle

    atomic_write_bytes(paths.validated_config(sha), pickle.dumps(config))


_kept: dict[str, Config] = {}  # save_validated(in_memory=True)


def take_validated(paths: ProjectPaths, sha: str) -> Config | None:
    """The Config pre-receive saved for `sha` (removing the file), or None."""
    kept = _kept.pop(sha, None)
    if kept is not None:
        return kept
    import pickle

    path = paths.validated_config(sha)
    try:
        config = pickle.loads(path.read_bytes())
    except (OSError, pickle.PickleError, AttributeError, EOFError, ImportError, TypeError):
        return None
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
    return config if isinstance(config, Config) else None
