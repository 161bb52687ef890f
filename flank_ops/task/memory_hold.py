"""The VM's memory reservations of local tasks that declared `memory:` (issue 14), attempt by attempt.

    <Home.memory_reservations_dir>/<pid>    "<MB>\n": what the task of that launcher holds now
    <Home.memory_reservations_dir>/.lock    flock'ed while one of them is read, summed or written

executors/resources.py reserves the first attempt's memory before it execs the launcher (same pid, so a
reservation ends with its task). A task with `memory: [4G, 8G, 16G]` (issue 26) asks for more at each
retry: the launcher (task_exec.c, and its twin task_exec.py through `hold`) lets go of its memory
between attempts and takes the next attempt's once the other tasks leave room, so what the VM holds is
what the running attempt asked for, and the record says that size. The launcher learns the folder and
the VM's size from RESERVATIONS_ENV and VM_MB_ENV, which it removes before the task sees its environment.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from flank_ops.fileio import locked

RESERVATIONS_ENV = "FLANK_MEMORY_RESERVATIONS"
VM_MB_ENV = "FLANK_VM_MEMORY_MB"
WAIT_POLL_S = 0.5


def size_text(mb: int) -> str:
    """400G, 1.5G, 512M: as a person writes memory: in flank.yml (task_exec.c has its twin)."""
    if mb >= 1024:
        gb = mb / 1024
        return f"{gb:.0f}G" if gb >= 10 or gb == int(gb) else f"{gb:.1f}G"
    return f"{mb}M"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def reserved_mb(folder: Path, but: int | None = None) -> int:
    """Declared memory of the tasks running now (all but pid `but`); stale reservations (their pid
    gone) are removed."""
    total = 0
    for entry in folder.glob("[0-9]*"):
        try:
            pid, mb = int(entry.name), int(entry.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
        if pid == but:
            continue
        if _pid_alive(pid):
            total += mb
        else:
            entry.unlink(missing_ok=True)
    return total


def try_reserve(folder: Path, memory_mb: int, vm_mb: int) -> int | None:
    """Reserve memory_mb for this process (in place of what it held); None when done, else the MB
    held by the others. While it waits, this process holds nothing (two retrying tasks never wait
    for each other)."""
    folder.mkdir(parents=True, exist_ok=True)
    mine = folder / str(os.getpid())
    with locked(folder / ".lock"):
        held = reserved_mb(folder, but=os.getpid())
        if held and held + memory_mb > vm_mb:
            if mine.exists():
                mine.write_text("0\n")
            return held
        mine.write_text(f"{memory_mb}\n")
    return None


def take_from_env() -> tuple[Path, int] | None:
    """(reservations folder, the VM's MB) that executors/resources.py passed down, taken out of the
    environment (the task never sees them); None when there are none."""
    folder, vm_mb = os.environ.pop(RESERVATIONS_ENV, None), os.environ.pop(VM_MB_ENV, None) or ""
    return (Path(folder), int(vm_mb)) if folder and vm_mb.isdigit() else None


def hold(
    where: tuple[Path, int],
    memory_mb: int,
    attempt: int,
    say: Callable[[str], None],
    stopped: Callable[[], bool],
    sleep: Callable[[float], None],
) -> bool:
    """The launcher's hold of attempt `attempt`'s memory in `where` (take_from_env); `say` gets the
    waiting line once. False when stopped while waiting."""
    folder, vm_mb = where
    said = False
    while (held := try_reserve(folder, memory_mb, vm_mb)) is not None:
        if stopped():
            return False
        if not said:
            said = True
            say(waiting_text(memory_mb, held, vm_mb, attempt))
        sleep(WAIT_POLL_S)
    return True


def waiting_text(memory_mb: int, held: int, vm_mb: int, attempt: int = 1) -> str:
    """Why a task waits (its log and its queued reason); task_exec.c words it the same."""
    who = "it needs" if attempt == 1 else f"attempt {attempt} needs"
    return (
        f"waiting for memory: {who} {size_text(memory_mb)}, tasks running on this VM "
        f"declared {size_text(held)} of its {size_text(vm_mb)}"
    )
