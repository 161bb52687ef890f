"""Email notifications over SMTP (STARTTLS or SSL, optional login), with a deadline on every step.

The password is never in flank.toml: `password_env` names an environment variable
or a project secret (`flank secrets set PROJECT NAME`) that holds it.
"""

from __future__ import annotations

# smtplib, ssl and email are imported by the functions that send: every run imports this module
# at its end (notify/dispatch.py), and most send nothing (~10 ms, python -X importtime; issue 22).
import os
from typing import TYPE_CHECKING

from flank_ops.notify.delivery import DeliveryError, network_reason
from flank_ops.settings import EmailSettings

if TYPE_CHECKING:
    import smtplib


def password_for(settings: EmailSettings, secrets: dict[str, str]) -> str | None:
    """The SMTP password from the env var, else the project secret (`secrets`), named by password_env."""
    if not settings.password_env:
        return None
    value = os.environ.get(settings.password_env)
    return value if value is not None else secrets.get(settings.password_env)


def _connect(settings: EmailSettings, password: str | None) -> smtplib.SMTP:
    """An SMTP session, secured and logged in as the settings say. The caller quits it."""
    import smtplib
    import ssl

    where = f"{settings.host}:{settings.port}"
    if settings.username and password is None:
        hint = (
            f"set the env var {settings.password_env}"
            if settings.password_env
            else "set password_env in [notify.email]"
        )
        raise DeliveryError(f"no SMTP password for {settings.username} ({hint}, or a project secret of that name)")
    tls = ssl.create_default_context(cafile=settings.ca_file)
    smtp: smtplib.SMTP | None = None
    try:
        if settings.ssl:
            smtp = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout_s, context=tls)
        else:
            smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_s)
            if settings.starttls:
                smtp.starttls(context=tls)
        if settings.username:
            smtp.login(settings.username, password or "")
        return smtp
    except BaseException as exc:
        if smtp is not None:
            smtp.close()
        if isinstance(exc, Exception):
            raise DeliveryError(describe_smtp_error(exc, where, settings)) from None
        raise


def describe_smtp_error(exc: BaseException, where: str, settings: EmailSettings) -> str:
    import smtplib
    import ssl

    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return (
            f"SMTP login as {settings.username} refused by {where} ({exc.smtp_code}); check the username and password"
        )
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return f"{where} does not offer STARTTLS (set starttls = false or ssl = true)"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate of {where} not trusted ({exc.verify_message}); set ca_file if it uses a private CA"
    if isinstance(exc, smtplib.SMTPResponseException):
        said = exc.smtp_error
        return (
            f"{where} answered {exc.smtp_code} {said.decode('utf-8', 'replace') if isinstance(said, bytes) else said}"
        )
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return f"{where} refused the recipients {', '.join(exc.recipients)}"
    if isinstance(exc, OSError):  # timeouts, refused connections, unreachable hosts
        return network_reason(exc, where, settings.timeout_s)
    return f"{where}: {type(exc).__name__}: {exc}"


def send_email(settings: EmailSettings, password: str | None, subject: str, text: str) -> None:
    import smtplib
    from email.message import EmailMessage
    from email.utils import formatdate, make_msgid

    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = settings.sender
    msg["To"] = ", ".join(settings.to)
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = make_msgid(domain=settings.sender.rpartition("@")[2] or None)
    msg.set_content(text)
    smtp = _connect(settings, password)
    try:
        smtp.send_message(msg)
    except Exception as exc:  # noqa: BLE001 - becomes the status line
        raise DeliveryError(describe_smtp_error(exc, f"{settings.host}:{settings.port}", settings)) from None
    finally:
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()


def check_login(settings: EmailSettings, password: str | None) -> str:
    """Connect, secure and log in without sending anything (for `flank doctor`)."""
    import smtplib

    smtp = _connect(settings, password)
    try:
        smtp.noop()
    finally:
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()
    how = "SSL" if settings.ssl else "STARTTLS" if settings.starttls else "plain"
    who = f", logged in as {settings.username}" if settings.username else ""
    return f"{settings.host}:{settings.port} ({how}{who})"
