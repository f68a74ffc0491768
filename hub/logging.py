"""Structured JSON logs, one object per line, with request_id/event_id from context and
personal data masked (hub.masking) in the message and every extra field."""

from __future__ import annotations

import contextvars
import logging
import sys
import time
from datetime import UTC, datetime
from typing import Any

import orjson

from hub.masking import mask_data, mask_text

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
event_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("event_id", default=None)

# Record attributes that are not fields of the line: the standard ones, and uvicorn's `color_message`
# (the message again, with terminal colour codes; a JSON line is for shippers, not terminals).
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str):
        super().__init__()
        self.service = service
        self._second = -1
        self._second_text = ""

    def _timestamp(self, created: float) -> str:
        # The ingress writes a line per request: the date and time are formatted once a second, the
        # milliseconds each time (same text as datetime.isoformat(timespec="milliseconds")).
        second = int(created)
        micros = round((created - second) * 1e6)  # rounded as datetime.fromtimestamp rounds
        if micros >= 1_000_000:
            second, micros = second + 1, micros - 1_000_000
        if second != self._second:
            self._second_text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            self._second = second
        return f"{self._second_text}.{micros // 1000:03d}+00:00"

    def format(self, record: logging.LogRecord) -> str:
        fields = record.__dict__
        names = fields.keys() - _STANDARD  # a set operation: most of a record's attributes are standard
        extras = {k: fields[k] for k in names} if names else None
        error = self.formatException(record.exc_info) if record.exc_info else None
        return self.line(record.created, record.levelname.lower(), record.name, record.getMessage(), extras, error)

    def line(
        self,
        created: float,
        level: str,
        logger: str,
        message: str,
        extras: dict[str, Any] | None,
        error: str | None,
        *,
        extras_masked: bool = False,
    ) -> str:
        """One JSON line: time, level, service, logger, masked message, request/event id from the
        context, masked extra fields (those not starting with "_"; as given when `extras_masked`:
        the caller vouches that none holds personal data), masked error."""
        entry: dict[str, Any] = {
            "ts": self._timestamp(created),
            "level": level,
            "service": self.service,
            "logger": logger,
            "msg": mask_text(message),
        }
        request_id, event_id = request_id_var.get(), event_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        if event_id:
            entry["event_id"] = event_id
        if extras:
            if extras_masked:
                entry.update(extras)
            else:
                entry.update(mask_data({k: v for k, v in extras.items() if not k.startswith("_")}))
        if error is not None:
            entry["error"] = mask_text(error)
        return orjson.dumps(entry, default=str).decode()


# The handler configure_logging installed, for log_info's direct path.
_json_handler: logging.StreamHandler[Any] | None = None


def log_info(logger: logging.Logger, message: str, fields: dict[str, Any], *, fields_masked: bool = False) -> None:
    """`logger.info(message, extra=fields)`, for a line written once per request (the ingress's audit).

    When the line would reach only the JSON handler configure_logging installed (no other handler, no
    filter on the way: the services' set-up), it is formatted and written here directly, the same
    line as through `logging` at half the CPU: no LogRecord, no handler chain (~33 -> ~17 us by hand,
    docs/benchmarks.md). Otherwise (tests' capture handlers, a handler added at run time) it goes
    through `logging` as usual. `fields` follows `extra`'s rule: no LogRecord attribute names.
    `fields_masked`: the caller vouches that no field holds personal data (the request audit's own
    identifiers), so the direct path does not mask them again (the `logging` path always does)."""
    handler = _json_handler
    if not logger.isEnabledFor(logging.INFO):
        return
    formatter = handler.formatter if handler is not None else None
    if handler is None or not isinstance(formatter, JsonFormatter) or not _reaches_only(logger, handler):
        logger.info(message, extra=fields)
        return
    text = (
        formatter.line(time.time(), "info", logger.name, message, fields, None, extras_masked=fields_masked)
        + handler.terminator
    )
    handler.acquire()
    try:
        handler.stream.write(text)
        handler.flush()
    except Exception:  # what Handler.emit does: report on stderr, never raise into the request
        handler.handleError(logger.makeRecord(logger.name, logging.INFO, "", 0, message, (), None, extra=fields))
    finally:
        handler.release()


def _reaches_only(logger: logging.Logger, handler: logging.Handler) -> bool:
    """The INFO line of `logger` goes to `handler` alone, and nothing on the way filters it."""
    if logger.disabled or logger.filters or handler.filters or handler.level > logging.INFO:
        return False
    found = False
    current: logging.Logger | None = logger
    while current is not None:
        for other in current.handlers:
            if other is not handler:
                return False
            found = True
        current = current.parent if current.propagate else None
    return found


def configure_logging(service: str, level: str = "INFO", stream: Any = None) -> None:
    """Route every logger (ours, uvicorn's, faust's) through one JSON handler."""
    # The logging HOWTO's "Optimization": our JSON lines carry no caller, thread or process fields,
    # so do not collect them for every record (the request audit logs one line per request).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    global _json_handler
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    _json_handler = handler
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("uvicorn.access",):  # replaced by the ingress's own audit line
        logging.getLogger(noisy).handlers[:] = []
        logging.getLogger(noisy).propagate = False
    for name in ("uvicorn", "uvicorn.error", "faust", "mode", "aiokafka"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # httpx logs every request's full URL at INFO ("HTTP Request: POST https://..."): Z-API's token is
    # a path segment of its send URL (CARINHO_HTTP_TRANSPORT=httpx/aiohttp), a report webhook's secret
    # is in its URL. Warnings and errors still come through; request lines never do, at any level.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # Python warnings (a library's deprecation, pydantic's serialization warning quoting the value it
    # got) went raw to stderr, the service's log file, unmasked: they are log lines like any other.
    logging.captureWarnings(True)
