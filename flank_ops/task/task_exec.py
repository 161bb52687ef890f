"""The task launcher: runs one task of a generated Makefile, and the task spec format.

    flank-task SPEC_FILE RUN_DIR          (the compiled task_exec.c)
    python -m flank_ops _task SPEC_FILE RUN_DIR   (this module: no C compiler)

SPEC_FILE is a file of its own, or an entry of a plan's specs file: `plan/nightly.tasks/model.spec`
where `plan/nightly.tasks` is one file holding every spec of the plan (see encode_specs_file). Every
reader of a spec (both launchers, the checked launcher, the executors, matrix_from's cells) takes
either; a run writes one file for all its tasks instead of one each (issue 22).

Both do the same; task_exec.c is the one that normally runs (a Python interpreter
per task would cost ~10x plain make on a DAG of small tasks). Keep them in step.

The spec file (written by makefile.py, read here and by the C launcher) is a
sequence of NUL-terminated key, value strings — nothing a task's command can
contain needs escaping, and C parses it in a few lines:
    task, command, cwd, retries, retry_delay_s, timeout_s (0 = none), kill_grace_s,
    argv (repeated; present = exec these words directly, no shell), env (repeated, K=V),
    and for issue 14 (read by flank_ops.executors only; the C launcher skips unknown keys):
    executor ("local" when absent), memory_mb, cpus (0 = not declared), option (repeated, K=V:
    the executor's options from flank.yml, e.g. slurm: partition), memory_attempt_mb (repeated: issue 26's
    `memory: [4G, 8G]`, one per attempt), queue_timeout_s, and group, max_parallel (issue 26: a matrix task's bound)

What a launch leaves in RUN_DIR (the format of store/records.py):
    tasks/<task>.json  {"task", "status": "running", "attempt", "started_at", "pid"} at each attempt,
                       then {"task", "status": "success"|"failed"|"timed_out", "attempts", "exit_code",
                       ["signal"], "started_at", "ended_at", "duration_s", "peak_rss_kb", "cpu_s", "log",
                       ["error": why it failed whatever its exit, e.g. "could not write its log: ..."]}
                       The local launcher rewrites it in place, emptied first: a reader finds the
                       last record whole, an empty file, a prefix of the next (never JSON) or the
                       next whole (remote executors: a temp file and a rename; _write_result).
    logs/<task>.log    stdout+stderr as produced, secrets (FLANK_SECRET_NAMES) masked as ***
                       (run/secrets.py states the rule), and flank's own "flank: ..." lines
    logs/<task>.log.times  when each attempt and line began, appended as the log grows (created once
                       the log has output or a second attempt begins: a task that ran once and
                       printed nothing has its one attempt in its result alone):
                       attempt <n> <offset> <unix_ms>          attempt n starts; its output at byte offset
                       end <n> <offset> <unix_ms> <exit_code|-> <status>   attempt n ended (status:
                                                               success|failed|timed_out|interrupted)
                       <offset> <unix_ms>                      the log line starting at byte offset began
                       Line entries only when >= 100 ms passed since the previous entry: a line's
                       time is that of the nearest entry at or before its offset. Offsets are in
                       the log as stored (masked). "flank: attempt 2 of 3 after 10s" lies between
                       `end 1` and `attempt 2`.
Exit status: 0 when the task succeeded, non-zero otherwise (make -k then skips its dependents).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import select
import signal
import sys
import time
from collections.abc import Callable
from typing import NamedTuple

from flank_ops.clock import now_iso
from flank_ops.task.secrets import SecretMasker, secret_values_from_env

SPEC_FORMAT = "1"
CHUNK = 65536
EXIT_TIMED_OUT = 124
DEFAULT_KILL_GRACE_S = 5.0
TIMES_INTERVAL_S = 0.1  # at most ~10 line entries a second in logs/<task>.log.times
# make's own variables would leak make -k/-j and our command line into a make the task runs
MAKE_VARIABLES = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "MAKE_TERMOUT", "MAKE_TERMERR")


class TaskSpec(NamedTuple):
    task: str
    command: str
    cwd: str
    retries: int = 0
    retry_delay_s: float = 10.0
    timeout_s: float = 0.0  # 0 = no timeout
    kill_grace_s: float = DEFAULT_KILL_GRACE_S
    argv: tuple[str, ...] = ()  # non-empty: exec directly, without a shell
    env: tuple[tuple[str, str], ...] = ()
    # issue 14: where the task runs and what it declared
    executor: str = "local"
    memory_mb: int = 0  # 0 = not declared
    cpus: int = 0
    options: tuple[tuple[str, str], ...] = ()
    # issue 26: a matrix instance's task (group) and how many of its instances run at once (0 = any);
    # memory per attempt (memory_mb is the first)
    group: str = ""
    max_parallel: int = 0
    memory_per_attempt_mb: tuple[int, ...] = ()
    queue_timeout_s: float = 0.0  # issue 26: 0 = none (remote tasks only)

    def memory_for_attempt(self, attempt: int) -> int:
        """issue 26: what attempt n (from 1) asks for: the n-th of `memory: [...]`, the last for any after."""
        per = self.memory_per_attempt_mb
        return per[min(attempt, len(per)) - 1] if per else self.memory_mb


def encode_spec(spec: TaskSpec) -> bytes:
    head: list[tuple[str, str]] = [
        ("format", SPEC_FORMAT),
        ("task", spec.task),
        ("command", spec.command),
        ("cwd", spec.cwd),
        ("retries", str(int(spec.retries))),
        ("retry_delay_s", repr(float(spec.retry_delay_s))),
        ("timeout_s", repr(float(spec.timeout_s or 0))),
        ("kill_grace_s", repr(float(spec.kill_grace_s))),
    ]
    head += [("argv", word) for word in spec.argv]
    tail: list[tuple[str, str]] = []  # after the env pairs
    if spec.executor != "local" or spec.memory_mb or spec.cpus:
        tail += [("executor", spec.executor), ("memory_mb", str(int(spec.memory_mb))), ("cpus", str(int(spec.cpus)))]
        tail += [("option", f"{k}={v}") for k, v in spec.options]
        tail += [("memory_attempt_mb", str(int(mb))) for mb in spec.memory_per_attempt_mb]
        if spec.queue_timeout_s:
            tail.append(("queue_timeout_s", repr(float(spec.queue_timeout_s))))
    if spec.group:  # issue 26: a matrix instance (its task: a Slurm job array groups them)
        tail.append(("group", spec.group))
    if spec.max_parallel:
        tail.append(("max_parallel", str(int(spec.max_parallel))))
    # one join and one encode, the env pairs made once for the tasks that share them (issue 22: a
    # 500-task run's specs carry ~20,000 pairs, mostly the same environment)
    text = "".join([f"{key}\0{value}\0" for key, value in head]) + _env_text(spec.env)
    data = (text + "".join([f"{key}\0{value}\0" for key, value in tail])).encode("utf-8", "surrogateescape")
    if data.count(b"\0") != 2 * (len(head) + len(spec.env) + len(tail)):
        key = next((key for key, value in head + tail if "\0" in value), "env")
        raise ValueError(f"task {spec.task!r}: {key} contains a NUL character")
    return data


@functools.lru_cache(maxsize=16)
def _env_text(env: tuple[tuple[str, str], ...]) -> str:
    return "".join([f"env\0{name}={value}\0" for name, value in env])


# --- a plan's specs in one file -------------------------------------------------------
#
#   flank-specs\0 1\0 <index length>\0 <index> <contents>
#   index: (<name>\0 <offset>\0 <length>\0)* — an entry's bytes at <offset> from the index's end
#
# A launcher reads the header and index (one read for a few thousand tasks) and then its own entry:
# never the whole file. `<file>/<name>` reads entry <name>, as a path into a folder would.

SPECS_FILE_MAGIC = b"flank-specs\0"
SPECS_FILE_FORMAT = b"1"
SPECS_FILE_FIRST_READ = 16384  # the header and index of ~700 tasks in one read (task_exec.c reads as much)


def encode_specs_file(entries: dict[str, bytes]) -> bytes:
    """One file holding many specs (and other small files: a matrix_from: task's cells spec), by name."""
    index = bytearray()
    offset = 0
    for name, data in entries.items():
        if not name or "/" in name or "\0" in name:
            raise ValueError(f"bad name for a specs file entry: {name!r}")
        index += f"{name}\0{offset}\0{len(data)}\0".encode()
        offset += len(data)
    header = SPECS_FILE_MAGIC + SPECS_FILE_FORMAT + b"\0" + str(len(index)).encode() + b"\0"
    return b"".join([header, bytes(index), *entries.values()])


def _specs_file_index(fd: int, path: str) -> tuple[dict[str, tuple[int, int]], bytes, int]:
    """-> ({name: (start, length)} with absolute starts, the bytes read from the file's start, the
    contents' start). Raises ValueError for a file that is not a specs file."""
    head = os.pread(fd, SPECS_FILE_FIRST_READ, 0)
    if not head.startswith(SPECS_FILE_MAGIC):
        raise ValueError(f"{path} is not a flank specs file")
    parts = head[len(SPECS_FILE_MAGIC) :].split(b"\0", 2)
    if len(parts) < 3 or parts[0] != SPECS_FILE_FORMAT or not parts[1].isdigit():
        raise ValueError(f"{path} is not a flank specs file this flank reads (regenerate it with a push)")
    index_start = len(SPECS_FILE_MAGIC) + len(parts[0]) + len(parts[1]) + 2
    contents = index_start + int(parts[1])
    if len(head) < contents:
        head += os.pread(fd, contents - len(head), len(head))
    fields = head[index_start:contents].split(b"\0")[:-1]
    if len(fields) % 3:
        raise ValueError(f"{path} is truncated (regenerate it with a push)")
    index = {
        fields[i].decode("utf-8", "surrogateescape"): (contents + int(fields[i + 1]), int(fields[i + 2]))
        for i in range(0, len(fields), 3)
    }
    return index, head, contents


def specs_file_names(path: str) -> list[str]:
    """The names of a specs file's entries, in its order. Raises OSError / ValueError."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return list(_specs_file_index(fd, path)[0])
    finally:
        os.close(fd)


def read_spec_bytes(spec_path: str) -> bytes:
    """A spec as stored: the file `spec_path`, or entry `<name>` of the specs file `<file>/<name>`.
    Raises OSError / ValueError."""
    try:
        with open(spec_path, "rb") as f:
            return f.read()
    except NotADirectoryError:
        pass
    folder, _, name = spec_path.rpartition("/")
    fd = os.open(folder, os.O_RDONLY | os.O_CLOEXEC)
    try:
        index, head, _ = _specs_file_index(fd, folder)
        if name not in index:
            raise ValueError(f"{folder} has no entry {name} (regenerate it with a push)")
        start, length = index[name]
        data = head[start : start + length]
        if len(data) < length:
            data = os.pread(fd, length, start)
        if len(data) != length:
            raise ValueError(f"{folder} is truncated (regenerate it with a push)")
        return data
    finally:
        os.close(fd)


def specs_beside(spec_path: str) -> dict[str, str]:
    """The task specs beside `spec_path` (in its folder, or its specs file) by name (`<target>.spec`)
    -> the path each is read by, sorted by name; every spec a plan holds. Raises OSError / ValueError."""
    folder = os.path.dirname(spec_path)
    names = os.listdir(folder) if os.path.isdir(folder) else specs_file_names(folder)
    return {name: os.path.join(folder, name) for name in sorted(names) if name.endswith(".spec")}


def decode_spec(data: bytes) -> TaskSpec:
    if not data.endswith(b"\0"):
        raise ValueError("not a flank task spec")
    items = data[:-1].split(b"\0")
    if len(items) % 2:
        raise ValueError("truncated flank task spec")
    fields: dict[str, str] = {}
    argv: list[str] = []
    env: list[tuple[str, str]] = []
    options: list[tuple[str, str]] = []
    memory_per_attempt: list[int] = []
    for key_raw, value_raw in zip(items[::2], items[1::2]):
        key = key_raw.decode()
        value = value_raw.decode("utf-8", "surrogateescape")
        if key == "argv":
            argv.append(value)
        elif key == "env":
            name, _, val = value.partition("=")
            env.append((name, val))
        elif key == "option":
            name, _, val = value.partition("=")
            options.append((name, val))
        elif key == "memory_attempt_mb":
            memory_per_attempt.append(int(value))
        else:
            fields[key] = value
    if "task" not in fields or "command" not in fields:
        raise ValueError("the spec lacks a task name or command")
    return TaskSpec(
        task=fields["task"],
        command=fields["command"],
        cwd=fields.get("cwd", ""),
        retries=int(fields.get("retries", 0)),
        retry_delay_s=float(fields.get("retry_delay_s", 10)),
        timeout_s=float(fields.get("timeout_s", 0)),
        kill_grace_s=float(fields.get("kill_grace_s", DEFAULT_KILL_GRACE_S)),
        argv=tuple(argv),
        env=tuple(env),
        executor=fields.get("executor", "local"),
        memory_mb=int(fields.get("memory_mb", 0)),
        cpus=int(fields.get("cpus", 0)),
        options=tuple(options),
        group=fields.get("group", ""),
        max_parallel=int(fields.get("max_parallel", 0)),
        memory_per_attempt_mb=tuple(memory_per_attempt),
        queue_timeout_s=float(fields.get("queue_timeout_s", 0)),
    )


# --- the log and its times ---------------------------------------------------------


class TaskLog:
    """logs/<task>.log and its companion logs/<task>.log.times (format in the module docstring).

    The times file is created only once it tells something the result does not: the log got output,
    or a second attempt began (or it was there already). Until then its entries are held; a task that
    ran once and printed nothing leaves none (task_exec.c's struct task_log says why)."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        self.size = os.fstat(self.fd).st_size
        self.at_line_start = self.size == 0 or os.pread(self.fd, 1, self.size - 1) == b"\n"
        self.times_path = path + ".times"
        self.times_fd = -1
        self.held: list[bytes] | None = []  # entries not written yet; None: no times file to be had
        if self.size > 0:
            self.open_times()  # a log with output already (a task started again): its times go on
        else:
            with contextlib.suppress(OSError):  # or were there
                self.times_fd = os.open(self.times_path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
                self.held = []
        self.last_entry = float("-inf")
        self.lost: OSError | None = None  # a write to the log failed (e.g. a full disk): the task fails

    def open_times(self) -> None:
        """Create the times file (once) and write what was held for it; without it, no timestamps:
        the log itself matters more."""
        if self.times_fd >= 0 or self.held is None:
            return
        try:
            self.times_fd = os.open(self.times_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        except OSError:
            self.held = None
            return
        if self.held:
            with contextlib.suppress(OSError):
                os.write(self.times_fd, b"".join(self.held))
        self.held = []

    def write(self, data: bytes) -> None:
        if not data:
            return
        self.open_times()
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self.fd, view) :]
            except InterruptedError:
                continue
            except OSError as exc:
                self.lost = self.lost or exc  # e.g. a full disk: the result says so, the task fails
                break
        if time.monotonic() - self.last_entry >= TIMES_INTERVAL_S:
            if self.at_line_start:
                self._entry(f"{self.size}")
            else:
                newline = data.find(b"\n")
                if 0 <= newline < len(data) - 1:
                    self._entry(f"{self.size + newline + 1}")
        self.size += len(data)
        self.at_line_start = data.endswith(b"\n")

    def attempt_started(self, attempt: int) -> None:
        if attempt > 1:
            self.open_times()  # more than one attempt: the result alone cannot tell them apart
        self._entry(f"attempt {attempt} {self.size}")

    def attempt_ended(self, attempt: int, exit_code: int | None, status: str) -> None:
        self._entry(f"end {attempt} {self.size}", f" {'-' if exit_code is None else exit_code} {status}")

    def _entry(self, head: str, tail: str = "") -> None:
        self.last_entry = time.monotonic()
        line = f"{head} {time.time_ns() // 1_000_000}{tail}\n".encode()
        if self.times_fd >= 0:
            with contextlib.suppress(OSError):
                os.write(self.times_fd, line)
        elif self.held is not None:
            self.held.append(line)

    def close(self) -> None:
        os.close(self.fd)
        if self.times_fd >= 0:
            os.close(self.times_fd)


# --- running -----------------------------------------------------------------------


class AttemptOutcome(NamedTuple):
    """How one attempt of a task ended (a whole run's end is runner.Outcome)."""

    stopped: bool  # the launcher was told to stop: the task was ended, no retry
    exit_code: int  # shell convention: 128+signal for a signal death
    signal: int  # 0 = exited normally
    timed_out: bool
    peak_rss_kb: int
    reaped: bool = True  # False: the task's exit was never seen (exit_code means nothing)


def _write_result(run_dir: str, task: str, result: dict, in_place: bool = False) -> None:
    """tasks/<task>.json, whole, so a reader never mixes two records.

    By default through a temp file renamed over the last one: a reader always finds a whole record.
    The executors of remote jobs write so: their launcher may outlive the runner, and `--resume`,
    `flank cancel` and reconcile read its result once, as it is then. `in_place` (the local
    launcher, as task_exec.c): emptied first (O_TRUNC), then one write; a reader may find an empty
    file or a prefix of the new record (never JSON: read as caught mid-write), and its readers read
    again (the runner polls; the launcher dies with its runner). No temp file and no rename: on some
    disks creating a file costs ~100x writing one, and a task's result is written at least twice
    (issue 22)."""
    path = os.path.join(run_dir, "tasks", f"{task}.json")
    data = (json.dumps(result) + "\n").encode()
    target = path if in_place else os.path.join(run_dir, "tasks", f".{task}.json.{os.getpid()}.tmp")
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
    if not in_place:
        os.replace(target, path)


def _log(log: TaskLog, text: str) -> None:
    log.write(text.encode("utf-8"))


def _exec_task(spec: TaskSpec, out_fd: int) -> None:
    """In the forked child: never returns."""
    try:
        os.setpgid(0, 0)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        null_fd = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null_fd, 0)
        os.dup2(out_fd, 1)
        os.dup2(out_fd, 2)
        if spec.cwd:
            try:
                os.chdir(spec.cwd)
            except OSError as exc:
                os.write(2, f"flank: cannot enter the task's directory {spec.cwd}: {exc.strerror}\n".encode())
                os._exit(1)
        if spec.argv:
            try:
                os.execvp(spec.argv[0], list(spec.argv))
            except OSError as exc:
                if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                    os._exit(127)
                if exc.errno not in (errno.EACCES, errno.EPERM):
                    os.write(2, f"flank: cannot run {spec.argv[0]}: {exc.strerror}\n".encode())
                os._exit(126)
        os.execv("/bin/sh", ["sh", "-c", spec.command])
    except BaseException:  # noqa: BLE001 - a forked child must never return into Python code
        pass
    os._exit(127)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _reap_orphans() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _run_attempt(spec: TaskSpec, log: TaskLog, masker: SecretMasker[bytes], wake_fd: int) -> AttemptOutcome:  # noqa: C901 - mirrors task_exec.c step by step
    # always through a pipe: masking, and the times of lines, need to see the output
    out_r, out_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        _exec_task(spec, out_w)
    with contextlib.suppress(OSError):
        os.setpgid(pid, pid)
    os.close(out_w)

    status = 0
    rusage = None
    reaped = False
    timed_out = False
    term_sent = kill_sent = group_gone = False
    kill_at = give_up_at = 0.0
    pipe_open = True
    deadline = time.monotonic() + spec.timeout_s if spec.timeout_s > 0 else 0.0

    stopped = False
    poller = select.poll()
    poller.register(wake_fd, select.POLLIN)
    poller.register(out_r, select.POLLIN)
    while True:
        if not reaped:
            got, st, ru = os.wait4(pid, os.WNOHANG)
            if got == pid:
                status, rusage, reaped = st, ru, True
        now = time.monotonic()
        if not reaped and deadline and now >= deadline and not timed_out:
            timed_out = True
            _log(log, f"\nflank: timed out after {spec.timeout_s:g}s; stopping the task and everything it started\n")
        if not reaped and _stop_signal and not stopped:
            stopped = True
            _log(log, f"\nflank: stopped (signal {_stop_signal}); stopping the task and everything it started\n")
        # once the task is over (or out of time, or stopped), end the rest of its process group:
        # children, grandchildren, background jobs
        if (reaped or timed_out or stopped) and not term_sent:
            term_sent = True
            try:
                os.killpg(pid, signal.SIGTERM)
            except ProcessLookupError:
                group_gone = True
            kill_at = now + spec.kill_grace_s
        if reaped:
            _reap_orphans()
        if term_sent and not group_gone and not _group_alive(pid):
            group_gone = True
        if term_sent and not group_gone and not kill_sent and now >= kill_at:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            kill_sent = True
        if reaped and not give_up_at and (group_gone or kill_sent):
            give_up_at = now + 2  # a process outside the group may hold the pipe
        if reaped and group_gone and not pipe_open:
            break
        if reaped and give_up_at and now >= give_up_at:
            break

        wait_s = float("inf")
        if not term_sent and deadline:
            wait_s = deadline - now
        if term_sent and not group_gone:
            wait_s = min(wait_s, 0.02)
        if give_up_at:
            wait_s = min(wait_s, give_up_at - now)
        timeout_ms = None if wait_s == float("inf") else max(0, int(wait_s * 1000) + 1)
        for fd, _ in poller.poll(timeout_ms):
            if fd == wake_fd:
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_fd, 4096)
            elif fd == out_r and pipe_open:
                data = os.read(out_r, CHUNK)
                if data:
                    log.write(masker.feed(data))
                else:
                    pipe_open = False
                    poller.unregister(out_r)
    log.write(masker.feed(b"", final=True))
    os.close(out_r)
    _reap_orphans()

    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        code = 128 + sig
    else:
        sig = 0
        code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1
    return AttemptOutcome(stopped, code, sig, timed_out, int(rusage.ru_maxrss) if rusage else 0, reaped)


