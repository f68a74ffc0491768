"""Numbers as typed in Brazil reach the messaging gateways with the country code."""

from __future__ import annotations

import pytest

from connectors.destinations.sms import digits_only
from hub.phones import international_digits


@pytest.mark.parametrize(
    ("typed", "sent"),
    [
        ("(11) 98765-4321", "5511987654321"),  # mobile: DDD + 9 digits
        ("(11) 3456-7890", "551134567890"),  # landline: DDD + 8 digits
        ("11987654321", "5511987654321"),
        ("+55 11 98765-4321", "5511987654321"),  # already international
        ("5511987654321", "5511987654321"),
        ("+1 415 555 0100", "14155550100"),  # a leading "+": the country code is there
        ("(011) 98765-4321", "5511987654321"),  # the trunk 0 dialled before the DDD
        ("011 3456-7890", "551134567890"),
        ("\uff111\uff1987654321", "187654321"),  # only ASCII digits count (full-width ones: the ingress refuses)
    ],
)
def test_international_digits(typed: str, sent: str) -> None:
    assert international_digits(typed) == sent


def test_the_gateways_get_the_country_code() -> None:
    assert digits_only("(11) 98765-4321") == "5511987654321"  # Z-API and SMS bodies use this
    with pytest.raises(ValueError):
        digits_only("1234")
