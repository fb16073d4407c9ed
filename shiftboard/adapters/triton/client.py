"""Triton at the edge of the flows: the gRPC client and the translation of its errors.

Every ``tritonclient`` exception the flows meet is turned into a shiftboard error here, once:

* Triton unreachable, timed out or shutting down, or the model gone from the server (Triton was
  restarted, or the model was unloaded under us) -> :class:`~shiftboard.domain.errors.Unavailable`: worth
  retrying (a retry deploys the model again);
* the model itself failing (it does not load, it raises, its stub crashed, its output has the wrong
  shape) -> :class:`ModelFailed`: permanent, recorded on the evaluation with Triton's message
  (a load error in full: it names what the artifact lacks);
* anything else (a request Triton refuses as malformed) -> :class:`~shiftboard.domain.errors.Internal`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import tritonclient.grpc as triton_grpc
from tritonclient._plugin import InferenceServerClientPlugin
from tritonclient._request import Request
from tritonclient.utils import InferenceServerException

from shiftboard import credentials
from shiftboard.domain.errors import FailedPrecondition, Internal, PermissionDenied, ShiftboardError, Unavailable
from shiftboard.sandbox import sanitize
from shiftboard.settings import Settings, env_name

log = logging.getLogger(__name__)

__all__ = ["DEADLINE_ERROR", "DEADLINE_PARAMETER", "KEY_HEADER", "ModelDeadlineExceeded", "ModelFailed", "TritonAuth",
           "TritonError", "close_quietly", "connect", "is_transient_status",
           "is_unknown_model", "status_name", "translate"]

TritonError = InferenceServerException

# gRPC status names (as tritonclient reports them, "StatusCode.X") that mean "try again later".
_TRANSIENT = {"UNAVAILABLE", "DEADLINE_EXCEEDED", "CANCELLED", "RESOURCE_EXHAUSTED", "ABORTED"}
# Messages of a model that is not (or no longer) served: transient, a retry loads it again.
_NOT_SERVED = ("unknown model", "is not found", "is not ready", "not ready", "has no available")
# Messages of an unload or a lookup of a model Triton has never heard of.
_UNKNOWN = ("unknown model", "not found", "no version")
# Input sizes are bounded by the batch size; raise gRPC's 4 MiB default for large images.
_MAX_MESSAGE_BYTES = 1 << 30


class ModelFailed(FailedPrecondition):
    """The model failed in Triton (load error, exception, crash, wrong output): retrying cannot help."""


#: How the error of a request answered past its deadline starts (written by the Python-backend model,
#: :mod:`shiftboard.adapters.triton.python_model`, which cannot import this module: keep both equal).
DEADLINE_ERROR = "shiftboard deadline exceeded"
#: The request parameter carrying a request's deadline in milliseconds to that model.
DEADLINE_PARAMETER = "shiftboard_deadline_ms"


class ModelDeadlineExceeded(ModelFailed):
    """The model did not answer an inference request within its deadline (derived from its probe time):
    permanent, never retried; its Triton instance is stopped (``ModelDeployer.stop_hung``)."""


#: The header Triton checks on every restricted gRPC protocol (``--grpc-restricted-protocol=...:KEY=value``).
KEY_HEADER = "shiftboard-triton-key"
# Triton's gRPC server expects the restricted-protocol header under this prefix.
_GRPC_HEADER_PREFIX = "triton-grpc-protocol-"
_REFUSED = "protocol is restricted"


@dataclass(frozen=True)
class TritonAuth:
    """What a client shows Triton: the key header and, when Triton requires it, the stack's TLS files."""

    key: str | None
    tls: credentials.TlsFiles | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> TritonAuth:
        """The key and TLS files of ``settings`` (read from the state directory, never generated here)."""
        tls = None
        if settings.triton_tls:
            tls = credentials.stack_tls(settings)
            if tls is None:
                raise FailedPrecondition(
                    f"no TLS certificates for Triton in {credentials.tls_dir(settings)}: start the stack "
                    f"(`shiftboard up`) once, or set {env_name('triton_tls')}=false for a Triton without TLS")
        return cls(credentials.triton_key(settings), tls)


class _KeyHeader(InferenceServerClientPlugin):
    """Adds the key header to every call of a client (tritonclient calls its plugin for each)."""

    def __init__(self, key: str) -> None:
        self._key = key

    def __call__(self, request: Request) -> None:
        request.headers[_GRPC_HEADER_PREFIX + KEY_HEADER] = self._key

    def __repr__(self) -> str:  # never show the key
        return "_KeyHeader(***)"


