"""Content fingerprints: what a task's last success depended on, and why it must run again.

A task with `outputs:` is up to date when its fingerprint equals the one recorded at its
last success and its outputs still hold the content recorded then. The fingerprint covers
    the command, `dir:`, the project's and the task's `env:` and the run's parameters (values
    keyed-hashed: a secret pasted there is never stored), the content of every input (declared, and script files
    named in the command), and the content of the declared outputs of the tasks it needs.
An upstream task that re-ran but wrote byte-identical outputs thus changes nothing
downstream (early cut-off). A task without outputs always runs.

Files (paths.py): fingerprints/<pipeline>/<task>.json, one JSON file per task, written
only after the task succeeded and its outputs were hashed; fingerprints/hash-cache.tsv,
lines `digest size mtime_ns inode real-path` (appended; the last line of a path wins), so an
unchanged input costs a stat, not a read. Entries younger than RACY_S are not cached: a
file rewritten within the file system's timestamp tick, same size, would look unchanged.

Hash: xxh3-128 (the `xxhash` package), several GB/s on one core, where the stdlib's
blake2b/sha256 do 0.6-1.4 GB/s; `targets` itself fingerprints with xxhash64. This is
change detection among the project's own files, not a defence against forged collisions.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import shlex
import stat
import time
from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, NamedTuple

import xxhash

from flank_ops.config.repo_paths import repo_relative  # noqa: F401 - also used by watch
from flank_ops.config.model import Config, Pipeline, Task
from flank_ops.config.params import ENV_PREFIX as PARAM_PREFIX

HASH_NAME = "xxh3_128"
FORMAT = 1
RACY_S = 1.0
READ_CHUNK = 1 << 20
GLOB_CHARS = frozenset("*?[")
MISSING = "missing"
WORD_SPLIT = re.compile(r"[\s;&|()<>]+")
COMPACT_LINES = 20000  # hash-cache.tsv is rewritten past this many lines


class FingerprintError(Exception):
    """An input or output that cannot be fingerprinted: said in the task's log, the task fails."""


# --- hashing with a stat cache ----------------------------------------------------


