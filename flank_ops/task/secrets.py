"""A project's secrets: `secrets.env` (mode 0600) and the one rule that masks their values.

Tasks get the secrets as environment variables. Their values must never reach a
log, a record, a note, the site or a notification: everything that leaves the
runner goes through `mask` (text) or `SecretMasker` (the Python task launcher's
stream; task_exec.c implements the same rule in C).

The masking rule, the same on every path: every non-empty secret value, whatever
its length, is replaced by *** wherever it appears. The output is scanned from the
left; where several values start at the same byte the longest wins (so a secret
containing another is masked whole), and scanning resumes after it.

secrets.env: one secret per line, split on "\n" only (a value may hold \x0b, \x0c,
\u2028 and the like and is still one value):
    KEY=VALUE              a value of plain one-line text, written as is
    KEY:base64=QUJD...     any other value (line breaks, control characters,
                           bytes that are not UTF-8, surrounding spaces), byte for byte
Files written by earlier versions (KEY=VALUE lines only) read the same.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import AnyStr, Generic

from flank_ops.errors import UserError
from flank_ops.fileio import atomic_write_text, locked
from flank_ops.paths import ProjectPaths

# Variables GNU make reads from its environment to change what it does: no secret may take one of these
# names, and run/makefile.py keeps them out of make's environment.
MAKE_CONTROL_VARIABLES = frozenset(
    (
        "MAKEFLAGS",
        "MFLAGS",
        "GNUMAKEFLAGS",
        "MAKEFILES",
        "MAKELEVEL",
        "MAKEOVERRIDES",
        "MAKE_RESTARTS",
        "MAKE_TERMOUT",
        "MAKE_TERMERR",
        "MAKECMDGOALS",
        "MAKESHELL",
        "MAKEFILE_LIST",
        "SHELL",
        "VPATH",
        "GPATH",
        "SUFFIXES",
        ".SHELLFLAGS",
        ".RECIPEPREFIX",
        ".DEFAULT_GOAL",
        ".LIBPATTERNS",
        ".EXTRA_PREREQS",
    )
)

SECRET_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MASK = "***"
ENCODED_SUFFIX = ":base64"


def check_secret_name(name: str) -> str:
    if not SECRET_NAME_RE.match(name):
        raise UserError(
            f"invalid secret name {name!r}",
            "a secret is an environment variable: letters, digits and '_', not starting with a digit "
            "(e.g. DB_PASSWORD)",
        )
    if name.upper().startswith("FLANK_"):
        raise UserError(f"invalid secret name {name!r}", "names starting with FLANK_ are flank's own")
    if name in MAKE_CONTROL_VARIABLES:
        raise UserError(
            f"invalid secret name {name!r}: GNU make reads it, and flank keeps such variables away from make",
            "give the secret another name (e.g. MY_" + name.lstrip(".") + ")",
        )
    return name


def _is_plain(value: str) -> bool:
    """A value that a KEY=VALUE line holds unambiguously (and an editor keeps as it is)."""
    return value == value.strip() and not any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp") for c in value)


def _encode_value(value: str) -> bytes:
    return value.encode("utf-8", "surrogateescape")


def _decode_value(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def parse_secrets(text: str) -> dict[str, str]:
    """The lines of secrets.env; blank lines and # comments ignored (see the module docstring)."""
    secrets: dict[str, str] = {}
    for line in text.split("\n"):
        line = line.removesuffix("\r")  # a file edited on Windows; no plain value ends with \r
        if not line.strip() or line.lstrip().startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        key = key.strip()
        if key.endswith(ENCODED_SUFFIX):
            key = key[: -len(ENCODED_SUFFIX)]
            try:
                value = _decode_value(base64.b64decode(value.strip(), validate=True))
            except (binascii.Error, ValueError):
                continue
        if SECRET_NAME_RE.match(key):
            secrets[key] = value
    return secrets


def load_secrets(paths: ProjectPaths) -> dict[str, str]:
    """The project's secrets ({} when it has none)."""
    try:
        text = Path(paths.secrets_env).read_bytes().decode("utf-8", "surrogateescape")
    except FileNotFoundError:
        return {}
    return parse_secrets(text)


def format_secrets(secrets: Mapping[str, str]) -> str:
    lines = [
        "# flank secrets: KEY=VALUE, one per line (KEY:base64=... for values that are not plain "
        "one-line text). Manage with `flank secrets set|unset`."
    ]
    for key, value in sorted(secrets.items()):
        if _is_plain(value):
            lines.append(f"{key}={value}")
        else:
            lines.append(f"{key}{ENCODED_SUFFIX}={base64.b64encode(_encode_value(value)).decode()}")
    return "\n".join(lines) + "\n"


def _write(paths: ProjectPaths, secrets: Mapping[str, str]) -> None:
    atomic_write_text(paths.secrets_env, format_secrets(secrets), mode=0o600)


