"""structlog JSON logs, with the correlation id bound from context; stdlib logs go through it."""

from __future__ import annotations

import logging
import sys

import structlog


def configure_logging(service: str, level: str = "INFO") -> None:
    shared_processors: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            *shared_processors,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            structlog.processors.EventRenamer("msg"),
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared_processors,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,  # a traceback as text, not a tuple's repr
            structlog.processors.EventRenamer("msg"),
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    # The broker's logger asks for DEBUG (its per-message lines); the handler keeps the level.
    handler.setLevel(level.upper())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access", "aiosqlite", "sqlalchemy.engine"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger(BUS_LOGGER).addFilter(FastStreamNoise())


BUS_LOGGER = "qcdc.bus"
"""FastStream logs here (``NatsBroker(logger=...)``), so its lines are JSON like ours."""


class FastStreamNoise(logging.Filter):
    """Turns FastStream's known harmless supervisor messages into what they are.

    - "callback for Task-N is being executed..." (INFO, whenever a consumer task ends):
      debug detail.
    - nats-py 2.16 ends a pull ``fetch`` whose deadline ran out with ``asyncio.TimeoutError``,
      which FastStream 0.7.8 does not catch (it catches nats' own ``TimeoutError``); its
      supervisor restarts the consumer task at once and logs an ERROR with a traceback. The
      consumer goes on, so this is a one-line warning, not an error.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith("callback for ") and message.endswith(" is being executed..."):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        error = record.exc_info[1] if record.exc_info else None
        if "raised an exception, retrying" in message and isinstance(error, TimeoutError):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg, record.args = "pull fetch timed out; the consumer task was restarted", ()
            record.exc_info, record.exc_text = None, None
        return True
