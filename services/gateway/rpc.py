"""The one place where gateway errors meet gRPC: authorisation and status translation for every RPC."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import grpc

from shiftboard.errors import ShiftboardError

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


def rpc(*, mutating: bool, admin: bool = False) -> Callable[[F], F]:
    """Authorise the call, then translate errors to gRPC statuses (the only place that does)."""

    def decorate(method: F) -> F:
        @functools.wraps(method)
        def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
            try:
                caller = self.authorize(context, mutating=mutating, admin=admin)
                return method(self, request, context, caller)
            except ShiftboardError as exc:
                log.info("%s refused: %s: %s", method.__name__, exc.code.name, exc.message)
                context.abort(exc.code, exc.message)
            except Exception:
                log.exception("unexpected error in %s", method.__name__)
                context.abort(grpc.StatusCode.INTERNAL,
                              f"internal error in the gateway during {method.__name__}; see the gateway log")

        return wrapper  # type: ignore[return-value]

    return decorate




def stream_rpc(*, mutating: bool) -> Callable[[F], F]:
    """:func:`rpc` for server-streaming methods: errors raised while streaming are translated too."""

    def decorate(method: F) -> F:
        @functools.wraps(method)
        def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
            try:
                caller = self.authorize(context, mutating=mutating, admin=False)
                yield from method(self, request, context, caller)
            except ShiftboardError as exc:
                log.info("%s refused: %s: %s", method.__name__, exc.code.name, exc.message)
                context.abort(exc.code, exc.message)
            except Exception:
                log.exception("unexpected error in %s", method.__name__)
                context.abort(grpc.StatusCode.INTERNAL,
                              f"internal error in the gateway during {method.__name__}; see the gateway log")

        return wrapper  # type: ignore[return-value]

    return decorate
