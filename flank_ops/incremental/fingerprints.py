"""Content fingerprints: what a task's last success depended on, and why it must run again.

A task with `outputs:` is up to date when its fingerprint equals the one recorded at its
last success and its outputs still hold the content recorded then. The fingerprint covers
    the command, `dir:`, the project's and the task's `env:` and the run's parameters (values
    keyed-hashed: a secret pasted there is never stored), the content of every input, and the content of the
    declared outputs of the tasks it needs. Inputs are those declared in `inputs:` and those
    flank finds itself (`auto_inputs:`, all by default): repo files named anywhere in the
    command (`scripts`), what those scripts source() or import, one level (`sources`,
    script_refs.py), and the setup build the release runs in (`setup`: a new key or a
    rebuild reruns the task, "ran: environment changed (setup key 3f2a1c0… → 9b1e0d2…)").
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

import contextlib
import glob
import hashlib
import json
import os
import re
import shlex
import stat
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, NamedTuple

import xxhash

from flank_ops.config.model import AUTO_INPUT_KINDS, Config, Pipeline, Task, cells_glob
from flank_ops.config.params import ENV_PREFIX as PARAM_PREFIX
from flank_ops.config.repo_paths import repo_relative  # noqa: F401 - also used by watch
from flank_ops.fileio import atomic_write_bytes, atomic_write_text, read_small_file
from flank_ops.incremental import script_refs

HASH_NAME = "xxh3_128"
FORMAT = 1
RACY_S = 1.0
READ_CHUNK = 1 << 20
GLOB_CHARS = frozenset("*?[")


def is_glob(pattern: str) -> bool:
    return not GLOB_CHARS.isdisjoint(pattern)


MISSING = "missing"
# the shell's words and its operators (a word after `>` is written, not read)
SHELL_TOKENS = re.compile(r"[<>&|;()]+|[^\s;&|()<>]+")
WRITES_NEXT = frozenset(("-o", "--output", "--out"))  # `sort x -o y`, `quarto render r.qmd --output y`
QUOTED = re.compile(r"""["']([^"'\s]+)["']""")  # a literal inside a word: -e "rmarkdown::render('x.Rmd')"
COMPACT_LINES = 20000  # hash-cache.tsv is rewritten past this many lines


class FingerprintError(Exception):
    """An input or output that cannot be fingerprinted: said in the task's log, the task fails."""


# --- hashing with a stat cache ----------------------------------------------------