class HashCache:
    """Content digests by (path, size, mtime_ns, inode), in an append-only text file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, tuple[int, int, int, str]] = {}
        self.lines = 0
        self.new: list[str] = []
        try:
            text = path.read_text(encoding="utf-8", errors="surrogateescape")
        except OSError:
            text = ""
        for line in text.splitlines():
            parts = line.split("\t", 4)
            if len(parts) != 5:
                continue
            digest, size, mtime, inode, name = parts
            try:
                self.entries[name] = (int(size), int(mtime), int(inode), digest)
            except ValueError:
                continue
            self.lines += 1

    def digest(self, path: str, shown: str) -> str:
        """The content digest of the file `path` (`shown` in messages). Raises FingerprintError."""
        for _ in range(3):
            try:
                st = os.stat(path)
            except FileNotFoundError:
                raise FingerprintError(f"{shown} does not exist") from None
            except OSError as exc:
                raise FingerprintError(f"cannot read {shown}: {exc.strerror}") from None
            if stat.S_ISDIR(st.st_mode):
                raise FingerprintError(f"{shown} is a directory; list its files instead, e.g. {shown}/**/*")
            key = (st.st_size, st.st_mtime_ns, st.st_ino)
            # by the real path: a persisted file seen through each new release's `data` link is one entry
            real = os.path.realpath(path)
            known = self.entries.get(real)
            if known is not None and known[:3] == key:
                return known[3]
            digest = _hash_file(path, shown)
            try:
                after = os.stat(path)
            except OSError:
                continue  # deleted while hashed: look again
            if (after.st_size, after.st_mtime_ns, after.st_ino) != key:
                continue  # rewritten while hashed
            if time.time() - st.st_mtime_ns / 1e9 >= RACY_S:
                self.entries[real] = (*key, digest)
                self.new.append(f"{digest}\t{key[0]}\t{key[1]}\t{key[2]}\t{real}\n")
            return digest
        raise FingerprintError(f"{shown} kept changing while it was being read; run again once it is written")

    def save(self, tidy: bool = False) -> None:
        """Append what was learnt (one write, so concurrent launchers do not interleave lines);
        compact the file when it holds far more lines than entries, or (`tidy`: the runner, once a
        run) when it has grown past COMPACT_LINES."""
        if not self.new and not (tidy and self.lines > COMPACT_LINES):
            return
        text = "".join(self.new).encode("utf-8", "surrogateescape")
        self.new = []
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.lines > 2 * len(self.entries) + 1000 or (tidy and self.lines > COMPACT_LINES):
                from flank_ops.fileio import atomic_write_bytes

                # one line per path, and none for files gone (old releases' scripts, deleted data)
                body = "".join(
                    f"{d}\t{s}\t{m}\t{i}\t{p}\n" for p, (s, m, i, d) in self.entries.items() if os.path.exists(p)
                )
                atomic_write_bytes(self.path, body.encode("utf-8", "surrogateescape"), durable=False)
                self.lines = len(self.entries)
                return
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                os.write(fd, text)
                self.lines += text.count(b"\n")
            finally:
                os.close(fd)
        except OSError:
            pass  # a cache: losing it costs a re-read, never a wrong answer


def _hash_file(path: str, shown: str) -> str:
    h = xxhash.xxh3_128()
    buf = bytearray(READ_CHUNK)
    view = memoryview(buf)
    try:
        with open(path, "rb", buffering=0) as f:
            while True:
                n = f.readinto(buf)
                if not n:
                    break
                h.update(view[:n])
    except FileNotFoundError:
        raise FingerprintError(f"{shown} was deleted while being read") from None
    except IsADirectoryError:
        raise FingerprintError(f"{shown} is a directory; list its files instead, e.g. {shown}/**/*") from None
    except OSError as exc:
        raise FingerprintError(f"cannot read {shown}: {exc.strerror}") from None
    return h.hexdigest()


def text_digest(text: str) -> str:
    return xxhash.xxh3_128(text.encode("utf-8", "surrogateescape")).hexdigest()


def env_digest(salt: bytes, name: str, value: str) -> str:
    """Keyed, so the file shows a value changed without giving away a guessable secret."""
    return hashlib.blake2b(f"{name}={value}".encode("utf-8", "surrogateescape"), key=salt, digest_size=16).hexdigest()


def read_salt(path: Path) -> bytes:
    try:
        salt = path.read_bytes()
        if len(salt) >= 16:
            return salt[:32]
    except OSError:
        pass
    from flank_ops.fileio import atomic_write_bytes

    salt = os.urandom(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        atomic_write_bytes(path, salt, 0o600)
    except OSError:
        pass
    try:
        return path.read_bytes()[:32] or salt  # another process may have won the race
    except OSError:
        return salt


# --- what a task depends on ---------------------------------------------------------


class TaskFiles(NamedTuple):
    """What the fingerprint of one task is computed from: everything a launcher needs,
    without flank.yml (written into the run's plan as JSON)."""

    task: str
    release_dir: str
    dir: str | None
    command: str
    env: dict[str, str]  # name -> keyed digest
    inputs: tuple[str, ...]  # patterns relative to dir
    outputs: tuple[str, ...]
    upstream: dict[str, tuple[str | None, tuple[str, ...]]]  # needed task -> (its dir, its outputs)

    def to_json(self) -> dict[str, Any]:
        return {**self._asdict(), "upstream": {k: [d, list(o)] for k, (d, o) in self.upstream.items()}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "TaskFiles":
        return cls(
            task=data["task"],
            release_dir=data["release_dir"],
            dir=data["dir"],
            command=data["command"],
            env=dict(data["env"]),
            inputs=tuple(data["inputs"]),
            outputs=tuple(data["outputs"]),
            upstream={k: (v[0], tuple(v[1])) for k, v in data["upstream"].items()},
        )


def task_files(
    task: Task,
    pipeline: Pipeline,
    config: Config,
    release_dir: Path,
    salt: bytes,
    params_env: Mapping[str, str] | None = None,
) -> TaskFiles:
    # issue 23: the run's parameters (FLANK_PARAM_*) count like env: a run with other values is not up to date
    env = {**config.env, **task.env, **(params_env or {})}
    return TaskFiles(
        task=task.name,
        release_dir=str(release_dir),
        dir=task.dir,
        command=task.run,
        env={k: env_digest(salt, k, v) for k, v in sorted(env.items())},
        inputs=task.inputs,
        outputs=task.outputs,
        upstream={
            d: (pipeline.tasks[d].dir, pipeline.tasks[d].outputs)
            for d in task.needs
            if d in pipeline.tasks and pipeline.tasks[d].outputs
        },
    )


def command_scripts(command: str, task_dir: str | None, release_dir: str) -> list[str]:
    """Files of the repo named in the command (`Rscript R/model.R`, `source x.sh`), repo-relative."""
    if any(c in command for c in "'\"\\"):
        try:
            lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
            lexer.whitespace_split = True
            words = list(lexer)
        except ValueError:
            words = command.split()
    else:  # no quoting: the same words, without shlex's cost (a big pipeline has hundreds of commands)
        words = WORD_SPLIT.split(command)
    found = []
    for word in words:
        if not word or word.startswith("-") or "$" in word or "=" in word or any(c in GLOB_CHARS for c in word):
            continue
        rel = repo_relative(task_dir, word)
        if rel is None or rel == ".":
            continue
        full = os.path.join(release_dir, rel)
        if os.path.isfile(full):
            found.append(rel)
    return found


def expand(files: TaskFiles, task_dir: str | None, pattern: str) -> list[str] | None:
    """Repo-relative files a pattern names now: [] for a glob matching nothing, None for a plain
    path that does not exist."""
    rel = repo_relative(task_dir, pattern)
    if rel is None:
        raise FingerprintError(f"{pattern} leads out of the repo")
    if not any(c in GLOB_CHARS for c in pattern):
        return [rel] if os.path.lexists(os.path.join(files.release_dir, rel)) else None
    matches = glob.glob(rel, root_dir=files.release_dir, recursive=True)
    return sorted(m for m in matches if not os.path.isdir(os.path.join(files.release_dir, m)))


def _hash_patterns(
    files: TaskFiles, cache: HashCache, task_dir: str | None, patterns: Iterable[str], what: str
) -> dict[str, str]:
    """path -> digest; a missing plain path or a glob matching nothing -> {pattern: MISSING}."""
    out: dict[str, str] = {}
    for pattern in patterns:
        names = expand(files, task_dir, pattern)
        if not names:
            out[repo_relative(task_dir, pattern) or pattern] = MISSING
            continue
        for name in names:
            out[name] = cache.digest(os.path.join(files.release_dir, name), f"{what} {name}")
    return out


def fingerprint(files: TaskFiles, cache: HashCache) -> dict[str, Any]:
    """The task's fingerprint now (without its outputs). Raises FingerprintError."""
    # files named in the command that are outputs (its own, or its upstreams': those count as
    # upstream changes) are not inputs of their own
    outputs = {repo_relative(d, p) for d, outs in [(files.dir, files.outputs), *files.upstream.values()] for p in outs}
    declared = [repo_relative(files.dir, p) or p for p in files.inputs]
    scripts = [
        s
        for s in command_scripts(files.command, files.dir, files.release_dir)
        if s not in outputs
        and s not in declared
        and not any(fnmatchcase(s, o) for o in outputs if o and any(c in GLOB_CHARS for c in o))
    ]
    inputs = _hash_patterns(files, cache, files.dir, files.inputs, "input")
    for script in scripts:
        inputs[script] = cache.digest(os.path.join(files.release_dir, script), f"input {script}")
    upstream = {
        name: _hash_patterns(files, cache, d, outs, f"{name}'s output")
        for name, (d, outs) in sorted(files.upstream.items())
    }
    fp: dict[str, Any] = {
        "command": text_digest(files.command),
        "dir": files.dir,
        "env": files.env,
        "inputs": dict(sorted(inputs.items())),
        "upstream": upstream,
    }
    fp["fingerprint"] = text_digest(json.dumps(fp, sort_keys=True))
    return fp


def hash_outputs(files: TaskFiles, cache: HashCache) -> dict[str, str]:
    return _hash_patterns(files, cache, files.dir, files.outputs, "output")


# --- comparing -----------------------------------------------------------------------


def _changed_files(old: dict[str, str], new: dict[str, str]) -> list[str]:
    return [p for p in sorted(set(old) | set(new)) if old.get(p) != new.get(p)]


def _some(names: list[str]) -> str:
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def own_change(old: dict[str, Any] | None, new: dict[str, Any]) -> str | None:
    """Why the task must run, from what is its own (not its upstreams' outputs); None: nothing."""
    if not old or old.get("format") != FORMAT or old.get("hash") != HASH_NAME:
        return "ran: no previous success"
    missing = [p for p, d in new["inputs"].items() if d == MISSING]
    if missing:
        return f"ran: input {_some(missing)} missing"
    if old.get("command") != new["command"]:
        return "ran: command changed"
    if old.get("dir") != new["dir"]:
        return "ran: dir changed"
    env = _changed_files(old.get("env") or {}, new["env"])
    params = [n.removeprefix(PARAM_PREFIX).lower() for n in env if n.startswith(PARAM_PREFIX)]
    if params:
        return f"ran: parameter{'s' if len(params) > 1 else ''} {_some(params)} changed"
    if env:
        return f"ran: env {_some(env)} changed"
    changed = _changed_files(old.get("inputs") or {}, new["inputs"])
    if changed:
        return f"ran: {_some(changed)} changed"
    return None


def upstream_change(old: dict[str, Any], new: dict[str, Any]) -> str | None:
    old_up = old.get("upstream") or {}
    for name, outs in new["upstream"].items():
        missing = [p for p, d in outs.items() if d == MISSING]
        if missing:
            return f"ran: upstream {name}'s output {_some(missing)} missing"
        changed = _changed_files(old_up.get(name) or {}, outs)
        if changed:
            return f"ran: upstream {name} changed {_some(changed)}"
    gone = sorted(set(old_up) - set(new["upstream"]))
    if gone:
        return f"ran: needs changed ({_some(gone)})"
    return None


def outputs_change(old: dict[str, Any], now: dict[str, str]) -> str | None:
    missing = [p for p, d in now.items() if d == MISSING]
    if missing:
        return f"ran: outputs missing ({_some(missing)})"
    changed = _changed_files(old.get("outputs") or {}, now)
    if changed:
        return f"ran: output {_some(changed)} changed since its last success"
    return None


def why_run(old: dict[str, Any] | None, new: dict[str, Any], outputs_now: dict[str, str]) -> str | None:
    """The reason the task must run now, or None when it is up to date."""
    reason = own_change(old, new)
    if reason is None:
        assert old is not None
        reason = upstream_change(old, new) or outputs_change(old, outputs_now)
    return reason


# --- the state files -----------------------------------------------------------------


def read_state(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_state(
    path: Path,
    task: str,
    fp: dict[str, Any],
    outputs: dict[str, str],
    run_id: int | None = None,
    commit: str | None = None,
) -> None:
    """After a success only: what it depended on, and what it wrote."""
    from datetime import datetime, timezone

    from flank_ops.fileio import atomic_write_text

    state = {
        "format": FORMAT,
        "hash": HASH_NAME,
        "task": task,
        "recorded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "run_id": run_id,
        "commit": commit,
        **fp,
        "outputs": outputs,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(state, indent=1, sort_keys=True) + "\n", 0o600, durable=False)
