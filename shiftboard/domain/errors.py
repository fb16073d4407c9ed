"""The exceptions of shiftboard, each with an application :class:`Code`.

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

The codes are the application's own; :mod:`shiftboard.wire.status` is the one mapping to gRPC status
codes, used by the gateway's interceptor (errors to statuses) and by the client (statuses back to the
same classes). The CLI prints ``Error: <message>`` and exits non-zero.
"""

from __future__ import annotations

import enum


class Code(enum.Enum):
    """What kind of failure an error is (named like the gRPC status it travels as)."""

    INVALID_ARGUMENT = "invalid argument"
    NOT_FOUND = "not found"
    ALREADY_EXISTS = "already exists"
    FAILED_PRECONDITION = "failed precondition"
    PERMISSION_DENIED = "permission denied"
    UNAUTHENTICATED = "unauthenticated"
    RESOURCE_EXHAUSTED = "resource exhausted"
    UNAVAILABLE = "unavailable"
    UNIMPLEMENTED = "unimplemented"
    INTERNAL = "internal"


class ShiftboardError(Exception):
    """Base class; ``code`` says what kind of failure it is."""

    code: Code = Code.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(ShiftboardError):
    code = Code.INVALID_ARGUMENT


class NotFound(ShiftboardError):
    code = Code.NOT_FOUND


class AlreadyExists(ShiftboardError):
    code = Code.ALREADY_EXISTS


class FailedPrecondition(ShiftboardError):
    code = Code.FAILED_PRECONDITION


class PermissionDenied(ShiftboardError):
    code = Code.PERMISSION_DENIED


class Unauthenticated(ShiftboardError):
    code = Code.UNAUTHENTICATED


class ResourceExhausted(ShiftboardError):
    code = Code.RESOURCE_EXHAUSTED


class Unavailable(ShiftboardError):
    code = Code.UNAVAILABLE


class Unimplemented(ShiftboardError):
    code = Code.UNIMPLEMENTED


class Internal(ShiftboardError):
    code = Code.INTERNAL


_BY_CODE: dict[Code, type[ShiftboardError]] = {
    cls.code: cls
    for cls in (InvalidArgument, NotFound, AlreadyExists, FailedPrecondition, PermissionDenied,
                Unauthenticated, ResourceExhausted, Unavailable, Unimplemented, Internal)
}
assert set(_BY_CODE) == set(Code)


def error_class(code: Code) -> type[ShiftboardError]:
    """The error class of ``code``."""
    return _BY_CODE[code]
