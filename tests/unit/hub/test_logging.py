"""hub.logging.log_info: the ingress's audit line written without `logging`'s machinery is the same
line `logger.info` writes, and it steps aside whenever another handler or a filter is in the way."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

import hub.logging as hub_logging
from hub.logging import JsonFormatter, configure_logging, log_info, request_id_var

FIELDS = {
    "request_id": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
    "source": "site",
    "key_id": "k_abc123",
    "event_type": "lead.created",
    "event_id": "5b2f0a0c-1111-4222-8333-444455556666",
    "method": "GET",
    "path": "/v1/events/maria.souza@gmail.com/11987654321",
    "status": 404,
    "latency_ms": 1.23,
    "_private": "never written",
}


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """configure_logging on a fresh stream; the root logger's set-up is put back afterwards."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, hub_logging._json_handler)
    out = io.StringIO()
    configure_logging("ingress", "INFO", out)
    try:
        yield out
    finally:
        root.handlers[:], level, hub_logging._json_handler = saved
        root.setLevel(level)


@contextmanager
def json_handler_alone() -> Iterator[None]:
    """Inside a test pytest's own capture handlers sit on the root logger too: take them off, so the
    set-up is the services' (the JSON handler alone)."""
    root = logging.getLogger()
    saved = root.handlers[:]
    assert hub_logging._json_handler is not None
    root.handlers[:] = [hub_logging._json_handler]
    try:
        yield
    finally:
        root.handlers[:] = saved


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_the_direct_line_is_the_line_logging_writes(stream: io.StringIO) -> None:
    logger = logging.getLogger("ingress.audit")
    token = request_id_var.set(FIELDS["request_id"])
    try:
        with json_handler_alone():
            assert hub_logging._reaches_only(logger, hub_logging._json_handler)  # the direct path writes
            log_info(logger, "request", FIELDS)
            logger.info("request", extra=FIELDS)
    finally:
        request_id_var.reset(token)
    direct, through_logging = lines(stream)
    assert direct.pop("ts") and through_logging.pop("ts")
    assert direct == through_logging
    assert direct["logger"] == "ingress.audit" and direct["status"] == 404 and direct["source"] == "site"
    assert "_private" not in direct
    text = stream.getvalue()
    assert "maria.souza" not in text and "11987654321" not in text  # the path is masked on both
    assert direct["event_id"] == FIELDS["event_id"] and direct["key_id"] == "k_abc123"


def test_another_handler_gets_the_record_through_logging(stream: io.StringIO) -> None:
    logger = logging.getLogger("ingress.audit")
    captured: list[logging.LogRecord] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            captured.append(record)

    capture = Capture()
    logger.addHandler(capture)
    try:
        with json_handler_alone():
            log_info(logger, "request", FIELDS)
    finally:
        logger.removeHandler(capture)
    assert len(captured) == 1 and captured[0].__dict__["status"] == 404
    assert len(lines(stream)) == 1  # and the JSON handler still wrote its line (propagation)


def test_a_filter_on_the_way_is_honoured(stream: io.StringIO) -> None:
    logger = logging.getLogger("ingress.audit")

    def drop_404(record: logging.LogRecord) -> bool:
        return record.__dict__.get("status") != 404

    logger.addFilter(drop_404)
    try:
        with json_handler_alone():
            log_info(logger, "request", FIELDS)
            log_info(logger, "request", {**FIELDS, "status": 202})
    finally:
        logger.removeFilter(drop_404)
    assert [line["status"] for line in lines(stream)] == [202]


def test_nothing_is_written_below_the_level(stream: io.StringIO) -> None:
    logger = logging.getLogger("ingress.audit")
    logger.setLevel(logging.WARNING)
    try:
        with json_handler_alone():
            log_info(logger, "request", FIELDS)
    finally:
        logger.setLevel(logging.NOTSET)
    assert stream.getvalue() == ""


def test_a_failed_write_is_reported_not_raised(stream: io.StringIO, capsys: pytest.CaptureFixture[str]) -> None:
    stream.close()  # writing raises ValueError now
    with json_handler_alone():
        log_info(logging.getLogger("ingress.audit"), "request", FIELDS)
    assert "ValueError" in capsys.readouterr().err


def test_another_formatter_on_the_handler_is_used(stream: io.StringIO) -> None:
    assert hub_logging._json_handler is not None
    hub_logging._json_handler.setFormatter(logging.Formatter("plain %(message)s"))
    with json_handler_alone():
        log_info(logging.getLogger("ingress.audit"), "request", FIELDS)
    assert stream.getvalue() == "plain request\n"


def test_uvicorns_coloured_copy_of_the_message_is_not_a_field() -> None:
    """uvicorn logs `color_message` (terminal escapes) beside the message: not in a JSON line."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("ingress"))
    logger = logging.getLogger("test.uvicorn.colours")
    logger.setLevel(logging.INFO)
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.info(
        "Started server process [%d]", 42, extra={"color_message": "Started server process [\x1b[36m%d\x1b[0m]"}
    )
    line = json.loads(stream.getvalue())
    assert line["msg"] == "Started server process [42]" and "color_message" not in line
    assert "\x1b" not in stream.getvalue() and "\\u001b" not in stream.getvalue()


def test_httpx_request_lines_never_reach_the_log(stream: io.StringIO) -> None:
    """httpx logs each request's URL at INFO; Z-API's token is part of its send URL."""
    with json_handler_alone():
        logging.getLogger("httpx").info(
            'HTTP Request: POST https://api.z-api.io/instances/i/token/T0K3N/send-text "200"'
        )
        logging.getLogger("httpx").warning("a warning still comes through")
    text = stream.getvalue()
    assert "T0K3N" not in text and "a warning still comes through" in text


def test_python_warnings_are_json_lines_and_masked(stream: io.StringIO) -> None:
    import warnings

    try:
        with warnings.catch_warnings():
            logging.captureWarnings(False)  # an earlier test's capture, undone by pytest's own recorder
            configure_logging("ingress", "INFO", stream)
            warnings.simplefilter("always")
            with json_handler_alone():
                warnings.warn("unexpected value 'fulano@example.com' / 11 90000-0005", UserWarning, stacklevel=1)
        entry = lines(stream)[-1]
        assert entry["logger"] == "py.warnings" and entry["level"] == "warning"
        assert "fulano@" not in str(entry["msg"]) and "90000-0005" not in str(entry["msg"])
    finally:
        logging.captureWarnings(False)
