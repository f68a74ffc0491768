"""Native payload mapping (site form, Z-API) and the per-event-type data schemas."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from hub.topology import load_topology
from ingress.errors import ApiError
from ingress.event_schemas import MetadataIn, data_models
from ingress.webhooks import select_mapping, to_event

ROOT = Path(__file__).resolve().parents[3]
TOPOLOGY = load_topology(ROOT / "topics.yaml")
MODELS = data_models(TOPOLOGY)

ZAPI = {
    "type": "ReceivedCallback",
    "fromMe": False,
    "messageId": "3EB0C767D097B7C7C030",
    "phone": "5511987654321",
    "senderName": "João",
    "text": {"message": "Oi"},
}


def test_site_form_maps_to_a_lead_with_utm() -> None:
    form = {
        "form_id": "f-1",
        "nome": "Ana",
        "telefone": "11987654321",
        "email": "a@b.com",
        "utm_source": "ig",
        "utm_campaign": "maes",
    }
    name, mapping = select_mapping(TOPOLOGY.sources["site"], form, None)  # type: ignore[misc]
    event = to_event(mapping, form)
    assert name == "lead-form"
    assert event["type"] == "lead.created" and event["idempotency_key"] == "f-1"
    assert event["data"] == {"name": "Ana", "phone": "11987654321", "email": "a@b.com", "origin": "site"}
    assert MetadataIn.model_validate(event["metadata"]).utm_merged().campaign == "maes"  # type: ignore[union-attr]


def test_zapi_received_message_maps_to_a_lead() -> None:
    selected = select_mapping(TOPOLOGY.sources["whatsapp"], ZAPI, None)
    assert selected is not None
    event = to_event(selected[1], ZAPI)
    assert event["data"] == {"name": "João", "phone": "5511987654321", "message": "Oi", "origin": "whatsapp"}
    assert event["idempotency_key"] == "3EB0C767D097B7C7C030"


@pytest.mark.parametrize("payload", [{**ZAPI, "fromMe": True}, {**ZAPI, "type": "MessageStatusCallback"}])
def test_other_zapi_callbacks_are_not_events(payload: dict[str, object]) -> None:
    assert select_mapping(TOPOLOGY.sources["whatsapp"], payload, None) is None


def test_missing_idempotency_field_is_a_422_naming_it() -> None:
    payload = {k: v for k, v in ZAPI.items() if k != "messageId"}
    selected = select_mapping(TOPOLOGY.sources["whatsapp"], payload, None)
    assert selected is not None
    with pytest.raises(ApiError) as info:
        to_event(selected[1], payload)
    assert info.value.status == 422 and info.value.errors[0].field == "messageId"


def test_unknown_named_hook_is_404() -> None:
    with pytest.raises(ApiError) as info:
        select_mapping(TOPOLOGY.sources["site"], {}, "nope")
    assert info.value.status == 404


def test_data_schema_checks_required_fields_and_kinds() -> None:
    lead = MODELS["lead.created"]
    lead.model_validate({"name": "Ana", "phone": "(11) 98765-4321", "email": "ana@x.com", "extra": 1})
    with pytest.raises(ValidationError) as info:
        lead.model_validate({"name": "Ana"})
    assert info.value.errors()[0]["loc"] == ("phone",)
    with pytest.raises(ValidationError, match="e-mail"):
        lead.model_validate({"name": "Ana", "phone": "11987654321", "email": "not-an-email"})


def test_cpf_check_digits() -> None:
    cliente = MODELS["cliente.created"]
    cliente.model_validate({"cliente_id": "1", "name": "A", "cpf": "529.982.247-25"})
    with pytest.raises(ValidationError, match="CPF"):
        cliente.model_validate({"cliente_id": "1", "name": "A", "cpf": "529.982.247-26"})
    with pytest.raises(ValidationError, match="CPF"):
        cliente.model_validate({"cliente_id": "1", "name": "A", "cpf": "111.111.111-11"})


def test_datetimes_must_carry_a_timezone() -> None:
    servico = MODELS["servico.completed"]
    servico.model_validate({"servico_id": "1", "cliente_id": "2", "completed_at": "2026-11-29T10:00:00-03:00"})
    with pytest.raises(ValidationError):
        servico.model_validate({"servico_id": "1", "cliente_id": "2", "completed_at": "2026-11-29T10:00:00"})


def test_refusals_name_the_senders_fields() -> None:
    """A site form with a bad phone and no name: the 422 names `telefone` and `nome`, the form's fields."""
    from ingress.accept import validate_event
    from ingress.webhooks import native_fields

    form = {"form_id": "f-2", "telefone": "12", "email": "a@b.com"}
    _, mapping = select_mapping(TOPOLOGY.sources["site"], form, None)  # type: ignore[misc]
    with pytest.raises(ApiError) as refused:
        validate_event(to_event(mapping, form), TOPOLOGY, MODELS, None)
    assert {item.field for item in refused.value.errors} >= {"data.phone"}
    renamed = native_fields(refused.value, mapping)
    fields = {item.field for item in renamed.errors}
    assert "telefone" in fields and not any(f.startswith("data.phone") for f in fields)
    assert "telefone:" in renamed.message and "data.phone:" not in renamed.message
    assert (renamed.status, renamed.error) == (refused.value.status, refused.value.error)


