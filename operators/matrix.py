"""The integration matrix (analysis 4.3: a living document with every integration, its SLA and its
owner), generated from topics.yaml. `carinho matrix` writes docs/integration-matrix.md and
`carinho matrix --check` fails when the committed file is stale. Deterministic: no timestamps."""

from __future__ import annotations

from hub.durations import format_duration
from hub.topology import Fallback, QuietHours, RetryPolicy, Topology
from processors.automations.feedback import MESSAGE_TYPE as FEEDBACK_REQUEST
from processors.automations.lead_auto_reply import MESSAGE_TYPE as LEAD_AUTO_REPLY

HEADER = """# Integration matrix

<!-- Generated from topics.yaml by `carinho matrix`; do not edit by hand.
     `carinho matrix --check` (and the test suite) fail when this file is stale. -->

"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _schedule(policy: RetryPolicy, then: str = "DLQ") -> str:
    tiers = " → ".join(format_duration(t) for t in policy.tiers)
    return f"{tiers} (±{round(policy.jitter * 100)}% jitter), then {then}"


def _destination_end(fallback: Fallback | None) -> str:
    if fallback is None or "retries_exhausted" not in fallback.when:
        return "DLQ"
    return f"DLQ ({fallback.destination} for {', '.join(fallback.message_types)})"


def _quiet(hours: QuietHours | None, zone: str) -> str:
    return f"none sent {hours.start} to {hours.end} ({zone}): held until {hours.end}" if hours else "-"


def _frequency(topology: Topology, integration_id: str) -> str:
    integ = topology.integrations[integration_id]
    if integ.sync is None:
        return integ.trigger
    sync = topology.syncs[integ.sync]
    when = f"every {format_duration(sync.every)}" + (f" at {sync.at}" if sync.at else "")
    return f"{integ.trigger} (sync `{integ.sync}`: {when}, pages of {sync.page_size})"


def _sources(topology: Topology, integration_sources: list[str], event_types: list[str]) -> str:
    """The integration's sources, and any other source topics.yaml lets send its event types."""
    others = sorted({s for et in event_types for s in topology.event_types[et].sources} - set(integration_sources))
    text = ", ".join(integration_sources)
    return f"{text} (also accepted from: {', '.join(others)})" if others else text


def render_matrix(topology: Topology) -> str:
    lines = [HEADER.rstrip("\n"), ""]
    lines += [
        "## Integrations",
        "",
        "| Integration | Source(s) | Destination(s) | Event type(s) | Trigger / frequency | Priority | SLA | Owner |",
        "|---|---|---|---|---|---|---|---|",
    ]
    routes_by_integration: dict[str, list[str]] = {}
    for event_type, route in topology.routes.items():
        routes_by_integration.setdefault(route.integration, []).append(event_type)
    for integ_id, integ in topology.integrations.items():
        event_types = routes_by_integration.get(integ_id, [])
        priorities = sorted({topology.default_priority(et) for et in event_types})
        labels = {p.level: p.label for p in topology.priorities}
        priority = ", ".join(f"p{p} ({labels[p]})" for p in priorities) or "-"
        lines.append(
            "| "
            + " | ".join(
                _cell(c)
                for c in (
                    f"**{integ.name}** (`{integ_id}`)",
                    _sources(topology, integ.sources, event_types),
                    ", ".join(integ.destinations),
                    ", ".join(f"`{et}`" for et in event_types) or "-",
                    _frequency(topology, integ_id),
                    priority,
                    format_duration(integ.sla),
                    integ.owner,
                )
            )
            + " |"
        )

    lines += [
        "",
        "## Deliveries and retry schedules",
        "",
        "| Integration | Event type | Destination | Method and path | Transform | Retry schedule |",
        "|---|---|---|---|---|---|",
    ]
    for event_type, route in topology.routes.items():
        owner = topology.integrations.get(route.integration)
        for dest, target in route.to.items():
            transform = f"hook `{target.hook}`" if target.hook else f"map ({len(target.map or {})} fields)"
            schedule = _schedule(topology.retry_policy(dest, event_type))
            if target.retry is not None:
                schedule += " (route override)"
            lines.append(
                "| "
                + " | ".join(
                    _cell(c)
                    for c in (
                        owner.name if owner else route.integration,
                        f"`{event_type}`",
                        dest,
                        f"{target.method} {target.path}",
                        transform,
                        schedule,
                    )
                )
                + " |"
            )

    lines += [
        "",
        "## Automations",
        "",
        "Both message the client's phone: an event without one gets no message.",
        "",
        "| Automation | Event type | Destination | Delay | Quiet hours | Fallback | Retry schedule |",
        "|---|---|---|---|---|---|---|",
    ]
    autos = topology.automations
    feedback = autos.feedback_request
    zone = feedback.timezone or topology.defaults.timezone
    for name, message_type, event_type, dest, delay, quiet in (
        (
            "Lead auto-reply",
            LEAD_AUTO_REPLY,
            autos.lead_auto_reply.event_type,
            autos.lead_auto_reply.destination,
            "-",
            "-",
        ),
        (
            "Feedback request",
            FEEDBACK_REQUEST,
            feedback.event_type,
            feedback.destination,
            format_duration(feedback.delay),
            _quiet(feedback.quiet_hours, zone),
        ),
    ):
        fallback = topology.destinations[dest].fallback
        applies = fallback is not None and message_type in fallback.message_types
        fb = f"{fallback.destination} when {', '.join(fallback.when)}" if fallback and applies else "-"
        then = (
            f"{fallback.destination} (fallback)"
            if fallback and applies and "retries_exhausted" in fallback.when
            else "DLQ"
        )
        lines.append(
            "| "
            + " | ".join(
                _cell(c)
                for c in (
                    name,
                    f"`{event_type}`",
                    dest,
                    delay,
                    quiet,
                    fb,
                    _schedule(topology.retry_policy(dest), then),
                )
            )
            + " |"
        )

    lines += [
        "",
        "## Destinations",
        "",
        "| Destination | Kind | Timeout (initial / min / max) | Circuit breaker | Rate limit | Concurrency "
        "| Retry schedule |",
        "|---|---|---|---|---|---|---|",
    ]
    for dest_name, spec in topology.destinations.items():
        br = spec.breaker
        lines.append(
            "| "
            + " | ".join(
                _cell(c)
                for c in (
                    f"{dest_name} ({spec.description})" if spec.description else dest_name,
                    spec.kind,
                    " / ".join(format_duration(x) for x in (spec.timeout.initial, spec.timeout.min, spec.timeout.max)),
                    f"opens after {br.consecutive_failures} consecutive failures or "
                    f"{round(br.error_rate * 100)}% errors "
                    f"(≥{br.min_calls} calls in {format_duration(br.window)}), for {format_duration(br.open_for)}",
                    f"{spec.rate_limit.per_second:g}/s (burst {spec.rate_limit.burst})",
                    str(spec.concurrency),
                    _schedule(spec.retry, _destination_end(spec.fallback)),
                )
            )
            + " |"
        )

    alerts = topology.alerts
    lines += [
        "",
        "## Alerts",
        "",
        f"- Dead-letter topic holds more than {alerts.dead_letter_over} open records.",
        f"- A destination's error rate is above {alerts.error_rate_over * 100:g}% (Prometheus: per destination over"
        " 10 min; the `/ops` page: per integration over 1 h) — docs/monitoring.md.",
        f"- A sync job fails {alerts.sync_consecutive_failures} times in a row.",
        "",
    ]
    return "\n".join(lines)
