"""LGPD: personal data never leaves the hub in logs, trails or operator output unmasked.

`mask_data` walks a payload: values under name-like keys become initials, free text becomes its length,
and phones, e-mails and CPFs are masked wherever they appear (also inside other strings). An 11-digit
number is both a mobile phone and a CPF: under a phone-like key (`telefone`, `celular`...) it is masked
as a phone, under a CPF-like key (`cpf`, `documento`...) and anywhere else as a CPF.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9-])[A-Za-z0-9.-]*\.([A-Za-z]{2,})")
_CPF = re.compile(r"\b\d{3}\.?\d{3}\.?\d{3}-?\d{2}\b")
# 8+ digits, optionally with +country, (area), spaces, dots or dashes between them.
_PHONE = re.compile(r"(?<![\w.])\+?(?:\d[\s().-]{0,2}){7,14}\d(?![\w])")

NAME_KEYS = frozenset(
    {
        "name",
        "nome",
        "first_name",
        "last_name",
        "full_name",
        "sendername",
        "client_name",
        "cliente_nome",
        "nome_cliente",
        "contact_name",
        "chatname",
        "sender_name",
        "sobrenome",
        "surname",
        "nome_completo",
        "nome_social",
    }
)
FREE_TEXT_KEYS = frozenset({"message", "mensagem", "text", "body", "comment", "comentario", "observacao", "notes"})
# Hub identifiers: never personal data, and masking them would break correlation.
ID_KEYS = frozenset({"request_id", "event_id", "delivery_id", "key_id", "dlq_id", "partition", "offset"})
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# A whole ISO-8601 date-time under a time key (`at`, `*_at`): its seconds and fraction ("56.907108+00:00")
# look like a phone number to _PHONE, and the connectors' trail hops were shown with masked times.
_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?$")
SECRET_KEYS = frozenset({"password", "senha", "token", "api_key", "authorization", "secret", "client-token"})


# E-mails need an "@", phones and CPFs digits: a string with neither has nothing to mask. Most
# logged strings (logger names, routes, event types) take this exit, which costs a fraction of the
# five patterns below.
_MAYBE_PERSONAL = re.compile(r"[@\d]")


# Short strings with digits in which nothing was found to mask ("/v1/events", "events.p2", dates):
# they come back on every log line, and a set lookup costs a fraction of the patterns. Only strings
# the patterns left unchanged are kept, so the set never holds personal data.
_CLEAN: set[str] = set()
_CLEAN_MAX_ITEMS = 4096
_CLEAN_MAX_CHARS = 64


def mask_text(value: str) -> str:
    """Mask e-mails, CPFs and phone numbers inside any string (UUIDs are left whole)."""
    if not _MAYBE_PERSONAL.search(value) or value in _CLEAN:
        return value
    if _UUID_ANYWHERE.search(value):
        masked = _mask_around_uuids(value)
    else:
        masked = _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}***.{m.group(3)}", value)
        masked = _CPF.sub("***.***.***-**", masked)
        masked = _PHONE.sub(_mask_phone, masked)
    if masked == value and len(value) <= _CLEAN_MAX_CHARS:
        if len(_CLEAN) >= _CLEAN_MAX_ITEMS:
            _CLEAN.clear()
        _CLEAN.add(value)
    return masked


_UUID_ANYWHERE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _mask_around_uuids(value: str, mask: Callable[[str], str] = mask_text) -> str:
    """Mask the text between UUIDs, keep the UUIDs (event ids in messages stay searchable)."""
    out, last = [], 0
    for match in _UUID_ANYWHERE.finditer(value):
        out.append(mask(value[last : match.start()]))
        out.append(match.group(0))
        last = match.end()
    out.append(mask(value[last:]))
    return "".join(out)


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def looks_personal(value: str) -> bool:
    """True when mask_text would change `value`: it holds an e-mail, a CPF or a phone number (UUIDs
    aside). For identifiers a caller chooses (X-Request-ID): they are logged as they are, never
    masked, so one that carries a phone or a CPF is not taken. Leaves mask_text's memo alone."""
    if not _MAYBE_PERSONAL.search(value):
        return False
    rest = _UUID_ANYWHERE.sub(" ", value)
    return bool(
        _EMAIL.search(rest) or _CPF.search(rest) or any(not _DATE.match(m.group(0)) for m in _PHONE.finditer(rest))
    )


_MIN_NAME_PART = 3


def mask_sent_values(text: str, payload: Any) -> str:
    """Mask in `text` (a destination's error message, already through mask_text) the personal values
    of the `payload` we sent it: destinations echo them back ("contact Maria Souza already exists"),
    and a name inside free text has no pattern to find it by. Names (and each of their words of 3+
    letters) become initials, free text its length; phones, e-mails and CPFs are mask_text's."""
    names: list[str] = []
    texts: list[str] = []
    _collect(payload, None, names, texts)
    if not names and not texts:
        return text
    for value in sorted(texts, key=len, reverse=True):
        if len(value) >= _MIN_NAME_PART and value in text:
            text = text.replace(value, f"[text: {len(value)} chars]")
    words = {w for name in names for w in name.split() if len(w) >= _MIN_NAME_PART}
    for name in sorted(names, key=len, reverse=True):
        text = re.sub(re.escape(name), mask_name(name), text, flags=re.IGNORECASE) if name.strip() else text
    for word in sorted(words, key=len, reverse=True):
        text = re.sub(rf"(?<!\w){re.escape(word)}(?!\w)", f"{word[0]}***", text, flags=re.IGNORECASE)
    return text


