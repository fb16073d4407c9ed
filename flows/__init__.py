"""Prefect flows: evaluation of (model, test set) pairs through Triton.

Modules, from the domain outwards (nothing here is imported eagerly: Prefect and the Triton client
are heavy, and the scoring rules need neither):

* :mod:`~shiftboard.domain.scoring` -- logits -> top-1, top-5, confidence, correct (pure numpy);
* :mod:`~shiftboard.domain.compatibility` -- which models can run on which test sets;
* :mod:`~shiftboard.domain.shards` -- the shard format (one parser, zero-copy);
* :mod:`~shiftboard.adapters.triton.client` -- the Triton gRPC client and the translation of its errors;
* :mod:`~shiftboard.adapters.triton.deployer` -- model-repository entries, loading, LRU unloading, leases;
* :mod:`~shiftboard.flows.inference` -- shards from the object store -> Triton -> scores, overlapped;
* :mod:`~shiftboard.flows.evaluate` -- the flow ``evaluate(model, version, testsets)``;
* :mod:`~shiftboard.flows.sweep` -- the scheduled flow ``sweep`` (every missing or failed pair);
* :mod:`~shiftboard.flows.worker` -- ``serve_worker`` (Prefect runner, warm flow-run starts);
* :mod:`~shiftboard.adapters.prefect` -- submission of flow runs and the translation of Prefect's errors.
"""
