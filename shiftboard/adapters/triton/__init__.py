"""Triton: the model-repository entries (``repository``), the inference client and its error
translation (``client``), and loading/unloading models with leases (``deployer``)."""
