"""Write a native-backend (libtorch, GPU) Triton entry for a submitted shiftboard model.

Triton's PyTorch backend hands the request tensor to the TorchScript module unchanged: no Python
runs between the wire and the model, so the uint8 -> float mapping that the Python-backend
``model.py`` does must live inside the module. This script wraps the submitted TorchScript module
in one that takes uint8 images and applies the model's input spec first::

    x = (low + u8 / 255 * (high - low) - mean) / std      (per channel; = u8 * scale + shift)

scripts the wrapper, and writes ``<repository>/<name>/1/model.pt`` and ``config.pbtxt``, Triton's
``ModelConfig`` built by the worker's own builder
(:func:`shiftboard.adapters.triton.repository.classifier_config`) with ``platform:
"pytorch_libtorch"`` and GPU instances. Run it with the project's environment::

    .venv/bin/python deploy/triton/pytorch_libtorch/make_entry.py model.pt --name resnet18-v1 \\
        --input-shape 3,224,224 --num-classes 1000 --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225 \\
        --repository /path/to/models

then ``load_model("resnet18-v1")`` on a Triton started with ``--model-control-mode=explicit``. The
flags mean what they mean for ``shiftboard model submit``. The wrapped module is saved with the
torch of this environment: the Triton release's libtorch must be that version or newer.
"""


import argparse
import json
import os
import sys
from pathlib import Path

import torch
from torch import Tensor

from shiftboard.adapters.triton.repository import (
    INPUT_NAME,
    MODEL_FILE,
    OUTPUT_NAME,
    classifier_config,
    config_text,
)
from shiftboard.domain.errors import ShiftboardError
from shiftboard.domain.manifests import InputSpec
from shiftboard.domain.normalisation import input_affine


class Uint8Input(torch.nn.Module):
    """``images`` uint8 [N, C, H, W] -> the wrapped module's FP32 logits [N, num_classes]."""

    # Buffers, declared for type checkers. TorchScript must resolve these annotations itself, which
    # is why this module does not use `from __future__ import annotations`.
    scale: Tensor
    shift: Tensor

    def __init__(self, inner: torch.nn.Module, scale: torch.Tensor, shift: torch.Tensor) -> None:
        super().__init__()
        self.inner = inner
        # Buffers travel with the module: Triton loads it onto the instance's GPU, these included.
        self.register_buffer("scale", scale)
        self.register_buffer("shift", shift)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.to(torch.float32) * self.scale + self.shift
        return self.inner(x).to(torch.float32).reshape(images.shape[0], -1)


def wrap_uint8(inner: torch.nn.Module, spec: InputSpec) -> torch.jit.ScriptModule:
    """The scripted wrapper: uint8 input normalised exactly as the Python-backend model.py does
    (:func:`~shiftboard.domain.normalisation.input_affine`, which checks the spec first)."""
    scale, shift = input_affine(spec)
    return torch.jit.script(Uint8Input(inner.eval(), torch.tensor(scale).view(1, -1, 1, 1),
                                       torch.tensor(shift).view(1, -1, 1, 1)))


def render_config(model_name: str, *, input_shape: tuple[int, int, int], num_classes: int,
                  max_batch_size: int = 256, instances: int = 1, max_queue_delay_us: int = 2000) -> str:
    """``config.pbtxt`` of a libtorch entry: the flow's tensor contract ("images" in, "logits" out).

    Neither name follows the backend's ``<name>__<index>`` convention, so the backend maps them by
    position ("images" may also be the name of ``forward()``'s argument); one input and one output
    make that unambiguous. ``instances`` per visible GPU (count > 1 overlaps copies and compute);
    ``INFERENCE_MODE`` spares the autograd bookkeeping, as ``torch.inference_mode`` does in the
    Python-backend model.
    """
    config = classifier_config(model_name, input_shape=input_shape, num_classes=num_classes,
                               max_batch_size=max_batch_size, instances=instances,
                               max_queue_delay_us=max_queue_delay_us, backend="", platform="pytorch_libtorch",
                               gpu=True, parameters={"INFERENCE_MODE": "true"})
    return config_text(config)


def write_entry(repository: Path, model_name: str, module: torch.jit.ScriptModule, config: str) -> Path:
    entry = repository / model_name
    (entry / "1").mkdir(parents=True, exist_ok=True)
    tmp = entry / "1" / (MODEL_FILE + ".tmp")
    module.save(str(tmp))
    os.replace(tmp, entry / "1" / MODEL_FILE)
    (entry / "config.pbtxt").write_text(config)
    return entry


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()] if text else []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make_entry.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="the submitted TorchScript file (float input)")
    parser.add_argument("--name", required=True, help="Triton model name")
    parser.add_argument("--input-shape", required=True, help="C,H,W")
    parser.add_argument("--num-classes", type=int, required=True)
    parser.add_argument("--value-range", default="0,1",
                        help="LOW,HIGH the model expects before mean/std (negative: --value-range=-1,1)")
    parser.add_argument("--mean", default="", help="one value, or one per channel")
    parser.add_argument("--std", default="", help="one value, or one per channel")
    parser.add_argument("--max-batch-size", type=int, default=256)
    parser.add_argument("--instances", type=int, default=1, help="instances per GPU")
    parser.add_argument("--repository", type=Path, required=True, help="Triton model repository")
    args = parser.parse_args(argv)
    try:
        c, h, w = (int(v) for v in args.input_shape.split(","))
        low, high = _floats(args.value_range)
        spec = InputSpec(channels=c, height=h, width=w, value_min=low, value_max=high,
                         mean=tuple(_floats(args.mean)), std=tuple(_floats(args.std)))
        inner = torch.jit.load(str(args.model), map_location="cpu")
        module = wrap_uint8(inner, spec)
        with torch.inference_mode():  # one probe batch: the output must be [N, num_classes]
            out = module(torch.zeros((2, c, h, w), dtype=torch.uint8))
        if tuple(out.shape) != (2, args.num_classes):
            raise ValueError(f"the model returned {tuple(out.shape)} for 2 images, "
                             f"expected (2, {args.num_classes})")
        config = render_config(args.name, input_shape=(c, h, w), num_classes=args.num_classes,
                               max_batch_size=args.max_batch_size, instances=args.instances)
        entry = write_entry(args.repository, args.name, module, config)
    except (ShiftboardError, ValueError, RuntimeError, OSError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"entry": str(entry), "input": INPUT_NAME, "output": OUTPUT_NAME}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
