"""The one place where gateway errors meet gRPC: authorisation and status translation for every RPC.

``@rpc(mutating=..., roles=...)``: a mutating call needs a token whose role is in ``roles`` (see
:mod:`~shiftboard.services.gateway.auth`); a read needs none while reads are open. ``@stream_rpc``
also takes one of the gateway's bounded stream slots (:mod:`~shiftboard.services.gateway.limits`)
for the caller, released when the stream ends however it ends.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import grpc

from shiftboard.domain.errors import ShiftboardError
from shiftboard.services.gateway.auth import ANY_ROLE
from shiftboard.services.gateway.limits import peer_host

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


@contextmanager
def _translated(name: str, context: grpc.ServicerContext) -> Iterator[None]:
    """A ShiftboardError becomes its status; anything else INTERNAL, its traceback logged here."""
    try:
        yield
    except ShiftboardError as exc:
        log.info("%s refused: %s: %s", name, exc.code.name, exc.message)
        context.abort(exc.code, exc.message)
    except Exception:
        log.exception("unexpected error in %s", name)
        context.abort(grpc.StatusCode.INTERNAL, f"internal error in the gateway during {name}; see the gateway log")


def rpc(*, mutating: bool, roles: frozenset[str] = ANY_ROLE) -> Callable[[F], F]:
    """Authorise the call (a token with one of ``roles`` when mutating), then translate errors to
    gRPC statuses (the only place that does).

    Unary and client-streaming methods alike: for a client stream ``request`` is the iterator of the
    caller's messages, and the caller is authorised before the first one is read. (A client stream
    takes no stream slot: its caller sends and is done, it holds no thread waiting on others.)
    """

    def decorate(method: F) -> F:
        @functools.wraps(method)
        def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
            with _translated(method.__name__, context):
                caller = self.authorize(context, mutating=mutating, roles=roles, call=method.__name__)
                return method(self, request, context, caller)

        return wrapper  # type: ignore[return-value]

    return decorate


def stream_rpc(*, mutating: bool, roles: frozenset[str] = ANY_ROLE) -> Callable[[F], F]:
    """:func:`rpc` for server-streaming methods: a stream slot per call (RESOURCE_EXHAUSTED when the
    caller's or the gateway's are all taken), and errors raised while streaming are translated too."""

    def decorate(method: F) -> F:
        @functools.wraps(method)
        def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
            with _translated(method.__name__, context):
                caller = self.authorize(context, mutating=mutating, roles=roles, call=method.__name__)
                who = f"token {caller.name!r}" if caller is not None else f"anonymous {peer_host(context.peer())}"
                release = self.streams.acquire(who, method.__name__)
                context.add_callback(release)  # the RPC ended (also when the client went away)
                try:
                    yield from method(self, request, context, caller)
                finally:
                    release()

        return wrapper  # type: ignore[return-value]

    return decorate
