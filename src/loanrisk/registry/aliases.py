"""An alias's stored record (``<root>/<name>/aliases/<alias>.json``) and its history.

Plain JSON read back from storage, so typed as dicts of a fixed shape: the registry returns
the records as stored, and routes and the CLI answer with them unchanged. Only ``version``
is sure to be there: records written before moves were attributed have no ``updated_by``
and ``reason`` (nor their moves ``by`` and ``reason``), and one written by hand may hold
the version alone. They still read; the keys they lack stay absent, and keys this module
does not name are kept.
"""

from __future__ import annotations

from typing import NotRequired

from pydantic import ConfigDict, TypeAdapter, with_config
from typing_extensions import TypedDict


@with_config(ConfigDict(extra="allow"))
class AliasMove(TypedDict):
    """One move of an alias: the version it was pointed at (None: retired), when, who and
    why."""

    version: int | None
    at: str
    by: NotRequired[str | None]
    reason: NotRequired[str | None]


@with_config(ConfigDict(extra="allow"))
class AliasRecord(TypedDict):
    """An alias: the version it names (None: retired), the one it named before, its last
    move, and its last :data:`~loanrisk.registry.models.HISTORY_LENGTH` moves, oldest first."""

    alias: NotRequired[str]
    version: int | None
    previous: NotRequired[int | None]
    updated_at: NotRequired[str]
    updated_by: NotRequired[str | None]
    reason: NotRequired[str | None]
    history: NotRequired[list[AliasMove]]


#: Parses a stored record (keys in the order above, as the registry writes them).
ALIAS_RECORD: TypeAdapter[AliasRecord] = TypeAdapter(AliasRecord)
