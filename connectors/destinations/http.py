"""Generic HTTP/JSON destinations (CRM, Financeiro, Operação, Marketing, Cuidadores, Atendimento,
Documentos): POST/PUT/PATCH base_url + record.path with the record's payload as JSON."""

from __future__ import annotations

import orjson

from connectors.destinations.base import BaseHttpSender
from hub.delivery import DeliveryRecord


class HttpJsonSender(BaseHttpSender):
    def body_for(self, record: DeliveryRecord) -> bytes:
        return orjson.dumps(record.payload)
