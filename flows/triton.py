"""Triton at the edge of the flows: the gRPC client and the translation of its errors.

Every ``tritonclient`` exception the flows meet is turned into a shiftboard error here, once:

* Triton unreachable, timed out or shutting down, or the model gone from the server (Triton was
  restarted, or the model was unloaded under us) -> :class:`~shiftboard.errors.Unavailable`: worth
  retrying (a retry deploys the model again);
* the model itself failing (it does not load, it raises, its stub crashed, its output has the wrong
  shape) -> :class:`ModelFailed`: permanent, recorded on the evaluation with Triton's message;
* anything else (a request Triton refuses as malformed) -> :class:`~shiftboard.errors.Internal`.
"""

from __future__ import annotations

import logging
from typing import Any

import tritonclient.grpc as triton_grpc
from tritonclient.utils import InferenceServerException

from shiftboard.errors import FailedPrecondition, Internal, ShiftboardError, Unavailable

log = logging.getLogger(__name__)

__all__ = ["ModelFailed", "TritonError", "connect", "is_transient_status", "translate"]

TritonError = InferenceServerException

# gRPC status names (as tritonclient reports them, "StatusCode.X") that mean "try again later".
_TRANSIENT = {"UNAVAILABLE", "DEADLINE_EXCEEDED", "CANCELLED", "RESOURCE_EXHAUSTED", "ABORTED"}
# Messages of a model that is not (or no longer) served: transient, a retry loads it again.
_NOT_SERVED = ("unknown model", "is not found", "is not ready", "not ready", "has no available")
# Input sizes are bounded by the batch size; raise gRPC's 4 MiB default for large images.
_MAX_MESSAGE_BYTES = 1 << 30


class ModelFailed(FailedPrecondition):
    """The model failed in Triton (load error, exception, crash, wrong output): retrying cannot help."""


def connect(url: str) -> triton_grpc.InferenceServerClient:
    """A gRPC client of the Triton server at ``host:port``."""
    return triton_grpc.InferenceServerClient(url, channel_args=[
        ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
    ])


def status_name(exc: InferenceServerException) -> str:
    """``UNAVAILABLE`` for an exception whose status is ``StatusCode.UNAVAILABLE`` ('' when none)."""
    status = exc.status() or ""
    return str(status).rsplit(".", 1)[-1]


def is_transient_status(exc: InferenceServerException) -> bool:
    message = str(exc.message() or "").lower()
    if status_name(exc) in _TRANSIENT:
        return True
    return status_name(exc) == "" and ("failed to connect" in message or "socket closed" in message)


def translate(exc: BaseException, *, what: str, url: str, model: str = "") -> ShiftboardError:
    """The shiftboard error for a Triton failure while doing ``what`` (e.g. "infer", "load")."""
    if isinstance(exc, ShiftboardError):
        return exc
    if not isinstance(exc, InferenceServerException):
        return Internal(f"Triton at {url}: {what}: {type(exc).__name__}: {exc}")
    message = str(exc.message() or exc).strip()
    if is_transient_status(exc):
        return Unavailable(f"Triton at {url} is unavailable ({what}): {message}")
    lowered = message.lower()
    not_served = status_name(exc) in {"NOT_FOUND", "UNAVAILABLE"} or any(s in lowered for s in _NOT_SERVED)
    if not_served and what != "load":
        return Unavailable(f"model {model} is not served by Triton at {url} ({what}): {message}")
    if status_name(exc) in {"INTERNAL", "UNKNOWN", ""} or what == "load":
        return ModelFailed(f"model {model} failed in Triton ({what}): {condense(message)}" if model
                           else f"Triton ({what}): {condense(message)}")
    return Internal(f"Triton at {url} refused to {what}: [{status_name(exc)}] {message}")


def condense(message: str, limit: int = 1500) -> str:
    """A model error for people: a TorchScript traceback's last line (the exception) first.

    ``Error: The following operation failed in the TorchScript interpreter. Traceback ...
    builtins.RuntimeError: input out of range`` becomes ``builtins.RuntimeError: input out of range
    (Error: The following operation failed in the TorchScript interpreter.)``.
    """
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if len(lines) > 1:
        message = f"{lines[-1]} ({lines[0]})"
    return message if len(message) <= limit else message[: limit - 3] + "..."


def close_quietly(client: Any) -> None:
    """Close a client, ignoring errors (teardown after a failure)."""
    try:
        client.close()
    except Exception:  # noqa: BLE001 - nothing useful to do with a close error
        log.debug("closing the Triton client failed", exc_info=True)
