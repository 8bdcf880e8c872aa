"""E-mail over SMTP with aiosmtplib: a notification row becomes a MIME message whose
Message-ID is the notification's id, so a retry after a crash is the same message to every
mail system that deduplicates, and to the reader who looks."""

from __future__ import annotations

import email.utils
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import aiosmtplib

from consult.settings import Settings

# How long one delivery may take before it counts as failed (and is retried).
SEND_TIMEOUT = 30.0


class Permanent(Exception):
    """The server refused the recipient for good (a 5xx answer): retrying changes nothing."""


def message_id(notification_id: str, sender: str) -> str:
    domain = email.utils.parseaddr(sender)[1].rpartition("@")[2] or "consult.invalid"
    return f"<{notification_id}@{domain}>"


def build_message(row: Any, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = row.recipient
    message["Subject"] = row.subject
    message["Message-ID"] = message_id(row.id, sender)
    message["Date"] = email.utils.format_datetime(row.created_at)
    message.set_content(row.body or "")
    if row.attachment is not None:
        maintype, _, subtype = (row.attachment_type or "text/plain").partition("/")
        # str content is the only kind EmailMessage takes for text/* with a subtype.
        message.add_attachment(
            row.attachment, subtype=subtype or "plain", filename=row.attachment_name
        )
        assert maintype == "text"
    return message


@dataclass(frozen=True)
class SmtpSender:
    host: str
    port: int
    tls: str
    username: str
    password: str
    sender: str

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpSender | None:
        """None when no SMTP server is configured."""
        if not settings.smtp_host:
            return None
        return cls(
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_tls,
            settings.smtp_username,
            settings.smtp_password,
            settings.mail_from,
        )

    async def send(self, message: EmailMessage) -> None:
        """Deliver, or raise ``Permanent`` (5xx) or another exception (try again later)."""
        try:
            await aiosmtplib.send(
                message,
                hostname=self.host,
                port=self.port,
                username=self.username or None,
                password=self.password or None,
                use_tls=self.tls == "tls",
                start_tls=True if self.tls == "starttls" else False,
                timeout=SEND_TIMEOUT,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            if all(r.code >= 500 for r in exc.recipients):
                raise Permanent(str(exc)) from exc
            raise
        except aiosmtplib.SMTPRecipientRefused as exc:
            if exc.code >= 500:
                raise Permanent(f"{exc.code} {exc.message}") from exc
            raise
        # Anything else (no connection, a refused login or sender, a 4xx) may be the server's
        # or the settings' fault, not the message's: it is tried again, never given up.
