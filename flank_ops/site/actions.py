"""The actions of `flank serve --actions` (issue 23): sign-in, Run, Rerun failed, Cancel, under /api/.

Viewing needs nobody; acting needs a signed-in user (site/auth.py) whose role allows it on the
project. Every POST must come from this site (its Origin header) and carry the session's CSRF
token; the session cookie is HttpOnly and SameSite=Strict (and Secure over https, as nginx says
with X-Forwarded-Proto). A run starts exactly as `flank run ... --detach` starts it (the
runner's own validation, then run/launch.py start_detached_reporting) and a cancel is
`flank cancel --no-wait` (run/cancel.py), so overlap, secrets and records behave the same.
Each form carries an idempotency key: the same key from the same user answers the first
answer again and starts nothing. Every action, allowed or not, is a line in actions.jsonl.

    GET  /api/session               200 {"user", "role", "projects", "csrf"} ({"user": null} when signed out)
    GET  /api/login?next=PATH       the sign-in page;  POST /api/login  (form: user, password, token, next)
    POST /api/logout
    POST /api/run       project, pipeline [, task | from | rerun] [, p.NAME ...], idem, csrf  → {"ok", "message", "url"}
    POST /api/rerun     project, pipeline, rerun, idem, csrf
    POST /api/cancel    project, pipeline, run | backfill, idem, csrf
    POST /api/backfill  project, pipeline, start, end [, parallel, yes, p.NAME ...], idem, csrf

Parameters come as `p.NAME` fields (so a parameter may be called `task`), checked by
config/params.py parse_params as `flank run -p` checks them; a backfill is planned and started by
schedule/backfill.py as `flank backfill --detach` does it.
    GET  /api/events/run, /api/events/log   live pages (site/events.py)
"""

from __future__ import annotations

import asyncio
import html
import ipaddress
import json
import secrets
import time
import urllib.parse
from collections.abc import Callable
from http.cookies import SimpleCookie
from typing import Any, NamedTuple

from flank_ops.errors import UserError
from flank_ops.fileio import append_json_line
from flank_ops.hints import flank_command
from flank_ops.paths import Home
from flank_ops.site import auth, layout
from flank_ops.store.model import RunTrigger
from flank_ops.store.records import now_iso

SESSION_COOKIE = "flank_session"
LOGIN_COOKIE = "flank_login"  # the sign-in form's own CSRF token (double submit), before any session
MAX_BODY = 16 * 1024
IDEMPOTENCY_S = 600.0  # how long a form's key is remembered
PAGE_WAIT_S = 10.0  # a started run's page: answered once it is drawn, so the browser can go there
ACTIONS = ("run", "rerun", "cancel", "backfill")
YES_WORDS = ("1", "on", "true", "yes")


class Response(NamedTuple):
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


class Call(NamedTuple):
    """One request to the API, as the server read it."""

    method: str
    path: str  # after API_PREFIX, e.g. "run"
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    form: dict[str, str]
    client: str  # the peer's address (nginx's X-Real-IP when it comes through nginx on loopback)


def json_response(status: int, **fields: Any) -> Response:
    return Response(status, (json.dumps(fields) + "\n").encode())


def refused(status: int, message: str) -> Response:
    return json_response(status, ok=False, message=message)


def client_address(peer: str, headers: dict[str, str]) -> str:
    """Who is asking: the peer, or the address nginx (on this machine) says it proxied for."""
    forwarded = headers.get("x-real-ip", "").strip()
    try:
        if forwarded and ipaddress.ip_address(peer).is_loopback:
            return str(ipaddress.ip_address(forwarded))
    except ValueError:
        pass
    return peer


def is_https(headers: dict[str, str]) -> bool:
    return headers.get("x-forwarded-proto", "").lower() == "https"


def own_origin(headers: dict[str, str]) -> str:
    host = headers.get("x-forwarded-host") or headers.get("host", "")
    return f"{'https' if is_https(headers) else 'http'}://{host}"


def parse_form(body: bytes) -> dict[str, str]:
    return {k: v for k, v in urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)}


