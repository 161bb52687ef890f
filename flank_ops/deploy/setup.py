"""issue 13: `setup:` at deploy — install what the code needs before the release goes live.

The caching rule a user can hold in their head: everything setup creates inside the
release folder (files git does not track: `.venv/`, `renv/library/`, compiled objects)
is carried over to every later release with the same key (the hash of the key files'
content plus the commands); tool caches outside the release stay where the tool puts them.

How the carry-over works, and why symlinks to one build folder per key:

    $FLANK_HOME/NAME/setup/
      <key16>.json               the last good build of this key (name, products, duration, commit)
      builds/<key16>-<n>/        where setup ran: a checkout of the commit (+ persist: links)
      logs/<time>-<sha7>.log     each setup's full output, secrets masked
      releases/<sha>             which build release <sha> links to (pruning keeps those)

Setup runs in a build folder at a path that never changes afterwards, and each product
(an untracked file or folder at the top of what setup created) is linked into every
release of that key: releases/<sha>/.venv -> ../../setup/builds/<key16>-<n>/.venv.
A venv's scripts carry absolute paths to where it was built (`#!/.../.venv/bin/python`,
VIRTUAL_ENV in activate); those stay valid for as long as any release uses the build,
which a copy into each release (paths pointing into an older release, pruned later)
or hard links (same problem, plus a task writing one file changes all) would not give.
A forced rebuild (-o setup=force) builds a new folder beside the old one, so the release
that is live keeps working while the new one is built.

When a push needs a build (a new key, -o setup=force), pre-receive makes it before git
moves the branch (build_before_push, issue 28 item 3): a failed setup refuses the push and
the branch stays. The deploy (post-receive, or `flank deploy` by hand, which builds itself)
then links the build (setup_release). Builds are made under the deploy lock, so pushes take
turns and pruning never sees a build half made.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from flank_ops.config.model import DEFAULT_SETUP_KEYS, Config, Setup
from flank_ops.deploy import push_output
from flank_ops.errors import UserError
from flank_ops.fileio import atomic_write_json
from flank_ops.git.gitcmd import quarantine_env, run_git
from flank_ops.paths import RELEASE_TRACKED_DIR, ProjectPaths

SETUP_OPTION = "setup"
SKIP, FORCE = "skip", "force"
# What the Pushes page and deploys.jsonl say about a deploy's setup.
from flank_ops.store.deploy_log import FAILED, RAN, REUSED, SKIPPED  # noqa: E402,F401

STREAM_MAX_LINES = 300  # lines streamed to `git push`; beyond, the full log has them and the tail is shown
TAIL_LINES = 25  # the last lines shown at the end of a cut or failed setup's output
MAX_LINE_CHARS = 1000  # one line of push output at most this long (the log keeps it whole)
KILL_GRACE_S = 5.0  # after SIGTERM, before SIGKILL
RENV_HINT = "setup: {run: \"Rscript -e 'renv::restore(prompt = FALSE)'\", key: [renv.lock]}"


class SetupFailed(Exception):
    """Setup did not succeed: the deploy stops before `current` switches."""

    def __init__(self, reason: str, entry: dict[str, Any]) -> None:
        super().__init__(reason)
        self.reason = reason  # "setup exited 1", "setup timed out after 30m", ...
        self.entry = entry  # the deploys.jsonl "setup" object


def setup_dir(paths: ProjectPaths) -> Path:
    return paths.setup_dir


def say(line: str) -> None:
    """One line of setup output in the push (git shows it as `remote: setup: ...`)."""
    if len(line) > MAX_LINE_CHARS:
        line = line[:MAX_LINE_CHARS] + f" … ({len(line) - MAX_LINE_CHARS} more characters in the log)"
    push_output.say(line, "setup")


def split_setup_option(push_options: list[str]) -> tuple[str | None, list[str]]:
    """(-o setup=skip|force, the other push options). Raises UserError for another value."""
    choice: str | None = None
    rest: list[str] = []
    for option in push_options:
        key, sep, value = option.partition("=")
        if key.strip() != SETUP_OPTION:
            rest.append(option)
            continue
        value = value.strip()
        if not sep or value not in (SKIP, FORCE):
            raise UserError(
                f"-o {option}: flank knows -o setup=skip and -o setup=force",
                "push again with one of them, or without -o setup",
            )
        choice = value
    return choice, rest


# --- the key -----------------------------------------------------------------------


def tree_entries(git_dir: Path, sha: str, recursive: bool, only: tuple[str, ...] = ()) -> dict[str, str]:
    """path -> blob id of the commit's files (the root's only unless recursive; `only`: these
    paths and what is under them)."""
    args = ["ls-tree", "-z", "--full-tree"] + (["-r"] if recursive else []) + [sha]
    if only:
        args += ["--", *only]
    out = run_git(args, git_dir=git_dir, env=quarantine_env()).stdout.decode("utf-8", "surrogateescape")
    entries = {}
    for item in out.split("\0"):
        meta, _, path = item.partition("\t")
        fields = meta.split()
        if path and len(fields) == 3:
            entries[path] = fields[2]
    return entries


def matches(path: str, pattern: str) -> bool:
    """A key names a file, a glob, or a folder (everything under it)."""
    return fnmatch.fnmatchcase(path, pattern) or path.startswith(pattern.rstrip("/") + "/")


def compute_key(git_dir: Path, sha: str, setup: Setup) -> tuple[str, list[str]]:
    """(the hex key, the key files found). Content comes from git's blob ids: no file is read."""
    patterns = setup.key if setup.key is not None else DEFAULT_SETUP_KEYS
    # The defaults are at the root; keys without wildcards are asked for by name (a big repo is not listed).
    plain = setup.key is not None and not any(c in p for p in patterns for c in "*?[")
    entries = tree_entries(git_dir, sha, recursive=setup.key is not None, only=tuple(patterns) if plain else ())
    return key_of(setup, entries)


