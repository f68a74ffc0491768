"""bench.common.parse_variant: the A/B tools' `--variant` syntax (bench.processors_ab, bench.ingress_ab)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bench.common import ROOT, parse_variant


def test_a_bare_name_is_this_checkout_on_this_interpreter() -> None:
    assert parse_variant("cur:") == ("cur", ROOT, {}, sys.executable, None)


def test_every_part_is_read() -> None:
    variant = parse_variant("b:@/tmp/wt,python=/usr/bin/python3,+bench.bare_app,CARINHO_X=1,CARINHO_Y=a=b")
    assert variant.cwd == Path("/tmp/wt").resolve()
    assert variant.python == "/usr/bin/python3"
    assert variant.module == "bench.bare_app"
    assert variant.env == {"CARINHO_X": "1", "CARINHO_Y": "a=b"}


@pytest.mark.parametrize("text", [":", "x:NOT_A_SETTING"])
def test_a_malformed_variant_is_refused(text: str) -> None:
    with pytest.raises(SystemExit):
        parse_variant(text)