def _cookie(headers: dict[str, str], name: str) -> str | None:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except Exception:  # noqa: BLE001 - a malformed Cookie header is no session
        return None
    morsel = jar.get(name)
    return morsel.value if morsel else None


def _set_cookie(name: str, value: str, max_age: int, headers: dict[str, str]) -> tuple[str, str]:
    secure = "; Secure" if is_https(headers) else ""
    return ("Set-Cookie", f"{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}")


def _safe_next(target: str) -> str:
    """Where to go after signing in: a path on this site only (never //other.host or a scheme)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


class Actions:
    """The API's state: sessions, failed sign-ins, idempotency keys. One per `flank serve --actions`."""

    def __init__(self, home: Home, session_ttl_s: float = auth.SESSION_TTL_S) -> None:
        self.home = home
        self.sessions = auth.Sessions(session_ttl_s)
        self.limiter = auth.LoginLimiter()
        self._done: dict[tuple[str, str], tuple[float, asyncio.Future[Response]]] = {}

    # --- the one entry --------------------------------------------------------

    async def answer(self, call: Call) -> Response:
        if call.method == "GET" and call.path == "session":
            return self._session(call)
        if call.method == "GET" and call.path == "login":
            return self._login_page(call.query.get("next", "/"), "", call.headers)
        if call.method != "POST":
            return refused(405 if call.path in ("login", "logout", *ACTIONS) else 404, "not here")
        if not self._same_origin(call.headers):
            self._audit(call, None, call.path, 403, "wrong or missing Origin")
            return self._page_or_json(call, 403, "refused: this form was not sent from this site (Origin)")
        if call.path == "login":
            return self._login(call)
        session = self.sessions.get(_cookie(call.headers, SESSION_COOKIE))
        if session is None:
            self._audit(call, None, call.path, 401, "no session")
            return refused(401, "not signed in, or the session expired: sign in again")
        token = call.form.get("csrf") or call.headers.get("x-csrf-token", "")
        if not secrets.compare_digest(token.encode(), session.csrf.encode()):
            self._audit(call, session.user, call.path, 403, "bad CSRF token")
            return refused(403, "refused: the form's security token is missing or wrong; reload the page")
        if call.path == "logout":
            self.sessions.end(_cookie(call.headers, SESSION_COOKIE))
            self._audit(call, session.user, "logout", 200, "signed out")
            return Response(
                200,
                b'{"ok": true, "message": "signed out"}\n',
                headers=(_set_cookie(SESSION_COOKIE, "", 0, call.headers),),
            )
        if call.path not in ACTIONS:
            return refused(404, f"no action {call.path!r}")
        return await self._once(session.user, call.form.get("idem", ""), lambda: self._act(call, session.user))

    # --- sessions -------------------------------------------------------------

    def _session(self, call: Call) -> Response:
        session = self.sessions.get(_cookie(call.headers, SESSION_COOKIE))
        user = auth.load_users(self.home).get(session.user) if session else None
        if session is None or user is None:  # 200 all the same: a browser logs every 401 as an error
            return json_response(200, ok=True, user=None, message="not signed in")
        return json_response(
            200, ok=True, user=user.name, role=user.role, projects=list(user.projects), csrf=session.csrf
        )

    def _same_origin(self, headers: dict[str, str]) -> bool:
        origin = headers.get("origin")
        if origin is None:  # browsers send Origin with every POST; Referer is the fallback some proxies leave
            referer = headers.get("referer", "")
            parts = urllib.parse.urlsplit(referer)
            origin = f"{parts.scheme}://{parts.netloc}" if parts.scheme else ""
        return bool(origin) and origin == own_origin(headers)

    def _page_or_json(self, call: Call, status: int, message: str) -> Response:
        if call.path == "login":
            return self._login_page(call.form.get("next", "/"), message, call.headers, status)
        return refused(status, message)

    def _login_page(self, next_url: str, message: str, headers: dict[str, str], status: int = 200) -> Response:
        token = secrets.token_urlsafe(24)
        problem = f'<p class="warning" role="alert">⚠ {html.escape(message)}</p>\n' if message else ""
        page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · flank</title><link rel="icon" href="data:,"><link rel="stylesheet" href="/{layout.url_css()}"></head>
