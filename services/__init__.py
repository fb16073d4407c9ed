"""Long-running processes: the gateway (the only writer of the catalog), the embedded stack
supervisor, and the adapters for object storage and Triton."""
