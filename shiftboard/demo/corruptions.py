"""Synthetic shifts in the manner of ImageNet-C (Hendrycks & Dietterich 2019), for 8×8 digits.

Each corruption maps float images in ``[0, 1]`` (``N×8×8``) to float images, at five severities of
increasing strength; randomness comes only from the generator passed in. The parameters were chosen
so that severity 1 costs a good digits model a few points and severity 5 leaves it well above
chance on most corruptions (the shape of ImageNet-C's curves), measured with the demo's zoo.

======== ============================================================== ==========================
name     what                                                           parameter by severity 1..5
======== ============================================================== ==========================
noise    additive gaussian noise, clipped to [0, 1]                     σ
blur     gaussian blur (zero outside the image)                         σ in pixels
contrast pull towards each image's mean: mean + c·(x − mean)            c
affine   rotation by ±θ about the centre (random sign), random scale   θ in degrees
         in [1 − s, 1 + s] and shear in [−s, s], s = θ / 200
dropout  each pixel set to 0 with probability p                          p
======== ============================================================== ==========================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

__all__ = ["CORRUPTIONS", "SEVERITIES", "Corruption", "corrupt"]

Images = NDArray[np.float64]
SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)


def _noise(x: Images, sigma: float, rng: np.random.Generator) -> Images:
    return np.clip(x + rng.normal(0.0, sigma, size=x.shape), 0.0, 1.0)


def _blur(x: Images, sigma: float, rng: np.random.Generator) -> Images:
    return np.stack([ndimage.gaussian_filter(im, sigma, mode="constant", truncate=3.0) for im in x])


def _contrast(x: Images, c: float, rng: np.random.Generator) -> Images:
    mean = x.mean(axis=(1, 2), keepdims=True)
    return np.clip(mean + c * (x - mean), 0.0, 1.0)


def _affine(x: Images, degrees: float, rng: np.random.Generator) -> Images:
    s = degrees / 200.0
    out = np.empty_like(x)
    centre = (np.array(x.shape[1:], dtype=np.float64) - 1.0) / 2.0
    for i, im in enumerate(x):
        theta = np.deg2rad(degrees) * rng.choice((-1.0, 1.0))
        scale = rng.uniform(1.0 - s, 1.0 + s)
        shear = rng.uniform(-s, s)
        c, n = np.cos(theta), np.sin(theta)
        # output (row, col) -> input (row, col): inverse of rotate ∘ shear ∘ scale about the centre
        forward = np.array([[c, -n], [n, c]]) @ np.array([[1.0, 0.0], [shear, 1.0]]) * scale
        inverse = np.linalg.inv(forward)
        offset = centre - inverse @ centre
        out[i] = ndimage.affine_transform(im, inverse, offset=offset, order=1, mode="constant", cval=0.0)
    return np.clip(out, 0.0, 1.0)


def _dropout(x: Images, p: float, rng: np.random.Generator) -> Images:
    return np.where(rng.random(x.shape) < p, 0.0, x)


@dataclass(frozen=True)
class Corruption:
    """A corruption: its name, what it does, and its parameter at severities 1..5."""

    name: str
    description: str
    parameter: str
    levels: tuple[float, float, float, float, float]
    apply: Callable[[Images, float, np.random.Generator], Images]

    def __call__(self, images: Images, severity: int, rng: np.random.Generator) -> Images:
        if severity not in SEVERITIES:
            raise ValueError(f"severity {severity} is not one of {SEVERITIES}")
        return self.apply(np.asarray(images, dtype=np.float64), self.levels[severity - 1], rng)


CORRUPTIONS: dict[str, Corruption] = {c.name: c for c in (
    Corruption("noise", "additive gaussian noise", "sigma", (0.15, 0.25, 0.4, 0.55, 0.7), _noise),
    Corruption("blur", "gaussian blur", "sigma (pixels)", (0.4, 0.55, 0.7, 0.85, 1.0), _blur),
    Corruption("contrast", "contrast reduced towards the image mean", "c", (0.6, 0.45, 0.35, 0.25, 0.15),
               _contrast),
    Corruption("affine", "rotation with random scale and shear", "degrees", (5.0, 10.0, 15.0, 22.0, 30.0),
               _affine),
    Corruption("dropout", "pixels set to zero at random", "p", (0.1, 0.2, 0.3, 0.4, 0.5), _dropout),
)}


def corrupt(images: Images, name: str, severity: int, rng: np.random.Generator) -> Images:
    """``images`` (floats in [0, 1]) under corruption ``name`` at ``severity`` (1..5)."""
    try:
        corruption = CORRUPTIONS[name]
    except KeyError:
        raise ValueError(f"unknown corruption {name!r}: use one of {', '.join(CORRUPTIONS)}") from None
    return corruption(images, severity, rng)
