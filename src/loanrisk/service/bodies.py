"""Request bodies, read once at the edge: media types per RFC 9110 and JSON that cannot hurt.

A media type is matched case-insensitively and without its parameters (``Text/CSV;
charset=utf-8`` is ``text/csv``). JSON is parsed with bounds: integer literals of more than
:data:`MAX_INT_DIGITS` digits, ``NaN``/``Infinity``, nesting deeper than Python's parser
allows, and text UTF-8 cannot encode (a lone surrogate, ``"\\ud800"``, which a JSON escape can
carry but nothing can store) are refused as the client's error, naming the place, never
reaching a handler as a huge or odd value.
"""

from __future__ import annotations

import json
import re
import tempfile
from typing import IO, Any, TypeVar, cast

from fastapi import Request
from pydantic import BaseModel, ValidationError

from loanrisk import jsontext
from loanrisk.errors import InvalidInput, UnsupportedMediaType
from loanrisk.schema.text import UNENCODABLE, strings, unencodable
from loanrisk.serving.errors import invalid_fields

M = TypeVar("M", bound=BaseModel)

JSON = "application/json"
CSV = "text/csv"
MULTIPART = "multipart/form-data"
URLENCODED = "application/x-www-form-urlencoded"
#: No loan attribute, count or version needs a longer integer.
MAX_INT_DIGITS = 30
#: CSV bodies and results stay in memory up to this size, then go to a temporary file.
SPOOL_BYTES = 8 * 2**20
#: What a body must hold to carry a lone surrogate: a high surrogate's escape with no low one
#: after it, a low one with no high one before it (an emoji's pair, ``\\ud83d\\ude00``, is
#: fine), or a surrogate's UTF-8-like bytes (``json.loads`` decodes bytes with
#: ``surrogatepass``). Only such a body's strings are walked; the search costs 1-5 ms for a
#: 3 MB body of 10,000 loans (5 with an emoji in each), whose parsing costs about 45 ms.
_LONE_SURROGATE = re.compile(
    rb"\\u[dD](?:[89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F])"
    rb"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD])[c-fC-F])"
)
_SURROGATE_BYTES = re.compile(rb"\xed[\xa0-\xbf]")


def media_type(value: str | bytes | None) -> str:
    """The media type of a ``Content-Type`` value: lower case, parameters dropped."""
    text = value.decode("latin-1") if isinstance(value, bytes) else (value or "")
    return text.split(";", 1)[0].strip().lower()


def require_media_type(request: Request, accepted: tuple[str, ...], *, default: str = "") -> str:
    """The request's media type when the route accepts it (a missing header counts as
    ``default``); :class:`UnsupportedMediaType` (415) otherwise, before the body is read."""
    kind = media_type(request.headers.get("content-type")) or default
    if kind not in accepted:
        raise UnsupportedMediaType(
            f"unsupported content type {kind or 'none'!r}: send {' or '.join(accepted)}",
            details={"field": "content-type", "accepted": list(accepted)},
        )
    return kind


def _bounded_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise InvalidInput(f"an integer of {digits} digits: at most {MAX_INT_DIGITS}")
    return int(text)


def _no_constant(name: str) -> Any:
    raise InvalidInput(f"{name} is not a number JSON allows")


#: One decoder for every body (``json.loads`` with hooks builds a new one, and its scanner, per
#: call: about a quarter of a one-loan body's parsing).
_DECODER = json.JSONDecoder(parse_int=_bounded_int, parse_constant=_no_constant)


def parse_json(body: bytes) -> Any:
    """The JSON document in ``body``; :class:`InvalidInput` naming what is wrong. Read by
    orjson where it reads what :mod:`json` would (:mod:`loanrisk.jsontext`): every body it
    refuses (bad JSON, lone surrogates, other encodings) is read by :func:`_parse_slowly`, which
    says what is wrong."""
    return jsontext.loads(body, _parse_slowly)


def _parse_slowly(body: bytes) -> Any:
    try:
        # as json.loads reads bytes: UTF-8, -16 or -32, lone surrogates kept for the check below
        doc = _DECODER.decode(body.decode(json.detect_encoding(body), "surrogatepass"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise InvalidInput("the body is not valid JSON: nested too deeply") from None
    if _LONE_SURROGATE.search(body) or (b"\xed" in body and _SURROGATE_BYTES.search(body)):
        _refuse_unencodable(doc)
    return doc


def _refuse_unencodable(doc: Any) -> None:
    for place, text in strings(doc, "body"):
        if unencodable(text):
            raise InvalidInput(f"{place}: {UNENCODABLE}", details={"field": place})


def parse_model(model: type[M], doc: Any, *, prefix: str = "body") -> M:
    """``doc`` validated as ``model``; :class:`InvalidInput` naming every bad field."""
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        raise invalid_fields(exc, prefix) from None


async def spool_body(request: Request) -> IO[bytes]:
    """The request body in a temporary file (in memory up to 8 MiB), never whole in memory."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 (returned open)
    try:
        async for chunk in request.stream():
            spool.write(chunk)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return cast(IO[bytes], spool)
