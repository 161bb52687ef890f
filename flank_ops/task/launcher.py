"""Which program a generated Makefile calls to run a task.

Normally the C launcher (task_exec.c), compiled on first use with `cc -O2` into
the user's cache, ~/.cache/flank/bin/flank-task-<hash of the source> (shared by
every FLANK_HOME of the user; XDG_CACHE_HOME is honoured): a new flank version
with a changed launcher gets a new binary, old Makefiles keep theirs, and a
deleted cache is rebuilt by the next run. With musl-gcc (Debian's musl-tools) it is
built against musl instead of glibc (issue 22): glibc's start-up asks the CPU its
cache sizes, ~70 CPUID instructions, each a trap to the hypervisor on a VM —
~0.55 ms a task on the 2-core test VM, ten times the rest of the launcher's
start (bench/overhead.py: a 500-task run's make took ~25% less time). Without a
C compiler (or with FLANK_TASK_EXEC=python) the pure-Python twin runs instead,
as `python -m flank_ops _task` — same command line and behaviour, slower per task.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from flank_ops.fileio import locked
from flank_ops.paths import Home

SOURCE = Path(__file__).with_name("task_exec.c")
COMPILERS = ("cc", "gcc", "clang")
MUSL_COMPILER = "musl-gcc"  # tried first (see above); its binary has a name of its own
# FLANK_TASK_EXEC=python forces the Python launcher, =c requires the compiled one.
IMPLEMENTATION_ENV = "FLANK_TASK_EXEC"


def python_launcher_argv() -> list[str]:
    return [sys.executable, "-m", "flank_ops", "_task"]


def user_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "flank"


def compiled_launcher_path(home: Home | None = None) -> Path:
    """Where the launcher built from this version's task_exec.c lives (built or not):
    the user's cache, or `home`'s own .flank/bin when one is given."""
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:16]
    folder = home.internal_dir / "bin" if home is not None else user_cache_dir() / "bin"
    musl = "musl-" if shutil.which(MUSL_COMPILER) else ""  # musl-tools installed later: built again with it
    return folder / f"flank-task-{musl}{digest}"


def find_compiler() -> str | None:
    for name in COMPILERS:
        found = shutil.which(name)
        if found:
            return found
    return None


def build_launcher(home: Home | None = None) -> Path | None:
    """The compiled launcher, building it if needed; None when it cannot be built.

    Built into a temp file and renamed, under a lock, so concurrent first runs
    neither collide nor ever see a half-written binary.
    """
    target = compiled_launcher_path(home)
    if os.access(target, os.X_OK):
        return target
    compiler = find_compiler()
    if compiler is None:
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    with locked(target.parent / ".build.lock"):
        if os.access(target, os.X_OK):
            return target
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        os.close(fd)
        try:
            musl = shutil.which(MUSL_COMPILER)
            proc = None
            if musl is not None:
                proc = subprocess.run([musl, "-O2", "-static", "-o", tmp, str(SOURCE)], capture_output=True, text=True)
            if proc is None or proc.returncode != 0:
                # static when the C library allows it: no dynamic loading per task (~15% of its cost)
                proc = subprocess.run(
                    [compiler, "-O2", "-static", "-o", tmp, str(SOURCE)],
                    capture_output=True,
                    text=True,
                )
            if proc.returncode != 0:
                proc = subprocess.run(
                    [compiler, "-O2", "-o", tmp, str(SOURCE)],
                    capture_output=True,
                    text=True,
                )
            if proc.returncode != 0:
                print(
                    f"flank: warning: could not compile the task launcher ({compiler} said: "
                    f"{proc.stderr.strip()[:500]}); using the slower Python launcher",
                    file=sys.stderr,
                )
                return None
            os.chmod(tmp, 0o755)
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return target


def task_launcher_argv() -> list[str]:
    """The command a Makefile recipe starts per task, before SPEC_FILE RUN_DIR."""
    choice = os.environ.get(IMPLEMENTATION_ENV, "").strip().lower()
    if choice == "python":
        return python_launcher_argv()
    binary = build_launcher()
    if binary is not None:
        return [str(binary)]
    if choice == "c":
        from flank_ops.errors import UserError

        raise UserError(
            "the C task launcher cannot be built: no working C compiler",
            "install one (apt-get install gcc) or unset FLANK_TASK_EXEC to use the Python launcher",
        )
    return python_launcher_argv()
