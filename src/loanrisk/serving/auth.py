"""API keys with two scopes: ``score`` (predict) and ``admin`` (data, training, models, jobs;
includes ``score``).

Keys come from the settings (``LOANRISK_API_KEYS``) or a mounted secret file
(``LOANRISK_API_KEYS_FILE``), one ``scope:key`` or ``scope:sha256:<hex>`` entry each,
optionally named: ``name=scope:key`` (the name is what an alias's history records as the
mover; an unnamed key is ``<scope>-<first 8 hex digits of its digest>``). Only SHA-256
digests are kept in memory, compared in constant time. Each transport reads the key where
its clients send it (HTTP: ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``; gRPC: the
same as metadata; the console: its login cookie) and checks it here. With no keys at all the
service runs open, as the reference did, and says so loudly when it starts.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from loanrisk.errors import Forbidden, InvalidInput, Unauthenticated
from loanrisk.settings import Settings

SCORE = "score"
ADMIN = "admin"
SCOPES = (SCORE, ADMIN)
_KEY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
#: Who moved an alias when the service runs without keys.
ANONYMOUS = "anonymous (open service)"


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _parse(entries: Iterable[str], origin: str) -> list[tuple[str, str, str]]:
    """(digest, scope, name) of each entry."""
    parsed = []
    for number, raw in enumerate(entries, start=1):
        entry = raw.strip()
        if not entry or entry.startswith("#"):
            continue
        head, sep, secret = entry.partition(":")
        name, named, scope = head.rpartition("=")
        if not sep or scope not in SCOPES or not secret:
            raise InvalidInput(
                f"{origin} entry {number}: expected 'score:<key>' or "
                "'admin:<key>' (or '<scope>:sha256:<hex>'), optionally 'name=' first"
            )
        if named and not _KEY_NAME.match(name):
            raise InvalidInput(
                f"{origin} entry {number}: a key name is letters, digits, '.', '_', '@' or "
                "'-' (max 64)"
            )
        if secret.startswith("sha256:"):
            hexdigest = secret.removeprefix("sha256:").lower()
            if len(hexdigest) != 64 or any(c not in "0123456789abcdef" for c in hexdigest):
                raise InvalidInput(f"{origin} entry {number}: not a SHA-256 hex digest")
        else:
            if len(secret) < 16:
                raise InvalidInput(f"{origin} entry {number}: keys need at least 16 characters")
            hexdigest = digest(secret)
        parsed.append((hexdigest, scope, name if named else f"{scope}-{hexdigest[:8]}"))
    return parsed


@dataclass(frozen=True)
class ApiKeys:
    """Known key digests with their scopes and names; empty means the service is open."""

    scopes: dict[str, str]
    names: dict[str, str]

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
        return cls({d: s for d, s, _ in entries}, {d: n for d, _, n in entries})

    @property
    def open(self) -> bool:
        return not self.scopes

    def identify(self, presented: str | None) -> tuple[str, str]:
        """The key's name and scope (an open service: anonymous admin); raises
        :class:`Unauthenticated` when the key is missing or unknown."""
        if self.open:
            return ANONYMOUS, ADMIN
        if not presented:
            raise Unauthenticated("an API key is required: send 'Authorization: Bearer <key>'")
        found = digest(presented)
        known = next((d for d in self.scopes if hmac.compare_digest(d, found)), None)
        if known is None:
            raise Unauthenticated("unknown API key")
        return self.names[known], self.scopes[known]

    def check(self, presented: str | None, needed: str) -> str:
        """The key's name; raises when the key is missing, unknown or lacks ``needed``."""
        name, scope = self.identify(presented)
        if needed == ADMIN and scope != ADMIN:
            raise Forbidden(f"this key has scope {scope!r}; the request needs {needed!r}")
        return name


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key in a request's headers (HTTP) or metadata (gRPC), lower-case names:
    ``authorization: Bearer <key>``, else ``x-api-key``."""
    header = headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return headers.get("x-api-key")