<body><header class="top"><nav class="crumbs"><a class="brand" href="/">flank</a></nav></header><main>
<h1>Sign in</h1>
{problem}<form method="post" action="{layout.API_PREFIX}login">
<input type="hidden" name="token" value="{token}"><input type="hidden" name="next" value="{html.escape(_safe_next(next_url))}">
<p><label>User <input name="user" autocomplete="username" required></label></p>
<p><label>Password <input name="password" type="password" autocomplete="current-password" required></label></p>
<p><button type="submit" class="button">Sign in</button></p>
</form>
<p class="muted small">Viewing needs no sign-in. Users are added on the VM: <code>flank users add NAME</code>.</p>
</main></body></html>
"""
        return Response(
            status, page.encode(), "text/html; charset=utf-8", (_set_cookie(LOGIN_COOKIE, token, 900, headers),)
        )

    def _login(self, call: Call) -> Response:
        form, next_url = call.form, call.form.get("next", "/")
        expected = _cookie(call.headers, LOGIN_COOKIE) or ""
        if not expected or not secrets.compare_digest(form.get("token", "").encode(), expected.encode()):
            self._audit(call, form.get("user"), "login", 403, "bad CSRF token")
            return self._login_page(next_url, "the sign-in form expired; try again", call.headers, 403)
        wait = self.limiter.wait_s(call.client)
        if wait > 0:
            self._audit(call, form.get("user"), "login", 429, "too many failed sign-ins")
            minutes = max(1, round(wait / 60))
            return self._login_page(
                next_url, f"too many failed sign-ins from {call.client}: try again in {minutes} min", call.headers, 429
            )
        user = auth.authenticate(auth.load_users(self.home), form.get("user", ""), form.get("password", ""))
        if user is None:
            self.limiter.failed(call.client)
            self._audit(call, form.get("user"), "login", 401, "wrong user or password")
            return self._login_page(next_url, "wrong user or password", call.headers, 401)
        self.limiter.succeeded(call.client)
        token, _ = self.sessions.start(user.name)
        self._audit(call, user.name, "login", 303, "signed in")
        return Response(
            303,
            b"",
            "text/plain",
            (
                ("Location", _safe_next(next_url)),
                _set_cookie(SESSION_COOKIE, token, int(self.sessions.ttl_s), call.headers),
                _set_cookie(LOGIN_COOKIE, "", 0, call.headers),
            ),
        )

    # --- actions --------------------------------------------------------------

    async def _once(self, user: str, key: str, act: Callable[[], Any]) -> Response:
        """Run `act` once per (user, key): a repeat gets the first answer (a double click, a retry)."""
        now = time.monotonic()
        for old in [k for k, (t, _) in self._done.items() if t < now - IDEMPOTENCY_S]:
            del self._done[old]
        if not 8 <= len(key) <= 128:
            return refused(400, "the form has no idempotency key; reload the page")
        seen = self._done.get((user, key))
        if seen is not None:
            return await asyncio.shield(seen[1])
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._done[(user, key)] = (now, future)
        try:
            response = await act()
        except BaseException as exc:
            future.set_exception(exc)
            del self._done[(user, key)]
            raise
        future.set_result(response)
        return response

    async def _act(self, call: Call, who: str) -> Response:
        form = call.form
        project, pipeline = form.get("project", ""), form.get("pipeline", "")
        user = auth.load_users(self.home).get(who)
        if user is None:  # removed since signing in
            self.sessions.end(_cookie(call.headers, SESSION_COOKIE))
            return refused(401, f"user {who!r} no longer exists")
        try:
            paths = self.home.project(project).require()
        except UserError as exc:
            self._audit(call, who, call.path, 404, exc.message, project, pipeline)
            return refused(404, said(exc))
        if not user.may_act_on(project):
            self._audit(call, who, call.path, 403, "role", project, pipeline)
            return refused(403, f"{who} ({user.role}) may not act on project {project!r}; an admin can add it")
        loop = asyncio.get_running_loop()
        try:
            if call.path == "cancel":
                status, message, url = await loop.run_in_executor(None, _cancel, paths, pipeline, form, who)
            elif call.path == "backfill":
                status, message, url = await loop.run_in_executor(None, _backfill, project, pipeline, form, who)
            else:
                status, message, url = await loop.run_in_executor(None, _start, project, pipeline, form, who, call.path)
        except UserError as exc:
            status, message, url = 400, said(exc), None
        self._audit(call, who, call.path, status, message, project, pipeline)
        if status >= 300:
            return refused(status, message)
        return json_response(status, ok=True, message=message, url=url)

    def _audit(
        self,
        call: Call,
        user: str | None,
        action: str,
        status: int,
        outcome: str,
        project: str = "",
        pipeline: str = "",
    ) -> None:
        entry: dict[str, Any] = {
            "time": now_iso(),
            "user": user,
            "client": call.client,
            "action": action,
            "status": status,
        }
        if project:
            entry |= {"project": project, "pipeline": pipeline}
        for key in ("task", "from", "rerun", "run", "backfill", "start", "end", "parallel"):
            if call.form.get(key):
                entry[key] = call.form[key]
        params = form_params(call.form)
        if params:
            entry["params"] = params
        entry["outcome"] = outcome
        try:
            append_json_line(self.home.actions_log, entry)
        except OSError:
            pass  # a full disk must not stop a cancel


def said(exc: UserError) -> str:
    """A UserError as one line for the page: what is wrong, then what to do."""
    return f"{exc.message} ({exc.hint})" if exc.hint else exc.message


def form_params(form: dict[str, str]) -> dict[str, str]:
    """The form's parameter fields (p.NAME) as NAME -> raw text, as `-p NAME=VALUE` gives them."""
    return {k[len(layout.PARAM_FIELD) :]: v for k, v in form.items() if k.startswith(layout.PARAM_FIELD)}


