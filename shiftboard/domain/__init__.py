"""The domain layer: shiftboard's rules, free of gRPC, protobuf, Triton, S3, Prefect and DuckDB.

* names and errors: ``names`` (user-chosen names), ``errors`` (the exceptions and their ``Code``);
* what enters the catalog: ``manifests`` (model and test-set manifests), ``compatibility`` (which
  models can run on which test sets), ``shards`` (the shard format), ``normalisation`` (uint8
  pixels to a model's input);
* predictions: ``scoring`` (logits to top-1, top-5, confidence, correctness), ``layout`` (their
  compact stored form);
* the robustness maths: ``baseline`` (the fit and effective robustness), ``table`` (a shift's
  per-model results), ``robustness`` (a shift's leaderboard), ``ranking`` (ranks and ties),
  ``groups`` (means over a group of shifts), ``resampling`` (shared resampling weights),
  ``bootstrap`` (intervals of the fit and of each model's ER), ``paired`` (McNemar's test,
  accuracy on a class subset) and ``stats`` (Clopper-Pearson intervals).

Everything here takes and returns plain Python and numpy values; the edges (the gateway, the
worker, the CLI, the app) translate to and from the wire (``shiftboard.wire``).
"""