_stop_signal = 0


def _on_stop(signum: int, frame: object) -> None:
    """SIGTERM/SIGINT/SIGHUP: make passes a stop on to its jobs; Ctrl-C reaches make and
    us but not the task, which has its own process group. The wakeup fd wakes the poll."""
    global _stop_signal
    _stop_signal = signum


def _sleep_unless_stopped(seconds: float, wake_fd: int) -> None:
    end = time.monotonic() + seconds
    poller = select.poll()
    poller.register(wake_fd, select.POLLIN)
    while not _stop_signal and (left := end - time.monotonic()) > 0:
        if poller.poll(min(int(left * 1000) + 1, 3_600_000)):  # poll takes a C int of ms: wake hourly
            with contextlib.suppress(BlockingIOError):
                os.read(wake_fd, 4096)


def _become_subreaper() -> None:
    """Orphaned grandchildren come to us, so leftover background jobs can be reaped."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def launch(
    spec: TaskSpec, run_dir: str, extra: dict | None = None, finish: Callable[[dict, TaskLog], dict] | None = None
) -> int:
    """Run the task. `extra` goes into every result written; `finish` may change the final
    result before it is written (the checked launcher fails a success that lacks its outputs)."""
    os.makedirs(os.path.join(run_dir, "tasks"), exist_ok=True)
    os.makedirs(os.path.join(run_dir, "logs"), exist_ok=True)
    log = TaskLog(os.path.join(run_dir, "logs", f"{spec.task}.log"))

    secrets = secret_values_from_env(os.environ)
    memory_held = _memory_reservations(spec)
    for name in MAKE_VARIABLES:
        os.environ.pop(name, None)
    os.environ["FLANK_TASK"] = spec.task
    for name, value in spec.env:
        if name:
            os.environ[name] = value

    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # only to wake the poll
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    for stop in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(stop, _on_stop)
    _become_subreaper()

    started_at = now_iso()
    t0 = time.monotonic()
    attempts_allowed = spec.retries + 1
    delay = spec.retry_delay_s
    peak = 0
    attempt = 0
    outcome = AttemptOutcome(False, 1, 0, False, 0)
    for attempt in range(1, attempts_allowed + 1):
        running = {
            "task": spec.task,
            "status": "running",
            "attempt": attempt,
            "started_at": started_at,
            "pid": os.getpid(),
            **_attempt_memory(spec, attempt),
            **(extra or {}),
        }
        _write_result(run_dir, spec.task, running, in_place=True)
        if attempt > 1:
            _log(log, f"flank: attempt {attempt} of {attempts_allowed} after {delay:g}s\n")
            _sleep_unless_stopped(delay, wake_r)
            delay *= 2
            if memory_held is not None and not _stop_signal:
                _hold_memory(memory_held, spec, attempt, log, run_dir, running, wake_r)
        ran = not _stop_signal
        if ran:
            log.attempt_started(attempt)
            outcome = _run_attempt(spec, log, SecretMasker(secrets), wake_r)
        peak = max(peak, outcome.peak_rss_kb)
        if outcome.stopped or _stop_signal:
            # leave the "running" record: the runner marks the task interrupted
            if ran:
                log.attempt_ended(attempt, outcome.exit_code if outcome.reaped else None, "interrupted")
            log.close()
            return 128 + (_stop_signal or signal.SIGTERM)
        if log.lost is not None:  # its output is not all kept: failed, and no retry (the disk is likely full)
            log.attempt_ended(attempt, outcome.exit_code if outcome.reaped else None, "failed")
            break
        if outcome.exit_code == 0 and not outcome.timed_out:
            log.attempt_ended(attempt, outcome.exit_code, "success")
            break
        if not outcome.timed_out and outcome.exit_code == 127:
            if spec.argv:
                _log(log, f"flank: command not found: {spec.argv[0]} — is it installed on this VM (and on PATH)?\n")
            else:
                _log(
                    log,
                    "flank: exit 127: a command was not found (the shell names it above) — "
                    "is it installed on this VM (and on PATH)?\n",
                )
        elif not outcome.timed_out and outcome.exit_code == 126:
            what = spec.argv[0] if spec.argv else "a command"
            _log(
                log,
                f"flank: exit 126: {what} is not executable — check its permissions "
                "(chmod +x) or run it through its interpreter\n",
            )
        log.attempt_ended(
            attempt, outcome.exit_code if outcome.reaped else None, "timed_out" if outcome.timed_out else "failed"
        )

    result = _final_result(spec, attempt, outcome, started_at, round(time.monotonic() - t0, 3), peak, log.lost)
    result.update(extra or {})
    if finish is not None:
        result = finish(result, log)
    _write_result(run_dir, spec.task, result, in_place=True)
    log.close()
    if result["status"] == "failed" and outcome.exit_code == 0:
        return 1
    if outcome.timed_out:
        return EXIT_TIMED_OUT
    if outcome.exit_code == 0:
        return 0
    return outcome.exit_code if 0 < outcome.exit_code < 256 else 1


def _final_result(
    spec: TaskSpec,
    attempts: int,
    outcome: AttemptOutcome,
    started_at: str,
    duration_s: float,
    peak_rss_kb: int,
    log_lost: OSError | None,
) -> dict:
    """tasks/<task>.json once the task is over (the module docstring has its keys). A log that could
    not be written fails the task, whatever its exit: its output is not all kept."""
    status = "timed_out" if outcome.timed_out else "success" if outcome.exit_code == 0 else "failed"
    result: dict = {
        "task": spec.task,
        "status": "failed" if log_lost is not None else status,
        "attempts": attempts,
        "exit_code": outcome.exit_code,
    }
    if outcome.signal:
        result["signal"] = outcome.signal
    result.update(
        {
            "started_at": started_at,
            "ended_at": now_iso(),
            "duration_s": duration_s,
            "peak_rss_kb": peak_rss_kb,
            "cpu_s": _children_cpu_s(),
            "log": f"logs/{spec.task}.log",
            **_attempt_memory(spec, attempts),
        }
    )
    if log_lost is not None:
        result["error"] = f"could not write its log: {log_lost.strerror or log_lost}"
    return result


def _memory_reservations(spec: TaskSpec) -> tuple | None:
    """issue 26 memory: [4G, 8G]: where each next attempt's memory is held (task/memory_hold.py), taken
    out of the environment before the task's is made; None when nobody holds memory for the task."""
    if len(spec.memory_per_attempt_mb) < 2:
        return None
    from flank_ops.task.memory_hold import take_from_env

    return take_from_env()