def _collect(value: Any, key: str | None, names: list[str], texts: list[str]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _collect(v, str(k), names, texts)
    elif isinstance(value, list):
        for v in value:
            _collect(v, key, names, texts)
    elif isinstance(value, str) and value.strip():
        kind = _key_kind(key)
        if kind == _NAME:
            names.append(value.strip())
        elif kind == _FREE_TEXT:
            texts.append(value.strip())


def _mask_phone(match: re.Match[str]) -> str:
    text = match.group(0)
    if _DATE.match(text):  # an ISO date is not a phone number
        return text
    return "*" * max(0, len(text) - 2) + text[-2:]


def mask_name(value: str) -> str:
    parts = [p for p in value.split() if p]
    return " ".join(f"{p[0]}***" for p in parts) if parts else value


PHONE_KEYS = frozenset(
    {
        "phone",
        "telefone",
        "celular",
        "whatsapp",
        "mobile",
        "cellphone",
        "cell_phone",
        "mobile_phone",
        "phone_number",
        "telefone_celular",
        "fone",
        "tel",
    }
)
CPF_KEYS = frozenset({"cpf", "documento", "document", "cpf_cliente", "cliente_cpf"})


def mask_phone_text(value: str) -> str:
    """mask_text for a value known to be a phone number: the phone pattern runs before the CPF one,
    so an 11-digit mobile ("11987654321") is masked as a phone, not as a CPF. Shares mask_text's
    memo of clean strings (a string neither changes holds none of the three patterns)."""
    if not _MAYBE_PERSONAL.search(value) or value in _CLEAN:
        return value
    if _UUID_ANYWHERE.search(value):
        return _mask_around_uuids(value, mask_phone_text)
    masked = _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}***.{m.group(3)}", value)
    masked = _PHONE.sub(_mask_phone, masked)
    masked = _CPF.sub("***.***.***-**", masked)
    if masked == value and len(value) <= _CLEAN_MAX_CHARS:
        if len(_CLEAN) >= _CLEAN_MAX_ITEMS:
            _CLEAN.clear()
        _CLEAN.add(value)
    return masked


# What a key says about its value, worked out once per key: every log line and trail hop runs
# mask_data on the same few dozen keys, and the lower-casing plus five set lookups per field cost
# more than the masking itself. The memo stays in memory (never logged), short keys only.
_PLAIN, _ID, _TIME, _SECRET, _NAME, _FREE_TEXT, _PHONE_NUMBER, _CPF_NUMBER = range(8)
_NUMBER_PII = (_PHONE_NUMBER, _CPF_NUMBER)
_KEY_KINDS: dict[str | None, int] = {}
_KEY_KINDS_MAX_ITEMS = 4096


def _key_kind(key: str | None) -> int:
    kind = _KEY_KINDS.get(key)
    if kind is not None:
        return kind
    lowered = key.lower() if key else ""
    if lowered in ID_KEYS:
        kind = _ID
    elif lowered == "at" or lowered.endswith("_at"):
        kind = _TIME
    elif lowered in SECRET_KEYS:
        kind = _SECRET
    elif lowered in NAME_KEYS:
        kind = _NAME
    elif lowered in FREE_TEXT_KEYS:
        kind = _FREE_TEXT
    elif lowered in PHONE_KEYS:
        kind = _PHONE_NUMBER
    elif lowered in CPF_KEYS:
        kind = _CPF_NUMBER
    else:
        kind = _PLAIN
    if key is None or len(key) <= _CLEAN_MAX_CHARS:  # payload keys are the senders': keep the memo small
        if len(_KEY_KINDS) >= _KEY_KINDS_MAX_ITEMS:
            _KEY_KINDS.clear()
        _KEY_KINDS[key] = kind
    return kind


def mask_data(value: Any, key: str | None = None) -> Any:
    """Return a masked copy of a JSON-like value (dicts, lists, strings, numbers)."""
    # Strings first: most logged values are (every log line runs this on its fields).
    if isinstance(value, str):
        kind = _key_kind(key)
        if kind in (_PLAIN, _CPF_NUMBER, _PHONE_NUMBER):
            # No digit and no "@": nothing any pattern could take (most logged strings).
            if not _MAYBE_PERSONAL.search(value) or _UUID.match(value):
                return value
            # Plain strings and CPFs: CPF pattern first (mask_text); phones: phone pattern first.
            return mask_phone_text(value) if kind == _PHONE_NUMBER else mask_text(value)
        if kind == _ID or _UUID.match(value):
            return value
        if kind == _TIME:
            return value if _ISO_DATETIME.match(value) else mask_text(value)
        if kind == _SECRET:
            return "***"
        if kind == _NAME:
            return mask_name(value)
        return f"[text: {len(value)} chars]"  # _FREE_TEXT
    if isinstance(value, dict):
        return {k: mask_data(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_data(v, key) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and key and _key_kind(key) in _NUMBER_PII:
        return "***"
    return value
