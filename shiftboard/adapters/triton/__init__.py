"""Triton: the model-repository entries (``repository``, with the Python-backend ``python_model`` each
entry runs), the inference client and its error translation (``client``), loading/unloading models
with leases (``deployer``, bookkeeping in ``leases``), and the embedded server (``server``)."""
