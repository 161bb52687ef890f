"""Serving the static site over HTTP (asyncio; for a VM, put nginx in front: see README).

Only files inside the site folder are served (no `..`, no symlinks out), with
explicit UTF-8 content types; raw logs (.txt) are text/plain so a browser
shows them instead of guessing.

Why asyncio rather than http.server's thread per connection: a few thousand
idle connections (a "Slowloris") starved the threaded server. Here an idle
connection costs a socket and a few kilobytes, and three limits bound it:
  - a request head must arrive within `timeout` seconds (and a response
    write must make progress within it), else the connection is closed;
  - one client address holds at most `per_client` connections, the server at
    most `max_connections`: a new connection beyond either closes the oldest
    connection that is waiting for a request (one being answered is kept);
  - the open-files limit is raised to its hard limit at start, so the
    connection cap, not the file-descriptor table, is what runs out first.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import errno
import html
import os
import posixpath
import resource
import socket
import sys
import time
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from flank_ops.content_types import content_type
from flank_ops.errors import UserError
from flank_ops.site import layout
from flank_ops.site.layout import API_PREFIX

if TYPE_CHECKING:
    from flank_ops.site.actions import Actions

MAX_HEAD_BYTES = 16 * 1024  # a request line and headers; browsers send about 1 KB
CHUNK = 256 * 1024
BACKLOG = 512
OUT_OF_FILES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


class Limits(NamedTuple):
    timeout: float  # seconds for a request head to arrive, or a write to progress
    per_client: int  # connections one client address may hold
    max_connections: int = 4096  # lowered to what the open-files limit allows


class _Conn:
    __slots__ = ("client", "sock", "writer", "idle", "doomed")

    def __init__(self, client: str, sock: socket.socket) -> None:
        self.client = client
        self.sock = sock
        self.writer: asyncio.StreamWriter | None = None  # once its streams are set up
        self.idle = True  # waiting for a request head (not answering one): may be closed to make room
        self.doomed = False  # closed to make room while its streams were being set up: close once they are

    def close(self) -> None:
        if self.writer is not None:
            self.writer.transport.abort()
        else:
            self.sock.close()


class _Request(NamedTuple):
    method: str
    target: str
    version: str
    headers: dict[str, str]


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def site_file(site_dir: str, target: str) -> tuple[str, str]:
    """What a request target maps to: ("file", path), ("redirect", location) or ("missing", "").

    Only files inside `site_dir` (after resolving symlinks) are ever returned; a folder
    is served through its index.html, never listed.
    """
    site = os.path.realpath(site_dir)
    url_path, _, query = target.split("#", 1)[0].partition("?")
    path = urllib.parse.unquote(url_path)
    parts = [p for p in posixpath.normpath(path).split("/") if p not in ("", ".", "..")]
    if any("\\" in p or "\x00" in p for p in parts):
        return "missing", ""
    candidate = os.path.join(site, *parts)
    if os.path.isdir(candidate):
        if not url_path.endswith("/"):
            # one leading slash: "//host/x" in a Location header would send the browser to another site
            return "redirect", "/" + url_path.lstrip("/") + "/" + (f"?{query}" if query else "")
        candidate = os.path.join(candidate, "index.html")
    elif path.endswith("/"):
        return "missing", ""
    real = os.path.realpath(candidate)
    if not real.startswith(site + os.sep) or not os.path.isfile(real):
        return "missing", ""  # absent, a folder without index.html, or a symlink out of the site
    return "file", candidate


def raise_open_files_limit() -> int:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit; returns the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if soft != resource.RLIM_INFINITY and soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
        except (ValueError, OSError):
            pass
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


class SiteServer:
    """The listening server: `serve_forever()` until Ctrl-C, then `close()`.

    It accepts connections itself (not asyncio.start_server) so that each is admitted, and
    room made for it, the moment it is accepted: asyncio's own loop accepts up to a
    backlog-full at once before any handler runs, which overshoots the open-files limit.
    """

    def __init__(self, site_dir: Path, limits: Limits, actions: Actions | None = None) -> None:
        self.site_dir = str(site_dir)
        self.limits = limits
        self.actions = actions  # issue 23: /api/ (sign-in, run, cancel, live events), only with --actions
        self.quiet = bool(os.environ.get("FLANK_SERVE_QUIET"))
        self.loop = asyncio.new_event_loop()
        self.listeners: list[socket.socket] = []
        self._conns: dict[_Conn, None] = {}  # insertion order = age, oldest first
        self._by_client: dict[str, dict[_Conn, None]] = {}

    @property
    def server_address(self) -> tuple:
        return self.listeners[0].getsockname()

    def listen(self, host: str, port: int) -> None:
        """Bind every address `host` resolves to (raises OSError)."""
        for family, kind, proto, _, address in socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        ):
            if any(s.family == family and s.getsockname()[:2] == address[:2] for s in self.listeners):
                continue
            sock = socket.socket(family, kind, proto)
            self.listeners.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(BACKLOG)
            sock.setblocking(False)
            if port == 0:  # the other addresses take the port the first one got
                port = sock.getsockname()[1]

    def serve_forever(self) -> None:
        async def accept_all() -> None:
            await asyncio.gather(*(self._accept(s) for s in self.listeners))

        self.loop.run_until_complete(accept_all())

    def close(self) -> None:
        for sock in self.listeners:
            sock.close()
        for conn in list(self._conns):
            conn.close()
        tasks = asyncio.all_tasks(self.loop)
        for task in tasks:
            task.cancel()

        async def finish() -> None:
            await asyncio.gather(*tasks, return_exceptions=True)

        if tasks:
            self.loop.run_until_complete(finish())
        self.loop.close()

    # --- connections ---------------------------------------------------------

    async def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                sock, peer = await self.loop.sock_accept(listener)
            except OSError as exc:
                if exc.errno in OUT_OF_FILES:  # only if something else holds files: make room, retry
                    if not self._close_oldest_idle(self._conns):
                        await asyncio.sleep(0.1)
                    await asyncio.sleep(0)
                    continue
                if exc.errno in (errno.ECONNABORTED, errno.EPROTO, errno.EPERM, errno.EAGAIN):
                    continue
                raise
            conn = _Conn(str(peer[0]), sock)
            if not self._admit(conn):
                sock.setblocking(False)
                with contextlib.suppress(OSError):
                    sock.send(self._error_response(503, "Too many connections", head_only=False, close=True))
                sock.close()
                continue
            self.loop.create_task(self._connection(conn))

    def _admit(self, conn: _Conn) -> bool:
        """Make room for `conn` within the limits by closing the oldest waiting connections."""
        mine = self._by_client.get(conn.client, {})
        if len(mine) >= self.limits.per_client and not self._close_oldest_idle(mine):
            return False
        if len(self._conns) >= self.limits.max_connections and not self._close_oldest_idle(self._conns):
            return False
        self._conns[conn] = None
        self._by_client.setdefault(conn.client, {})[conn] = None
        return True

    def _close_oldest_idle(self, conns: dict[_Conn, None]) -> bool:
        for old in conns:
            if old.idle or old.writer is None:  # waiting for a request, or not even set up yet
                self._forget(old)
                if old.idle:
                    old.close()
                else:
                    old.doomed = True  # its socket is being wrapped right now: closed when that is done
                return True
        return False

    def _forget(self, conn: _Conn) -> None:
        self._conns.pop(conn, None)
        mine = self._by_client.get(conn.client)
        if mine is not None:
            mine.pop(conn, None)
            if not mine:
                del self._by_client[conn.client]

    async def _connection(self, conn: _Conn) -> None:
        sock = conn.sock
        try:
            if sock.fileno() < 0:
                return  # closed to make room before its turn came
            conn.idle = False  # not while its transport is being set up around the socket
            reader, writer = await asyncio.open_connection(sock=sock, limit=MAX_HEAD_BYTES)
        except (OSError, ValueError):
            self._forget(conn)
            sock.close()
            return
        conn.writer = writer
        if conn.doomed:
            writer.transport.abort()
            return
        try:
            while True:
                conn.idle = True
                try:
                    request = await asyncio.wait_for(self._read_request(reader), self.limits.timeout)
                except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                    return
                except _BadRequest as bad:
                    writer.write(self._error_response(bad.status, str(bad), head_only=False, close=True))
                    await asyncio.wait_for(writer.drain(), self.limits.timeout)
                    return
                conn.idle = False
                if request is None:
                    return
                if not await self._respond(request, reader, writer, conn.client):
                    return
        except (TimeoutError, ConnectionError):
            return
        finally:
            self._forget(conn)
            writer.close()

    async def _read_request(self, reader: asyncio.StreamReader) -> _Request | None:
        """The next request's line and headers (None at a clean end of the connection)."""
        first = b""
        while first in (b"", b"\r\n", b"\n"):  # a blank line or two before a request is allowed
            try:
                first = await reader.readline()
            except ValueError:
                raise _BadRequest(414, "Request line too long") from None
            if not first:
                return None
        size = len(first)
        headers: dict[str, str] = {}
        while True:
            try:
                line = await reader.readline()
            except ValueError:
                raise _BadRequest(431, "Request header fields too large") from None
            if not line:
                raise asyncio.IncompleteReadError(line, None)
            size += len(line)
            if size > MAX_HEAD_BYTES or len(headers) > 100:
                raise _BadRequest(431, "Request header fields too large")
            if line in (b"\r\n", b"\n"):
                break
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep:
                raise _BadRequest(400, "Bad header line")
            headers[name.strip().lower()] = value.strip()
        words = first.decode("latin-1").split()
        if len(words) != 3 or not words[2].startswith("HTTP/1."):
            raise _BadRequest(400, "Bad request line")
        return _Request(words[0], words[1], words[2], headers)

    # --- responses -----------------------------------------------------------

    async def _respond(
        self, request: _Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, client: str
    ) -> bool:
        """Answer one request; returns whether the connection stays open for another."""
        if self.actions is not None and request.target.startswith(API_PREFIX):
            from flank_ops.site.actions import respond

            status, keep = await respond(
                self.actions, *request[:2], request.headers, reader, writer, client, self._head, self.limits.timeout
            )
            self._log(client, request, status)
            await asyncio.wait_for(writer.drain(), self.limits.timeout)
            return keep
        keep_alive = (
            request.version == "HTTP/1.1"
            and request.headers.get("connection", "").lower() != "close"
            and "transfer-encoding" not in request.headers
            and request.headers.get("content-length", "0") in ("", "0")
        )
        head_only = request.method == "HEAD"
        if request.method not in ("GET", "HEAD"):
            status, body = 501, self._error_response(501, "Unsupported method", head_only, close=True)
            keep_alive = False
            writer.write(body)
        else:
            kind, value = site_file(self.site_dir, request.target)
            if kind == "redirect":
                status = 301
                writer.write(self._head(301, {"Location": value, "Content-Length": "0"}, not keep_alive))
            elif kind == "missing":
                status = 404
                writer.write(self._error_response(404, "File not found", head_only, not keep_alive))
            else:
                status = await self._send_file(value, request, writer, head_only, keep_alive)
        self._log(client, request, status)
        await asyncio.wait_for(writer.drain(), self.limits.timeout)
        return keep_alive

    async def _send_file(
        self, path: str, request: _Request, writer: asyncio.StreamWriter, head_only: bool, keep_alive: bool
    ) -> int:
        try:
            f = open(path, "rb")  # noqa: SIM115 - closed below, across awaits
        except OSError:
            writer.write(self._error_response(404, "File not found", head_only, not keep_alive))
            return 404
        with f:
            stat = os.fstat(f.fileno())
            since = request.headers.get("if-modified-since")
            if since and "if-none-match" not in request.headers:
                try:
                    when = email.utils.parsedate_to_datetime(since)
                except (TypeError, ValueError, IndexError, OverflowError):
                    when = None
                if when is not None and when.tzinfo is not None and int(stat.st_mtime) <= when.timestamp():
                    writer.write(self._head(304, {}, not keep_alive))
                    return 304
            headers = {
                "Content-Type": content_type(path),
                "Content-Length": str(stat.st_size),
                "Last-Modified": email.utils.formatdate(stat.st_mtime, usegmt=True),
            }
            if layout.is_kept_file(os.path.relpath(path, self.site_dir)):
                headers["Content-Security-Policy"] = layout.KEPT_FILE_CSP  # a task's file: sandboxed
            head = self._head(200, headers, not keep_alive)
            writer.write(head if head_only else head + f.read(CHUNK))  # a page: one write
            if not head_only:
                while chunk := f.read(CHUNK):
                    writer.write(chunk)
                    await asyncio.wait_for(writer.drain(), self.limits.timeout)
        return 200

    def _head(self, status: int, headers: dict[str, str], close: bool) -> bytes:
        from http import HTTPStatus

        lines = [
            f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
            "Server: flank",
            f"Date: {email.utils.formatdate(usegmt=True)}",
            *(f"{k}: {v}" for k, v in headers.items()),
            "X-Content-Type-Options: nosniff",
            "Cache-Control: no-cache",
        ]
        if close:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _error_response(self, status: int, message: str, head_only: bool, close: bool) -> bytes:
        body = (
            f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{status}</title></head>'
            f"<body><h1>{status} {html.escape(message)}</h1></body></html>\n"
        ).encode()
        head = self._head(status, {"Content-Type": "text/html; charset=utf-8", "Content-Length": str(len(body))}, close)
        return head if head_only else head + body

    def _log(self, client: str, request: _Request, status: int) -> None:
        if self.quiet:
            return
        when = time.strftime("%d/%b/%Y %H:%M:%S")
        line = f"{request.method} {request.target} {request.version}".encode("unicode_escape").decode()
        print(f'{client} - - [{when}] "{line}" {status} -', file=sys.stderr, flush=True)


def make_server(site_dir: Path, host: str, port: int, limits: Limits, actions: Actions | None = None) -> SiteServer:
    """Bind the server (raises UserError when the address is taken or not usable)."""
    open_files = raise_open_files_limit()
    limits = limits._replace(max_connections=max(16, min(limits.max_connections, open_files - 64)))
    server = SiteServer(site_dir, limits, actions)
    try:
        server.listen(host, port)
    except OSError as exc:
        server.close()
        if exc.errno == errno.EADDRINUSE:
            raise UserError(
                f"port {port} on {host} is already in use",
                f"stop the program using it, or pick another port: flank serve --port {port + 1}",
            ) from None
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise UserError(
                f"not allowed to listen on {host}:{port}", "ports below 1024 need root; use a port like 8083"
            ) from None
        raise UserError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}",
            "use an address of this machine, e.g. --host 127.0.0.1",
        ) from None
    return server
