"""Logs an operator can follow: the request id on every line, JSON when a machine reads them.

:data:`REQUEST_ID` holds the id of the request being served (set by
:class:`~shoprec.http.observe.RequestObserver`); :class:`RequestIdFilter` puts it on every
log record written meanwhile, so an error logged deep in a handler carries the id the client
got in its ``X-Request-Id`` header. :func:`configure_logging` installs one handler on the root
logger: plain text on a terminal, one JSON object per line otherwise (``log_format``).
Structured fields go in ``extra={"fields": {...}}``; the JSON lines carry them as keys.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

from shoprec.settings import LogFormat

REQUEST_ID: ContextVar[str | None] = ContextVar("shoprec_request_id", default=None)


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` (None outside a request) to each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = REQUEST_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), severity, logger, message, request
    id, the record's ``fields``, and the exception's traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "severity": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id is not None:
            line["request_id"] = request_id
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message [request_id=...]``, for a person at a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        request_id = getattr(record, "request_id", None)
        if request_id is None:
            return text
        head, newline, rest = text.partition("\n")  # after the message, before a traceback
        return f"{head} [request_id={request_id}]{newline}{rest}"


def use_json(log_format: LogFormat, stream: TextIO) -> bool:
    """JSON unless asked for text, or ``auto`` and ``stream`` is a terminal."""
    if log_format == "auto":
        isatty = getattr(stream, "isatty", None)
        return not (isatty is not None and isatty())
    return log_format == "json"


def configure_logging(level: str, log_format: LogFormat, stream: TextIO | None = None) -> logging.Handler:
    """Replace the root logger's handlers with one writing to ``stream`` (stderr) in the
    chosen format, every record carrying its request id. Returns the handler."""
    stream = stream if stream is not None else sys.stderr
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if use_json(log_format, stream) else TextFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler
