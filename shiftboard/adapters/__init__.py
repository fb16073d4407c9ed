"""Adapters: one package per system shiftboard talks to, each the one translation of that system's errors.

``s3`` (object storage), ``triton`` (model repository, inference client, deployment), ``duckdb``
(the gateway's catalog and per-sample predictions), ``prefect`` (flow-run submission).
"""
