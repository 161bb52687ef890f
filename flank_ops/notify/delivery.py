"""Sending one HTTP request with a deadline, and saying in one line why it failed.

Webhook and ping URLs carry their secret in the path (Slack's token, a check's
UUID), so errors name only scheme://host, never the whole URL.
"""

from __future__ import annotations

import socket
import urllib.parse

USER_AGENT = "flank"


class DeliveryError(Exception):
    """A notification could not be delivered; str() says why, without secrets."""


def public_part(url: str) -> str:
    """scheme://host[:port] of a URL: safe to show and to store."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def http_request(
    url: str,
    *,
    method: str = "POST",
    body: bytes | None = None,
    content_type: str = "text/plain; charset=utf-8",
    timeout: float = 10.0,
) -> int:
    """Send one request; return the HTTP status (2xx/3xx/4xx). Raises DeliveryError for no answer or a 5xx."""
    # Here, not at the top: urllib.request brings http.client, ssl and email (~10 ms, python -X
    # importtime), which every run paid for at its end though most send nothing (issue 22).
    import urllib.error
    import urllib.request

    headers = {"User-Agent": USER_AGENT}
    if body is not None:
        headers["Content-Type"] = content_type
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    where = public_part(url)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read(64 * 1024)
            return response.status
    except urllib.error.HTTPError as exc:
        if exc.code >= 500:
            raise DeliveryError(f"HTTP {exc.code} from {where}") from None
        return exc.code
    except urllib.error.URLError as exc:
        raise DeliveryError(network_reason(exc.reason, where, timeout)) from None
    except TimeoutError:
        raise DeliveryError(f"{where} did not answer within {timeout:g}s") from None
    except OSError as exc:
        raise DeliveryError(network_reason(exc, where, timeout)) from None


def network_reason(reason: object, where: str, timeout: float) -> str:
    """What went wrong reaching `where`, in words (webhooks, pings and SMTP alike)."""
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return f"{where} did not answer within {timeout:g}s"
    if isinstance(reason, ConnectionRefusedError):
        return f"cannot connect to {where} (connection refused)"
    if isinstance(reason, socket.gaierror):
        return f"cannot resolve the host of {where}"
    text = getattr(reason, "strerror", None) or str(reason)
    return f"cannot reach {where} ({text})"
