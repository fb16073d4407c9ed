"""The one place where gateway errors meet gRPC: authorisation and status translation for every RPC."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import grpc

from shiftboard.errors import ShiftboardError

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


def rpc(*, mutating: bool, admin: bool = False) -> Callable[[F], F]:
    """Authorise the call, then translate errors to gRPC statuses (the only place that does)."""

    def decorate(method: F) -> F:
        @functools.wraps(method)
        def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
            with _translated(method.__name__, context):
                caller = self.authorize(context, mutating=mutating, admin=admin)
                return method(self, request, context, caller)

        return wrapper  # type: ignore[return-value]

    return decorate


def stream_rpc(*, mutating: bool) -> Callable[[F], F]:
    """:func:`rpc` for server-streaming methods: errors raised while streaming are translated too."""

    def decorate(method: F) -> F:
        @functools.wraps(method)
        def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
            with _translated(method.__name__, context):
                caller = self.authorize(context, mutating=mutating, admin=False)
                yield from method(self, request, context, caller)

        return wrapper  # type: ignore[return-value]

    return decorate
