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
