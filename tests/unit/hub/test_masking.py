"""LGPD: no phone, e-mail, CPF or name survives masking; identifiers do."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime

from hub.logging import JsonFormatter, request_id_var
from hub.masking import _CLEAN, _KEY_KINDS, mask_data, mask_text

PERSON = {
    "name": "Maria Aparecida Souza",
    "phone": "+55 (11) 98765-4321",
    "email": "maria.souza@gmail.com",
    "cpf": "123.456.789-09",
    "message": "Oi, sou a Maria, meu telefone é 11 98765 4321",
    "nested": [{"senderName": "João Pedro", "contact": "joao@uol.com.br / 21999887766"}],
}
SECRETS = ["Maria", "Aparecida", "Souza", "98765", "4321", "maria.souza", "123.456.789", "João", "joao@", "99887766"]


def test_mask_data_hides_every_personal_field() -> None:
    text = json.dumps(mask_data(PERSON), ensure_ascii=False)
    for secret in SECRETS:
        assert secret not in text, secret
    masked = mask_data(PERSON)
    assert masked["name"] == "M*** A*** S***"
    assert masked["email"] == "m***@g***.com"
    assert masked["cpf"] == "***.***.***-**"
    assert masked["message"].startswith("[text:")


def test_mask_text_in_free_strings() -> None:
    out = mask_text("ligar para 11987654321 ou escrever para ana@x.com.br, CPF 52998224725")
    assert "11987654321" not in out and "ana@" not in out and "52998224725" not in out


def test_identifiers_and_dates_survive() -> None:
    data = {
        "event_id": "35119689-b6ff-5243-87cf-4336dca59608",
        "key_id": "835871234567",
        "completed_at": "2026-11-29",
        "hours": 6,
        "note": "evento 35119689-b6ff-5243-87cf-4336dca59608",
    }
    assert mask_data(data) == data


def test_json_log_line_is_masked_and_correlated() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("test"))
    logger = logging.getLogger("test.masking")
    logger.handlers[:] = [handler]
    logger.propagate = False
    token = request_id_var.set("req-77")
    try:
        logger.warning("lead from maria@gmail.com at 11987654321", extra={"data": PERSON, "event_id": "e-1"})
    finally:
        request_id_var.reset(token)
    line = json.loads(stream.getvalue())
    assert line["request_id"] == "req-77" and line["event_id"] == "e-1" and line["service"] == "test"
    for secret in [*SECRETS, "maria@gmail"]:
        assert secret not in stream.getvalue(), secret


def test_strings_are_masked_every_time_they_come_back() -> None:
    """mask_text remembers short strings in which nothing was found (hub.masking._CLEAN) and only
    those: a string with personal data is masked again on every call, a clean one stays whole."""
    for _ in range(3):
        assert "98765" not in mask_text("tel 11987654321") and "ana@" not in mask_text("ana@x.com.br")
        assert mask_text("/v1/events") == "/v1/events" and mask_text("2026-11-29") == "2026-11-29"
    assert "tel 11987654321" not in _CLEAN and "/v1/events" in _CLEAN


def test_log_timestamps_are_datetime_isoformat_to_the_millisecond() -> None:
    """The formatter writes the date and time once a second and the milliseconds each time: the same
    text as datetime.isoformat(timespec="milliseconds"), rounding included."""
    formatter = JsonFormatter("test")
    stamps = [1796594941.7199998, 1796594941.9999996, 1796594942.0, 1796594942.0004999, 1796594942.0005]
    stamps += [1796594941 + n / 7919 for n in range(0, 7919, 13)]
    for created in stamps:
        expected = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
        assert formatter._timestamp(created) == expected, created


def test_times_under_time_keys_survive_and_only_they() -> None:
    """The connectors write trail times as "...56.907108+00:00", whose digits _PHONE took for a phone
    number: `carinho trace` showed them masked. A whole ISO date-time under `at` or `*_at` is kept."""
    hop = {
        "at": "2026-11-30T18:44:56.907108+00:00",
        "due_at": "2026-11-30T20:44:56Z",
        "completed_at": "2026-11-30 18:44",
        "note": "at 2026-11-30T18:44:56.907108+00:00 call 11987654321",
    }
    masked = mask_data(hop)
    assert {k: masked[k] for k in ("at", "due_at", "completed_at")} == {
        k: hop[k] for k in ("at", "due_at", "completed_at")
    }
    assert "11987654321" not in masked["note"]
    # A phone under a time key is not a date-time: masked as anywhere else.
    assert "98765" not in mask_data({"at": "+55 11 98765-4321"})["at"]


def test_what_a_key_means_is_remembered_for_short_keys_only() -> None:
    """mask_data remembers each key's meaning (hub.masking._KEY_KINDS); payload keys come from the
    senders, so a long one is worked out every time and never kept."""
    long_key = "k" * 200
    for _ in range(2):
        assert mask_data({"Nome": "Maria Souza", long_key: "tel 11987654321"}) == {
            "Nome": "M*** S***",
            long_key: mask_text("tel 11987654321"),
        }
    assert "Nome" in _KEY_KINDS and long_key not in _KEY_KINDS


def test_an_eleven_digit_number_is_masked_by_what_its_key_says() -> None:
    """ "11987654321" is both a mobile and a CPF: under a phone-like key it is masked as a phone (the
    last two digits kept), under a CPF-like key as a CPF; elsewhere the CPF pattern still comes first."""
    for key in ("telefone", "phone", "Celular", "whatsapp", "mobile"):
        for _ in range(2):  # the key's meaning and the clean-string memo are cached
            masked = mask_data({key: "11987654321"})[key]
            assert masked == "*********21", (key, masked)
    assert mask_data({"telefone": "+55 (11) 98765-4321"})["telefone"].endswith("21")
    assert "98765" not in mask_data({"telefone": "+55 (11) 98765-4321"})["telefone"]
    for key in ("cpf", "documento", "CPF"):
        assert mask_data({key: "52998224725"})[key] == "***.***.***-**"
        assert mask_data({key: "529.982.247-25"})[key] == "***.***.***-**"
    assert mask_data({"contato": "11987654321"})["contato"] == "***.***.***-**"
    assert mask_data({"telefone": 11987654321, "cpf": 52998224725}) == {"telefone": "***", "cpf": "***"}
    assert mask_data({"telefone": "sem telefone"})["telefone"] == "sem telefone"


def test_surnames_and_full_names_are_names() -> None:
    """The financeiro payload splits the name: its `sobrenome` was shown whole by `topics tail`."""
    masked = mask_data({"nome": "José", "sobrenome": "da Conceição Araújo", "nome_completo": "José da Conceição"})
    assert "Conceição" not in str(masked) and "Araújo" not in str(masked)


def test_looks_personal_finds_what_mask_text_would_mask() -> None:
    from hub.masking import looks_personal

    for value in ("11987654321", "123.456.789-09", "+55-11-98765-4321", "ana@x.com", "req-11987654321"):
        assert looks_personal(value), value
    for value in ("4f1c0e9a7b2d4e55a0c3b7d91e6f2a88", "req-abc", "2026-11-29", "ord:12345", "abc.def_1"):
        assert not looks_personal(value), value
    assert not looks_personal("5b2f0a0c-1111-4222-8333-444455556666")  # a UUID's digit groups
    assert "11987654321" not in _CLEAN  # the memo of clean strings is left alone


def test_mask_sent_values_hides_the_payloads_names_and_text_echoed_in_an_error() -> None:
    from hub.masking import mask_sent_values

    payload = {"nome": "Maria Aparecida Souza", "mensagem": "preciso de cuidadora", "origem": "site", "n": [1]}
    said = "contato Maria Aparecida Souza ja existe (MARIA souza); texto: preciso de cuidadora; Mariana ok"
    out = mask_sent_values(said, payload)
    assert out == "contato M*** A*** S*** ja existe (M*** S***); texto: [text: 20 chars]; Mariana ok"
    assert mask_sent_values("HTTP 500", {"seq": 1}) == "HTTP 500"
    nested = {"contact": {"senderName": "João Pedro"}}
    assert "João" not in mask_sent_values("no such contact: João Pedro", nested)
