"""Serving the static site over HTTP (http.server; for a VM, put nginx in front: see README).

Only files inside the site folder are served (no `..`, no symlinks out), with
explicit UTF-8 content types; raw logs (.txt) are text/plain so a browser
shows them instead of guessing.
"""
from __future__ import annotations

import errno
import http.server
import os
import posixpath
import socket
import urllib.parse
from functools import partial
from pathlib import Path

from flank_ops.errors import UserError

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".log": "text/plain; charset=utf-8",
    ".json": "application/json",
    ".jsonl": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    "": "application/octet-stream",
}


class SiteHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = CONTENT_TYPES
    server_version = "flank"
    sys_version = ""

    def translate_path(self, path: str) -> str:
        """Map a URL path to a file inside the site folder, or to a path that does not exist."""
        site = os.path.realpath(self.directory)
        path = urllib.parse.unquote(path.split("?", 1)[0].split("#", 1)[0])
        parts = [p for p in posixpath.normpath(path).split("/") if p not in ("", ".", "..")]
        if any("\\" in p or "\x00" in p for p in parts):
            return os.path.join(site, ".refused")
        candidate = os.path.join(site, *parts)
        if path.endswith("/"):
            candidate += os.sep
        real = os.path.realpath(candidate)
        if real != site and not real.startswith(site + os.sep):
            return os.path.join(site, ".refused")  # a symlink pointing out of the site
        return candidate

    def list_directory(self, path):  # noqa: ANN001 - http.server's signature
        # a folder without index.html is not browsable: the site links to pages only
        self.send_error(404, "Not found")
        return None

    def end_headers(self) -> None:
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - http.server's signature
        if os.environ.get("FLANK_SERVE_QUIET"):
            return
        super().log_message(format, *args)


def make_server(site_dir: Path, host: str, port: int) -> http.server.ThreadingHTTPServer:
    """Bind the server (raises UserError when the address is taken or not usable)."""
    handler = partial(SiteHandler, directory=str(site_dir))
    server_class = _IPv6Server if ":" in host else http.server.ThreadingHTTPServer
    try:
        server = server_class((host, port), handler)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise UserError(
                f"port {port} on {host} is already in use",
                f"stop the program using it, or pick another port: flank serve --port {port + 1}",
            ) from None
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise UserError(f"not allowed to listen on {host}:{port}",
                            "ports below 1024 need root; use a port like 8083") from None
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                        "use an address of this machine, e.g. --host 127.0.0.1") from None
    server.daemon_threads = True
    return server


class _IPv6Server(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6