class HashCache:
    """Content digests by (path, size, mtime_ns, inode), in an append-only text file."""

    def __init__(self, path: Path, *, one_look: bool = False) -> None:
        """`one_look`: a file's digest, once known, is the answer for the life of this cache (one
        decision, made at one moment: a file seen by several tasks is looked at once); never for a
        launcher, which hashes outputs after its task wrote them."""
        self.path = path
        self.seen: dict[str, str] | None = {} if one_look else None  # path -> digest (one_look)
        # one_look: what the decision looked at (incremental/up_to_date.py keeps it with an
        # all-up-to-date decision): file -> (size, mtime_ns, inode), folder listed -> mtime_ns
        # (None: no such folder), (root, glob) -> the files it matched
        self.looked: dict[str, tuple[int, int, int]] = {}
        self.folders: dict[str, int | None] = {}
        self.globs: dict[tuple[str, str], list[str]] = {}
        self.entries: dict[str, tuple[int, int, int, str]] = {}
        self.lines = 0
        self.new: list[str] = []
        self.listings: dict[str, frozenset[str]] = {}  # folder -> the names of its files, for is_file
        self.real_folders: dict[str, str] = {}  # folder -> its real path
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
        found = self.digest_if_there(path, shown)
        if found is None:
            raise FingerprintError(f"{shown} does not exist")
        return found

    def digest_if_there(self, path: str, shown: str) -> str | None:
        """digest(), or None when nothing is at `path` (a link to nothing is an error, as in digest)."""
        if self.seen is not None:
            known_digest = self.seen.get(path)
            if known_digest is None:
                known_digest = self._digest(path, shown)
                if known_digest is not None:
                    self.seen[path] = known_digest
            return known_digest
        return self._digest(path, shown)

    def _digest(self, path: str, shown: str) -> str | None:
        for _ in range(3):
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                return None
            except OSError as exc:
                raise FingerprintError(f"cannot read {shown}: {exc.strerror}") from None
            link = stat.S_ISLNK(st.st_mode)
            try:
                if link:
                    st = os.stat(path)
            except FileNotFoundError:
                raise FingerprintError(f"{shown} does not exist") from None
            except OSError as exc:
                raise FingerprintError(f"cannot read {shown}: {exc.strerror}") from None
            if stat.S_ISDIR(st.st_mode):
                raise FingerprintError(f"{shown} is a directory; list its files instead, e.g. {shown}/**/*")
            key = (st.st_size, st.st_mtime_ns, st.st_ino)
            if self.seen is not None:
                self.looked[path] = key
            # by the real path: a persisted file seen through each new release's `data` link is one entry
            real = os.path.realpath(path) if link else self._real_folder_of(path)
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

    def _real_folder_of(self, path: str) -> str:
        """os.path.realpath of `path`, itself not a link: its folder's real path (each folder
        resolved once for the life of this cache: realpath's lstat of every component, for each
        of a big pipeline's files, was a third of a no-change run's decision) and its name."""
        folder, name = os.path.split(path)
        if name in ("", ".", ".."):
            return os.path.realpath(path)
        real = self.real_folders.get(folder)
        if real is None:
            real = self.real_folders[folder] = os.path.realpath(folder or ".")
        return os.path.join(real, name)

    def is_file(self, path: str) -> bool:
        """Whether `path` is a file (a link to one counts), listing each folder once for the life of
        this cache (one decision): a script's imports are looked for in a few folders, and the words
        of hundreds of commands are looked up, without a stat for each."""
        folder, name = os.path.split(path)
        names = self.listings.get(folder)
        if names is None:
            if self.seen is not None:
                self.folders[folder] = folder_mtime(folder)  # before listing: a change in between shows
            names = self.listings[folder] = _files_in(folder or ".")
        return name in names

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


def folder_mtime(folder: str) -> int | None:
    """A folder's mtime (it changes when a name is added, removed or renamed in it); None: none there."""
    try:
        return os.stat(folder or ".").st_mtime_ns
    except OSError:
        return None


