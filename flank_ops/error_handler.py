"""Turns exceptions into what a user should see.

A `UserError` becomes its message and exit 1. Anything else is a bug (exit 70): the user
gets one line pointing at a log file that holds the traceback.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from collections.abc import Iterator

from flank_ops import jsonout
from flank_ops.errors import UserError
from flank_ops.exit_codes import ExitCode

EXIT_USER_ERROR = ExitCode.FAILED
EXIT_UNEXPECTED = ExitCode.UNEXPECTED


def _crash_log_path() -> str:
    """FLANK_HOME's crash log, else one in the user's cache: never a shared folder such as
    /tmp, where another user could plant the name as a link to a file of theirs."""
    home = os.environ.get("FLANK_HOME") or os.path.expanduser("~/flank")
    if os.path.isdir(home) and os.access(home, os.W_OK):
        return os.path.join(home, "flank-errors.log")
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "flank", "flank-errors.log")


def _os_error_message(exc: OSError) -> UserError | None:
    """OS errors a user can fix get a plain explanation instead of a traceback."""
    target = exc.filename or ""
    if exc.errno == errno.ENOSPC:
        return UserError(f"no space left on the device ({target})", "free some disk space, then try again")
    if exc.errno == errno.EDQUOT:
        return UserError(f"disk quota exceeded ({target})", "free some space or raise the quota")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return UserError(f"permission denied: {target}", "check the owner and mode of that path")
    if exc.errno == errno.EROFS:
        return UserError(f"read-only file system: {target}", "FLANK_HOME must be on a writable disk")
    return None


@contextlib.contextmanager
def error_handler(json_errors: bool = False) -> Iterator[None]:
    """`json_errors` (a `--json` command line): errors are JSON answers on stdout, same exit codes."""
    try:
        yield
    except UserError as exc:
        if json_errors:
            jsonout.emit_error(exc.message, exc.hint)
        else:
            print(f"flank: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_USER_ERROR) from None
    except BrokenPipeError:
        # `flank logs ... | head`: the reader left; stop quietly, as other commands do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise SystemExit(141) from None
    except KeyboardInterrupt:
        print("flank: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    except OSError as exc:
        known = _os_error_message(exc)
        if known is None:
            _report_unexpected(exc, json_errors)
        elif json_errors:
            jsonout.emit_error(known.message, known.hint)
        else:
            print(f"flank: {known}", file=sys.stderr)
        raise SystemExit(EXIT_USER_ERROR) from None
    except SystemExit:
        raise
    except BaseException as exc:  # noqa: BLE001 - the last line of defence
        _report_unexpected(exc, json_errors)


def _report_unexpected(exc: BaseException, json_errors: bool = False) -> None:
    import traceback  # here: every git hook and command imports this module, few ever crash

    log = _crash_log_path()
    try:
        os.makedirs(os.path.dirname(log), exist_ok=True)
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with open(fd, "a", encoding="utf-8") as f:
            f.write(f"--- flank {' '.join(sys.argv[1:])}\n")
            f.write("".join(traceback.format_exception(exc)))
        where = f"the details are in {log}"
    except OSError:
        where = "and its details could not be saved"
    message = f"unexpected error: {type(exc).__name__}: {exc}"
    if json_errors:
        jsonout.emit_error(message, f"this is a bug in flank; {where}")
    else:
        print(f"flank: {message}\n  this is a bug in flank; {where}", file=sys.stderr)
    raise SystemExit(EXIT_UNEXPECTED)
