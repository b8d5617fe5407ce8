"""JSON bodies read at the edge (``loanrisk.service.bodies``): the integer bound holds on
every path the parser takes, whatever the body's encoding."""

from __future__ import annotations

import json

import pytest

from loanrisk.errors import InvalidInput
from loanrisk.service.bodies import MAX_INT_DIGITS, parse_json


@pytest.mark.parametrize("sign", ["", "-"])
def test_an_integer_of_the_bound_s_length_is_read_and_one_digit_more_refused(sign: str) -> None:
    longest = int(sign + "9" * MAX_INT_DIGITS)
    assert parse_json(json.dumps({"n": longest}).encode()) == {"n": longest}
    with pytest.raises(InvalidInput, match=f"{MAX_INT_DIGITS + 1} digits"):
        parse_json(f'{{"n": {sign}{"9" * (MAX_INT_DIGITS + 1)}}}'.encode())


def test_a_long_run_of_digits_in_text_is_text_and_long_floats_are_floats() -> None:
    digits = "1" * (MAX_INT_DIGITS + 5)
    assert parse_json(f'{{"id": "{digits}", "x": 1}}'.encode()) == {"id": digits, "x": 1}
    assert parse_json(f'{{"x": 0.{digits}}}'.encode()) == {"x": float(f"0.{digits}")}


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
def test_the_bound_holds_for_bodies_in_utf_16_and_32(encoding: str) -> None:
    with pytest.raises(InvalidInput, match="digits"):
        parse_json(f'{{"n": {"9" * (MAX_INT_DIGITS + 1)}}}'.encode(encoding))
    assert parse_json('{"n": 12}'.encode(encoding)) == {"n": 12}


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_numbers_json_does_not_allow_are_refused(constant: str) -> None:
    with pytest.raises(InvalidInput, match="not a number JSON allows"):
        parse_json(f'{{"n": {constant}}}'.encode())
