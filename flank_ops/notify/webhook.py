"""Slack-compatible incoming webhooks: POST {"text": ...} as JSON (Slack, Mattermost, Rocket.Chat, ...)."""

from __future__ import annotations

import json

from flank_ops.notify.delivery import DeliveryError, http_request, public_part
from flank_ops.settings import WebhookSettings


def send_webhook(settings: WebhookSettings, text: str) -> None:
    """Post the message; raises DeliveryError unless the server accepts it (2xx)."""
    body = json.dumps({"text": text}).encode("utf-8")
    status = http_request(settings.url, body=body, content_type="application/json", timeout=settings.timeout_s)
    if not 200 <= status < 300:
        raise DeliveryError(f"HTTP {status} from {public_part(settings.url)}")


def check_webhook(settings: WebhookSettings) -> str:
    """Is the webhook's server there? (for `flank doctor`; posts nothing)

    A GET to a webhook URL usually gets a 4xx (it wants a POST): that still proves
    the host answers. Raises DeliveryError when it does not, or answers 5xx.
    """
    status = http_request(settings.url, method="GET", timeout=settings.timeout_s)
    return f"{public_part(settings.url)} answers (HTTP {status})"
