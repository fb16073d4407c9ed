"""Regenerate the Python stubs next to the .proto files (``make protos``).

Run with the pinned ``grpcio-tools`` (see pyproject's dev extra): its gencode must not be newer
than the oldest protobuf runtime in use (tritonclient needs protobuf < 7).
"""

from __future__ import annotations

import sys
from pathlib import Path

from grpc_tools import protoc

HERE = Path(__file__).resolve().parent


def main() -> int:
    protos = sorted(str(p.relative_to(HERE)) for p in HERE.rglob("*.proto"))
    include = str(Path(protoc.__file__).parent / "_proto")
    args = ["protoc", f"-I{HERE}", f"-I{include}", f"--python_out={HERE}", f"--pyi_out={HERE}",
            f"--grpc_python_out={HERE}", *protos]
    code = protoc.main(args)
    if code != 0:
        print("protoc failed", file=sys.stderr)
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