def test_nested_and_constant_fields_keep_their_own_names() -> None:
    from ingress.event_schemas import ErrorItem
    from ingress.webhooks import native_fields

    selected = select_mapping(TOPOLOGY.sources["whatsapp"], ZAPI, None)
    assert selected is not None
    error = ApiError(
        422,
        "validation_failed",
        "x",
        [
            ErrorItem(field="data.message", rule="string_type", message="m"),
            ErrorItem(field="data.origin", rule="literal_error", message="m"),
            ErrorItem(field="idempotency_key", rule="required", message="m"),
        ],
    )
    assert [i.field for i in native_fields(error, selected[1]).errors] == [
        "text.message",
        "data.origin",
        "messageId",  # the key is the payload's messageId: the sender's name for it
    ]


@pytest.mark.parametrize(
    "kind",
    [{"isGroup": True}, {"isNewsletter": True}, {"broadcast": True}, {"isStatusReply": True}],
    ids=["group", "channel", "broadcast", "status reply"],
)
def test_zapi_messages_that_are_not_leads_are_ignored(kind: dict[str, bool]) -> None:
    """Answered 200 ignored (Z-API retries any other refusal): a group chat is not a lead."""
    assert select_mapping(TOPOLOGY.sources["whatsapp"], {**ZAPI, **kind}, None) is None
    assert select_mapping(TOPOLOGY.sources["whatsapp"], {**ZAPI, "isGroup": False}, None) is not None


def test_blank_form_fields_are_absent_and_text_is_trimmed() -> None:
    form = {"form_id": "f-6", "nome": " Maria ", "telefone": "11987654321", "email": "", "mensagem": "   "}
    selected = select_mapping(TOPOLOGY.sources["site"], form, None)
    assert selected is not None
    event = to_event(selected[1], form)
    assert event["data"] == {"name": "Maria", "phone": "11987654321", "origin": "site"}


def test_zapi_media_captions_and_chat_names_fill_in() -> None:
    """A photo's caption is the lead's message; a contact without a push name is named by the chat."""
    photo = {k: v for k, v in ZAPI.items() if k not in ("text", "senderName")}
    photo |= {"image": {"caption": "Segue a receita", "imageUrl": "https://x"}, "chatName": "Ana"}
    selected = select_mapping(TOPOLOGY.sources["whatsapp"], photo, None)
    assert selected is not None
    data = to_event(selected[1], photo)["data"]
    assert (data["message"], data["name"]) == ("Segue a receita", "Ana")
    blank_text = {**ZAPI, "text": {"message": "  "}, "image": {"caption": "legenda"}}
    assert to_event(selected[1], blank_text)["data"]["message"] == "legenda"


def test_a_native_text_longer_than_a_field_holds_is_cut_not_refused() -> None:
    """WhatsApp allows ~65,000 characters; an event's string holds 10,000: the lead is kept, marked."""
    from ingress.event_schemas import MAX_STRING as MAX_TEXT

    long = {**ZAPI, "text": {"message": "a" * 30_000}}
    selected = select_mapping(TOPOLOGY.sources["whatsapp"], long, None)
    assert selected is not None
    event = to_event(selected[1], long)
    assert len(event["data"]["message"]) == MAX_TEXT and event["data"]["message"].endswith(" […]")
    lead = data_models(TOPOLOGY)["lead.created"]
    lead.model_validate(event["data"])  # within the field's limit: accepted