def set_secret(paths: ProjectPaths, name: str, value: str) -> None:
    check_secret_name(name)
    if not value:
        raise UserError(
            f"no value given for {name}", f"pipe it in: printf '%s' \"$VALUE\" | flank secrets set {paths.name} {name}"
        )
    if "\0" in value:
        raise UserError(
            f"the value of {name} contains a NUL byte",
            "environment variables cannot hold one; store the value base64-encoded and decode it in the task",
        )
    with locked(paths.lock_file("secrets")):
        secrets = load_secrets(paths)
        secrets[name] = value
        _write(paths, secrets)


def unset_secret(paths: ProjectPaths, name: str) -> bool:
    """Remove a secret; False when there was none of that name."""
    with locked(paths.lock_file("secrets")):
        secrets = load_secrets(paths)
        if name not in secrets:
            return False
        del secrets[name]
        _write(paths, secrets)
    return True


class SecretMasker(Generic[AnyStr]):
    """The masking rule (module docstring) over str or bytes, whole or as a stream.

    `feed` returns what can be written now and holds back the tail that may still
    be the start of a secret (a stream's writes can split a value anywhere);
    `final=True` flushes it. The result never depends on how the input was split.
    Cost: one fast substring search per secret and chunk, so 1,000 secrets stay cheap.
    """

    def __init__(self, secrets: Iterable[AnyStr]) -> None:
        self.values: list[AnyStr] = sorted({s for s in secrets if s}, key=len, reverse=True)
        self.carry: list[AnyStr] = []  # held back: a proper prefix of each value in self.pending
        self.carry_len = 0
        self.pending: list[AnyStr] = []

    def feed(self, data: AnyStr, final: bool = False) -> AnyStr:
        if self.carry:
            if not final and self._still_pending(data):
                # still the start of a secret: nothing to decide yet (and nothing to rescan, so
                # a long secret written a byte at a time costs no more than written at once)
                self.carry.append(data)
                self.carry_len += len(data)
                return data[:0]
            data = data[:0].join(self.carry) + data
            self.carry, self.carry_len = [], 0
        if not self.values:
            return data
        mask = MASK.encode() if isinstance(data, bytes) else MASK
        found: list[tuple[int, int]] = []  # (start, -length): leftmost first, then longest
        for value in self.values:
            at = data.find(value)
            while at >= 0:
                found.append((at, -len(value)))
                at = data.find(value, at + 1)
        found.sort()
        holds = [] if final else self._hold_points(data)
        out: list[AnyStr] = []
        pos = h = 0
        for start, neg_len in found:
            if start < pos:
                continue  # inside a value already masked
            while h < len(holds) and holds[h] < pos:
                h += 1
            if h < len(holds) and holds[h] <= start:
                break  # a longer value may start before or here: wait for more data
            out += [data[pos:start], mask]
            pos = start - neg_len
        while h < len(holds) and holds[h] < pos:
            h += 1
        cut = holds[h] if h < len(holds) else len(data)
        out.append(data[pos:cut])
        if cut < len(data):
            tail = data[cut:]
            self.carry, self.carry_len = [tail], len(tail)
            self.pending = [v for v in self.values if len(v) > len(tail) and v.startswith(tail)]
        return data[:0].join(out)

    def _still_pending(self, data: AnyStr) -> bool:
        start, end = self.carry_len, self.carry_len + len(data)
        self.pending = [v for v in self.pending if len(v) > end and v[start:end] == data]
        return bool(self.pending)

    def _hold_points(self, data: AnyStr) -> list[int]:
        """Positions whose remaining bytes are a proper prefix of some value, ascending."""
        n = len(data)
        view = memoryview(data) if isinstance(data, bytes) else data
        points = set()
        for value in self.values:
            first = value[:1]
            at = data.find(first, max(0, n - len(value) + 1))
            while at >= 0:
                if view[at:] == (memoryview(value) if isinstance(value, bytes) else value)[: n - at]:
                    points.add(at)
                at = data.find(first, at + 1)
        return sorted(points)


def mask(text: str, secrets: Mapping[str, str] | Iterable[str]) -> str:
    """`text` with every secret value replaced by ***. Accepts a {name: value} dict or a list of values."""
    values = secrets.values() if isinstance(secrets, Mapping) else secrets
    return SecretMasker(values).feed(text, final=True)


def secret_values_from_env(environ: Mapping[str, str]) -> list[bytes]:
    """The values of the secrets a task launcher masks: those FLANK_SECRET_NAMES names."""
    names = [n for n in environ.get("FLANK_SECRET_NAMES", "").split(",") if n]
    return [os.fsencode(environ[n]) for n in names if environ.get(n)]


def mask_file(path: Path, secrets: Mapping[str, str]) -> None:
    """Mask secrets in a (small) text file we wrote ourselves, e.g. make's own output."""
    if not secrets:
        return
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return
    text = data.decode("utf-8", "surrogateescape")
    masked = mask(text, secrets)
    if masked != text:
        from flank_ops.fileio import atomic_write_bytes

        atomic_write_bytes(path, masked.encode("utf-8", "surrogateescape"))
