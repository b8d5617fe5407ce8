"""API keys with two scopes: ``score`` (predict) and ``admin`` (data, training, models, jobs;
includes ``score``).

Keys come from the settings (``LOANRISK_API_KEYS``) or a mounted secret file
(``LOANRISK_API_KEYS_FILE``), one ``scope:key`` or ``scope:sha256:<hex>`` entry each. Only
SHA-256 digests are kept in memory, compared in constant time. Clients send
``Authorization: Bearer <key>`` or ``X-API-Key: <key>``. With no keys at all the service runs
open, as the reference did, and says so loudly when it starts.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request

from loanrisk.errors import Forbidden, InvalidInput, Unauthenticated
from loanrisk.settings import Settings

SCORE = "score"
ADMIN = "admin"
SCOPES = (SCORE, ADMIN)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _parse(entries: Iterable[str], origin: str) -> list[tuple[str, str]]:
    parsed = []
    for number, raw in enumerate(entries, start=1):
        entry = raw.strip()
        if not entry or entry.startswith("#"):
            continue
        scope, sep, secret = entry.partition(":")
        if not sep or scope not in SCOPES or not secret:
            raise InvalidInput(
                f"{origin} entry {number}: expected 'score:<key>' or "
                "'admin:<key>' (or '<scope>:sha256:<hex>')"
            )
        if secret.startswith("sha256:"):
            hexdigest = secret.removeprefix("sha256:").lower()
            if len(hexdigest) != 64 or any(c not in "0123456789abcdef" for c in hexdigest):
                raise InvalidInput(f"{origin} entry {number}: not a SHA-256 hex digest")
        else:
            if len(secret) < 16:
                raise InvalidInput(f"{origin} entry {number}: keys need at least 16 characters")
            hexdigest = digest(secret)
        parsed.append((hexdigest, scope))
    return parsed


@dataclass(frozen=True)
class ApiKeys:
    """Known key digests and their scopes; empty means the service is open."""

    scopes: dict[str, str]

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiKeys:
        entries = _parse((k.get_secret_value() for k in settings.api_keys), "LOANRISK_API_KEYS")
        if settings.api_keys_file is not None:
            try:
                text = settings.api_keys_file.read_text()
            except OSError as exc:
                raise InvalidInput(f"cannot read the API keys file: {exc}") from None
            entries += _parse(text.splitlines(), str(settings.api_keys_file))
        if not entries and settings.environment == "production":
            raise InvalidInput(
                "production refuses to serve without API keys: set LOANRISK_API_KEYS or "
                "LOANRISK_API_KEYS_FILE"
            )
        return cls(dict(entries))

    @property
    def open(self) -> bool:
        return not self.scopes

    def check(self, presented: str | None, needed: str) -> str | None:
        """The key's scope; raises when the key is missing, unknown or lacks ``needed``."""
        if self.open:
            return None
        if not presented:
            raise Unauthenticated("an API key is required: send 'Authorization: Bearer <key>'")
        found = digest(presented)
        scope = next((s for d, s in self.scopes.items() if hmac.compare_digest(d, found)), None)
        if scope is None:
            raise Unauthenticated("unknown API key")
        if needed == ADMIN and scope != ADMIN:
            raise Forbidden(f"this key has scope {scope!r}; the request needs {needed!r}")
        return scope


def presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return request.headers.get("x-api-key")


def require(scope: str) -> Any:
    """A route dependency that lets through keys with ``scope`` (or any, when open)."""

    async def check(request: Request) -> None:  # async: no threadpool hop
        keys: ApiKeys = request.app.state.services.keys
        keys.check(presented_key(request), scope)

    return Depends(check)
