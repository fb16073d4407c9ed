"""Generated gRPC/protobuf stubs of the shiftboard.v1 API (regenerate with `make protos`; never edit)."""
