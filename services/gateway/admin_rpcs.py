"""The token RPCs (admins only) and the server's information.

A token is returned once, at creation; the catalog keeps its keyed hash
(:class:`~shiftboard.services.gateway.auth.Authenticator`).
"""

from __future__ import annotations

import datetime as dt
import logging

import grpc

from shiftboard import __version__
from shiftboard.adapters.duckdb.catalog import Catalog
from shiftboard.domain.errors import AlreadyExists, FailedPrecondition, InvalidArgument
from shiftboard.domain.names import validate_name
from shiftboard.services.gateway.auth import ADMIN, EVALUATOR, SUBMITTER, Authenticator, new_token
from shiftboard.services.gateway.interceptor import required_caller
from shiftboard.settings import Settings
from shiftboard.v1 import shiftboard_pb2 as pb

log = logging.getLogger(__name__)

#: The gateway's own tokens, registered again at every start: never revoked through the API.
OWN_TOKENS = {"admin": ADMIN, "evaluator": EVALUATOR}
ROLE_OF_VALUE = {pb.TOKEN_ROLE_ADMIN: ADMIN, pb.TOKEN_ROLE_SUBMITTER: SUBMITTER,
                 pb.TOKEN_ROLE_EVALUATOR: EVALUATOR}
VALUE_OF_ROLE = {v: k for k, v in ROLE_OF_VALUE.items()}


class TokenRpcs:
    """CreateToken, ListTokens, RevokeToken."""

    def __init__(self, auth: Authenticator, catalog: Catalog) -> None:
        self.auth = auth
        self.catalog = catalog

    def CreateToken(self, request: pb.CreateTokenRequest, context: grpc.ServicerContext) -> pb.CreateTokenResponse:
        """A new token with a role (submitter by default), returned once; the catalog keeps its keyed hash."""
        caller = required_caller()
        validate_name(request.name, "token name")
        if request.role not in ROLE_OF_VALUE and request.role != pb.TOKEN_ROLE_UNSPECIFIED:
            raise InvalidArgument(f"unknown token role {request.role}: use admin, submitter or evaluator")
        role = ROLE_OF_VALUE.get(request.role, SUBMITTER)
        if request.admin:
            if request.role not in (pb.TOKEN_ROLE_UNSPECIFIED, pb.TOKEN_ROLE_ADMIN):
                raise InvalidArgument(f"admin=true contradicts role {role}: give one of them")
            role = ADMIN
        if request.name in OWN_TOKENS:
            raise AlreadyExists(f"{request.name!r} is the gateway's own token: choose another name")
        token = new_token()
        self.auth.register(request.name, token, role=role, created_by=caller.name)
        log.info("token %s created by %s (role %s)", request.name, caller.name, role)
        return pb.CreateTokenResponse(name=request.name, token=token, role=VALUE_OF_ROLE[role])

    def ListTokens(self, request: pb.ListTokensRequest, context: grpc.ServicerContext) -> pb.ListTokensResponse:
        """Every token's name, role and creation; never a hash."""
        out = pb.ListTokensResponse()
        for row in self.catalog.list_tokens():
            info = out.tokens.add(name=row.name, role=VALUE_OF_ROLE.get(row.role, pb.TOKEN_ROLE_UNSPECIFIED),
                                  created_by=row.created_by)
            info.created_at.FromDatetime(row.created_at.astimezone(dt.UTC).replace(tzinfo=None))
        return out

    def RevokeToken(self, request: pb.RevokeTokenRequest, context: grpc.ServicerContext) -> pb.RevokeTokenResponse:
        """Delete a token: it is refused (UNAUTHENTICATED) from the next call on."""
        caller = required_caller()
        validate_name(request.name, "token name")
        if request.name in OWN_TOKENS:
            raise FailedPrecondition(
                f"{request.name!r} is the gateway's own token and is registered again at every start: to "
                f"replace it, change SHIFTBOARD_{request.name.upper()}_TOKEN (or delete "
                f"<state>/secrets/{request.name}-token) and restart the gateway")
        self.catalog.delete_token(request.name)
        log.info("token %s revoked by %s", request.name, caller.name)
        return pb.RevokeTokenResponse()


class ServerInfoRpcs:
    """GetServerInfo."""

    def __init__(self, settings: Settings, catalog: Catalog) -> None:
        self.settings = settings
        self.catalog = catalog

    def GetServerInfo(self, request: pb.GetServerInfoRequest, context: grpc.ServicerContext) -> pb.ServerInfo:
        """Versions and the addresses of the platform's parts."""
        s = self.settings
        return pb.ServerInfo(version=__version__, bucket=s.s3_bucket, s3_endpoint=s.s3_public_target,
                             triton_url=s.triton_target, prefect_api_url=s.prefect_api,
                             leaderboard_url=s.leaderboard_url, open_reads=s.open_reads,
                             catalog_schema_version=self.catalog.schema_version)
