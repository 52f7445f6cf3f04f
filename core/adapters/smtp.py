"""The mailer port over SMTP (aiosmtplib), configured by the SMTP_* settings."""

from __future__ import annotations

import logging
from email.message import EmailMessage

import aiosmtplib

from core.ports.mailer import MailError
from core.settings import Settings

logger = logging.getLogger(__name__)


class SmtpMailer:
    def __init__(self, settings: Settings, timeout_s: float = 20.0) -> None:
        self.settings = settings
        self.timeout_s = timeout_s

    async def send(self, to: str, subject: str, body: str) -> None:
        settings = self.settings
        message = EmailMessage()
        message["From"] = settings.smtp_from
        message["To"] = to
        message["Subject"] = subject
        message.set_content(body)
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        try:
            await aiosmtplib.send(
                message,
                hostname=settings.smtp_host,
                port=settings.smtp_port,
                username=settings.smtp_username or None,
                password=password if settings.smtp_username else None,
                use_tls=settings.smtp_security == "tls",
                start_tls=settings.smtp_security == "starttls",
                timeout=self.timeout_s,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise MailError(f"SMTP {settings.smtp_host}:{settings.smtp_port}: {exc}") from exc
        logger.info("alert email sent (%s)", subject)


def mailer_from_settings(settings: Settings) -> SmtpMailer | None:
    """The SMTP mailer, or None when SMTP_HOST is empty."""
    if not settings.smtp_host:
        return None
    return SmtpMailer(settings)
