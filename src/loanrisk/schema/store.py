"""Named schemas on the storage, so a dataset request can name one instead of sending it.

Layout, under a directory of the storage (setting ``schema_directory``)::

    <directory>/<name>.json      one schema per name, replaced whole when stored again

The built-in schema is always there under its own name and cannot be replaced.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from loanrisk.errors import Conflict, InvalidInput, NotFound
from loanrisk.schema.files import builtin_schema, parse_schema
from loanrisk.schema.model import NAME_PATTERN, LoanSchema
from loanrisk.storage.base import Storage


@dataclass(frozen=True)
class SchemaStore:
    """The named schemas under one directory of a storage."""

    storage: Storage
    directory: str = "schemas"

    def _path(self, name: str) -> str:
        if not re.fullmatch(NAME_PATTERN, name) or ".." in name:
            raise InvalidInput(
                f"invalid schema name {name!r}: use letters, digits, '.', '_' or '-' (max 64)"
            )
        return self.storage.join(self.directory, f"{name}.json")

    def names(self) -> list[str]:
        """Stored schema names, and the built-in one, sorted."""
        stored = [
            e.removesuffix(".json")
            for e in self.storage.list(self.directory)
            if e.endswith(".json")
        ]
        return sorted({builtin_schema().name, *stored})

    def get(self, name: str) -> LoanSchema:
        if name == builtin_schema().name:
            return builtin_schema()
        try:
            text = self.storage.read_bytes(self._path(name))
        except NotFound:
            raise NotFound(f"no schema {name!r} (store one first)") from None
        return parse_schema(text, source=f"stored schema {name!r}")

    def put(self, schema: LoanSchema) -> None:
        """Store ``schema`` under its own name (replacing a stored one of that name)."""
        if schema.name == builtin_schema().name:
            raise Conflict(f"{schema.name!r} is the built-in schema's name; choose another")
        self.storage.write_bytes(self._path(schema.name), schema.to_json().encode())
