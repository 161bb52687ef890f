"""Dead-man's switch pings (healthchecks.io style) for pipelines with a ping_url.

    run starts   -> POST <ping_url>/start
    run succeeds -> POST <ping_url>
    run fails    -> POST <ping_url>/fail     (body: the run's summary and page)

The monitoring service alerts when an expected ping does not come, which is
how the analyst hears about a VM that is down and runs nothing at all.
"""

from __future__ import annotations

import sys
import threading
import urllib.parse
from collections.abc import Callable
from pathlib import Path

from flank_ops.notify.delivery import DeliveryError, http_request, public_part
from flank_ops.paths import ProjectPaths
from flank_ops.run.runner import RunContext
from flank_ops.settings import ping_timeout
from flank_ops.store.model import RunRecord


def signal_url(ping_url: str, signal: str) -> str:
    """ping_url with /start or /fail added to its path (query string kept)."""
    if not signal:
        return ping_url
    parts = urllib.parse.urlsplit(ping_url)
    return urllib.parse.urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/" + signal))


def send_ping(ping_url: str, signal: str, body: str, timeout: float) -> None:
    """One ping; raises DeliveryError unless the service accepted it (a 404 means a wrong URL)."""
    url = signal_url(ping_url, signal)
    status = http_request(url, body=body.encode("utf-8"), timeout=timeout)
    if status >= 400:
        raise DeliveryError(f"HTTP {status} from {public_part(url)}")


# Start pings in flight, by run folder: the finish ping waits for its start ping
# (services expect /start first) and reports it if it failed.
_starts: dict[Path, tuple[threading.Thread, list[str]]] = {}


def ping_started(context: RunContext, record: RunRecord) -> None:
    """Ping <ping_url>/start in a background thread: a slow or hanging monitoring service
    never delays the tasks. Never raises: a monitoring outage must not stop a run."""
    paths, ping_url = context.paths, context.pipeline.ping_url
    if not ping_url or paths.local:
        return
    try:
        timeout = ping_timeout(context.settings())
        body = f"{record.project} {record.pipeline} #{record.run_id} started\n"
        failures: list[str] = []

        def send() -> None:
            try:
                send_ping(ping_url, "start", body, timeout)
            except Exception as exc:  # noqa: BLE001 - reported, never fatal
                failures.append(str(exc))
                print(f"flank: start ping failed: {exc}", file=sys.stderr, flush=True)

        # A daemon thread: a run that ends first does not wait past the finish ping's own wait.
        thread = threading.Thread(target=send, name="flank-start-ping", daemon=True)
        _starts[paths.run_dir(record.pipeline, record.run_id)] = (thread, failures)
        thread.start()
    except Exception as exc:  # noqa: BLE001 - reported, never fatal
        print(f"flank: start ping failed: {exc}", file=sys.stderr)


def _start_ping_outcome(paths: ProjectPaths, record: RunRecord, timeout: float) -> str | None:
    """Wait (at most one ping timeout) for this run's start ping; 'ping /start failed (...)' if it did."""
    started = _starts.pop(paths.run_dir(record.pipeline, record.run_id), None)
    if started is None:
        return None
    thread, failures = started
    thread.join(timeout + 1)
    if thread.is_alive():
        return "ping /start failed (no answer yet)"
    return f"ping /start failed ({failures[0]})" if failures else None


def ping_finished(context: RunContext, record: RunRecord, body: Callable[[], str]) -> str | None:
    """Ping success or /fail for a finished run (`body`: the run's summary and page); returns a
    status line, or None without a ping_url."""
    paths, ping_url = context.paths, context.pipeline.ping_url
    if not ping_url:
        return None
    if paths.local:
        return None  # a laptop run must not tell the VM's monitor that the nightly run happened
    status = record.status
    if status == "success":
        signal = ""
    elif status in ("failed", "interrupted"):
        signal = "fail"
    else:
        return None  # a skipped trigger ran nothing: the running run will ping when it ends
    label = "ping /fail" if signal else "ping"
    timeout = ping_timeout(context.settings())
    start = _start_ping_outcome(paths, record, timeout)
    try:
        send_ping(ping_url, signal, body(), timeout)
    except (DeliveryError, ValueError) as exc:
        line = f"{label} failed ({exc})"
    else:
        line = f"{label} sent"
    line = f"{start}; {line}" if start else line
    if " failed (" in line:
        print(f"flank: {line}", file=sys.stderr)
    return line
