"""Numbers as people read them: percentages, thousands separators, fixed decimals; a dash for
a value that is not there."""

from __future__ import annotations

from typing import Any

#: An en dash: a value not there, and the sign of a range.
DASH = "\u2013"
MISSING = DASH


def count(value: Any) -> str:
    """``32,581``."""
    return MISSING if value is None else f"{int(value):,}"


def percent(value: Any, digits: int = 1) -> str:
    """``21.9%`` from ``0.2194``."""
    return MISSING if value is None else f"{float(value) * 100:.{digits}f}%"


def decimal(value: Any, digits: int = 4) -> str:
    """``0.8497`` (large values keep their thousands separators: ``1,234.5000``)."""
    return MISSING if value is None else f"{float(value):,.{digits}f}"


def seconds(value: Any) -> str:
    """``1.11 s``, ``2 min 05 s``."""
    if value is None:
        return MISSING
    total = float(value)
    if total < 60:
        return f"{total:.2f} s"
    minutes, rest = divmod(round(total), 60)
    return f"{minutes} min {rest:02d} s"


FILTERS = {"count": count, "percent": percent, "decimal": decimal, "seconds": seconds}
