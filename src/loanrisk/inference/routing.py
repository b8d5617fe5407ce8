"""Which version answers a loan: the champion, or the canary for a sticky share of loans.

A loan with an id (the record's ``id`` field or the schema's id column) goes to the canary
when a hash of the id falls in the canary's share, so one applicant always meets one model
however often, and on whichever replica, they are scored; the hash (BLAKE2b, 64 bits) is the
same in every process. A loan without an id is sent by a random draw in the same share.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_SCALE = 100.0 / 2**64


def canary_bucket(loan_id: str) -> float:
    """Where a loan id falls in [0, 100): the same value in every process, on every host."""
    digest = hashlib.blake2b(loan_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") * _SCALE


def loan_id_of(record: Any, id_fields: Sequence[str]) -> str | None:
    """The caller's id of a JSON loan (the first of ``id_fields`` it has), as text."""
    if not isinstance(record, Mapping):
        return None
    for field in id_fields:
        value = record.get(field)
        if value is not None and not isinstance(value, dict | list):
            return str(value)
    return None


@dataclass(frozen=True)
class CanaryRule:
    """Send ``percent`` of loans (0 < percent <= 100) to the canary version."""

    percent: float

    def takes(self, loan_id: str | None) -> bool:
        if loan_id is None:
            return random.random() * 100.0 < self.percent  # noqa: S311 (a traffic share, not a secret)
        return canary_bucket(loan_id) < self.percent

    def split(
        self, records: Sequence[Any], id_fields: Sequence[str]
    ) -> tuple[list[int], list[int]]:
        """Indexes of the loans the champion answers, and of those the canary answers."""
        champion: list[int] = []
        canary: list[int] = []
        for index, record in enumerate(records):
            (canary if self.takes(loan_id_of(record, id_fields)) else champion).append(index)
        return champion, canary
