"""The gateway's edge: one server interceptor for every RPC of ``shiftboard.v1.Shiftboard``.

:data:`POLICIES` holds, per method, whether it changes state, which roles may call it, and whether it
takes a stream slot. For each call the interceptor, before the handler runs:

* authenticates and authorises: a mutating call (or any call while reads are closed) needs a token
  whose role is in the policy's roles (:mod:`~shiftboard.services.gateway.auth`); an open read
  identifies a valid token when one is sent and otherwise proceeds anonymously;
* makes the caller available to the handler through :func:`current_caller` (a context variable set
  in the handler's thread; for a server stream, inside the generator that wraps it);
* for a server stream, takes one of the gateway's bounded stream slots
  (:mod:`~shiftboard.services.gateway.limits`), released when the stream ends however it ends.

It is also the one place where errors meet gRPC: a
:class:`~shiftboard.domain.errors.ShiftboardError` becomes its status
(:func:`shiftboard.wire.status.grpc_code`) and message; anything else is logged with its traceback
and becomes INTERNAL with a generic message. Handlers keep gRPC's ``(self, request, context)``
signature. Calls of other services (health, reflection) pass through untouched.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import grpc

from shiftboard.adapters.duckdb.catalog import Token
from shiftboard.domain.errors import Internal, ShiftboardError
from shiftboard.services.gateway.auth import ADMINS, ANY_ROLE, EVALUATORS, SUBMITTERS, Authenticator
from shiftboard.services.gateway.limits import StreamLimiter, peer_host
from shiftboard.v1 import shiftboard_pb2 as pb
from shiftboard.wire.status import grpc_code

log = logging.getLogger(__name__)

SERVICE = pb.DESCRIPTOR.services_by_name["Shiftboard"]


@dataclass(frozen=True)
class Policy:
    """Who may call a method, and what it holds while it runs."""

    mutating: bool
    roles: frozenset[str] = ANY_ROLE
    #: A server stream holds a thread for as long as the client keeps it open: it takes a slot.
    #: (A client stream takes none: its caller sends and is done, it holds no thread waiting on others.)
    stream_slot: bool = False


READ = Policy(mutating=False)
READ_STREAM = Policy(mutating=False, stream_slot=True)

#: Every method of the service, by name (a test checks that the service has no method without one).
POLICIES: dict[str, Policy] = {
    # models
    "SubmitModel": Policy(mutating=True, roles=SUBMITTERS),
    "GetModel": READ,
    "ListModels": READ,
    "DeleteModel": Policy(mutating=True, roles=SUBMITTERS),
    # test sets
    "CreateTestSetUpload": Policy(mutating=True, roles=SUBMITTERS),
    "RegisterTestSet": Policy(mutating=True, roles=SUBMITTERS),
    "AbortTestSetUpload": Policy(mutating=True, roles=SUBMITTERS),
    "DeleteTestSet": Policy(mutating=True, roles=SUBMITTERS),
    "GetSamples": READ,
    "GetTestSet": READ,
    "ListTestSets": READ,
    # evaluations: submitters ask for their pairs, the worker's sweep (an evaluator) for the missing ones
    "ListEvaluations": READ,
    "WatchEvaluations": READ_STREAM,
    "RequestEvaluations": Policy(mutating=True, roles=ANY_ROLE),
    "StartEvaluation": Policy(mutating=True, roles=EVALUATORS),
    "CommitShard": Policy(mutating=True, roles=EVALUATORS),
    "CommitShards": Policy(mutating=True, roles=EVALUATORS),
    "FinishEvaluation": Policy(mutating=True, roles=EVALUATORS),
    "GetPredictions": READ_STREAM,
    "GetAccuracy": READ,
    # leaderboard
    "GetLeaderboard": READ,
    "CompareModels": READ,
    "GetOverview": READ_STREAM,
    # per-sample analyses: calibration, error consistency
    "GetCalibration": READ,
    "GetConsistency": READ,
    "GetConsistencyMatrix": READ,
    # imported results
    "ImportResults": Policy(mutating=True, roles=SUBMITTERS),
    "ListImportedSources": READ,
    # tokens, server info
    "CreateToken": Policy(mutating=True, roles=ADMINS),
    "ListTokens": Policy(mutating=True, roles=ADMINS),
    "RevokeToken": Policy(mutating=True, roles=ADMINS),
    "GetServerInfo": READ,
}

_CALLER: contextvars.ContextVar[Token | None] = contextvars.ContextVar("shiftboard_caller", default=None)


def current_caller() -> Token | None:
    """The caller's token in an RPC handler; None for an anonymous open read."""
    return _CALLER.get()


def required_caller() -> Token:
    """The caller's token in the handler of a method whose policy needs one."""
    caller = _CALLER.get()
    if caller is None:
        raise Internal("this call has no authenticated caller")
    return caller


