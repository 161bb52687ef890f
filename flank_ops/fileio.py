"""Atomic writes and locks: a reader or a crash never sees a half-written file."""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def atomic_write_bytes(path: Path, data: bytes, mode: int | None = None, *, durable: bool = True) -> None:
    """Write `data` to a temp file beside `path`, fsync it, then rename over `path`.

    Readers never see half a file either way. durable=False skips the fsync: for
    files that are cheap to regenerate (site pages, task specs in a folder not yet
    published), where a crash may lose the newest version but never leaves a torn one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if mode is not None:
            os.fchmod(fd, mode)
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


def atomic_write_text(path: Path, text: str, mode: int | None = None, *, durable: bool = True) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), mode, durable=durable)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def append_line(path: Path, line: str) -> None:
    """Append one line with a single O_APPEND write, so concurrent writers never interleave."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (line.rstrip("\n") + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
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


def atomic_symlink(target: str | Path, link: Path) -> None:
    """Point `link` at `target`, replacing any old link in one rename."""
    link = Path(link)
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    os.symlink(target, tmp)
    os.replace(tmp, link)


@contextlib.contextmanager
def locked(lock_path: Path, *, blocking: bool = True) -> Iterator[bool]:
    """Hold an exclusive flock on `lock_path` for the block.

    Yields True when the lock is held; with blocking=False yields False at once
    if another process holds it. The lock dies with the process (no stale locks).
    """
    lock_path = Path(lock_path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)
