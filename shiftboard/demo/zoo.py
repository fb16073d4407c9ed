"""The demo's model zoo: small digit classifiers trained on this machine, saved as TorchScript.

Every model takes float tensors ``N×1×8×8`` with values in ``[0, 1]`` (the platform maps the stored
uint8 0..255 to that range: ``InputSpec(value_min=0, value_max=1)``, no mean/std) and returns
``N×10`` logits. Three categories, as in Taori et al. (2020):

* ``standard`` -- linear models, one-hidden-layer MLPs and small CNNs across widths, training-set
  sizes and epochs, trained on the digits training split. Their spread of quality is what the
  baseline fit of each shift is made from.
* ``robustness-intervention`` -- the same architectures trained with gaussian noise augmentation
  (each batch's pixels get ``N(0, σ²)`` added, then are clipped to [0, 1]).
* ``more-data`` -- trained on the digits training split plus printed digits drawn with fonts that
  are disjoint from the test fonts (:attr:`Testbed.extra_train_images`).

Training is deterministic for a seed: each model has its own seed derived from the zoo's seed and
its name; torch runs single-threaded (tiny models train fastest that way; it also fixes the order of
floating-point reductions) and the global RNG and thread count are restored afterwards.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from shiftboard.demo.testbed import Testbed

__all__ = [
    "INPUT_SHAPE", "NUM_CLASSES", "VALUE_RANGE", "ModelSpec", "ZooModel", "build_model", "load_zoo",
    "train_model", "train_zoo", "zoo_specs",
]

log = logging.getLogger(__name__)

Category = Literal["standard", "robustness-intervention", "more-data"]
Arch = Literal["linear", "mlp", "cnn"]
ProgressCallback = Callable[[int, int, "ZooModel"], None]

#: What every zoo model takes and returns: register it with InputSpec(channels=1, height=8, width=8,
#: value_min=0, value_max=1), no mean/std, and num_classes=10.
INPUT_SHAPE: tuple[int, int, int] = (1, 8, 8)
VALUE_RANGE: tuple[float, float] = (0.0, 1.0)
NUM_CLASSES = 10
BATCH = 64
MANIFEST = "zoo.json"


@dataclass(frozen=True)
class ModelSpec:
    """How one zoo model is built and trained."""

    name: str
    category: Category
    arch: Arch
    width: int            # hidden units (mlp) or first-layer channels (cnn); 0 for linear
    train_size: int       # digits training images used (0: all)
    epochs: int
    lr: float = 3e-3
    noise_sigma: float = 0.0   # gaussian noise augmentation, on the [0, 1] scale
    extra_size: int = 0        # printed digits from the disjoint fonts added (-1: all)

    @property
    def tags(self) -> tuple[str, ...]:
        tags = [f"arch-{self.arch}", f"epochs-{self.epochs}",
                f"train-{'all' if self.train_size == 0 else self.train_size}"]
        if self.width:
            tags.append(f"width-{self.width}")
        if self.noise_sigma:
            tags.append(f"noise-{self.noise_sigma:g}")
        if self.extra_size:
            tags.append(f"extra-{'all' if self.extra_size < 0 else self.extra_size}")
        return tuple(tags)

    def describe(self, n_train: int, n_extra: int) -> str:
        arch = {"linear": "linear (softmax regression)", "mlp": f"MLP, {self.width} hidden units",
                "cnn": f"CNN, {self.width}/{2 * self.width} channels"}[self.arch]
        text = f"{arch}; {n_train} digits training images, {self.epochs} epochs"
        if self.noise_sigma:
            text += f"; gaussian noise augmentation sigma={self.noise_sigma:g}"
        if n_extra:
            text += f"; plus {n_extra} printed digits from fonts disjoint from the test fonts"
        return text


@dataclass(frozen=True)
class ZooModel:
    """A trained, saved model and what to register it as."""

    name: str
    category: Category
    path: Path
    description: str
    tags: tuple[str, ...]
    spec: ModelSpec


def build_model(arch: Arch, width: int) -> nn.Module:
    """An untrained model of the zoo: ``N×1×8×8`` floats in → ``N×10`` logits out."""
    if arch == "linear":
        return nn.Sequential(nn.Flatten(), nn.Linear(64, NUM_CLASSES))
    if arch == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(64, width), nn.ReLU(), nn.Linear(width, NUM_CLASSES))
    if arch == "cnn":
        return nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(2 * width * 4, NUM_CLASSES),
        )
    raise ValueError(f"unknown architecture {arch!r}")


def _spec(category: Category, arch: Arch, width: int, train_size: int, epochs: int, *,
          noise: float = 0.0, extra: int = 0) -> ModelSpec:
    """A spec named after what it is, e.g. ``mlp64-n500-e10``, ``cnn8-noise0.3-e12``,
    ``mlp256-extra300-e20``."""
    base = "linear" if arch == "linear" else f"{arch}{width}"
    if noise:
        detail = f"noise{noise:g}"
    elif extra:
        detail = "extraall" if extra < 0 else f"extra{extra}"
    else:
        detail = "all" if train_size == 0 else f"n{train_size}"
    return ModelSpec(f"{base}-{detail}-e{epochs}", category, arch, width, train_size, epochs,
                     lr=1e-2 if arch == "linear" else 3e-3, noise_sigma=noise, extra_size=extra)


def zoo_specs(*, small: bool = False) -> list[ModelSpec]:
    """The zoo's models, in training order (standard first).

    Full: 21 standard, 6 noise-augmented, 7 more-data. The standard models' reference accuracies
    span roughly 0.4 to 0.97 (short training on few images at the low end), which the baseline fits
    need; the noise levels (σ = 0.3, 0.6) and amounts of extra data (30 to 300 printed digits) give
    each intervention a dose. Small: 4 standard, 1 of each intervention.
    """
    if small:
        return [
            _spec("standard", "linear", 0, 300, 10),
            _spec("standard", "mlp", 32, 600, 10),
            _spec("standard", "mlp", 64, 0, 15),
            _spec("standard", "cnn", 4, 0, 10),
            _spec("robustness-intervention", "mlp", 64, 0, 15, noise=0.6),
            _spec("more-data", "mlp", 64, 0, 15, extra=-1),
        ]
    specs: list[ModelSpec] = []
    # standard: quality spread by capacity, training-set size and training length
    for n, e in ((100, 15), (300, 10), (0, 20), (0, 3)):
        specs.append(_spec("standard", "linear", 0, n, e))
    for w in (16, 64, 256):
        for n, e in ((150, 10), (500, 10), (0, 20)):
            specs.append(_spec("standard", "mlp", w, n, e))
    specs.append(_spec("standard", "mlp", 64, 0, 2))
    for c in (4, 8, 16):
        for n, e in ((200, 10), (0, 12)):
            specs.append(_spec("standard", "cnn", c, n, e))
    specs.append(_spec("standard", "cnn", 8, 0, 3))
    # robustness intervention: gaussian noise augmentation
    noisy: tuple[tuple[Arch, int, int], ...] = (("mlp", 64, 20), ("mlp", 256, 20), ("cnn", 8, 12))
    for arch, w, e in noisy:
        for sigma in (0.3, 0.6):
            specs.append(_spec("robustness-intervention", arch, w, 0, e, noise=sigma))
    # more data: digits plus printed digits from the disjoint fonts, in growing amounts
    more: tuple[tuple[Arch, int, int, tuple[int, ...]], ...] = (
        ("linear", 0, 20, (100,)), ("mlp", 64, 20, (30, 100, 300)), ("mlp", 256, 20, (300,)),
        ("cnn", 8, 12, (30, 300)))
    for arch, w, e, extras in more:
        for extra in extras:
            specs.append(_spec("more-data", arch, w, 0, e, extra=extra))
    return specs


def _seed_of(seed: int, name: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{name}".encode()).digest()[:4], "little")


def _subset(labels: NDArray[np.int64], size: int, rng: np.random.Generator) -> NDArray[np.intp]:
    """A class-balanced random subset of ``size`` indices (all of them when size is 0 or too big)."""
    if size <= 0 or size >= len(labels):
        return np.arange(len(labels))
    order = rng.permutation(len(labels))
    # round-robin over classes in a random order keeps the subset balanced
    by_class = [order[labels[order] == c] for c in range(NUM_CLASSES)]
    picked: list[int] = []
    i = 0
    while len(picked) < size:
        for idx in by_class:
            if i < len(idx) and len(picked) < size:
                picked.append(int(idx[i]))
        i += 1
    return np.sort(np.asarray(picked))


def train_model(spec: ModelSpec, images: NDArray[np.uint8], labels: NDArray[np.int64], *,
                seed: int) -> nn.Module:
    """Train ``spec`` on ``images`` (uint8 0..255, ``N×8×8``) in eval mode at the end."""
    x_all = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    y_all = torch.from_numpy(labels.astype(np.int64))
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # parameter initialisation draws from the global generator
    model = build_model(spec.arch, spec.width)
    opt = torch.optim.Adam(model.parameters(), lr=spec.lr)
    model.train()
    n = len(y_all)
    for _ in range(spec.epochs):
        perm = torch.randperm(n, generator=gen)
        for start in range(0, n, BATCH):
            idx = perm[start:start + BATCH]
            x, y = x_all[idx], y_all[idx]
            if spec.noise_sigma:
                x = (x + spec.noise_sigma * torch.randn(x.shape, generator=gen)).clamp_(0.0, 1.0)
            opt.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    return model.eval()


def train_zoo(testbed: Testbed, out_dir: Path, *, small: bool = False, seed: int = 0,
              on_progress: ProgressCallback | None = None,
              specs: Sequence[ModelSpec] | None = None) -> list[ZooModel]:
    """Train every model of :func:`zoo_specs` (or ``specs``), save each as ``out_dir/<name>.pt``.

    ``on_progress(done, total, model)`` is called after each model is saved.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    specs = list(zoo_specs(small=small) if specs is None else specs)
    threads = torch.get_num_threads()
    zoo: list[ZooModel] = []
    try:
        torch.set_num_threads(1)
        with torch.random.fork_rng(devices=[]):
            for i, spec in enumerate(specs):
                started = time.perf_counter()
                model_seed = _seed_of(seed, spec.name)
                rng = np.random.default_rng(model_seed)
                pick = _subset(testbed.train_labels, spec.train_size, rng)
                x, y = testbed.train_images[pick], testbed.train_labels[pick]
                n_extra = 0
                if spec.extra_size:
                    extra = _subset(testbed.extra_train_labels, spec.extra_size, rng)
                    n_extra = len(extra)
                    x = np.concatenate([x, testbed.extra_train_images[extra]])
                    y = np.concatenate([y, testbed.extra_train_labels[extra]])
                model = train_model(spec, x, y, seed=model_seed)
                path = out_dir / f"{spec.name}.pt"
                scripted = torch.jit.script(model)
                tmp = path.with_name(path.name + ".tmp")
                scripted.save(str(tmp))
                tmp.replace(path)
                zm = ZooModel(spec.name, spec.category, path, spec.describe(len(pick), n_extra), spec.tags,
                              spec)
                zoo.append(zm)
                log.info("trained %s (%s) in %.1f s", spec.name, spec.category, time.perf_counter() - started)
                if on_progress is not None:
                    on_progress(i + 1, len(specs), zm)
    finally:
        torch.set_num_threads(threads)
    doc = {"seed": seed, "models": [{**asdict(m), "path": m.path.name} for m in zoo]}
    (out_dir / MANIFEST).write_text(json.dumps(doc, indent=2) + "\n")
    return zoo


def load_zoo(out_dir: Path) -> list[ZooModel]:
    """The zoo that :func:`train_zoo` saved into ``out_dir`` (its ``zoo.json`` is written last, so a
    zoo whose training was interrupted is not found). Raises :class:`FileNotFoundError`."""
    out_dir = Path(out_dir)
    doc = json.loads((out_dir / MANIFEST).read_text())
    zoo = []
    for m in doc["models"]:
        path = out_dir / m["path"]
        if not path.is_file():
            raise FileNotFoundError(path)
        spec = ModelSpec(**m["spec"])
        zoo.append(ZooModel(m["name"], m["category"], path, m["description"], tuple(m["tags"]), spec))
    return zoo
