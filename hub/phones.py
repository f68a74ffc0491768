"""Phone numbers as the messaging gateways want them: digits, country code first.

Carinho's clients are in Brazil and type their number as they dial it: the area code (DDD) and the
number, 10 or 11 digits, without the country code. Z-API and the SMS provider need the country code,
or the message goes to another number or nowhere."""

from __future__ import annotations

import re

DEFAULT_COUNTRY_CODE = "55"  # Brazil
_NOT_DIGITS = re.compile(r"[^0-9]")  # ASCII digits: \D keeps the digits of other scripts (full-width, Arabic-Indic)


def international_digits(phone: str) -> str:
    """The number's digits, with the country code added to a Brazilian DDD + number (10 or 11 digits
    not written with a leading "+", which says the country code is there already). A trunk "0" typed
    before the DDD ("(011) 98765-4321", as dialled long-distance) is dropped first."""
    digits = _NOT_DIGITS.sub("", phone)
    international = phone.lstrip().startswith("+")
    if not international and len(digits) in (11, 12) and digits.startswith("0") and digits[1] != "0":
        digits = digits[1:]
    if len(digits) in (10, 11) and not international:
        digits = DEFAULT_COUNTRY_CODE + digits
    return digits