def _run_id(text: str, what: str) -> int:
    raw = text.strip().lstrip("#")
    if not raw.isdigit():
        raise UserError(f"{what} takes a run id (a number), not {text!r}")
    return int(raw)


def _start(
    project: str, pipeline_name: str, form: dict[str, str], who: str, action: str
) -> tuple[int, str, str | None]:
    """`flank run PROJECT PIPELINE [--task T | --from T | --rerun N] --detach`, as the CLI does it."""
    from flank_ops.config.params import as_options
    from flank_ops.run import runner
    from flank_ops.run.launch import start_detached_reporting

    task, from_task = form.get("task") or None, form.get("from") or None
    raw_params = form_params(form)
    rerun = _run_id(form["rerun"], "rerun") if form.get("rerun") else None
    if action == "rerun" and rerun is None:
        raise UserError("which run should be rerun?")
    if sum(x is not None for x in (task, from_task, rerun)) > 1:
        raise UserError("choose one of task, from and rerun")
    request = runner.RunRequest(
        pipeline=pipeline_name,
        project=project,
        task=task,
        from_task=from_task,
        rerun=rerun,
        triggered_by={"user": who, "via": "web"},
        params=raw_params,
    )
    deployed = runner.resolve_deployed(project)
    try:
        pipeline = runner.find_pipeline(deployed.config, pipeline_name, deployed.paths)
    except UserError as exc:
        return 404, said(exc), None
    try:
        runner.select_tasks(deployed.paths, pipeline, request)
    except runner.NothingToRerun as nothing:
        return 409, nothing.message, None
    values = runner.run_params(deployed.paths, pipeline, request)  # bad parameters stop here, as on the CLI
    options = ["--trigger", RunTrigger.MANUAL, "--by", who, "--via", "web"]
    options += as_options({name: values[name] for name in raw_params})  # the -p options the form gave
    for flag, value in (("--task", task), ("--from", from_task), ("--rerun", str(rerun) if rerun else None)):
        if value:
            options += [flag, value]
    run_id = start_detached_reporting(project, pipeline_name, options, cwd=deployed.paths.home.root)
    if run_id is None:
        return (
            500,
            f"the run did not start; see why with: {flank_command('run', project, pipeline_name, on_page=True)}",
            None,
        )
    url = layout.url_run(project, pipeline_name, run_id)
    page = deployed.paths.home.site_dir / urllib.parse.unquote(url)
    deadline = time.monotonic() + PAGE_WAIT_S
    while not page.exists() and time.monotonic() < deadline:  # the runner draws it as the run starts
        time.sleep(0.05)
    return 200, f"{pipeline_name} #{run_id} started", url


