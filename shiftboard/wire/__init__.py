"""The wire: the one translation between the protobuf contract ``shiftboard.v1`` and the domain.

Shared by both ends of the gRPC API, the gateway and its clients (CLI, worker, app):
``status`` (application error codes <-> gRPC statuses), ``vocab`` (enum values <-> words),
``manifests`` (model and test-set messages <-> the domain's manifests), ``commits`` (the
CommitShards codec: per-sample predictions <-> packed parts), ``views`` (messages -> table rows).
"""