def check_policies(policies: dict[str, Policy] = POLICIES) -> None:
    """Every method of the service has a policy, a stream slot exactly when it streams to the caller,
    and no policy names a method the service lacks (checked when the gateway starts)."""
    methods = {m.name: m for m in SERVICE.methods}
    missing = sorted(set(methods) - set(policies))
    extra = sorted(set(policies) - set(methods))
    if missing or extra:
        raise RuntimeError(f"the gateway's policy table does not match {SERVICE.full_name}: "
                           f"no policy for {missing}, policies for unknown methods {extra}")
    wrong = sorted(name for name, m in methods.items() if policies[name].stream_slot != m.server_streaming)
    if wrong:
        raise RuntimeError(f"stream_slot must be set exactly for the server-streaming methods: {wrong}")


def _set_caller(token: Token | None) -> contextvars.Token[Token | None]:
    return _CALLER.set(token)


def _reset_caller(reset: contextvars.Token[Token | None]) -> None:
    # ValueError: a stream's generator closed from another thread, whose caller is not this call's.
    with contextlib.suppress(ValueError):
        _CALLER.reset(reset)


class GatewayInterceptor(grpc.ServerInterceptor):
    """Authorisation, caller, stream slots, status translation and logging for the service's methods."""

    def __init__(self, auth: Authenticator, streams: StreamLimiter, *, open_reads: bool,
                 policies: dict[str, Policy] = POLICIES) -> None:
        check_policies(policies)
        self.auth = auth
        self.streams = streams
        self.open_reads = open_reads
        self.policies = policies
        self._prefix = f"/{SERVICE.full_name}/"

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        handler = continuation(details)
        method: str = details.method
        if handler is None or not method.startswith(self._prefix):
            return handler
        name = method[len(self._prefix):]
        policy = self.policies[name]  # check_policies: every method of the service has one
        if handler.request_streaming and handler.response_streaming:
            raise RuntimeError(f"{name}: bidirectional streams have no policy handling")
        if handler.response_streaming:
            return grpc.unary_stream_rpc_method_handler(
                self._streaming(name, policy, handler.unary_stream),
                request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer)
        if handler.request_streaming:
            behaviour, make = handler.stream_unary, grpc.stream_unary_rpc_method_handler
        else:
            behaviour, make = handler.unary_unary, grpc.unary_unary_rpc_method_handler
        return make(self._unary(name, policy, behaviour), request_deserializer=handler.request_deserializer,
                    response_serializer=handler.response_serializer)

    def authorize(self, context: grpc.ServicerContext, policy: Policy, call: str) -> Token | None:
        """The caller's token with a role in the policy's; for an open read, the valid token if any, else None."""
        metadata = context.invocation_metadata() or ()
        if not policy.mutating and policy.roles == ANY_ROLE and self.open_reads:
            return self.auth.identify(metadata)
        return self.auth.authenticate(metadata, roles=policy.roles, call=call)

    def _unary(self, name: str, policy: Policy, behaviour: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        """Unary and client-streaming methods alike: for a client stream ``request`` is the iterator of the
        caller's messages, and the caller is authorised before the first one is read."""

        def handle(request: Any, context: grpc.ServicerContext) -> Any:
            with _translated(name, context):
                reset = _set_caller(self.authorize(context, policy, name))
                try:
                    return behaviour(request, context)
                finally:
                    _reset_caller(reset)

        return handle

    def _streaming(self, name: str, policy: Policy,
                   behaviour: Callable[[Any, Any], Iterator[Any]]) -> Callable[[Any, Any], Iterator[Any]]:
        """Server streams: a stream slot per call (RESOURCE_EXHAUSTED when the caller's or the gateway's are
        all taken), and errors raised while streaming are translated too."""

        def handle(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            with _translated(name, context):
                caller = self.authorize(context, policy, name)
                release: Callable[[], None] = _no_release
                if policy.stream_slot:
                    who = f"token {caller.name!r}" if caller is not None else f"anonymous {peer_host(context.peer())}"
                    release = self.streams.acquire(who, name)
                    context.add_callback(release)  # the RPC ended (also when the client went away)
                reset = _set_caller(caller)
                try:
                    yield from behaviour(request, context)
                finally:
                    release()
                    _reset_caller(reset)

        return handle


def _no_release() -> None:
    return None


@contextmanager
def _translated(name: str, context: grpc.ServicerContext) -> Iterator[None]:
    """A ShiftboardError becomes its status; anything else INTERNAL, its traceback logged here."""
    try:
        yield
    except ShiftboardError as exc:
        log.info("%s refused: %s: %s", name, exc.code.name, exc.message)
        context.abort(grpc_code(exc.code), exc.message)
    except Exception:
        log.exception("unexpected error in %s", name)
        context.abort(grpc.StatusCode.INTERNAL, f"internal error in the gateway during {name}; see the gateway log")
