"""Structured logging (seed resource cfg-q9c5).

Every line carries the request id bound by ``app.http.RequestIdMiddleware``. Log event
names follow ``noun.verb_past`` (``analytics.event_failed``, ``completion.recorded``).
"""

from __future__ import annotations

import logging
import sys
from typing import Literal

import structlog


def configure_logging(*, fmt: Literal["json", "console"], level: str = "INFO") -> None:
    tail: list[structlog.typing.Processor] = (
        [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
        if fmt == "json"
        else [structlog.dev.ConsoleRenderer(colors=False)]
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            *tail,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(logger_name=name)
    return logger
