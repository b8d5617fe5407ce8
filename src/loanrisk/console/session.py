"""Who is looking at the console, and proof that a form was sent by the console itself.

Logging in checks an API key (docs/service.md) and keeps it in a cookie that scripts cannot
read (HttpOnly), that no other site's page sends (SameSite=Strict), and that travels only over
HTTPS outside development (Secure). Every replica checks it as it checks a bearer key, so a
login works behind a load balancer and across restarts. A score key sees the console read-only;
writes need the admin scope, as over the API.

Every form carries a CSRF token equal to a random cookie of its own (the double-submit
pattern), and a write whose ``Origin`` is another site is refused before the token is read.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from fastapi import Request
from fastapi.responses import Response

from loanrisk.errors import Forbidden, LoanRiskError
from loanrisk.serving.auth import ADMIN, ANONYMOUS, ApiKeys
from loanrisk.serving.state import services_of

KEY_COOKIE = "loanrisk_key"
CSRF_COOKIE = "loanrisk_csrf"
CSRF_FIELD = "csrf"
#: A console login lasts a working day.
SESSION_SECONDS = 8 * 3600
#: Longer than any key a client would paste; anything longer is not a key.
MAX_KEY_LENGTH = 512


class LoginRequired(Exception):
    """No valid key in the cookie: the page answers with a redirect to the login form."""

    def __init__(self, target: str) -> None:
        super().__init__("log in to use the console")
        self.target = target


@dataclass(frozen=True)
class Viewer:
    """The person behind a console request: the key's name and whether it may write."""

    name: str
    admin: bool
    open: bool = False


def check_key(keys: ApiKeys, key: str) -> Viewer:
    """The viewer a key logs in as (raises Unauthenticated for an unknown key)."""
    name, scope = keys.identify(key)
    return Viewer(name, admin=scope == ADMIN)


def viewer(request: Request) -> Viewer:
    """The logged-in viewer, or :class:`LoginRequired` (open service: an anonymous admin)."""
    keys = services_of(request.app).keys
    if keys.open:
        return Viewer(ANONYMOUS, admin=True, open=True)
    key = request.cookies.get(KEY_COOKIE, "")
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if not key or len(key) > MAX_KEY_LENGTH:
        raise LoginRequired(target)
    try:
        return check_key(keys, key)
    except LoanRiskError:
        raise LoginRequired(target) from None


def login_url(target: str) -> str:
    return f"/console/login?next={quote(target, safe='/')}"


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a path on this site only (no scheme, host or ``//``)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/"
    return target


def _secure(request: Request) -> bool:
    return str(services_of(request.app).settings.environment) != "development"


def _set_cookie(response: Response, request: Request, name: str, value: str) -> None:
    """A console cookie: unreadable by scripts, never sent by other sites, HTTPS-only outside
    development, for a working day."""
    response.set_cookie(
        name,
        value,
        max_age=SESSION_SECONDS,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        path="/",
    )


def set_login(response: Response, request: Request, key: str) -> None:
    _set_cookie(response, request, KEY_COOKIE, key)


def clear_login(response: Response) -> None:
    response.delete_cookie(KEY_COOKIE, path="/", httponly=True, samesite="strict")


def csrf_token(request: Request) -> str:
    """The request's CSRF token (a new one when the browser has none; see :func:`keep_csrf`)."""
    token = request.cookies.get(CSRF_COOKIE)
    if token and 20 <= len(token) <= 64:
        return token
    fresh: str = request.state.__dict__.setdefault("csrf", secrets.token_urlsafe(24))
    return fresh


def keep_csrf(response: Response, request: Request) -> None:
    """Set the CSRF cookie when this request made a new token."""
    fresh = request.state.__dict__.get("csrf")
    if fresh:
        _set_cookie(response, request, CSRF_COOKIE, fresh)


def check_write(request: Request, sent: object) -> None:
    """Refuse a form that another site made: a foreign ``Origin``, or a token that is not the
    cookie's (403)."""
    origin = request.headers.get("origin")
    if origin is not None:
        own = f"{request.url.scheme}://{request.url.netloc}"
        if origin != own:
            raise Forbidden(
                "refused: the form was sent from another site", details={"field": CSRF_FIELD}
            )
    cookie = request.cookies.get(CSRF_COOKIE, "")
    # Tokens are URL-safe ASCII; compare_digest raises on other text, so it never sees any.
    if (
        not isinstance(sent, str)
        or not cookie
        or not (sent.isascii() and cookie.isascii())
        or not hmac.compare_digest(sent, cookie)
    ):
        raise Forbidden(
            "refused: the form's CSRF token is missing or stale; reload the page",
            details={"field": CSRF_FIELD},
        )
