"""Who may act from the site: users, their passwords, sessions and failed sign-ins.

users.json (Home.users_file, mode 0600), written only by `flank users`:
    {"users": {"ada": {"role": "runner", "projects": ["demo"], "salt": "<hex>", "hash": "<hex>"}}}

Passwords are hashed with scrypt (hashlib, no dependency) and a salt of their own; a
hash is compared in constant time. `runner` may act on the projects it was given,
`admin` on every project. Sessions live in the memory of `flank serve` only: a
restart signs everybody out, and nothing secret about them is ever on disk.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from collections import deque
from pathlib import Path
from typing import NamedTuple

from flank_ops.errors import UserError
from flank_ops.fileio import atomic_write_text
from flank_ops.paths import Home
from flank_ops.settings_catalogue import default

ROLES = ("runner", "admin")
USERS_FORMAT = 1
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
# scrypt's cost: about 50 ms and 16 MiB per sign-in here, so guessing offline is slow too
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
MIN_PASSWORD = 8

SESSION_TTL_S = default("serve", "session_hours") * 3600.0  # a session ends this long after sign-in
FAILED_LOGINS = 5  # failed sign-ins one client may make ...
FAILED_WINDOW_S = 15 * 60.0  # ... within this window before it must wait


class User(NamedTuple):
    name: str
    role: str  # "runner" | "admin"
    projects: tuple[str, ...]  # what a runner may act on (an admin: everything)
    salt: str
    hash: str

    def may_act_on(self, project: str) -> bool:
        return self.role == "admin" or project in self.projects


def hash_password(password: str, salt: bytes) -> str:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, maxmem=64 * 1024 * 1024
    ).hex()


def make_user(name: str, role: str, projects: tuple[str, ...], password: str) -> User:
    check_name(name)
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}", f"use one of: {', '.join(ROLES)}")
    check_password(password)
    salt = secrets.token_bytes(16)
    return User(name, role, projects, salt.hex(), hash_password(password, salt))


def check_name(name: str) -> None:
    if not _NAME.match(name):
        raise UserError(
            f"{name!r} is not a user name",
            "use letters, digits and . _ @ - (up to 64, starting with a letter or digit)",
        )


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"the password is too short (under {MIN_PASSWORD} characters)", "choose a longer one")


def verify(user: User, password: str) -> bool:
    try:
        salt = bytes.fromhex(user.salt)
    except ValueError:
        return False
    return hmac.compare_digest(hash_password(password, salt), user.hash)


# A hash to compare against when the name is unknown, so a wrong name takes as long as a wrong password.
_NOBODY = User("", "runner", (), "00" * 16, "")


def authenticate(users: dict[str, User], name: str, password: str) -> User | None:
    user = users.get(name)
    ok = verify(user or _NOBODY, password)
    return user if ok and user is not None else None


def load_users(home: Home) -> dict[str, User]:
    """The users file's users (none when there is no file). Raises UserError when it is damaged."""
    path = home.users_file
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read {path}: {exc}", "fix or remove it, then add the users again") from None
    out: dict[str, User] = {}
    entries = data.get("users") if isinstance(data, dict) else None
    if not isinstance(entries, dict):
        raise UserError(f"{path} is not a flank users file", "remove it, then add the users again: flank users add")
    for name, entry in entries.items():
        if not isinstance(entry, dict):
            continue
        projects = entry.get("projects") or []
        out[name] = User(
            name,
            str(entry["role"]) if entry.get("role") in ROLES else "runner",
            tuple(str(p) for p in projects) if isinstance(projects, list) else (),
            str(entry.get("salt", "")),
            str(entry.get("hash", "")),
        )
    return out


def save_users(home: Home, users: dict[str, User]) -> None:
    data = {
        "format": USERS_FORMAT,
        "users": {
            u.name: {"role": u.role, "projects": list(u.projects), "salt": u.salt, "hash": u.hash}
            for u in sorted(users.values())
        },
    }
    atomic_write_text(home.users_file, json.dumps(data, indent=2) + "\n", 0o600)


def users_file_mode(path: Path) -> int | None:
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        return None


# --- sessions and failed sign-ins (in the server's memory) -------------------


class Session(NamedTuple):
    user: str
    csrf: str
    expires: float  # time.monotonic()


class Sessions:
    """Session tokens (random, 256 bits) → who signed in, their CSRF token, when it ends."""

    def __init__(self, ttl_s: float = SESSION_TTL_S) -> None:
        self.ttl_s = ttl_s
        self._by_token: dict[str, Session] = {}

    def start(self, user: str) -> tuple[str, Session]:
        self._drop_expired()
        token = secrets.token_urlsafe(32)
        session = Session(user, secrets.token_urlsafe(32), time.monotonic() + self.ttl_s)
        self._by_token[token] = session
        return token, session

    def get(self, token: str | None) -> Session | None:
        if not token:
            return None
        session = self._by_token.get(token)
        if session is None:
            return None
        if session.expires <= time.monotonic():
            del self._by_token[token]
            return None
        return session

    def end(self, token: str | None) -> None:
        if token:
            self._by_token.pop(token, None)

    def _drop_expired(self) -> None:
        now = time.monotonic()
        for token in [t for t, s in self._by_token.items() if s.expires <= now]:
            del self._by_token[token]


class LoginLimiter:
    """At most FAILED_LOGINS failed sign-ins per client within FAILED_WINDOW_S."""

    def __init__(self, limit: int = FAILED_LOGINS, window_s: float = FAILED_WINDOW_S) -> None:
        self.limit = limit
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = {}

    def wait_s(self, client: str) -> float:
        """Seconds `client` must wait before trying again (0: it may try now)."""
        failures = self._failures.get(client)
        if not failures:
            return 0.0
        now = time.monotonic()
        while failures and failures[0] <= now - self.window_s:
            failures.popleft()
        if not failures:
            del self._failures[client]
            return 0.0
        return failures[0] + self.window_s - now if len(failures) >= self.limit else 0.0

    def failed(self, client: str) -> None:
        self._failures.setdefault(client, deque()).append(time.monotonic())

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)
