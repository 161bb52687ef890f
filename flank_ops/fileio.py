"""Atomic writes, locks and file modes: a reader or a crash never sees a half-written file.

Who may read what (one rule): everything under FLANK_HOME is the owner's — flank's
entry points set a umask of (yours | 077), so folders are 0700 and files 0600 or
stricter — except the status site, which a web server running as another user
serves: its files are 0644 and its folders 0755 whatever the umask (`public=True`,
`public_folder`). Keep the site private by keeping FLANK_HOME itself 0700.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from flank_ops.errors import UserError

PUBLIC_FILE_MODE = 0o644  # site files: read by a web server running as another user
PUBLIC_DIR_MODE = 0o755


def make_state_private() -> None:
    """Add 077 to this process's umask (and its children's: hooks, make, tasks).

    Called once at flank's entry points, so every file and folder flank (or git,
    or a task) creates under FLANK_HOME is the owner's only; a stricter umask stays.
    """
    os.umask(os.umask(0o077) | 0o077)


def current_umask() -> int:
    # No getter exists: set and restore (another thread creating a file in between
    # gets the stricter 077, never a looser mode).
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def umasked(mode: int) -> int:
    """`mode` as the umask allows it, for an explicit chmod of private state (chmod ignores the umask)."""
    return mode & ~current_umask()


def public_folder(folder: Path, root: Path) -> None:
    """Make `folder` and every folder from `root` down to it exist with mode 0755.

    For the site: a folder created under flank's 077 umask would be 0700 and the
    web server would answer 403.
    """
    folder, root = Path(folder), Path(root)
    chain = [folder, *folder.parents]
    if root not in chain:
        raise ValueError(f"{folder} is not inside {root}")
    root.parent.mkdir(parents=True, exist_ok=True)
    for d in reversed(chain[: chain.index(root) + 1]):
        with contextlib.suppress(FileExistsError):
            d.mkdir()
        st = d.stat()
        if stat.S_IMODE(st.st_mode) != PUBLIC_DIR_MODE and st.st_uid == os.getuid():
            os.chmod(d, PUBLIC_DIR_MODE)


def _create_temp(path: Path) -> tuple[int, str]:
    """A new 0600 file beside `path`, named as tempfile.mkstemp names it (.<name>.<random>.tmp),
    without importing tempfile: it brings random and shutil, a few ms of every command's start."""
    while True:
        tmp = str(path.parent / f".{path.name}.{os.urandom(6).hex()}.tmp")
        try:
            return os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600), tmp
        except FileExistsError:
            continue


def atomic_write_bytes(
    path: Path, data: bytes, mode: int | None = None, *, durable: bool = True, public: bool = False
) -> None:
    """Write `data` to a temp file beside `path`, fsync it, then rename over `path`.

    Readers never see half a file either way. durable=False skips the fsync: for
    files that are cheap to regenerate (site pages, task specs in a folder not yet
    published), where a crash may lose the newest version but never leaves a torn one.
    The file is 0600 by default; `mode` is masked by the umask (0o755 -> 0700 under
    flank's umask); public=True makes it 0644 whatever the umask (site files only).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(path)
    try:
        if public:
            os.fchmod(fd, PUBLIC_FILE_MODE)
        elif mode is not None:
            os.fchmod(fd, umasked(mode))
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_text(
    path: Path, text: str, mode: int | None = None, *, durable: bool = True, public: bool = False
) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), mode, durable=durable, public=public)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def read_small_file(path: str | Path) -> bytes:
    """A file's bytes by plain reads: open() builds a buffered file object and asks the file's
    size, position and whether it is a terminal, which for the hundreds of small files a run
    reads (a fingerprint, a launcher's result per task) cost several times the reads. A read
    short of the block is the end (a regular file's). Raises OSError."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = [os.read(fd, 1 << 16)]
        while len(chunks[-1]) == 1 << 16:
            chunks.append(os.read(fd, 1 << 16))
    finally:
        os.close(fd)
    return b"".join(chunks)


def append_line(path: Path, line: str) -> None:
    """Append one line with a single O_APPEND write, so concurrent writers never interleave."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (line.rstrip("\n") + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def append_json_line(path: Path, obj: Any) -> None:
    append_line(path, json.dumps(obj, ensure_ascii=False, separators=(",", ":")))


def read_json_lines(path: Path, required_key: str) -> Iterator[dict[str, Any]]:
    """The objects of an append-only JSON-lines file, oldest first. Lines a crash or
    an older version left damaged (not JSON, not an object, no `required_key`) are skipped."""
    try:
        f = open(path, encoding="utf-8")
    except FileNotFoundError:
        return
    with f:
        for line in f:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and required_key in entry:
                yield entry


class Tail(NamedTuple):
    lines: list[tuple[int, bytes]]  # (where the line starts in the file, the line without its newline)
    truncated: bool  # the file holds more than these lines
    size: int  # the file's size when read
    ends_with_newline: bool  # the last line is complete


def tail_lines(path: Path, max_lines: int, max_bytes: int | None = None, block: int = 64 * 1024) -> Tail:
    """The last `max_lines` lines of a file, read from its end in blocks: at most `max_bytes` (None:
    as far back as those lines go), never the whole of a big file. A line cut by the window is left
    out, unless it is all there is. Raises OSError (a missing file too)."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        floor = 0 if max_bytes is None else max(0, size - max_bytes)
        start, data = size, b""
        while start > floor and data.count(b"\n") <= max_lines:
            step = min(block, start - floor)
            start -= step
            f.seek(start)
            data = f.read(step) + data
            block *= 2  # a log of long lines: few reads, each line counted a few times at most
    truncated = start > 0
    if truncated:
        cut = data.find(b"\n")
        if 0 <= cut < len(data) - 1:
            start += cut + 1
            data = data[cut + 1 :]
    out: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(data):
        end = data.find(b"\n", pos)
        end = len(data) if end < 0 else end
        out.append((start + pos, data[pos:end]))
        pos = end + 1
    if len(out) > max_lines:
        out = out[len(out) - max_lines :]
        truncated = True
    return Tail(out, truncated, size, data.endswith(b"\n"))


def atomic_symlink(target: str | Path, link: Path) -> None:
    """Point `link` at `target`, replacing any old link in one rename."""
    link = Path(link)
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    os.symlink(target, tmp)
    os.replace(tmp, link)


def open_lock_file(lock_path: Path) -> int:
    """Open (creating, 0600) a lock file, never through a symlink: a link planted by
    another user must not make flank create or truncate a file of its choosing."""
    try:
        return os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UserError(
                f"the lock file {lock_path} is a symbolic link; flank does not follow it",
                "remove that link (someone else may have planted it), then try again",
            ) from None
        raise


@contextlib.contextmanager
def locked(lock_path: Path, *, blocking: bool = True, shared: bool = False) -> Iterator[bool]:
    """Hold an exclusive (or, with shared=True, a shared) flock on `lock_path` for the block.

    Yields True when the lock is held; with blocking=False yields False at once
    if another process holds it. The lock dies with the process (no stale locks).
    """
    lock_path = Path(lock_path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = open_lock_file(lock_path)
    try:
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)
