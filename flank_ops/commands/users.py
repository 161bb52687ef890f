"""flank users add NAME [--role runner|admin] [--project P]... | list | remove NAME | passwd NAME

Who may run, rerun and cancel from the site (`flank serve --actions`). Viewing needs no
user. The password is read from the terminal (asked twice), or from standard input's first
line when that is not a terminal (`printf '%s\\n' "$PW" | flank users add ada`); never
from the command line, where `ps` and shell history would show it.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from flank_ops.config.suggest import choices_hint
from flank_ops.errors import UserError
from flank_ops.fileio import locked
from flank_ops.paths import Home
from flank_ops.site import auth

USAGE = "usage: flank users add NAME [--role runner|admin] [--project P] | list | remove NAME | passwd NAME"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    add = sub.add_parser("add", help="add a user (asks for the password)")
    add.add_argument("name", metavar="NAME")
    add.add_argument(
        "--role",
        choices=("runner", "admin"),
        default="runner",
        help="runner: run and cancel in its projects; admin: in every project (default runner)",
    )
    add.add_argument(
        "--project", action="append", default=[], metavar="P", help="a project a runner may act on (repeatable)"
    )
    sub.add_parser("list", help="list the users, their roles and projects")
    remove = sub.add_parser("remove", help="remove a user")
    remove.add_argument("name", metavar="NAME")
    passwd = sub.add_parser("passwd", help="change a user's password")
    passwd.add_argument("name", metavar="NAME")


def read_password(prompt: str = "Password: ") -> str:
    """From the terminal (asked twice), else standard input's first line."""
    if sys.stdin.isatty():
        first = getpass.getpass(prompt)
        if getpass.getpass("Again: ") != first:
            raise UserError("the two passwords differ", "nothing was changed; try again")
        return first
    line = sys.stdin.readline()
    if not line:
        raise UserError("no password given", "type it when asked, or give it on standard input")
    return line.rstrip("\r\n")


def run(args: argparse.Namespace) -> int:
    home = Home()
    if args.action == "list":
        users = auth.load_users(home)
        if not users:
            print("flank: no users yet; add one: flank users add NAME --project P")
            return 0
        for user in sorted(users.values()):
            where = "all projects" if user.role == "admin" else (", ".join(user.projects) or "no projects")
            print(f"{user.name}\t{user.role}\t{where}")
        return 0
    auth.check_name(args.name)
    home.internal_dir.mkdir(parents=True, exist_ok=True)
    with locked(home.internal_dir / "users.lock"):
        users = auth.load_users(home)
        if args.action == "add":
            if args.name in users:
                raise UserError(f"user {args.name!r} exists", f"change its password: flank users passwd {args.name}")
            known = home.projects()
            for project in args.project:
                if project not in known:
                    raise UserError(f"no project {project!r}", choices_hint(project, known, "projects"))
            if args.role == "runner" and not args.project:
                raise UserError(
                    "a runner needs the projects it may act on", "add --project P, or --role admin for every project"
                )
            users[args.name] = auth.make_user(args.name, args.role, tuple(args.project), read_password())
            auth.save_users(home, users)
            print(f"flank: added {args.name} ({args.role})")
            return 0
        if args.name not in users:
            raise UserError(f"no user {args.name!r}", choices_hint(args.name, sorted(users), "users"))
        if args.action == "remove":
            del users[args.name]
            auth.save_users(home, users)
            print(f"flank: removed {args.name} (its sessions in flank serve end at once)")
            return 0
        old = users[args.name]
        users[args.name] = auth.make_user(old.name, old.role, old.projects, read_password("New password: "))
        auth.save_users(home, users)
        print(f"flank: changed {args.name}'s password")
        return 0
