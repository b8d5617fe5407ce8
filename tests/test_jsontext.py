"""JSON text on the scoring path (``loanrisk.jsontext``): orjson's result is taken only where
it is the standard library's, so every document reads, and every value writes, as
:mod:`json` reads and writes it, on documents and values generated here: integers beyond 64
bits, floats at the edges, non-finite floats, lone surrogates, other encodings."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loanrisk import jsontext
from loanrisk.errors import InvalidInput
from loanrisk.service.bodies import _parse_slowly, parse_json

#: Text with surrogates too (Hypothesis leaves category Cs out of text by default).
TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=8)
INTEGERS = st.one_of(
    st.integers(-(2**70), 2**70),
    st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 10**29]),
)
FLOATS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, -0.0, 2.0**63, -(2.0**63), 1e19, 5e-324, 1e-7, 1e16, 1.5e300]),
)
SCALARS = st.one_of(st.none(), st.booleans(), INTEGERS, FLOATS, TEXT)


def documents(scalars: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
        max_leaves=12,
    )


def typed(doc: Any) -> str:
    """``doc`` as text that tells an int from a float, -0.0 from 0.0 and NaN from null."""
    return json.dumps(doc)


def stdlib_text(value: Any) -> bytes:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.encode("utf-8", "surrogatepass")


@settings(max_examples=400, deadline=None)
@given(documents(SCALARS))
def test_a_document_reads_as_json_reads_it(doc: Any) -> None:
    body = stdlib_text(doc)
    assert typed(jsontext.loads(body, json.loads)) == typed(json.loads(body))


@settings(max_examples=300, deadline=None)
@given(documents(SCALARS))
def test_a_body_parses_as_the_standard_library_path_parses_it(doc: Any) -> None:
    body = stdlib_text(doc)
    try:
        expected = typed(_parse_slowly(body))
    except InvalidInput as exc:
        with pytest.raises(InvalidInput, match=f"^{re.escape(str(exc))}$"):
            parse_json(body)
    else:
        assert typed(parse_json(body)) == expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"id": 123456789012345678901234}', {"id": 123456789012345678901234}),
        (b"[18446744073709551616, -9223372036854775809]", [2**64, -(2**63) - 1]),
        (b'{"x": 1e400}', {"x": math.inf}),
        (b'\xef\xbb\xbf{"a": 1}', {"a": 1}),
        ('{"a": "é"}'.encode("utf-16"), {"a": "é"}),
    ],
)
def test_what_orjson_reads_otherwise_or_refuses_reads_as_json_reads_it(
    body: bytes, expected: Any
) -> None:
    assert typed(parse_json(body)) == typed(expected)


@pytest.mark.parametrize("body", [b'["\\ud800"]', b'{"a": "\\udc00x"}', b'"\xed\xa0\x80"'])
def test_lone_surrogates_are_refused_as_before(body: bytes) -> None:
    with pytest.raises(InvalidInput, match="body"):
        parse_json(body)


@settings(max_examples=400, deadline=None)
@given(
    documents(
        st.one_of(
            SCALARS,
            st.sampled_from([math.nan, math.inf, -math.inf]),
            st.tuples(INTEGERS, TEXT),
        )
    )
)
def test_a_value_writes_what_json_writes(value: Any) -> None:
    written = jsontext.dumps(value, stdlib_text)
    assert typed(json.loads(written)) == typed(json.loads(stdlib_text(value)))


def test_a_non_finite_float_is_left_to_the_slow_path_which_may_refuse_it() -> None:
    def refusing(value: Any) -> bytes:
        return json.dumps(value, allow_nan=False).encode()

    with pytest.raises(ValueError, match="not JSON compliant"):
        jsontext.dumps({"p": [0.5, math.nan]}, refusing)
    assert jsontext.dumps({"p": None, "q": [1.0]}, refusing) == b'{"p":null,"q":[1.0]}'


def test_what_orjson_does_not_write_as_json_does_is_left_to_the_slow_path() -> None:
    class Code(str):
        pass

    slow_calls: list[Any] = []

    def slow(value: Any) -> bytes:
        slow_calls.append(value)
        return stdlib_text(value)

    for value in ([Code("a")], [2**64], ["\ud800"], {1: "a"}):
        assert json.loads(jsontext.dumps(value, slow)) == json.loads(stdlib_text(value))
    assert len(slow_calls) == 4
