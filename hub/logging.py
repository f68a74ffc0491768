"""Structured JSON logs, one object per line, with request_id/event_id from context and
personal data masked (hub.masking) in the message and every extra field."""

from __future__ import annotations

import contextvars
import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

from hub.masking import mask_data, mask_text

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
event_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("event_id", default=None)

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "taskName"}


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
        entry: dict[str, Any] = {
            "ts": self._timestamp(record.created),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": mask_text(record.getMessage()),
        }
        request_id, event_id = request_id_var.get(), event_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        if event_id:
            entry["event_id"] = event_id
        fields = record.__dict__
        names = fields.keys() - _STANDARD  # a set operation: most of a record's attributes are standard
        if names:
            extras = {k: fields[k] for k in names if not k.startswith("_")}
            entry.update(mask_data(extras))
        if record.exc_info:
            entry["error"] = mask_text(self.formatException(record.exc_info))
        return orjson.dumps(entry, default=str).decode()


def configure_logging(service: str, level: str = "INFO", stream: Any = None) -> None:
    """Route every logger (ours, uvicorn's, faust's) through one JSON handler."""
    # The logging HOWTO's "Optimization": our JSON lines carry no caller, thread or process fields,
    # so do not collect them for every record (the request audit logs one line per request).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("uvicorn.access",):  # replaced by the ingress's own audit line
        logging.getLogger(noisy).handlers[:] = []
        logging.getLogger(noisy).propagate = False
    for name in ("uvicorn", "uvicorn.error", "faust", "mode", "aiokafka"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
