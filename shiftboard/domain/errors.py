"""The exceptions of shiftboard, each bound one to one to a gRPC status code.

    ShiftboardError
    ├── InvalidArgument       INVALID_ARGUMENT      bad input; the message names the fix
    ├── NotFound              NOT_FOUND
    ├── AlreadyExists         ALREADY_EXISTS
    ├── FailedPrecondition    FAILED_PRECONDITION   the system is not in a state to do it
    ├── PermissionDenied      PERMISSION_DENIED     token valid, not allowed
    ├── Unauthenticated       UNAUTHENTICATED       token missing or unknown
    ├── ResourceExhausted     RESOURCE_EXHAUSTED    too large, too many (retryable later)
    ├── Unavailable           UNAVAILABLE           a server is down (retryable)
    ├── Unimplemented         UNIMPLEMENTED
    └── Internal              INTERNAL              anything unexpected; details only in server logs

The gateway raises these; the edge (``services.gateway.server``) turns them into gRPC statuses, and
the client (``shiftboard.client``) turns statuses back into the same classes. The CLI prints
``Error: <message>`` and exits non-zero.
"""

from __future__ import annotations

import grpc


class ShiftboardError(Exception):
    """Base class; ``code`` is the gRPC status the error travels as."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(ShiftboardError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(ShiftboardError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(ShiftboardError):
    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(ShiftboardError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class PermissionDenied(ShiftboardError):
    code = grpc.StatusCode.PERMISSION_DENIED


class Unauthenticated(ShiftboardError):
    code = grpc.StatusCode.UNAUTHENTICATED


class ResourceExhausted(ShiftboardError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(ShiftboardError):
    code = grpc.StatusCode.UNAVAILABLE


class Unimplemented(ShiftboardError):
    code = grpc.StatusCode.UNIMPLEMENTED


class Internal(ShiftboardError):
    code = grpc.StatusCode.INTERNAL


_BY_CODE: dict[grpc.StatusCode, type[ShiftboardError]] = {
    cls.code: cls
    for cls in (InvalidArgument, NotFound, AlreadyExists, FailedPrecondition, PermissionDenied,
                Unauthenticated, ResourceExhausted, Unavailable, Unimplemented, Internal)
}


def from_status(code: grpc.StatusCode, message: str) -> ShiftboardError:
    """The error class for a gRPC status (unknown codes become ``Internal``)."""
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return Unavailable(message or "deadline exceeded")
    return _BY_CODE.get(code, Internal)(message)
