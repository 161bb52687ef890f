"""flank serve: serve the status site over HTTP (127.0.0.1:8083 unless told otherwise).

`flank serve --actions` (or `[serve] actions = true` in flank.toml) adds sign-in, Run / Rerun
failed / Cancel buttons and live pages under /api/ (site/actions.py, site/events.py); users come
from `flank users`. On an address other than loopback it refuses to start with no users.

`flank serve --print-systemd-unit` prints a systemd user unit that starts this
same flank (absolute path) with this FLANK_HOME at boot, and the commands that
install it: nothing else restarts `flank serve` after a reboot.
"""

from __future__ import annotations

import argparse
import ipaddress
import shlex
import socket
from typing import TYPE_CHECKING

from flank_ops.errors import UserError
from flank_ops.paths import Home
from flank_ops.schedule.crontab import flank_command
from flank_ops.settings import serve_settings
from flank_ops.site import auth
from flank_ops.site.actions import Actions
from flank_ops.site.build import rebuild, write_actions_script
from flank_ops.site.serve import Limits, make_server

if TYPE_CHECKING:
    from flank_ops.site.actions import Actions

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8083
DEFAULT_TIMEOUT = 15.0  # seconds for a request head to arrive, or a write to progress
DEFAULT_PER_CLIENT = 128  # connections one client address may hold (a browser opens about 6)
UNIT_NAME = "flank-serve.service"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to listen on (default {DEFAULT_HOST}; 0.0.0.0 exposes it to the network)",
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help="close a connection that sends no complete request (or reads no response) "
        f"for this long (default {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--per-client",
        type=int,
        default=DEFAULT_PER_CLIENT,
        metavar="N",
        help="connections one client address may hold; beyond that its oldest idle one is "
        f"closed (default {DEFAULT_PER_CLIENT})",
    )
    parser.add_argument(
        "--actions",
        action="store_true",
        help="let signed-in users (flank users) run, rerun and cancel from the pages, and follow runs live "
        "(also: [serve] actions = true in flank.toml)",
    )
    parser.add_argument(
        "--print-systemd-unit",
        action="store_true",
        help="print a systemd user unit that runs this command at boot, and how to install it",
    )


def run(args: argparse.Namespace) -> int:
    if not 0 < args.port < 65536:
        raise UserError(f"invalid port {args.port}", "use a number from 1 to 65535, e.g. --port 8083")
    if not args.timeout > 0:
        raise UserError(f"invalid --timeout {args.timeout:g}", "use a number of seconds above 0, e.g. --timeout 15")
    if args.per_client < 1:
        raise UserError(f"invalid --per-client {args.per_client}", "use a number from 1 up, e.g. --per-client 128")
    home = Home()
    if args.print_systemd_unit:
        print(systemd_unit_instructions(home, args), end="")
        return 0
    actions = _actions(home, args)
    newly_marked = actions is not None and _mark_actions(home)
    if newly_marked or not (home.site_dir / "index.html").exists():
        rebuild(home)  # with --actions for the first time: the pages gain their hidden buttons
    if actions is not None:
        write_actions_script(home)  # this flank's version of it
    limits = Limits(timeout=args.timeout, per_client=args.per_client)
    server = make_server(home.site_dir, args.host, args.port, limits, actions)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"flank: serving {home.site_dir} at http://{shown}:{server.server_address[1]}/ (Ctrl-C to stop)", flush=True)
    if actions is not None:
        print(f"flank: actions on: sign in at http://{shown}:{server.server_address[1]}/api/login", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("flank: stopped")
    finally:
        server.close()
    return 0


def _actions(home: Home, args: argparse.Namespace) -> Actions | None:
    """The actions' state when they are on (--actions or [serve] actions = true), else None."""
    settings = serve_settings(home)
    if not (args.actions or settings.actions):
        return None
    if not is_loopback(args.host) and not auth.load_users(home):
        raise UserError(
            f"--actions on {args.host} with no users would let nobody act, and tells the network it could",
            "add one first: flank users add NAME --project P (or serve on 127.0.0.1 behind an ssh tunnel)",
        )
    return Actions(home, settings.session_hours * 3600)


def _mark_actions(home: Home) -> bool:
    """Say (once) that this site has actions, so that every page drawn from now on carries the hidden
    buttons; True when it was not said before (the pages drawn until now lack them)."""
    marker = home.serve_actions_marker
    if marker.exists():
        return False
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text("flank serve --actions ran here: site pages carry its hidden buttons\n")
    return True


def is_loopback(host: str) -> bool:
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in infos)


def serve_options(args: argparse.Namespace) -> list[str]:
    """The options given, defaults left out."""
    options: list[str] = []
    if args.host != DEFAULT_HOST:
        options += ["--host", args.host]
    if args.port != DEFAULT_PORT:
        options += ["--port", str(args.port)]
    if args.timeout != DEFAULT_TIMEOUT:
        options += ["--timeout", f"{args.timeout:g}"]
    if args.per_client != DEFAULT_PER_CLIENT:
        options += ["--per-client", str(args.per_client)]
    if args.actions:
        options.append("--actions")
    return options


def systemd_quote(word: str) -> str:
    """A word for ExecStart= (systemd splits on spaces, honours double quotes, expands % and $)."""
    word = word.replace("%", "%%").replace("$", "$$")
    if any(c in word for c in " \t\"'\\"):
        return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return word


def systemd_unit_instructions(home: Home, args: argparse.Namespace) -> str:
    """The unit file, its comments saying how to install it (so the whole output can be saved as is)."""
    flank = flank_command()
    exec_start = " ".join(systemd_quote(w) for w in [*flank, "serve", *serve_options(args)])
    flank_home = str(home.root).replace("%", "%%").replace("\\", "\\\\").replace('"', '\\"')
    print_unit = f"FLANK_HOME={shlex.quote(str(home.root))} " + shlex.join(
        [*flank, "serve", *serve_options(args), "--print-systemd-unit"]
    )
    target = f"~/.config/systemd/user/{UNIT_NAME}"
    comments = (
        f"A systemd user unit that starts `flank serve` at boot (FLANK_HOME={home.root}).",
        "Install it as this user:",
        "",
        "    mkdir -p ~/.config/systemd/user",
        f"    {print_unit} > {target}",
        f"    systemctl --user daemon-reload && systemctl --user enable --now {UNIT_NAME}",
        '    loginctl enable-linger "$USER"    # start at boot, not at your first login',
        "",
        f"Check it: systemctl --user status {UNIT_NAME}; its output: journalctl --user -u {UNIT_NAME}",
    )
    return (
        "".join(f"# {line}\n" if line else "#\n" for line in comments) + "\n[Unit]\n"
        "Description=flank status site (flank serve)\n"
        "After=network.target\n"
        "\n"
        "[Service]\n"
        f'Environment="FLANK_HOME={flank_home}"\n'
        "Environment=FLANK_SERVE_QUIET=1\n"
        f"ExecStart={exec_start}\n"
        "Restart=on-failure\n"
        "RestartSec=5\n"
        "\n"
        "[Install]\n"
        "WantedBy=default.target\n"
    )
