"""The delivery worker: a background loop that sends due deliveries."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import structlog

from services.notify.adapters.mail import SmtpConfig, SmtpMailer
from services.notify.handlers import delivery as handlers
from services.notify.settings import NotifySettings
from shared.runtime import Runtime

log = structlog.get_logger(__name__)


def mailer_from(settings: NotifySettings) -> SmtpMailer:
    return SmtpMailer(
        SmtpConfig(
            host=settings.smtp_host,
            port=settings.smtp_port,
            mail_from=settings.mail_from,
            starttls=settings.smtp_starttls,
            use_tls=settings.smtp_tls,
            username=settings.smtp_username,
            password=settings.smtp_password,
        )
    )


async def run_delivery_worker(runtime: Runtime) -> None:
    settings = runtime.settings
    assert isinstance(settings, NotifySettings)
    mailer = mailer_from(settings)
    while True:
        try:
            attempted = await handlers.deliver_due(
                runtime.uow,
                mailer,
                mail_from=settings.mail_from,
                max_attempts=settings.delivery_max_attempts,
                lease=timedelta(seconds=settings.delivery_lease_seconds),
            )
        except Exception:
            log.exception("delivery worker failed; continuing")
            attempted = 0
        if attempted == 0:
            await asyncio.sleep(settings.delivery_poll_seconds)
