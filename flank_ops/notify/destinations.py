"""Does a project's `notify:` have somewhere to go? (issue 19 bug 8)

A pipeline whose flank.yml says `notify: [failure, recovery]` on a VM whose flank.toml has neither
[notify.webhook] nor [notify.email] would notify nobody, silently. The push, `flank validate` (on
the VM) and `flank doctor` say so, with this one sentence. Only a `notify:` written in flank.yml
counts: the default (failure) alone warns nobody who never asked for notifications.
"""

from __future__ import annotations

from typing import Any

from flank_ops.config.model import Config
from flank_ops.errors import UserError
from flank_ops.hints import settings_docs
from flank_ops.settings import email_settings, webhook_settings


def nowhere_to_send(config: Config, settings: dict[str, Any], where: str) -> str | None:
    """One warning naming the pipelines whose `notify:` has no destination in `settings` (a project's
    flank.toml values; `where` is that file), or None."""
    asking = [f"{name} ({', '.join(p.notify)})" for name, p in config.pipelines.items() if p.notify_set and p.notify]
    if not asking:
        return None
    try:
        if webhook_settings(settings) is not None or email_settings(settings) is not None:
            return None
    except UserError:
        return None  # a broken table: said by whoever reads it (doctor, the run's notification)
    return (
        f"notify: {'; '.join(asking)} — but {where} has no [notify.webhook] or [notify.email], "
        f"so nothing will be sent (add one: see {settings_docs('[notify.webhook]')})"
    )
