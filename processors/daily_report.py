"""The daily report job (analysis 4.4: the dead-letter queue is reviewed daily, with a report to the
business). The processors' group leader checks every CARINHO_REPORT_CHECK_INTERVAL whether the previous
day is due (after CARINHO_REPORT_DAILY_AT, CARINHO_REPORT_TIMEZONE) and runs `operators.report` for it.

Which day was reported last is kept on the compacted sync.state topic (key `report.daily`, beside the
syncs' watermarks), so a restart or a new leader neither repeats a day nor skips one, and a day missed
while no worker ran is reported when one is back. A failure is counted like a sync's (the sync gauges
under sync="report.daily", the health topic, alert CarinhoSyncFailingRepeatedly after
`alerts.sync_consecutive_failures`) and retried after CARINHO_SYNC_RETRY_AFTER.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta

from hub.topology import Topology
from operators.report import ReportSchedule, day_to_report, run_scheduled_report
from processors import metrics
from processors.syncs.watermarks import SyncState, SyncStateStore

log = logging.getLogger("processors.daily_report")
REPORT_STATE = "report.daily"


def run_due_report(
    topology: Topology,
    bootstrap: str,
    settings: ReportSchedule,
    store: SyncStateStore,
    now: datetime,
    retry_after: timedelta,
) -> SyncState | None:
    """Report the due day, if any, and record the outcome; returns the new state (None: nothing due).
    Blocking (Kafka reads, file writes, an HTTP POST): the worker calls it in a thread."""
    state = store.load_all().get(REPORT_STATE) or SyncState(sync=REPORT_STATE)
    if state.consecutive_failures and state.last_run_at and now < state.last_run_at + retry_after:
        return None
    last = date.fromisoformat(state.watermark) if state.watermark else None
    day = day_to_report(settings, now, last)
    if day is None:
        return None
    try:
        path = run_scheduled_report(topology, bootstrap, settings, now=now, day=day)
    except Exception as exc:  # any failure is recorded and retried; it never crashes the worker
        log.warning("daily report failed", extra={"day": day.isoformat(), "error": repr(exc)})
        new = state.model_copy(
            update={
                "last_run_at": now,
                "consecutive_failures": state.consecutive_failures + 1,
                "last_error": f"{type(exc).__name__}: {exc}",
                "updated_at": now,
            }
        )
    else:
        log.info("daily report written", extra={"day": day.isoformat(), "out": str(path)})
        new = state.model_copy(
            update={
                "watermark": day.isoformat(),
                "last_run_at": now,
                "last_success_at": now,
                "consecutive_failures": 0,
                "last_error": None,
                "last_result": {"day": day.isoformat(), "out": str(path)},
                "updated_at": now,
            }
        )
    store.save(new)
    # The sync gauges under `report.daily`: CarinhoSyncFailingRepeatedly covers the report too.
    metrics.export_sync_state(new)
    return new
