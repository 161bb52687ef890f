"""A project's secrets: `secrets.env` (KEY=VALUE lines, mode 0600) and masking their values.

Tasks get the secrets as environment variables. Their values must never reach a
log, a record, a note, the site or a notification: everything that leaves the
runner goes through `mask`.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from flank_ops.errors import UserError
from flank_ops.fileio import atomic_write_text, locked
from flank_ops.paths import ProjectPaths

SECRET_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MASK = "***"


def check_secret_name(name: str) -> str:
    if not SECRET_NAME_RE.match(name):
        raise UserError(
            f"invalid secret name {name!r}",
            "a secret is an environment variable: letters, digits and '_', not starting with a digit "
            "(e.g. DB_PASSWORD)",
        )
    if name.upper().startswith("FLANK_"):
        raise UserError(f"invalid secret name {name!r}", "names starting with FLANK_ are flank's own")
    return name


def parse_secrets(text: str) -> dict[str, str]:
    """KEY=VALUE lines; blank lines and # comments ignored; the value is everything after the first '='."""
    secrets: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        key = key.strip()
        if SECRET_NAME_RE.match(key):
            secrets[key] = value
    return secrets


def load_secrets(paths: ProjectPaths) -> dict[str, str]:
    """The project's secrets ({} when it has none)."""
    try:
        text = Path(paths.secrets_env).read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    return parse_secrets(text)


def _write(paths: ProjectPaths, secrets: Mapping[str, str]) -> None:
    lines = ["# flank secrets: KEY=VALUE, one per line. Manage with `flank secrets set|unset`."]
    lines += [f"{k}={v}" for k, v in sorted(secrets.items())]
    atomic_write_text(paths.secrets_env, "\n".join(lines) + "\n", mode=0o600)


def set_secret(paths: ProjectPaths, name: str, value: str) -> None:
    check_secret_name(name)
    if not value:
        raise UserError(f"no value given for {name}", f"pipe it in: printf '%s' \"$VALUE\" | flank secrets set {paths.name} {name}")
    if "\n" in value or "\r" in value or "\0" in value:
        raise UserError(f"the value of {name} spans several lines", "secrets are single-line values")
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


def mask(text: str, secrets: Mapping[str, str] | Iterable[str]) -> str:
    """`text` with every secret value replaced by ***. Accepts a {name: value} dict or a list of values."""
    values = secrets.values() if isinstance(secrets, Mapping) else secrets
    # Longest first, so a secret containing another one is masked whole.
    for value in sorted({v for v in values if v}, key=len, reverse=True):
        text = text.replace(value, MASK)
    return text


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