def _files_in(folder: str) -> frozenset[str]:
    """The names of the files in `folder` (links followed; a link to nothing is no file)."""
    names = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                try:
                    if entry.is_file():
                        names.append(entry.name)
                except OSError:
                    continue
    except OSError:
        pass
    return frozenset(names)


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
    salt = os.urandom(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        atomic_write_bytes(path, salt, 0o600)
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
    auto: tuple[str, ...] = AUTO_INPUT_KINDS  # the inputs flank finds itself (config.model.AUTO_INPUT_KINDS)
    setup: str | None = None  # the setup build the release runs in (git.deploy_log.release_setup_build)

    def to_json(self) -> dict[str, Any]:
        return {**self._asdict(), "upstream": {k: [d, list(o)] for k, (d, o) in self.upstream.items()}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TaskFiles:
        return cls(
            task=data["task"],
            release_dir=data["release_dir"],
            dir=data["dir"],
            command=data["command"],
            env=dict(data["env"]),
            inputs=tuple(data["inputs"]),
            outputs=tuple(data["outputs"]),
            upstream={k: (v[0], tuple(v[1])) for k, v in data["upstream"].items()},
            auto=tuple(data.get("auto", AUTO_INPUT_KINDS)),
            setup=data.get("setup"),
        )


def task_files(
    task: Task,
    pipeline: Pipeline,
    config: Config,
    release_dir: Path,
    salt: bytes,
    setup: str | None = None,
    params_env: Mapping[str, str] | None = None,
) -> TaskFiles:
    """`setup`: the release's setup build (git.deploy_log.release_setup_build), asked once per run;
    `params_env`: the run's parameters (FLANK_PARAM_*, issue 23), which count like env: a run with other
    values is not up to date."""
    env = {**config.env, **task.env, **(params_env or {})}
    return TaskFiles(
        task=task.name,
        release_dir=str(release_dir),
        dir=task.dir,
        command=task.run,
        env={k: env_digest(salt, k, v) for k, v in sorted(env.items())},
        inputs=task.inputs,
        outputs=task.outputs,
        upstream={  # a matrix_from: task's outputs before its cells are known: all of its instances'
            d: (pipeline.tasks[d].dir, tuple(cells_glob(o) for o in pipeline.tasks[d].outputs))
            for d in task.needs
            if d in pipeline.tasks and pipeline.tasks[d].outputs
        },
        auto=pipeline.auto_inputs_of(task.name),
        setup=setup,
    )


def command_scripts(
    command: str, task_dir: str | None, release_dir: str, is_file: Callable[[str], bool] = os.path.isfile
) -> list[str]:
    """Files of the repo named anywhere in the command, repo-relative: `Rscript R/model.R`,
    `source x.sh`, `--file=conf.yml`, `python -m pkg.job`, a literal in `-e "render('x.Rmd')"`,
    and an argument of a script found in the folder of that script (`Rscript R/run_step.R
    05_model.R` -> R/05_model.R). What the command writes is not an input: a word after `>`, `-o`,
    `--output`, and tee's arguments."""
    if any(c in command for c in "'\"\\"):
        try:
            lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
            lexer.whitespace_split = True
            tokens = list(lexer)
        except ValueError:
            tokens = SHELL_TOKENS.findall(command)
    else:  # no quoting: the same words, without shlex's cost (a big pipeline has hundreds of commands)
        tokens = SHELL_TOKENS.findall(command)
    found: list[str] = []
    before = ""
    tee = False  # `... | tee -a log.txt`: tee's arguments are written
    for word in tokens:
        previous, before = before, word
        if word and word[0] in "<>&|;()":
            tee = False
            continue
        tee = tee or word == "tee"
        if not word or tee or ">" in previous or previous in WRITES_NEXT:
            continue
        for candidate in _word_candidates(word, previous):
            rel = repo_relative(task_dir, candidate)
            if rel is None or rel == "." or rel in found:
                continue
            if is_file(f"{release_dir}/{rel}"):
                found.append(rel)
                continue
            # a script's argument naming a file beside it (the runner-script pattern)
            for script in found[-1:]:
                beside = repo_relative(os.path.dirname(script) or ".", candidate)
                if beside and beside not in found and is_file(f"{release_dir}/{beside}"):
                    found.append(beside)
    return found


def _word_candidates(word: str, previous: str) -> list[str]:
    if previous == "-m" and word.replace(".", "").replace("_", "a").isalnum():
        return [word.replace(".", "/") + ".py", word.replace(".", "/") + "/__main__.py"]
    candidates = [m.group(1) for m in QUOTED.finditer(word)]
    if "=" in word:
        word = word.rpartition("=")[2]  # --file=x.R, CONFIG=conf.yml
    if word and not word.startswith("-") and "$" not in word and not is_glob(word):
        candidates.insert(0, word)
    return [c for c in candidates if "$" not in c and not is_glob(c)]


def automatic_inputs(files: TaskFiles, cache: HashCache) -> dict[str, str]:
    """path -> digest of the inputs flank finds itself (files.auto): scripts named in the command
    and, one level, what they source or import."""
    if "scripts" not in files.auto and "sources" not in files.auto:
        return {}
    scripts = {
        script: cache.digest(os.path.join(files.release_dir, script), f"input {script}")
        for script in command_scripts(files.command, files.dir, files.release_dir, cache.is_file)
    }
    found = dict(scripts) if "scripts" in files.auto else {}
    if "sources" in files.auto:
        for script, digest in scripts.items():
            if not script_refs.is_followed(script):
                continue
            for ref in script_refs.referenced_files(files.release_dir, script, files.dir, digest, cache.is_file):
                if ref not in found and (ref not in scripts or "scripts" in files.auto):
                    found[ref] = cache.digest(os.path.join(files.release_dir, ref), f"input {ref} (used by {script})")
    return found


def glob_files(root: str, rel: str) -> list[str]:
    """The files (not folders) the repo-relative glob `rel` matches under `root`, sorted."""
    matches = glob.glob(rel, root_dir=root, recursive=True)
    return sorted(m for m in matches if not os.path.isdir(os.path.join(root, m)))


def _hash_patterns(
    files: TaskFiles, cache: HashCache, task_dir: str | None, patterns: Iterable[str], what: str
) -> dict[str, str]:
    """path -> digest; a missing plain path or a glob matching nothing -> {pattern: MISSING}."""
    out: dict[str, str] = {}
    for pattern in patterns:
        rel = repo_relative(task_dir, pattern)
        if rel is None:
            raise FingerprintError(f"{pattern} leads out of the repo")
        if not is_glob(pattern):  # a plain path: one look, its digest's lstat
            found = cache.digest_if_there(f"{files.release_dir}/{rel}", f"{what} {rel}")
            out[rel] = MISSING if found is None else found
            continue
        names = glob_files(files.release_dir, rel)
        if not names:
            out[rel] = MISSING
            continue
        if cache.seen is not None:
            cache.globs[(files.release_dir, rel)] = names
        for name in names:
            out[name] = cache.digest(f"{files.release_dir}/{name}", f"{what} {name}")
    return out


def fingerprint(files: TaskFiles, cache: HashCache) -> dict[str, Any]:
    """The task's fingerprint now (without its outputs). Raises FingerprintError."""
    # files named in the command that are outputs (its own, or its upstreams': those count as
    # upstream changes) are not inputs of their own
    outputs = {repo_relative(d, p) for d, outs in [(files.dir, files.outputs), *files.upstream.values()] for p in outs}
    output_globs = [o for o in outputs if o and is_glob(o)]
    inputs = _hash_patterns(files, cache, files.dir, files.inputs, "input")
    for path, digest in automatic_inputs(files, cache).items():
        if path not in outputs and path not in inputs and not any(fnmatchcase(path, o) for o in output_globs):
            inputs[path] = digest
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
    if "setup" in files.auto:
        fp["setup"] = files.setup
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
    if "setup" in new and old.get("setup") != new["setup"] and ("setup" in old or new["setup"]):
        # recorded before flank counted the environment: run once to record it (a later upgrade must show)
        before = old.get("setup", "unrecorded")
        return f"ran: environment changed ({_setup_change(before, new['setup'])})"
    changed = _changed_files(old.get("inputs") or {}, new["inputs"])
    if changed:
        return f"ran: {_some(changed)} changed"
    return None


def _setup_change(before: str | None, now: str | None) -> str:
    """'setup key 3f2a1c0… → 9b1e0d2…' from two setup builds (`<key16>-<n>`, or None: no setup)."""

    def key(build: str | None) -> str:
        if build == "unrecorded":
            return build
        return f"{build.partition('-')[0][:7]}…" if build else "none"

    if before and now and key(before) == key(now):
        return f"setup key {key(now)} rebuilt"
    return f"setup key {key(before)} → {key(now)}"


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


def read_state(path: str | Path) -> dict[str, Any] | None:
    try:
        data = json.loads(read_small_file(path))  # bytes: json decodes UTF-8 itself
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
    from datetime import datetime

    state = {
        "format": FORMAT,
        "hash": HASH_NAME,
        "task": task,
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "run_id": run_id,
        "commit": commit,
        **fp,
        "outputs": outputs,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(state, indent=1, sort_keys=True) + "\n", 0o600, durable=False)
