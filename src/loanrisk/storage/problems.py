"""Problems: stored items a listing or report skipped, named so an operator can repair them.

A listing or a report never fails for one bad item (a symlink leading out of the storage, a
corrupt alias record, an unreadable log file): it skips the item, serves the rest, and names
the item here, in its answer's ``problems`` and in the ``loanrisk_bad_items`` gauge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

#: What a bad item was: an entry leading out of the storage, an alias record, a dataset's
#: manifest, a job record, a prediction-log file, an outcomes file, a reference profile.
ProblemKind = Literal["link", "alias", "dataset", "job", "log_file", "outcome_file", "profile"]


class Problem(BaseModel):
    """One stored item skipped: its storage path (relative to the storage root, never an
    absolute path), what kind of item it is, and what is wrong with it."""

    model_config = ConfigDict(frozen=True)

    kind: ProblemKind
    path: str = Field(description="The item's path inside the storage.")
    message: str = Field(description="What is wrong with it, and how to repair it.")


@dataclass(frozen=True)
class Listing:
    """The entries directly under a folder (:meth:`Storage.listing`), and those skipped.

    ``names`` are the entries served, sorted; ``folders`` the names among them that are
    folders (a link to a folder is not one: a walk does not follow it); ``links`` the names
    among them that are symlinks staying inside the storage (local storage only). A symlink
    leading out of the storage is not in ``names``: it is a ``link`` problem."""

    names: list[str]
    problems: list[Problem] = field(default_factory=list)
    folders: frozenset[str] = frozenset()
    links: frozenset[str] = frozenset()
