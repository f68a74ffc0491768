"""Phone numbers as the messaging gateways want them: digits, country code first.

Carinho's clients are in Brazil and type their number as they dial it: the area code (DDD) and the
number, 10 or 11 digits, without the country code. Z-API and the SMS provider need the country code,
or the message goes to another number or nowhere."""

from __future__ import annotations

import re

DEFAULT_COUNTRY_CODE = "55"  # Brazil
_NOT_DIGITS = re.compile(r"\D")


def international_digits(phone: str) -> str:
    """The number's digits, with the country code added to a Brazilian DDD + number (10 or 11 digits
    not written with a leading "+", which says the country code is there already)."""
    digits = _NOT_DIGITS.sub("", phone)
    if len(digits) in (10, 11) and not phone.lstrip().startswith("+"):
        digits = DEFAULT_COUNTRY_CODE + digits
    return digits