def key_of(setup: Setup, entries: dict[str, str]) -> tuple[str, list[str]]:
    """The key of these files (path -> git blob id) and setup's commands."""
    import hashlib  # only with setup: (loading OpenSSL is not free on every push)

    patterns = setup.key if setup.key is not None else DEFAULT_SETUP_KEYS
    found = sorted(p for p in entries if any(matches(p, pattern) for pattern in patterns))
    digest = hashlib.sha256()
    for command in setup.commands:
        digest.update(b"command\0" + command.encode("utf-8", "surrogateescape") + b"\0")
    for path in found:
        digest.update(b"file\0" + path.encode("utf-8", "surrogateescape") + b"\0" + entries[path].encode() + b"\0")
    return digest.hexdigest(), found


# --- state ---------------------------------------------------------------------------


def _state_file(paths: ProjectPaths, key: str) -> Path:
    return setup_dir(paths) / f"{key[:16]}.json"


def last_build(paths: ProjectPaths, key: str) -> dict[str, Any] | None:
    """The last successful build of `key`, if its folder is still there."""
    try:
        state = json.loads(_state_file(paths, key).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or state.get("key") != key:
        return None
    if not (setup_dir(paths) / "builds" / str(state.get("build"))).is_dir():
        return None
    return state


def build_of_release(paths: ProjectPaths, sha: str) -> dict[str, Any] | None:
    """The build release `sha` links to (for -o setup=skip: the current release's environment)."""
    try:
        state = json.loads((setup_dir(paths) / "releases" / sha).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or not (setup_dir(paths) / "builds" / str(state.get("build"))).is_dir():
        return None
    return state


# --- the deploy step -----------------------------------------------------------------


def setup_release(
    paths: ProjectPaths,
    sha: str,
    release: Path,
    config: Config,
    option: str | None,
    previous: str | None,
    by_hand: bool = False,
) -> dict[str, Any] | None:
    """Run or reuse setup for release `sha` (already checked out at `release`, not live yet).

    A push's pre-receive built it already when it had to (build_before_push): this links that
    build. Returns the deploys.jsonl "setup" object (None: flank.yml has no setup). Raises
    SetupFailed (nothing switched; the build folder removed) or OSError (e.g. a full disk)."""
    if config.setup is None:
        if option is not None:
            say(f"-o setup={option}: flank.yml has no setup:, nothing to {option}")
        renv_hint(release, config)
        return None
    setup = config.setup
    key, found = compute_key(paths.bare_repo, sha, setup)
    if setup.key is not None:
        missing = [p for p in setup.key if not any(matches(f, p) for f in found)]
        for pattern in missing:
            say(f"warning: setup key {pattern!r} matches no file in {sha[:7]}")
    entry: dict[str, Any] = {"key": key[:16], "key_files": found}
    state = last_build(paths, key)
    prebuilt = take_prebuilt(paths, sha, key)
    if prebuilt is not None:
        link_products(paths, sha, release, prebuilt)
        return {**entry, **ran_entry(prebuilt)}
    if option == SKIP:
        carried = state or (build_of_release(paths, previous) if previous else None)
        if carried is not None:
            link_products(paths, sha, release, carried)
        say(
            "skipped (-o setup=skip)"
            + (
                f"; the release uses the environment of {carried['sha'][:7]}"
                if carried
                else "; no earlier environment to carry over"
            )
        )
        return {**entry, "status": SKIPPED, "duration_s": 0.0}
    if state is not None and option != FORCE:
        link_products(paths, sha, release, state)
        say(
            f"reused (key unchanged since {state['sha'][:7]}: {', '.join(found) or 'the commands'}; "
            "-o setup=force runs it again)"
        )
        return {**entry, "status": REUSED, "duration_s": 0.0, "log": state.get("log"), "built_by": state["sha"]}
    say(f"running ({why_build(option, found)})" + ("" if by_hand else "; the push waits for it"))
    state = build(paths, sha, config, setup, key, entry)
    link_products(paths, sha, release, state)
    return {**entry, **ran_entry(state)}


def ran_entry(state: dict[str, Any]) -> dict[str, Any]:
    return {"status": RAN, "duration_s": state["duration_s"], "log": state["log"], "products": state["products"]}


def why_build(option: str | None, found: list[str]) -> str:
    if option == FORCE:
        return "forced (-o setup=force)"
    return f"key changed ({', '.join(found)})" if found else "first run of these commands"


def build_before_push(paths: ProjectPaths, sha: str, config: Config, option: str | None) -> None:
    """pre-receive (issue 28 item 3): build the pushed commit's environment before git moves the
    branch, so a failed setup refuses the push (as Heroku and piku do): the branch stays where it
    was and `git push` exits non-zero. Runs only when the key has no good build yet (or -o
    setup=force); post-receive then links this build (take_prebuilt). The pushed objects are still
    in git's quarantine, which the checkout reads through the hook's GIT_OBJECT_DIRECTORY.
    Raises SetupFailed or OSError; call with the deploy lock held (pruning must not see a build
    half made)."""
    key, found = compute_key(paths.bare_repo, sha, config.setup) if config.setup is not None else ("", [])
    if not needs_build(paths, config, option, key):
        return
    assert config.setup is not None
    say(f"running ({why_build(option, found)}); the push waits for it")
    state = build(paths, sha, config, config.setup, key, {"key": key[:16], "key_files": found})
    atomic_write_json(_prebuilt_file(paths, sha), state)


def needs_build(paths: ProjectPaths, config: Config, option: str | None, key: str | None = None) -> bool:
    """Does a push of this commit (key: compute_key's) make a build (a new key, or -o setup=force)?"""
    if config.setup is None or option == SKIP:
        return False
    return option == FORCE or key is None or last_build(paths, key) is None


def _prebuilt_file(paths: ProjectPaths, sha: str) -> Path:
    return setup_dir(paths) / "prebuilt" / f"{sha}.json"


def take_prebuilt(paths: ProjectPaths, sha: str, key: str) -> dict[str, Any] | None:
    """The build pre-receive made for `sha` (once: the hand-off file is removed)."""
    handoff = _prebuilt_file(paths, sha)
    try:
        state = json.loads(handoff.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    with contextlib.suppress(OSError):
        handoff.unlink()
    if not isinstance(state, dict) or state.get("key") != key:
        return None
    if not (setup_dir(paths) / "builds" / str(state.get("build"))).is_dir():
        return None
    return state


def renv_hint(release: Path, config: Config) -> None:
    """renv.lock tracked at the repo's root (its checkout, `release`: no git call) without setup:."""
    if os.path.lexists(release / "renv.lock") and "renv.lock" not in config.persist:
        print(
            "flank: hint: renv.lock is in the repo but flank.yml has no setup:, so its packages are not "
            f"installed on deploy; add: {RENV_HINT}",
            file=sys.stderr,
            flush=True,
        )


def build(
    paths: ProjectPaths, sha: str, config: Config, setup: Setup, key: str, entry: dict[str, Any]
) -> dict[str, Any]:
    """Run setup in a new build folder (a checkout of `sha`); returns its state once it succeeded."""
    from flank_ops.git.releases import checkout, link_persist

    root = setup_dir(paths)
    builds, logs = root / "builds", root / "logs"
    builds.mkdir(parents=True, exist_ok=True)
    logs.mkdir(parents=True, exist_ok=True)
    name = f"{key[:16]}-{time.time_ns() // 1_000_000}"
    folder = builds / name
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    log_name = f"{stamp}-{sha[:7]}.log"
    entry = {**entry, "log": log_name}
    start = time.monotonic()
    try:
        folder.mkdir()
        checkout(paths.bare_repo, sha, folder)
        link_persist(paths, folder, config.persist)
        tracked = tree_entries(paths.bare_repo, sha, recursive=True)
        env = setup_env(paths, folder, config, sha)
        with open(logs / log_name, "wb") as log:
            failure = run_commands(setup, folder, env, log, secret_values(paths))
        duration = round(time.monotonic() - start, 3)
        if failure is not None:
            raise SetupFailed(failure, {**entry, "status": FAILED, "duration_s": duration})
        products = untracked_products(folder, set(tracked), config.persist)
        if not products:
            say(
                "warning: setup exited 0 but created no files in the release, so nothing is carried over to "
                "later releases; if it installs into a library folder, check that the folder is inside the repo"
            )
        from flank_ops.cost.setup_disk import record_build_bytes

        state = {
            "key": key,
            "build": name,
            "bytes": record_build_bytes(paths, name),
            "products": products,
            "sha": sha,
            "log": log_name,
            "duration_s": duration,
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        atomic_write_json(_state_file(paths, key), state)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    say(f"done in {_seconds(duration)}")
    return state


def _seconds(value: float) -> str:
    from flank_ops.humanize import duration

    return duration(value)


def secret_values(paths: ProjectPaths) -> dict[str, str]:
    from flank_ops.task.secrets import load_secrets

    return load_secrets(paths)


def setup_env(paths: ProjectPaths, folder: Path, config: Config, sha: str) -> dict[str, str]:
    """What tasks get (env:, secrets, FLANK_* and persisted folders), through the runner's one builder,
    without the hook's GIT_* variables (they would point setup's git commands at the bare repo)."""
    from flank_ops.config.model import Pipeline
    from flank_ops.run.runner import Deployed, task_env
    from flank_ops.task.secrets import load_secrets

    commit = {"sha": sha, "short": sha[:7]}
    env = task_env(Deployed(paths, folder, config, commit), Pipeline(name="setup", tasks={}), 0, load_secrets(paths))
    env = {k: v for k, v in env.items() if not k.startswith("GIT_")}
    env["FLANK_SETUP"] = "1"
    return env


# --- running the commands ------------------------------------------------------------


def run_commands(setup: Setup, cwd: Path, env: dict[str, str], log: BinaryIO, secrets: dict[str, str]) -> str | None:
    """Each command by /bin/sh -c in turn, stdin closed, output streamed and logged (masked).
    Returns None on success, else why setup failed (the push shows the last lines)."""
    from flank_ops.task.secrets import SecretMasker

    stream = _Stream(log, SecretMasker([os.fsencode(v) for v in secrets.values() if v]))
    deadline = time.monotonic() + setup.timeout_s
    try:
        for command in setup.commands:
            stream.line(f"$ {command}".encode("utf-8", "surrogateescape"))
            code = _run_one(command, cwd, env, stream, deadline)
            if code == "timeout":
                from flank_ops.humanize import duration

                stream.finish(failed=True)
                return f"setup timed out after {duration(setup.timeout_s)} (its processes were killed)"
            if code != 0:
                stream.finish(failed=True)
                how = f"killed by signal {-code}" if isinstance(code, int) and code < 0 else f"exited {code}"
                return f"setup {how}"
        stream.finish(failed=False)
        return None
    except BaseException:
        stream.finish(failed=True)
        raise


def _run_one(command: str, cwd: Path, env: dict[str, str], stream: _Stream, deadline: float) -> int | str:
    proc = subprocess.Popen(
        ["/bin/sh", "-c", command],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    timed_out = False
    at_eof = False
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            if at_eof:  # it closed its output but goes on: wait for it to exit
                try:
                    proc.wait(min(remaining, 1.0))
                    break
                except subprocess.TimeoutExpired:
                    continue
            ready, _, _ = select.select([fd], [], [], min(remaining, 1.0))
            if ready:
                data = os.read(fd, 65536)
                if data:
                    stream.feed(data)
                else:
                    at_eof = True
            elif proc.poll() is not None:
                break  # exited; what still holds the pipe (a leftover background child) is killed below
    finally:
        _kill_group(proc, grace=KILL_GRACE_S if timed_out else 0.0)
        with contextlib.suppress(OSError):
            while select.select([fd], [], [], 0.2)[0]:
                data = os.read(fd, 65536)
                if not data:
                    break
                stream.feed(data)
        proc.stdout.close()
    return "timeout" if timed_out else proc.returncode


def _kill_group(proc: subprocess.Popen[bytes], grace: float) -> None:
    """End the whole process tree setup started (its session's process group)."""
    if grace and proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


class _Stream:
    """Masked output: all of it to the log, the first STREAM_MAX_LINES lines to the push, and the
    last TAIL_LINES at the end when the push did not see them."""

    def __init__(self, log: BinaryIO, masker: Any) -> None:
        self.log = log
        self.masker = masker
        self.partial = b""
        self.shown = 0
        self.cut = False
        self.tail: deque[bytes] = deque(maxlen=TAIL_LINES)

    def feed(self, data: bytes) -> None:
        masked = self.masker.feed(data)
        self._write(masked)

    def line(self, text: bytes) -> None:
        self._write(self.masker.feed(b"", final=True))
        self._write(text + b"\n")

    def _write(self, masked: bytes) -> None:
        if not masked:
            return
        self.log.write(masked)
        self.log.flush()
        lines = (self.partial + masked).split(b"\n")
        self.partial = lines.pop()
        for line in lines:
            self._show(line)

    def _show(self, line: bytes) -> None:
        line = line.rstrip(b"\r")
        self.tail.append(line)
        if self.shown < STREAM_MAX_LINES:
            say(line.decode("utf-8", "replace"))
            self.shown += 1
        elif not self.cut:
            self.cut = True
            say(
                f"… more output than the push shows ({STREAM_MAX_LINES} lines); the full log is kept on the VM "
                "and on the Pushes page; the last lines follow at the end"
            )

    def finish(self, failed: bool) -> None:
        with contextlib.suppress(OSError):
            self._write(self.masker.feed(b"", final=True))
        if self.partial:
            self._show(self.partial)
            self.partial = b""
        if self.cut:
            say(f"… last {len(self.tail)} lines:")
            for line in self.tail:
                say(line.decode("utf-8", "replace"))


# --- local mode: `flank run --local`, and so `flank watch` (issue 28 item 9) -----------------------


def local_key(working_copy: Path, setup: Setup) -> tuple[str, list[str]]:
    """compute_key for the files of a working copy as saved (committed or not): each file's git blob
    id is computed from its content, so the same files give the key a push gives on the VM."""
    import hashlib

    patterns = setup.key if setup.key is not None else DEFAULT_SETUP_KEYS
    proc = run_git(["ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=working_copy, check=False)
    if proc.returncode == 0:
        listed = [p for p in proc.stdout.decode("utf-8", "surrogateescape").split("\0") if p]
    else:  # not a git working copy: the files at its root
        listed = [p.name for p in working_copy.iterdir()]
    if setup.key is None:
        listed = [p for p in listed if "/" not in p]  # the defaults are at the root
    entries = {}
    for rel in listed:
        if not any(matches(rel, pattern) for pattern in patterns):
            continue
        path = working_copy / rel
        if path.is_symlink() or not path.is_file():
            continue
        data = path.read_bytes()
        entries[rel] = hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()
    return key_of(setup, entries)


def _local_state_file(paths: ProjectPaths, working_copy: Path) -> Path:
    # Where git/deploy_log.release_setup_build looks: the working copy is the release in local mode.
    return setup_dir(paths) / "releases" / Path(os.path.realpath(working_copy)).name


def local_setup_products(paths: ProjectPaths, working_copy: Path) -> list[str]:
    """What the last local setup created in the working copy (`.venv`, ...): files a watch ignores."""
    try:
        state = json.loads(_local_state_file(paths, working_copy).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    products = state.get("products") if isinstance(state, dict) else None
    return [str(p) for p in products] if isinstance(products, list) else []


def local_setup(paths: ProjectPaths, working_copy: Path, config: Config) -> None:
    """Run `setup:` in the working copy when its key changed since the last local setup (or what it
    made is gone), as a push does on the VM; its output goes to the terminal and .flank/setup/logs/.
    Raises UserError when it fails (nothing runs then)."""
    if config.setup is None:
        return
    from flank_ops.fileio import locked

    setup = config.setup
    with locked(paths.lock_file("setup")):  # a watch's runs and a run by hand take turns
        key, found = local_key(working_copy, setup)
        state_file = _local_state_file(paths, working_copy)
        try:
            state = json.loads(state_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            state = None
        if (
            isinstance(state, dict)
            and state.get("key") == key
            and all(os.path.lexists(working_copy / p) for p in state.get("products") or [])
        ):
            return
        again = f"{', '.join(found)} change" if found else "its commands change"
        say(f"running in this working copy ({why_build(None, found)}); again only when {again}")
        tracked = _tracked_or_none(working_copy)
        before = set(untracked_products(working_copy, tracked, config.persist)) if tracked is not None else set()
        logs = setup_dir(paths) / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log_name = f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%fZ')}-local.log"
        env = setup_env(paths, working_copy, config, "local")
        start = time.monotonic()
        with open(logs / log_name, "wb") as log:
            failure = run_commands(setup, working_copy, env, log, secret_values(paths))
        trim_logs(logs)
        if failure is not None:
            raise UserError(
                f"{failure} (its output is above), so nothing ran",
                f"fix it, or run it yourself in your terminal: {' && '.join(setup.commands)}",
            )
        after = set(untracked_products(working_copy, tracked, config.persist)) if tracked is not None else set()
        state = {
            "key": key,
            "build": f"{key[:16]}-local",
            "products": sorted(after - before),
            "sha": "local",
            "log": log_name,
            "duration_s": round(time.monotonic() - start, 3),
        }
        atomic_write_json(state_file, state)
    say(f"done in {_seconds(state['duration_s'])}")


def _tracked_or_none(working_copy: Path) -> set[str] | None:
    proc = run_git(["ls-files", "-z", "--cached"], cwd=working_copy, check=False)
    if proc.returncode != 0:
        return None
    return {p for p in proc.stdout.decode("utf-8", "surrogateescape").split("\0") if p}


# --- carry-over ------------------------------------------------------------------------


def untracked_products(folder: Path, tracked: set[str], persist: tuple[str, ...]) -> list[str]:
    """The top-most paths under `folder` that git does not track (what setup created), sorted.
    Changes setup made to tracked files are not carried over: a release is its commit plus these."""
    tracked_dirs = {"/".join(p.split("/")[:i]) for p in tracked for i in range(1, p.count("/") + 1)}
    linked = {p.strip("/") for p in persist}
    products: list[str] = []
    todo = [""]
    while todo:
        rel_dir = todo.pop()
        with os.scandir(folder / rel_dir if rel_dir else folder) as it:
            for item in it:
                rel = f"{rel_dir}/{item.name}" if rel_dir else item.name
                if rel in tracked or rel in linked or rel == RELEASE_TRACKED_DIR:
                    continue  # (flank's own folder of tracked files under persisted ones: not setup's)
                if rel in tracked_dirs and item.is_dir(follow_symlinks=False):
                    todo.append(rel)
                    continue
                if any(p.startswith(rel + "/") for p in linked):
                    continue  # a folder made to hold a persist: link
                products.append(rel)
    return sorted(products)


def link_products(paths: ProjectPaths, sha: str, release: Path, state: dict[str, Any]) -> None:
    """Link each product of the build into the release, and note which build the release uses."""
    folder = setup_dir(paths) / "builds" / state["build"]
    for rel in state.get("products") or []:
        if rel == RELEASE_TRACKED_DIR:
            continue  # recorded as a product by builds made before flank knew better
        link = release / rel
        target = os.path.relpath(folder / rel, link.parent)
        if link.is_symlink():
            if os.readlink(link) == target:
                continue
            link.unlink()  # a re-deployed release that used another build
        elif link.exists():
            say(f"warning: {rel} is in the commit, so setup's {rel} is not linked into this release")
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, link)
    atomic_write_json(
        setup_dir(paths) / "releases" / sha, {k: state.get(k) for k in ("build", "sha", "products", "key")}
    )


def prune_builds(paths: ProjectPaths, dry_run: bool = False) -> list[tuple[str, int]]:
    """Remove the builds no kept release uses (issue 28 item 8): a release still in releases/ (the
    current one among them) keeps its build; a build pre-receive made for a push not deployed yet is
    kept for a day. A key's state file goes with its build (its next push builds again). Returns
    (build, bytes) of each removed build. Call under the deploy lock, after the releases are pruned."""
    from flank_ops.cost.setup_disk import build_bytes, size_file

    root = setup_dir(paths)
    if not (root / "builds").is_dir():
        return []
    keep: set[str] = set()
    for ref in _listdir(root / "releases"):
        if not paths.release_dir(ref.name).is_dir():
            if not dry_run:
                with contextlib.suppress(OSError):
                    ref.unlink()
            continue
        with contextlib.suppress(OSError, ValueError):
            keep.add(str(json.loads(ref.read_text(encoding="utf-8")).get("build")))
    for handoff in _listdir(root / "prebuilt"):
        with contextlib.suppress(OSError, ValueError):
            if time.time() - handoff.stat().st_mtime < 86400:
                keep.add(str(json.loads(handoff.read_text(encoding="utf-8")).get("build")))
            elif not dry_run:
                handoff.unlink()
    removed = []
    for folder in sorted(_listdir(root / "builds")):
        if folder.name.startswith(".trash-"):  # left by an interrupted prune
            if not dry_run:
                shutil.rmtree(folder, ignore_errors=True)
            continue
        if folder.name in keep or not folder.is_dir():
            continue
        removed.append((folder.name, build_bytes(paths, folder.name)))
        if dry_run:
            continue
        trash = folder.with_name(f".trash-{folder.name}")
        with contextlib.suppress(OSError):
            os.rename(folder, trash)  # gone at once, never half a venv under its own name
            shutil.rmtree(trash, ignore_errors=True)
        with contextlib.suppress(OSError):
            size_file(paths, folder.name).unlink()
    if not dry_run:
        gone = {name for name, _ in removed}
        for state_file in root.glob("*.json"):
            with contextlib.suppress(OSError, ValueError):
                if str(json.loads(state_file.read_text(encoding="utf-8")).get("build")) in gone:
                    state_file.unlink()
        trim_logs(root / "logs")
    return removed


def trim_logs(folder: Path, keep: int = 50) -> None:
    """The last `keep` setup logs are kept (names start with their time)."""
    for old in sorted(_listdir(folder), key=lambda p: p.name)[:-keep]:
        with contextlib.suppress(OSError):
            old.unlink()


def pruned_line(removed: list[tuple[str, int]], verb: str = "removed") -> str:
    from flank_ops.humanize import fmt_bytes

    n = len(removed)
    return (
        f"setup: {verb} {n} build{'s' if n != 1 else ''} no kept release uses "
        f"({fmt_bytes(sum(size for _, size in removed))})"
    )


def _listdir(folder: Path) -> Iterator[Path]:
    try:
        yield from list(folder.iterdir())
    except FileNotFoundError:
        return
