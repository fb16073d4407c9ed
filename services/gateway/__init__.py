"""The gateway: the gRPC API of shiftboard and the only owner of the catalog."""
