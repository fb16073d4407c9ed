"""Small real artefacts for tests: TorchScript models, digits test sets, free ports."""

from __future__ import annotations

import pickle
import socket
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from sklearn.datasets import load_digits


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_ports(n: int, *, below: int = 55000) -> list[int]:
    """``n`` distinct free ports (below ``below`` so that SeaweedFS's +10000 gRPC ports stay valid)."""
    ports: set[int] = set()
    while len(ports) < n:
        p = free_port()
        if p < below and p + 10000 < 65535:
            ports.add(p)
    return sorted(ports)


class Linear(torch.nn.Module):
    def __init__(self, pixels: int, classes: int) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(pixels, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


class NaNModel(torch.nn.Module):
    def __init__(self, classes: int) -> None:
        super().__init__()
        self.classes = classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full((x.shape[0], self.classes), float("nan"))


def torchscript_model(path: Path, *, pixels: int = 64, classes: int = 10, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    torch.jit.script(Linear(pixels, classes)).save(str(path))
    return path


def nan_model(path: Path, classes: int = 10) -> Path:
    torch.jit.script(NaNModel(classes)).save(str(path))
    return path


def eager_pickle(path: Path) -> Path:
    """A model saved with torch.save: a pickle inside a zip, which must be refused."""
    torch.save(Linear(64, 10), str(path))
    return path


def plain_pickle(path: Path) -> Path:
    path.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    return path


def digits(n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits as uint8 images (0..16 scaled to 0..255) and labels."""
    data = load_digits()
    images = (data.images * (255.0 / 16.0)).round().astype(np.uint8)
    labels = data.target.astype(np.int64)
    return (images[:n], labels[:n]) if n else (images, labels)


def digits_npz(path: Path, n: int = 300) -> Path:
    images, labels = digits(n)
    np.savez(path, images=images, labels=labels)
    return path


def digits_folder(root: Path, n: int = 60) -> Path:
    images, labels = digits(n)
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        folder = root / f"class_{label}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image, mode="L").save(folder / f"{i:04d}.png")
    return root
