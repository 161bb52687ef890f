"""The task launcher: runs one task of a generated Makefile, and the task spec format.

    flank-task SPEC_FILE RUN_DIR          (the compiled task_exec.c)
    python -m flank_ops _task SPEC_FILE RUN_DIR   (this module: no C compiler)

Both do the same; task_exec.c is the one that normally runs (a Python interpreter
per task would cost ~10x plain make on a DAG of small tasks). Keep them in step.

The spec file (written by makefile.py, read here and by the C launcher) is a
sequence of NUL-terminated key, value strings — nothing a task's command can
contain needs escaping, and C parses it in a few lines:
    task, command, cwd, retries, retry_delay_s, timeout_s (0 = none), kill_grace_s,
    argv (repeated; present = exec these words directly, no shell), env (repeated, K=V)

What a launch leaves in RUN_DIR (the format of run/records.py):
    tasks/<task>.json  {"task", "status": "running", "attempt", "started_at", "pid"} at each attempt,
                       then {"task", "status": "success"|"failed"|"timed_out", "attempts", "exit_code",
                       ["signal"], "started_at", "ended_at", "duration_s", "peak_rss_kb", "log"}
    logs/<task>.log    stdout+stderr as produced, secrets (FLANK_SECRET_NAMES) masked as ***
Exit status: 0 when the task succeeded, non-zero otherwise (make -k then skips its dependents).
"""
from __future__ import annotations

import errno
import json
import os
import select
import signal
import sys
import time
from typing import NamedTuple

SPEC_FORMAT = "1"
CHUNK = 65536
EXIT_TIMED_OUT = 124
DEFAULT_KILL_GRACE_S = 5.0
MIN_SECRET_LEN = 3  # shorter values would mask ordinary text everywhere
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


def encode_spec(spec: TaskSpec) -> bytes:
    pairs: list[tuple[str, str]] = [
        ("format", SPEC_FORMAT),
        ("task", spec.task),
        ("command", spec.command),
        ("cwd", spec.cwd),
        ("retries", str(int(spec.retries))),
        ("retry_delay_s", repr(float(spec.retry_delay_s))),
        ("timeout_s", repr(float(spec.timeout_s or 0))),
        ("kill_grace_s", repr(float(spec.kill_grace_s))),
    ]
    pairs += [("argv", word) for word in spec.argv]
    pairs += [("env", f"{k}={v}") for k, v in spec.env]
    out = bytearray()
    for key, value in pairs:
        raw = value.encode("utf-8", "surrogateescape")
        if b"\0" in raw:
            raise ValueError(f"task {spec.task!r}: {key} contains a NUL character")
        out += key.encode() + b"\0" + raw + b"\0"
    return bytes(out)


def decode_spec(data: bytes) -> TaskSpec:
    if not data.endswith(b"\0"):
        raise ValueError("not a flank task spec")
    items = data[:-1].split(b"\0")
    if len(items) % 2:
        raise ValueError("truncated flank task spec")
    fields: dict[str, str] = {}
    argv: list[str] = []
    env: list[tuple[str, str]] = []
    for key_raw, value_raw in zip(items[::2], items[1::2]):
        key = key_raw.decode()
        value = value_raw.decode("utf-8", "surrogateescape")
        if key == "argv":
            argv.append(value)
        elif key == "env":
            name, _, val = value.partition("=")
            env.append((name, val))
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
    )


# --- masking -------------------------------------------------------------------

class SecretMasker:
    """Replaces secret values by *** in a byte stream, even across chunk boundaries."""

    def __init__(self, secrets: list[bytes]) -> None:
        self.secrets = sorted({s for s in secrets if len(s) >= MIN_SECRET_LEN}, key=len, reverse=True)
        self.carry = b""

    def feed(self, data: bytes, final: bool = False) -> bytes:
        data = self.carry + data
        for secret in self.secrets:
            data = data.replace(secret, b"***")
        self.carry = b""
        if not final:
            # hold back the longest tail that could be the start of a secret
            longest = max((len(s) for s in self.secrets), default=1)
            for k in range(min(longest - 1, len(data)), 0, -1):
                tail = data[-k:]
                if any(s.startswith(tail) for s in self.secrets):
                    self.carry = tail
                    data = data[:-k]
                    break
        return data


def secrets_from_env(environ: dict[str, str]) -> list[bytes]:
    names = [n for n in environ.get("FLANK_SECRET_NAMES", "").split(",") if n]
    values = [os.fsencode(environ[n]) for n in names if n in environ]
    return [v for v in values if len(v) >= MIN_SECRET_LEN]


# --- running -----------------------------------------------------------------------

def now_iso() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class Outcome(NamedTuple):
    stopped: bool  # the launcher was told to stop: the task was ended, no retry
    exit_code: int  # shell convention: 128+signal for a signal death
    signal: int  # 0 = exited normally
    timed_out: bool
    peak_rss_kb: int


