"""flank secrets set|list|unset PROJECT [KEY]

The value of `set` comes from stdin (a prompt on a terminal), never from the
command line, where it would land in the shell history and `ps` output.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from flank_ops import jsonout
from flank_ops.errors import UserError
from flank_ops.jsonout import FLAG_HELP
from flank_ops.paths import Home
from flank_ops.task import secrets


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    p = sub.add_parser("set", help="set KEY to the value read from stdin")
    p.add_argument("project")
    p.add_argument("key")
    p = sub.add_parser("list", help="list the secret names (never the values)")
    p.add_argument("project")
    p.add_argument("--json", action="store_true", help=FLAG_HELP)
    p = sub.add_parser("unset", help="remove KEY")
    p.add_argument("project")
    p.add_argument("key")


def _read_value(key: str) -> str:
    if sys.stdin is None:
        return ""
    if sys.stdin.isatty():
        return getpass.getpass(f"value of {key}: ")
    # bytes as they come (surrogateescape keeps what is not UTF-8): the value round-trips byte for byte
    raw = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode()
    # `echo VALUE |` and here-strings add one newline; it is not part of the secret.
    if raw.endswith(b"\r\n"):
        raw = raw[:-2]
    elif raw.endswith(b"\n"):
        raw = raw[:-1]
    return raw.decode("utf-8", "surrogateescape")


def run(args: argparse.Namespace) -> int:
    paths = Home().project(args.project).require()
    if args.action == "list":
        names = sorted(secrets.load_secrets(paths))
        if args.json:
            jsonout.emit("secrets", project=paths.name, names=names)
            return 0
        if not names:
            print(f"no secrets in project {paths.name!r}; add one with: flank secrets set {paths.name} KEY")
        for name in names:
            print(name)
        return 0
    key = secrets.check_secret_name(args.key)
    if args.action == "unset":
        if not secrets.unset_secret(paths, key):
            known = sorted(secrets.load_secrets(paths))
            raise UserError(
                f"no secret {key!r} in project {paths.name!r}",
                f"secrets: {', '.join(known)}" if known else "the project has no secrets",
            )
        print(f"flank: removed {key} from {paths.name}")
        return 0
    value = _read_value(key)
    secrets.set_secret(paths, key, value)
    print(f"flank: set {key} for {paths.name} (tasks see it as ${key}; logs show it as ***)")
    if len(value) < 4:
        print(
            f"flank: warning: a value this short is masked everywhere it appears — in logs, notes and "
            f"notifications, inside ordinary words too ({len(value)} character{'s' if len(value) > 1 else ''})",
            file=sys.stderr,
        )
    return 0