def _cancel(paths: Any, pipeline: str, form: dict[str, str], who: str) -> tuple[int, str, str | None]:
    """`flank cancel PROJECT PIPELINE RUN --no-wait`, as the CLI does it."""
    from flank_ops.run import cancel

    if form.get("backfill"):
        return _cancel_backfill(paths, pipeline, form["backfill"])
    run_id = _run_id(form.get("run", ""), "cancel")
    try:
        cancel.check_pipeline(paths, pipeline)
    except cancel.NothingToCancel as exc:
        return 409, f"nothing to cancel: {exc}", None
    except UserError as exc:
        return 404, said(exc), None
    try:
        target = cancel.find_target(paths, pipeline, run_id)
        cancel.request(target, f"{who} (web)")
    except cancel.NothingToCancel as exc:
        return 409, f"nothing to cancel: {exc}", None
    return 200, f"asked {pipeline} #{run_id} to stop", None  # the page shows it end, live


def _cancel_backfill(paths: Any, pipeline: str, backfill_id: str) -> tuple[int, str, str | None]:
    """`flank cancel PROJECT PIPELINE --backfill ID`, not waiting for its driver to write the end."""
    from flank_ops.run.cancel import NothingToCancel
    from flank_ops.schedule.backfill import cancel_backfill

    try:
        state = cancel_backfill(paths, pipeline, backfill_id, wait_s=0)
    except NothingToCancel as exc:
        return 409, f"nothing to cancel: {exc}", None
    runs = state.get("runs") or {}
    left = len(state.get("minutes") or []) - len(runs)
    return 200, f"asked backfill {backfill_id} to stop ({len(runs)} runs started, {left} not started)", None


def _backfill(project: str, pipeline_name: str, form: dict[str, str], who: str) -> tuple[int, str, str | None]:
    """`flank backfill PROJECT PIPELINE --from A --to B [--parallel N] [--yes] [-p ...] --detach`."""
    from flank_ops.schedule import backfill

    raw_parallel = form.get("parallel", "").strip() or "1"
    if not raw_parallel.isdigit():
        raise UserError(f"parallel must be a number, 1 to {backfill.MAX_PARALLEL}, not {raw_parallel!r}")
    start, end = form.get("start", "").strip(), form.get("end", "").strip()
    if not start or not end:
        raise UserError("which range?", "fill in both From and To, e.g. 2026-11-01 and 2026-11-07")
    plan = backfill.plan_backfill(
        project,
        pipeline_name,
        start,
        end,
        params=form_params(form),
        parallel=int(raw_parallel),
        yes=form.get("yes", "").lower() in YES_WORDS,
        yes_hint=f"tick “Yes, more than {backfill.MAX_WITHOUT_YES} runs” and send it again",
    )
    backfill_id = backfill.start_backfill(plan, run_options=("--by", who, "--via", "web"))
    zone, n = plan.pipeline.timezone, len(plan.minutes)
    span = f"{backfill.minute_text(plan.minutes[0], zone)} to {backfill.minute_text(plan.minutes[-1], zone)}"
    what = f"{n} run{'s' if n != 1 else ''}, {span}"
    paths = plan.paths
    deadline = time.monotonic() + PAGE_WAIT_S
    while time.monotonic() < deadline:  # its first run, so the pipeline page can show it with its Cancel
        state = backfill.read_backfill(paths, pipeline_name, backfill_id)
        if state.get("runs") or state.get("status") != backfill.RUNNING:
            break
        time.sleep(0.05)
    first = [int(run_id) for run_id in (state.get("runs") or {}).values()]
    if first:  # a running run's redraw leaves the pipeline page to its end: draw it now
        from flank_ops.site import build

        build.draw_run(paths, pipeline_name, first[0])
    return (
        200,
        f"backfill {backfill_id} of {pipeline_name} started: {what}",
        layout.url_pipeline(project, pipeline_name),
    )


