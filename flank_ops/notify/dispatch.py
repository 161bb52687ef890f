"""After a run: the dead-man's switch ping, then the notifications notify: asks for.

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
from typing import Any

from flank_ops.config.model import DEFAULT_NOTIFY
from flank_ops.errors import UserError
from flank_ops.paths import ProjectPaths
from flank_ops.run import records
from flank_ops.run.records import RunRecord, RunStatus


def outcome_of(paths: ProjectPaths, record: RunRecord) -> str | None:
    """failure, success or recovery; None for runs that notify nobody (skipped, still running)."""
    status = record.status
    if status in (RunStatus.FAILED, RunStatus.INTERRUPTED):
        return "failure"
    if status != RunStatus.SUCCESS:
        return None
    previous = None
    for entry in records.read_history(paths, record.pipeline):
        if entry["run_id"] == record.run_id:
            break  # runs that finished after this one do not count
        if entry.get("status") in ("success", "failed", "interrupted"):
            previous = entry
    return "recovery" if previous is not None and previous["status"] != "success" else "success"


def wanted(outcome: str | None, notify_on: tuple[str, ...]) -> bool:
    if outcome is None:
        return False
    return outcome in notify_on or (outcome == "recovery" and "success" in notify_on)


def after_run(paths: ProjectPaths, record: RunRecord) -> str | None:
    """Send the notifications the pipeline's notify: asks for; returns a status line or None if none configured."""
    from flank_ops.notify import ping
    from flank_ops.notify.message import build_message
    from flank_ops.notify.run_config import pipeline_of
    from flank_ops.run.secrets import load_secrets
    from flank_ops.settings import settings_for, site_url

    parts: list[str] = []
    try:
        settings = settings_for(paths.home, paths.name)
        pipeline = pipeline_of(paths, record)
        secrets = load_secrets(paths)
        outcome = outcome_of(paths, record)
        message = build_message(paths, record, outcome or "", site_url(settings), secrets)
        ping_line = ping.run_finished(paths, record, pipeline, message.as_text())
        if ping_line:
            parts.append(ping_line)
        notify_on = pipeline.notify if pipeline is not None else DEFAULT_NOTIFY
        if wanted(outcome, notify_on):
            notify_line = _send(paths, settings, message, outcome or "")
            if notify_line:
                parts.append(notify_line)
    except Exception as exc:  # noqa: BLE001 - the end of a run must not fail because of a notification
        detail = exc.message if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
        parts.append(f"notify failed ({detail})")
    line = "; ".join(parts) or None
    if line and " failed (" in line:  # every failure above reads "<what> failed (<why>)"
        print(f"flank: {line}", file=sys.stderr)
    return line


def _send(paths: ProjectPaths, settings: dict[str, Any], message: Any, outcome: str) -> str | None:
    from flank_ops.notify.delivery import DeliveryError
    from flank_ops.notify.email import password_for, send_email
    from flank_ops.notify.webhook import send_webhook
    from flank_ops.settings import email_settings, webhook_settings

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
            send_email(email, password_for(email, paths), message.subject, message.as_text())
            results.append(f"email sent to {', '.join(email.to)}")
        except DeliveryError as exc:
            results.append(f"email failed ({exc})")
    if not results:
        return None  # no channel configured
    return f"notify {outcome}: " + ", ".join(results)
