"""Which day the scheduled daily report covers, and when (CARINHO_REPORT_DAILY_AT, local time)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from operators.report import day_to_report, next_run_at


@dataclass(frozen=True)
class Schedule:
    report_daily_at: str = "06:00"
    report_timezone: str = "America/Sao_Paulo"  # UTC-3
    report_webhook_url: Any = None
    report_dir: Path = Path("/tmp")


def test_the_previous_day_once_its_time_has_passed() -> None:
    s = Schedule()
    before = datetime(2026, 3, 10, 8, 59, tzinfo=UTC)  # 05:59 local on the 10th
    after = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)  # 06:00 local
    assert day_to_report(s, before, last_reported=date(2026, 3, 8)) is None  # the 8th was done yesterday
    assert day_to_report(s, after, last_reported=date(2026, 3, 8)) == date(2026, 3, 9)
    assert day_to_report(s, after, last_reported=date(2026, 3, 9)) is None  # each day once
    assert next_run_at(s, before) == datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


def test_a_missed_day_is_caught_up_and_a_first_run_reports_the_latest_day() -> None:
    s = Schedule()
    now = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    assert day_to_report(s, now, last_reported=date(2026, 3, 5)) == date(2026, 3, 9)
    assert day_to_report(s, now, last_reported=None) == date(2026, 3, 9)
    early = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)  # 23:00 local on the 9th: the 8th is the latest due
    assert day_to_report(s, early, last_reported=None) == date(2026, 3, 8)


def test_a_failed_report_post_never_names_the_webhook_url() -> None:
    """A webhook URL carries its secret (hooks.example/services/T/B/<secret>); the failure's message is
    logged, kept as the job's last_error and shown on /ops."""
    import socket
    import threading
    from collections import Counter
    from http.server import BaseHTTPRequestHandler, HTTPServer

    import pytest

    from operators.report import DailyReport, ReportPostFailed, post_report

    class Refuse(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    now = datetime(2026, 11, 30, tzinfo=UTC)
    report = DailyReport(date(2026, 11, 29), "UTC", now, now, now, [], Counter(), Counter(), 0, Counter(), 10, [])
    server = HTTPServer(("127.0.0.1", 0), Refuse)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(ReportPostFailed) as refused:
            post_report(f"http://127.0.0.1:{server.server_port}/services/T0/B0/FAKEHOOKSECRET", report)
    finally:
        server.shutdown()
    assert "HTTP 404" in str(refused.value) and "FAKEHOOKSECRET" not in str(refused.value)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    with pytest.raises(ReportPostFailed) as unreachable:
        post_report(f"http://127.0.0.1:{closed}/services/FAKEHOOKSECRET", report, timeout=2)
    assert "could not be reached" in str(unreachable.value) and "FAKEHOOKSECRET" not in repr(unreachable.value)