def _attempt_memory(spec: TaskSpec, attempt: int) -> dict:
    """issue 26: what attempt `attempt` asks for (memory: [4G, 8G]), in each result the record takes."""
    return {"memory_mb": spec.memory_for_attempt(attempt)} if spec.memory_per_attempt_mb else {}


def _hold_memory(
    where: tuple, spec: TaskSpec, attempt: int, log: TaskLog, run_dir: str, running: dict, wake_r: int
) -> None:
    """issue 26: take attempt `attempt`'s memory on the VM (task/memory_hold.py); while the other tasks
    leave no room, the task is queued and says why. A stop while waiting sets _stop_signal."""
    from flank_ops.task.memory_hold import hold

    waited = []

    def say(reason: str) -> None:
        waited.append(reason)
        _log(log, f"flank: {reason}\n")
        _write_result(run_dir, spec.task, {**running, "status": "queued", "queued_reason": reason}, in_place=True)

    hold(
        where,
        spec.memory_for_attempt(attempt),
        attempt,
        say,
        lambda: bool(_stop_signal),
        lambda seconds: _sleep_unless_stopped(seconds, wake_r),
    )
    if waited and not _stop_signal:
        _write_result(run_dir, spec.task, running, in_place=True)


def _children_cpu_s() -> float:
    """CPU time of every process this launcher waited for (the task, its reaped leftovers)."""
    import resource

    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return round(used.ru_utime + used.ru_stime, 3)


def main(argv: list[str]) -> int:
    """`flank _task SPEC_FILE RUN_DIR` — the portable twin of task_exec.c."""
    if len(argv) != 2:
        print("usage: flank _task SPEC_FILE RUN_DIR\n  (runs one task of a flank Makefile)", file=sys.stderr)
        return 2
    spec_path, run_dir = argv
    spec = read_spec_file(spec_path)
    return 2 if spec is None else launch(spec, run_dir)


def read_spec_file(spec_path: str) -> TaskSpec | None:
    """A task spec file as every launcher reads it (this one, the checked launcher, the executors);
    None, with one line on stderr, when it cannot be read or names a task no file may be called."""
    try:
        spec = decode_spec(read_spec_bytes(spec_path))
    except (OSError, ValueError) as exc:
        print(f"flank-task: cannot read the task spec {spec_path}: {exc}", file=sys.stderr)
        return None
    if "/" in spec.task or "\\" in spec.task or '"' in spec.task:
        print(f"flank-task: {spec_path}: bad task name", file=sys.stderr)
        return None
    return spec