# --- the HTTP side: what site/serve.py hands over for a request under API_PREFIX ---------


async def respond(
    actions: Actions,
    method: str,
    target: str,
    headers: dict[str, str],
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    peer: str,
    head: Callable[[int, dict[str, str], bool], bytes],
    timeout: float,
) -> tuple[int, bool]:
    """Answer one request under /api/; returns (HTTP status, whether the connection stays open)."""
    from flank_ops.site import events

    url_path, _, query_text = target.partition("?")
    path = urllib.parse.unquote(url_path)[len(layout.API_PREFIX) :]
    query = dict(urllib.parse.parse_qsl(query_text, keep_blank_values=True))
    client = client_address(peer, headers)
    if method in ("GET", "HEAD") and path in events.STREAMS:
        return await _stream(actions, events.STREAMS[path], query, headers, writer, head, timeout), False
    form: dict[str, str] = {}
    keep_alive = headers.get("connection", "").lower() != "close"
    if method == "POST":
        if "transfer-encoding" in headers:
            return _send(writer, head, refused(411, "send the form with a Content-Length"), False), False
        length = headers.get("content-length", "0") or "0"
        if not length.isdigit() or int(length) > MAX_BODY:
            return _send(writer, head, refused(413, "the form is too large"), False), False
        try:
            body = await asyncio.wait_for(reader.readexactly(int(length)), timeout)
        except (TimeoutError, asyncio.IncompleteReadError):
            return 400, False
        form = parse_form(body)
    elif headers.get("content-length", "0") not in ("", "0") or "transfer-encoding" in headers:
        keep_alive = False  # a body we do not read
    response = await actions.answer(Call(method, path, query, headers, form, client))
    return _send(writer, head, response, not keep_alive, head_only=method == "HEAD"), keep_alive


def _send(
    writer: asyncio.StreamWriter,
    head: Callable[[int, dict[str, str], bool], bytes],
    response: Response,
    close: bool,
    head_only: bool = False,
) -> int:
    fields = {"Content-Type": response.content_type, "Content-Length": str(len(response.body))}
    extra = "".join(f"{k}: {v}\r\n" for k, v in response.headers)
    raw = head(response.status, {**fields, "Cache-Control": "no-store"}, close)
    writer.write(raw[:-2] + extra.encode("latin-1") + b"\r\n" + (b"" if head_only else response.body))
    return response.status


async def _stream(
    actions: Actions,
    stream: Callable[..., Any],
    query: dict[str, str],
    headers: dict[str, str],
    writer: asyncio.StreamWriter,
    head: Callable[[int, dict[str, str], bool], bytes],
    timeout: float,
) -> int:
    from flank_ops.site import events

    events_of = stream(actions.home, query, headers.get("last-event-id"))
    try:
        first = await events_of.__anext__()
    except events.StreamError as exc:
        return _send(writer, head, refused(exc.status, str(exc)), True)
    except StopAsyncIteration:
        first = None
    writer.write(
        head(
            200,
            {
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",
            },
            True,
        )
        + f"retry: {events.RETRY_MS}\n\n".encode()
    )
    try:
        if first is not None:
            writer.write(events.encode(first))
            await asyncio.wait_for(writer.drain(), timeout)
            async for event in events_of:
                writer.write(events.encode(event))
                await asyncio.wait_for(writer.drain(), timeout)
    finally:
        await events_of.aclose()
    return 200
