"""What `flank`'s exit status means: the one list (scripts, `flank remote`, the R package and the docs ask it)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Every exit status `flank` uses, with what it tells a script."""

    OK = 0  # done; a run or check that succeeded
    FAILED = 1  # a run, task or check failed, or a mistake flank explained in one line (UserError)
    USAGE = 2  # the command line itself was wrong (unknown option, missing argument): argparse's own
    NOTHING_TO_CANCEL = 3  # `flank cancel`: no such run is running (it ended, or never started)
    UNEXPECTED = 70  # a bug in flank (sysexits' EX_SOFTWARE): the traceback went to a log file, named on stderr


MEANING: dict[ExitCode, str] = {
    ExitCode.OK: "done: the command, run or check succeeded",
    ExitCode.FAILED: "a run, task or check failed, or a mistake explained in one line on stderr",
    ExitCode.USAGE: "the command line was wrong (unknown option, missing argument); the usage is on stderr",
    ExitCode.NOTHING_TO_CANCEL: "`flank cancel`: that run is not running (it ended, or never started)",
    ExitCode.UNEXPECTED: "a bug in flank: stderr names the log file holding the details",
}
