"""Structured log events: what an operator needs around an event the metrics only count.

Each component logs to a logger of its own (``cadmetrics.features``, ``cadmetrics.models``,
``cadmetrics.vectors``, ``cadmetrics.drift``), all silent by default: the package's top logger
has a ``NullHandler``, as a library's should, and a host turns them on with its own logging
configuration. An event is logged once, when it happens (a blocked model, a rollback, a
migration started, resumed or finished, a drift anomaly, the shared cache lost and back), never
per emission, scan or search. Its fields travel in the record's ``extra``: ``event`` (a stable
name), the event's own fields, and ``trace_id`` and ``span_id`` of the active span when
OpenTelemetry tracing is on. :func:`json_formatter` writes them as one JSON object per line.
"""

from __future__ import annotations

import functools
import importlib
import logging
from typing import Any

from cadmetrics.errors import TelemetryError

#: The top logger; the components' loggers are its children.
ROOT = "cadmetrics"

#: Attributes every LogRecord has; an event's field must not take one of their names.
_RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def component_logger(component: str) -> logging.Logger:
    """The logger of ``component`` (``features``, ``models``, ``vectors``, ``drift``)."""
    return logging.getLogger(f"{ROOT}.{component}")


def log_event(logger: logging.Logger, level: int, event: str, message: str, /, **fields: Any) -> None:
    """Log ``message`` with ``event`` and ``fields`` in ``extra`` (and the trace context), when
    ``logger`` is enabled for ``level``; nothing is built otherwise."""
    if not logger.isEnabledFor(level):
        return
    clashing = _RESERVED.intersection(fields)
    if clashing:
        raise ValueError(f"log field(s) {sorted(clashing)} would overwrite LogRecord attributes")
    extra = {"event": event, **fields, **_trace_context()}
    logger.log(level, message, extra=extra, stacklevel=2)


def _trace_context() -> dict[str, str]:
    """``trace_id`` and ``span_id`` of the active span (hex), or nothing outside one."""
    trace = _tracing_api()
    if trace is None:
        return {}
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}


@functools.cache
def _tracing_api() -> Any:
    """OpenTelemetry's tracing API, or None where it is not installed (looked up once)."""
    try:
        return importlib.import_module("opentelemetry.trace")
    except ImportError:
        return None


def json_formatter(**options: Any) -> logging.Formatter:
    """A formatter writing each record as one JSON object with its ``extra`` fields
    (python-json-logger, the ``logs`` extra)."""
    try:
        from pythonjsonlogger.json import JsonFormatter
    except ImportError as exc:
        raise TelemetryError(
            "a JSON log formatter needs python-json-logger: pip install 'cadmetrics[logs]'"
        ) from exc
    options.setdefault("fmt", "{asctime}{levelname}{name}{message}")
    options.setdefault("style", "{")
    formatter: logging.Formatter = JsonFormatter(**options)
    return formatter
