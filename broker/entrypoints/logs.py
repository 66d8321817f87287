"""The broker's log: plain text for a person at a terminal, JSON lines for a log pipeline
(BROKER_LOG_FORMAT), each line carrying the context of the call it was written for.

A call's context is one dictionary per call, in a context variable: the outermost interceptor
starts it (request id, method), and whoever learns more adds to it (the caller's identity after
authentication, the grant and instance a command is about). The dictionary itself is shared, so
what is added deep inside a call (even in a copied context, as authentication runs the call in)
reaches the access-log line the interceptor writes when the call ends.
"""

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

LogFormat = Literal["json", "text"]

_CALL: ContextVar[dict[str, str] | None] = ContextVar("accessbroker_log_call", default=None)
# What a record names besides its message, in this order, when set.
CONTEXT_KEYS = (
    "request_id",
    "grpc_method",
    "identity",
    "via",
    "grant_id",
    "instance_id",
    "trace_id",
    "span_id",
)
# LogRecord attributes of its own; anything else on a record came from `extra=`.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
}


@contextmanager
def call_context(**fields: str) -> Iterator[dict[str, str]]:
    """Within the block, log records carry `fields` and whatever note() adds."""
    token = _CALL.set(dict(fields))
    try:
        context = _CALL.get()
        assert context is not None
        yield context
    finally:
        _CALL.reset(token)


def note(**fields: str) -> None:
    """Adds to the current call's context (nothing outside a call); empty values are left out."""
    context = _CALL.get()
    if context is not None:
        context.update({key: value for key, value in fields.items() if value})


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, the call's context, any extra."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(_CALL.get() or {})
        line.update(
            (key, value) for key, value in vars(record).items() if key not in _RECORD_ATTRIBUTES
        )
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    """The plain line, followed by the call's context as key=value."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        context = _CALL.get() or {}
        named = " ".join(f"{key}={context[key]}" for key in CONTEXT_KEYS if key in context)
        return f"{text} [{named}]" if named else text


def configure_logging(level: str, log_format: LogFormat | None) -> None:
    """The root logger at `level`, writing to standard error in `log_format` (None: text when
    standard error is a terminal, JSON otherwise)."""
    chosen = log_format or ("text" if sys.stderr.isatty() else "json")
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if chosen == "json" else TextFormatter())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    # Alembic narrates every start; only its warnings matter to someone running the broker.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.root.level))