def _write_result(run_dir: str, task: str, result: dict) -> None:
    path = os.path.join(run_dir, "tasks", f"{task}.json")
    tmp = os.path.join(run_dir, "tasks", f".{task}.json.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(json.dumps(result) + "\n")
    os.replace(tmp, path)


def _log(log_fd: int, text: str) -> None:
    os.write(log_fd, text.encode("utf-8"))


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


def _run_attempt(spec: TaskSpec, log_fd: int, masker: SecretMasker | None, wake_fd: int) -> Outcome:
    out_r = out_w = -1
    if masker:
        out_r, out_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        _exec_task(spec, out_w if masker else log_fd)
    try:
        os.setpgid(pid, pid)
    except OSError:
        pass
    if masker:
        os.close(out_w)

    status = 0
    rusage = None
    reaped = False
    timed_out = False
    term_sent = kill_sent = group_gone = False
    kill_at = give_up_at = 0.0
    pipe_open = masker is not None
    deadline = time.monotonic() + spec.timeout_s if spec.timeout_s > 0 else 0.0

    stopped = False
    poller = select.poll()
    poller.register(wake_fd, select.POLLIN)
    if pipe_open:
        poller.register(out_r, select.POLLIN)
    while True:
        if not reaped:
            got, st, ru = os.wait4(pid, os.WNOHANG)
            if got == pid:
                status, rusage, reaped = st, ru, True
        now = time.monotonic()
        if not reaped and deadline and now >= deadline and not timed_out:
            timed_out = True
            _log(log_fd, f"\nflank: timed out after {spec.timeout_s:g}s; stopping the task and everything it started\n")
        if not reaped and _stop_signal and not stopped:
            stopped = True
            _log(log_fd, f"\nflank: stopped (signal {_stop_signal}); stopping the task and everything it started\n")
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
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
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
                try:
                    os.read(wake_fd, 4096)
                except BlockingIOError:
                    pass
            elif fd == out_r and pipe_open:
                data = os.read(out_r, CHUNK)
                if data:
                    os.write(log_fd, masker.feed(data))  # type: ignore[union-attr]
                else:
                    pipe_open = False
                    poller.unregister(out_r)
    if masker:
        tail = masker.feed(b"", final=True)
        if tail:
            os.write(log_fd, tail)
        os.close(out_r)
    _reap_orphans()

    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        code = 128 + sig
    else:
        sig = 0
        code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1
    return Outcome(stopped, code, sig, timed_out, int(rusage.ru_maxrss) if rusage else 0)


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
        if poller.poll(int(left * 1000) + 1):
            try:
                os.read(wake_fd, 4096)
            except BlockingIOError:
                pass


def _become_subreaper() -> None:
    """Orphaned grandchildren come to us, so leftover background jobs can be reaped."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def launch(spec: TaskSpec, run_dir: str) -> int:
    os.makedirs(os.path.join(run_dir, "tasks"), exist_ok=True)
    os.makedirs(os.path.join(run_dir, "logs"), exist_ok=True)
    log_fd = os.open(os.path.join(run_dir, "logs", f"{spec.task}.log"),
                     os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)

    secrets = secrets_from_env(dict(os.environ))
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
    outcome = Outcome(False, 1, 0, False, 0)
    for attempt in range(1, attempts_allowed + 1):
        _write_result(run_dir, spec.task, {"task": spec.task, "status": "running", "attempt": attempt,
                                           "started_at": started_at, "pid": os.getpid()})
        if attempt > 1:
            _log(log_fd, f"flank: attempt {attempt} of {attempts_allowed} after {delay:g}s\n")
            _sleep_unless_stopped(delay, wake_r)
            delay *= 2
        masker = SecretMasker(secrets) if secrets else None
        if not _stop_signal:
            outcome = _run_attempt(spec, log_fd, masker, wake_r)
        peak = max(peak, outcome.peak_rss_kb)
        if outcome.stopped or _stop_signal:
            # leave the "running" record: the runner marks the task interrupted
            os.close(log_fd)
            return 128 + (_stop_signal or signal.SIGTERM)
        if outcome.exit_code == 0 and not outcome.timed_out:
            break
        if not outcome.timed_out and outcome.exit_code == 127:
            if spec.argv:
                _log(log_fd, f"flank: command not found: {spec.argv[0]} — is it installed on this VM (and on PATH)?\n")
            else:
                _log(log_fd, "flank: exit 127: a command was not found (the shell names it above) — "
                             "is it installed on this VM (and on PATH)?\n")
        elif not outcome.timed_out and outcome.exit_code == 126:
            what = spec.argv[0] if spec.argv else "a command"
            _log(log_fd, f"flank: exit 126: {what} is not executable — check its permissions "
                         "(chmod +x) or run it through its interpreter\n")

    if outcome.timed_out:
        status = "timed_out"
    else:
        status = "success" if outcome.exit_code == 0 else "failed"
    result: dict = {"task": spec.task, "status": status, "attempts": attempt, "exit_code": outcome.exit_code}
    if outcome.signal:
        result["signal"] = outcome.signal
    result.update({
        "started_at": started_at,
        "ended_at": now_iso(),
        "duration_s": round(time.monotonic() - t0, 3),
        "peak_rss_kb": peak,
        "log": f"logs/{spec.task}.log",
    })
    _write_result(run_dir, spec.task, result)
    os.close(log_fd)
    if outcome.timed_out:
        return EXIT_TIMED_OUT
    if outcome.exit_code == 0:
        return 0
    return outcome.exit_code if 0 < outcome.exit_code < 256 else 1


def main(argv: list[str]) -> int:
    """`flank _task SPEC_FILE RUN_DIR` — the portable twin of task_exec.c."""
    if len(argv) != 2:
        print("usage: flank _task SPEC_FILE RUN_DIR\n  (runs one task of a flank Makefile)", file=sys.stderr)
        return 2
    spec_path, run_dir = argv
    try:
        with open(spec_path, "rb") as f:
            spec = decode_spec(f.read())
    except (OSError, ValueError) as exc:
        print(f"flank-task: cannot read the task spec {spec_path}: {exc}", file=sys.stderr)
        return 2
    if "/" in spec.task or "\\" in spec.task or '"' in spec.task:
        print(f"flank-task: {spec_path}: bad task name", file=sys.stderr)
        return 2
    return launch(spec, run_dir)
