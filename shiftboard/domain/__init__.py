"""The domain layer: shiftboard's rules, free of gRPC, protobuf, Triton, S3, Prefect and DuckDB.

Names and errors (``names``, ``errors``), the shard format (``shards``), the predictions' stored
layout (``layout``), scoring (``scoring``), and the robustness maths: baselines (``baseline``),
effective robustness and its leaderboards (``robustness``, ``groups``), the paired bootstrap
(``bootstrap``), paired tests (``paired``) and intervals (``stats``). Everything here takes and
returns plain Python and numpy values; the edges (the gateway, the worker, the CLI, the app)
translate to and from the wire.
"""