def connect(url: str, auth: TritonAuth | None = None) -> triton_grpc.InferenceServerClient:
    """A gRPC client of the Triton server at ``host:port`` whose every call carries ``auth``."""
    options: list[tuple[str, Any]] = [
        ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
    ]
    tls = auth.tls if auth else None
    if tls is None:
        client = triton_grpc.InferenceServerClient(url, channel_args=options)
    else:
        # Every certificate of the stack names TLS_SERVER_NAME, whatever address Triton is dialled at.
        options.append(("grpc.ssl_target_name_override", credentials.TLS_SERVER_NAME))
        client = triton_grpc.InferenceServerClient(
            url, ssl=True, root_certificates=str(tls.ca), private_key=str(tls.key),
            certificate_chain=str(tls.cert), channel_args=options)
    if auth and auth.key:
        client.register_plugin(_KeyHeader(auth.key))
    return client


def status_name(exc: InferenceServerException) -> str:
    """``UNAVAILABLE`` for an exception whose status is ``StatusCode.UNAVAILABLE`` ('' when none)."""
    status = exc.status() or ""
    return str(status).rsplit(".", 1)[-1]


def is_transient_status(exc: InferenceServerException) -> bool:
    message = str(exc.message() or "").lower()
    if _REFUSED in message:  # a wrong key: Triton says UNAVAILABLE, but retrying cannot help
        return False
    if status_name(exc) in _TRANSIENT:
        return True
    return status_name(exc) == "" and ("failed to connect" in message or "socket closed" in message)


def is_unknown_model(exc: InferenceServerException) -> bool:
    """Whether Triton answered that it does not know the model (unloading it then is no failure)."""
    message = str(exc.message() or "").lower()
    return any(words in message for words in _UNKNOWN)


def translate(exc: BaseException, *, what: str, url: str, model: str = "") -> ShiftboardError:
    """The shiftboard error for a Triton failure while doing ``what`` (e.g. "infer", "load")."""
    if isinstance(exc, ShiftboardError):
        return exc
    if not isinstance(exc, InferenceServerException):
        return Internal(f"Triton at {url}: {what}: {type(exc).__name__}: {exc}")
    message = str(exc.message() or exc).strip()
    if _REFUSED in message.lower():
        return PermissionDenied(f"Triton at {url} refused the key ({what}): set {env_name('triton_api_key')} "
                                "to the key Triton was started with")
    if is_transient_status(exc):
        return Unavailable(f"Triton at {url} is unavailable ({what}): {message}")
    lowered = message.lower()
    not_served = status_name(exc) in {"NOT_FOUND", "UNAVAILABLE"} or any(s in lowered for s in _NOT_SERVED)
    if what == "load":
        return ModelFailed(f"Triton could not load model {model}: {message}" if model
                           else f"Triton could not load a model: {message}")
    if not_served:
        return Unavailable(f"model {model} is not served by Triton at {url} ({what}): {message}")
    if status_name(exc) in {"INTERNAL", "UNKNOWN", ""}:
        return ModelFailed(f"model {model} failed in Triton ({what}): {condense(message)}" if model
                           else f"Triton ({what}): {condense(message)}")
    return Internal(f"Triton at {url} refused to {what}: [{status_name(exc)}] {message}")


def condense(message: str, limit: int = 1500) -> str:
    """A model error for people: a TorchScript traceback's last line (the exception) first.

    ``Error: The following operation failed in the TorchScript interpreter. Traceback ...
    builtins.RuntimeError: input out of range`` becomes ``builtins.RuntimeError: input out of range
    (Error: The following operation failed in the TorchScript interpreter.)``. The model wrote
    these lines: each is cut to one short line of printable ASCII (:func:`shiftboard.sandbox.sanitize`).
    """
    lines = [sanitize(line) for line in message.strip().splitlines() if line.strip()]
    message = f"{lines[-1]} ({lines[0]})" if len(lines) > 1 else (lines[0] if lines else "")
    return message if len(message) <= limit else message[: limit - 3] + "..."


def close_quietly(client: Any) -> None:
    """Close a client, ignoring errors (teardown after a failure)."""
    try:
        client.close()
    except Exception:  # noqa: BLE001 - nothing useful to do with a close error
        log.debug("closing the Triton client failed", exc_info=True)
