"""Destination adapters: how one DeliveryRecord becomes one HTTP request, and what the answer means."""

from __future__ import annotations

from connectors.destinations.base import Sender
from connectors.destinations.http import HttpJsonSender
from connectors.destinations.sms import SmsSender
from connectors.destinations.zapi import ZapiSender
from connectors.http_pool import PooledClient
from connectors.settings import ConnectorSettings
from hub.topology import Topology


def build_sender(destination: str, topology: Topology, settings: ConnectorSettings, client: PooledClient) -> Sender:
    spec = topology.destinations[destination]
    if spec.kind == "zapi":
        instance, token, client_token = settings.zapi_credentials()
        base = (settings.zapi_base_url or settings.base_url(destination)).rstrip("/")
        return ZapiSender(destination, client, base_url=base, instance=instance, token=token, client_token=client_token)
    secret_token = settings.destination_tokens.get(destination)
    auth_token = secret_token.get_secret_value() if secret_token else None
    secrets = [s.get_secret_value() for s in settings.signing_secrets.get(destination, [])]
    sender_class = SmsSender if spec.kind == "sms" else HttpJsonSender
    return sender_class(
        destination,
        client,
        base_url=settings.base_url(destination),
        auth=spec.auth,
        token=auth_token,
        signing_secrets=secrets,
    )


__all__ = ["HttpJsonSender", "Sender", "SmsSender", "ZapiSender", "build_sender"]
