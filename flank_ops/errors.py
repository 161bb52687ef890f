"""Errors a user can cause, as values with a message.

Anything raised as a `UserError` is printed as one clear message and exits 1;
anything else is an unexpected error (see error_handler.py).
"""

from __future__ import annotations

from typing import NamedTuple


class UserError(Exception):
    """Something the user did (or the machine lacks) that we can explain.

    `message` says what happened; `hint` says what to do about it.
    """

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  {self.hint}"
        return self.message


class ConfigError(NamedTuple):
    """One problem in a flank.yml, located to the character."""

    file: str
    line: int  # 1-based; 0 when the problem has no position (e.g. a missing file)
    column: int  # 1-based; 0 when unknown
    message: str
    hint: str | None = None

    def __str__(self) -> str:
        where = self.file
        if self.line:
            where += f":{self.line}"
            if self.column:
                where += f":{self.column}"
        text = f"{where}: {self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return text


class ConfigErrors(UserError):
    """Every problem found in one flank.yml, reported together."""

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = sorted(errors, key=lambda e: (e.file, e.line, e.column))
        noun = "error" if len(self.errors) == 1 else "errors"
        super().__init__(f"{len(self.errors)} {noun} in flank.yml:\n" + "\n".join(f"  {e}" for e in self.errors))
