"""After a run: the notifications the pipeline's notify: asks for (finish/run_steps.py calls it).

    outcome   when                                         notify: entry
    failure   the run failed or was interrupted            failure
    success   the run succeeded                            success
    recovery  it succeeded and the previous run had not    recovery (or success)

Channels come from flank.toml: [notify.webhook] and [notify.email]. A channel that
fails is named in the returned status line (kept in run.json, shown on the site)
and on stderr; it never raises.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from flank_ops.errors import UserError
from flank_ops.notify.delivery import DeliveryError
from flank_ops.notify.email import password_for, send_email
from flank_ops.notify.message import Message, build_message
from flank_ops.notify.webhook import send_webhook
from flank_ops.paths import ProjectPaths
from flank_ops.run.runner import RunContext
from flank_ops.settings import email_settings, site_url, webhook_settings
from flank_ops.store import records
from flank_ops.store.model import RunRecord, RunStatus


def outcome_of(paths: ProjectPaths, record: RunRecord) -> str | None:
    """failure, success or recovery; None for runs that notify nobody (skipped, still running)."""
    status = record.status
    if status in (RunStatus.FAILED, RunStatus.INTERRUPTED):
        return "failure"
    if status != RunStatus.SUCCESS:
        return None
    previous = records.previous_outcome(paths, record.pipeline, record.run_id)
    return "recovery" if previous is not None and previous["status"] != "success" else "success"


def wanted(outcome: str | None, notify_on: tuple[str, ...]) -> bool:
    if outcome is None:
        return False
    return outcome in notify_on or (outcome == "recovery" and "success" in notify_on)


def run_message(context: RunContext, record: RunRecord) -> Message:
    """What the notifications and the finish ping say about a finished run."""
    outcome = outcome_of(context.paths, record)
    return build_message(context.paths, record, outcome or "", site_url(context.settings()), context.secrets)


def send_notifications(
    context: RunContext, record: RunRecord, message: Callable[[], Message] | None = None
) -> str | None:
    """Send the notifications the pipeline's notify: asks for; returns a status line or None if none
    configured or wanted. `message` builds the run's Message (shared with the ping). Never raises."""
    try:
        outcome = outcome_of(context.paths, record)
        if not wanted(outcome, context.pipeline.notify):
            return None
        settings = context.settings()
        line = _send(settings, context.secrets, (message or (lambda: run_message(context, record)))(), outcome or "")
        if line is None and context.pipeline.notify_set:  # asked for in flank.yml: say it went nowhere
            line = f"notify {outcome}: not sent (no [notify.webhook] or [notify.email] in flank.toml)"
    except Exception as exc:  # noqa: BLE001 - the end of a run must not fail because of a notification
        detail = exc.message if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
        line = f"notify failed ({detail})"
    if line and " failed (" in line:  # every failure above reads "<what> failed (<why>)"
        print(f"flank: {line}", file=sys.stderr)
    return line


def _send(settings: dict[str, Any], secrets: dict[str, str], message: Message, outcome: str) -> str | None:
    results: list[str] = []
    webhook = email = None
    try:
        webhook = webhook_settings(settings)
    except UserError as exc:
        results.append(f"webhook failed ({exc.message})")
    try:
        email = email_settings(settings)
    except UserError as exc:
        results.append(f"email failed ({exc.message})")
    if webhook is not None:
        try:
            send_webhook(webhook, message.as_slack())
            results.append("webhook sent")
        except DeliveryError as exc:
            results.append(f"webhook failed ({exc})")
    if email is not None:
        try:
            send_email(email, password_for(email, secrets), message.subject, message.as_text())
            results.append(f"email sent to {', '.join(email.to)}")
        except DeliveryError as exc:
            results.append(f"email failed ({exc})")
    if not results:
        return None  # no channel configured
    return f"notify {outcome}: " + ", ".join(results)
