"""flank serve: serve the status site over HTTP (127.0.0.1:8083 unless told otherwise)."""
from __future__ import annotations

import argparse

from flank_ops.paths import Home

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8083


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help=f"address to listen on (default {DEFAULT_HOST}; 0.0.0.0 exposes it to the network)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")


def run(args: argparse.Namespace) -> int:
    from flank_ops.errors import UserError
    from flank_ops.site.serve import make_server

    if not 0 < args.port < 65536:
        raise UserError(f"invalid port {args.port}", "use a number from 1 to 65535, e.g. --port 8083")
    home = Home()
    if not (home.site_dir / "index.html").exists():
        from flank_ops.site.build import rebuild

        rebuild(home)
    server = make_server(home.site_dir, args.host, args.port)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"flank: serving {home.site_dir} at http://{shown}:{server.server_address[1]}/ (Ctrl-C to stop)",
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("flank: stopped")
    finally:
        server.server_close()
    return 0
