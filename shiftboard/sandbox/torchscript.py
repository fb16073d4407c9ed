"""Refuse TorchScript operators that reach files, the network or the process (defence in depth).

The operating-system sandbox is what holds; this check turns the obvious attempts into a clear
error at submission. :func:`forbidden_operators` walks every method graph of a loaded module and of
its submodules (``__setstate__`` included), with called functions and methods inlined, and returns
the refused operators it finds. Run it inside the sandboxed probe: loading already runs ``__setstate__``.
"""

from __future__ import annotations

from typing import Any

# Operators refused by name, each with the reason shown to the submitter.
DENIED_OPERATORS: dict[str, str] = {
    "aten::from_file": "reads and maps files on the server",  # torch.from_file(path, shared, size)
    "aten::save": "writes files on the server",  # torch.save inside TorchScript
    "debugprims::load_tensor": "reads tensors from files on the server",
    "prim::rpc_async": "talks to other processes over the network",  # torch.distributed.rpc
    "prim::rpc_sync": "talks to other processes over the network",
    "prim::rpc_remote": "talks to other processes over the network",
}
# Operator namespaces a classifier may use; any other (c10d, symm_mem, custom ops from libraries
# loaded with torch.ops.load_library, ...) is refused.
ALLOWED_NAMESPACES = frozenset({"aten", "prim", "prims", "quantized", "_quantized", "mkldnn",
                                "mkldnn_prepacked", "mkl", "sparse", "profiler"})
NAMESPACE_REASON = "is not a built-in tensor operator (it may reach the network, other processes or files)"


def _nodes(block: Any) -> Any:
    for node in block.nodes():
        yield node
        for sub in node.blocks():
            yield from _nodes(sub)


def forbidden_operators(module: Any) -> dict[str, str]:
    """Refused operator -> reason, over every method of ``module`` and its submodules."""
    import torch

    found: dict[str, str] = {}
    for _, sub in module.named_modules():
        c = getattr(sub, "_c", None)
        if c is None:
            continue
        for method_name in c._method_names():
            graph = c._get_method(method_name).graph.copy()
            torch._C._jit_pass_inline(graph)
            for node in _nodes(graph):
                kind = node.kind()
                namespace = kind.split("::", 1)[0]
                if kind in DENIED_OPERATORS:
                    found[kind] = DENIED_OPERATORS[kind]
                elif namespace not in ALLOWED_NAMESPACES:
                    found[kind] = NAMESPACE_REASON
    return found


def refusal(found: dict[str, str]) -> str:
    """The submitter's error for the operators :func:`forbidden_operators` found."""
    parts = [f"{kind}, which {reason}" for kind, reason in sorted(found.items())]
    return "the model uses " + "; and ".join(parts) + ": shiftboard refuses it"
