"""Input normalisation: how a model's uint8 images become the floats it was trained on.

Images travel as uint8 ``0..255`` (compact on the wire); the model's input spec
(:class:`~shiftboard.domain.manifests.InputSpec`, checked and filled by
:func:`~shiftboard.domain.manifests.validate_input`) says what it expects:
``x = value_min + u8 / 255 * (value_max - value_min)``, then ``y = (x - mean) / std`` per channel.
Folded into one affine map per channel, ``y = u8 * scale + shift`` (:func:`input_affine`), which is
what the serving side applies. Pure Python: no numpy or torch needed to compute it.
"""

from __future__ import annotations

from shiftboard.domain.manifests import InputSpec, validate_input

__all__ = ["input_affine"]


def input_affine(spec: InputSpec) -> tuple[list[float], list[float]]:
    """``(scale, shift)``, one value per channel, with ``y = u8 * scale + shift`` equal to
    ``(value_min + u8 / 255 * (value_max - value_min) - mean) / std``; the spec is validated first
    (:class:`~shiftboard.domain.errors.InvalidArgument` naming what to fix)."""
    s = validate_input(spec)
    scale = [(s.value_max - s.value_min) / 255.0 / std for std in s.std]
    shift = [(s.value_min - mean) / std for mean, std in zip(s.mean, s.std, strict=True)]
    return scale, shift
