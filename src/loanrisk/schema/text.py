"""One rule for a loan's text and numbers, whatever carried them (JSON, CSV, Parquet, OIP).

Text a loan can hold is printable: no control character (C0, DEL, C1; tab and line breaks
included: no loan attribute is free text) and nothing UTF-8 cannot encode (a lone surrogate
such as ``"\\ud800"``, which JSON escapes can carry, could be logged but never read back).
A field is at most :data:`MAX_TEXT_CHARS` characters.

A number sent as text is an ASCII decimal: an optional sign, digits with an optional point,
and an optional exponent (``12``, ``-0.5``, ``.5``, ``1e5``), surrounding whitespace ignored.
Python's ``float()`` also reads other scripts' digits (Arabic-Indic ``"٢٢"``, full-width
``"\\uff15"``) and underscores (``"1_000"``); CSV's parser reads none of them, and neither
does this rule.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

#: The longest text a loan field holds (a category, an id); longer is refused, in every format.
MAX_TEXT_CHARS = 10_000

#: The problems this module names (also the messages of the refusals, the same in every format).
CONTROL = "a control character (text must be printable)"
UNENCODABLE = "text UTF-8 cannot encode (a lone surrogate)"
TOO_LONG = f"longer than {MAX_TEXT_CHARS:,} characters"
NOT_A_NUMBER = "not a number"

_SURROGATE = re.compile("[\ud800-\udfff]")
#: Both at once: the quick test of the common case, a clean string.
_BAD = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
#: Control characters that free text (a schema's descriptions) may hold.
_FREE_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def text_problem(text: str) -> str | None:
    """What makes ``text`` unfit for a loan field (:data:`UNENCODABLE`, :data:`CONTROL` or
    :data:`TOO_LONG`), or None when it is fit."""
    if len(text) > MAX_TEXT_CHARS:
        return TOO_LONG
    if _BAD.search(text) is None:
        return None
    return UNENCODABLE if _SURROGATE.search(text) else CONTROL


def all_fit(texts: list[str]) -> bool:
    """A quick test that every one of ``texts`` is fit (one search over them joined); False
    means only that some may not be: ask :func:`text_problem` of each."""
    joined = "".join(texts)
    return len(joined) <= MAX_TEXT_CHARS and _BAD.search(joined) is None


def free_text_problem(text: str) -> str | None:
    """:func:`text_problem` for free text (descriptions): tab and line breaks allowed, no
    length limit."""
    if _SURROGATE.search(text):
        return UNENCODABLE
    return CONTROL if _FREE_TEXT.search(text) else None


def unencodable(text: str) -> bool:
    """Whether UTF-8 cannot encode ``text`` (it holds a lone surrogate)."""
    return _SURROGATE.search(text) is not None


def decimal(text: str) -> float:
    """``text`` read as an ASCII decimal number (see the module); ValueError otherwise."""
    stripped = text.strip()
    if _DECIMAL.fullmatch(stripped) is None:
        raise ValueError(NOT_A_NUMBER)
    return float(stripped)


def is_decimal(text: str) -> bool:
    """Whether ``text`` (stripped) is an ASCII decimal number."""
    return _DECIMAL.fullmatch(text.strip()) is not None


def shown(text: str, limit: int = 80) -> str:
    """``text`` safe to put in a message: what UTF-8 cannot encode or a terminal would act on
    is escaped (``\\ud800``, ``\\x01``), and a long text is cut to ``limit`` characters."""
    cut = text if len(text) <= limit else text[:limit] + "..."
    return _BAD.sub(lambda m: repr(m.group())[1:-1], cut)


def example(text: str, limit: int = 40) -> str:
    """``text`` as a report's example of a bad value: cut to ``limit`` characters, a lone
    surrogate shown as U+FFFD (a JSON answer cannot carry it); control characters are kept,
    for the message's ``repr`` and the JSON answer's escapes to show."""
    cut = text if len(text) <= limit else text[:limit] + "..."
    return _SURROGATE.sub("\ufffd", cut)


def strings(doc: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """Every string of a parsed JSON or YAML document (keys included), with its place
    (``records[0].grade``), depth first; iterative, so a deep document cannot overflow."""
    stack: list[tuple[str, Any]] = [(where, doc)]
    while stack:
        place, node = stack.pop()
        if isinstance(node, str):
            yield place, node
        elif isinstance(node, dict):
            for key, value in reversed(node.items()):
                name = f"{place}.{shown(str(key))}" if place else shown(str(key))
                if isinstance(key, str):
                    yield name, key
                stack.append((name, value))
        elif isinstance(node, list):
            stack.extend((f"{place}[{i}]", v) for i, v in reversed(list(enumerate(node))))
