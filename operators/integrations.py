"""Which integration (topics.yaml `integrations`) a delivery belongs to, from its event type and
destination: the route's integration, an automation (WhatsApp auto-reply / feedback, and their SMS
fallback), or "other"."""

from __future__ import annotations

from hub.topology import Topology


class IntegrationIndex:
    def __init__(self, topology: Topology) -> None:
        self.topology = topology
        table: dict[tuple[str, str], str] = {}
        for name in ("lead_auto_reply", "feedback_request"):
            auto = getattr(topology.automations, name)
            table[(auto.event_type, auto.destination)] = f"automation:{name}"
            fallback = topology.destinations[auto.destination].fallback
            if fallback is not None:
                table[(auto.event_type, fallback.destination)] = f"automation:{name}"
        for event_type, route in topology.routes.items():  # routes win over automations
            for destination in route.to:
                table[(event_type, destination)] = route.integration
        self._table = table
        self.names = {key: integ.name for key, integ in topology.integrations.items()}
        self.names.update(
            {
                "automation:lead_auto_reply": "Automation: lead auto-reply",
                "automation:feedback_request": "Automation: feedback request",
                "other": "Other",
            }
        )

    def of(self, event_type: str | None, destination: str | None) -> str:
        return self._table.get((event_type or "", destination or ""), "other")

    def name(self, integration: str) -> str:
        return self.names.get(integration, integration)

    def sla_seconds(self, integration: str) -> float | None:
        integ = self.topology.integrations.get(integration)
        return integ.sla.total_seconds() if integ else None
