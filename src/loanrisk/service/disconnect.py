"""HTTP's side of a cancellable request: a client that disconnects stops its scoring.

Starlette runs a handler to its end whoever still listens. Once a request's body is read,
the only message the server can still deliver is ``http.disconnect`` (the client left, or
the answer was sent); the request's :class:`~loanrisk.serving.cancel.Cancellation` waits for
it, in a task the core starts only for a request big enough to be scored in chunks.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import Receive

from loanrisk.serving.cancel import Cancellation


async def until_disconnect(receive: Receive) -> None:
    """Return once the client has gone (the request's body already read)."""
    while (await receive())["type"] != "http.disconnect":
        pass  # the body is read: nothing but a disconnect can come


def cancellation(request: Request) -> Cancellation:
    """The cancellation of ``request`` (its body read): set when its client disconnects,
    once watched; :meth:`~loanrisk.serving.cancel.Cancellation.stop` it when done."""
    receive = request.receive
    return Cancellation(lambda: until_disconnect(receive))
