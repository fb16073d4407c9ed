"""The one mapping between application error codes and gRPC status codes.

The gateway's interceptor sends a :class:`~shiftboard.domain.errors.ShiftboardError` as
``grpc_code(exc.code)``; the client turns a status back into the same class with :func:`from_status`.
Every :class:`~shiftboard.domain.errors.Code` travels as the gRPC status of the same name; a status
gRPC produces by itself and the application never sends is read as the nearest class
(DEADLINE_EXCEEDED: :class:`~shiftboard.domain.errors.Unavailable`, retryable; anything else unknown:
:class:`~shiftboard.domain.errors.Internal`).
"""

from __future__ import annotations

import grpc

from shiftboard.domain.errors import Code, Internal, ShiftboardError, Unavailable, error_class

_TO_GRPC: dict[Code, grpc.StatusCode] = {code: grpc.StatusCode[code.name] for code in Code}
_FROM_GRPC: dict[grpc.StatusCode, Code] = {status: code for code, status in _TO_GRPC.items()}


def grpc_code(code: Code) -> grpc.StatusCode:
    """The gRPC status an error of ``code`` travels as."""
    return _TO_GRPC[code]


def from_status(status: grpc.StatusCode, message: str) -> ShiftboardError:
    """The error of a gRPC status (codes the application never sends become ``Internal``)."""
    if status == grpc.StatusCode.DEADLINE_EXCEEDED:
        return Unavailable(message or "deadline exceeded")
    code = _FROM_GRPC.get(status)
    return error_class(code)(message) if code is not None else Internal(message)
