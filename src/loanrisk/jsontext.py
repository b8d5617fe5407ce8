"""JSON text on the scoring path: orjson where its result is the standard library's, and the
standard library wherever it is not.

orjson reads a one-loan body in about a sixth of the time :mod:`json` takes, and writes an
answer or a write-ahead line in about a tenth (``benchmarks/bench_instructions.py``). It
differs from :mod:`json` in a few places, and each function here takes orjson's result only
where it is the one :mod:`json` would give, and otherwise returns what ``slow`` (the caller's
:mod:`json` path, with its own hooks and messages) gives:

- orjson reads an integer literal beyond 64 bits as a float. :func:`loads` falls back for a
  document holding a float of magnitude at least 2**63, which such a literal becomes.
- orjson refuses what :mod:`json` reads or refuses with its own message: a number that
  overflows a double (``1e400``), lone surrogates, a byte-order mark, UTF-16 and UTF-32,
  nesting beyond 1,024 levels. :func:`loads` falls back for every refusal.
- orjson writes NaN and infinities as ``null``, where :mod:`json` writes ``NaN`` and
  ``Infinity`` (or refuses them). :func:`dumps` falls back when its output holds a ``null``
  and the value a non-finite float.
- orjson writes only ``str`` keys, integers of 64 bits, text without lone surrogates, and the
  types it knows; subclasses of ``str`` and ``int``, dataclasses and datetimes are left to
  :mod:`json` (``OPT_PASSTHROUGH_*``). :func:`dumps` falls back on every refusal.

The text differs only where JSON allows it to: orjson writes no spaces, non-ASCII characters
as UTF-8, and floats in their shortest form with a plain exponent (``1e-5``, where Python
writes ``1e-05``); every float reads back as the same float.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import orjson

#: A float this big (or bigger) may be an integer literal orjson read beyond 64 bits.
_BEYOND_64_BITS = float(2**63)
#: Whatever orjson would write otherwise than :mod:`json` (whose default hook decides).
_PASSTHROUGH = (
    orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
)


def loads(data: bytes, slow: Callable[[bytes], Any]) -> Any:
    """The JSON document in ``data``: orjson's, or ``slow(data)`` where orjson's could differ
    from :mod:`json`'s or orjson refuses it."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        return slow(data)
    return doc if _floats_within(doc, _BEYOND_64_BITS) else slow(data)


def dumps(value: Any, slow: Callable[[Any], bytes]) -> bytes:
    """``value`` as JSON text: orjson's, or ``slow(value)`` where it would differ from
    :mod:`json`'s or orjson refuses it."""
    try:
        text = orjson.dumps(value, option=_PASSTHROUGH)
    except TypeError:  # orjson.JSONEncodeError is one
        return slow(value)
    if b"null" in text and not _floats_within(value, math.inf):
        return slow(value)
    return text


def _floats_within(doc: Any, bound: float) -> bool:
    """Whether every float in ``doc`` (parsed JSON: dicts, lists, scalars) lies strictly
    between ``-bound`` and ``bound`` (never true of NaN)."""
    pending = [doc]
    while pending:
        node = pending.pop()
        kind = type(node)
        if kind is dict:
            values = node.values()
        elif kind is list or kind is tuple:
            values = node
        else:
            values = (node,)
        for value in values:
            kind = type(value)
            if kind is float:
                if not -bound < value < bound:
                    return False
            elif kind is dict or kind is list or kind is tuple:
                pending.append(value)
    return True
