"""The manifests of :mod:`shiftboard.domain.manifests` to and from their protobuf messages.

The gateway reads submitted messages into the domain's dataclasses to check them; the CLI builds
the dataclasses from its options, checks them with the same rules, and sends them as messages.
Enumeration values this version does not know become "" (not set), which the checks refuse by name.
"""

from __future__ import annotations

from shiftboard.domain.manifests import InputSpec, ModelManifest, ShardEntry, TestSetManifest, TransformSpec
from shiftboard.v1 import shiftboard_pb2 as pb
from shiftboard.wire import vocab


def input_spec(spec: pb.InputSpec) -> InputSpec:
    return InputSpec(channels=spec.channels, height=spec.height, width=spec.width, value_min=spec.value_min,
                     value_max=spec.value_max, mean=tuple(spec.mean), std=tuple(spec.std))


def model_manifest(md: pb.ModelMetadata) -> ModelManifest:
    return ModelManifest(
        name=md.name, version=md.version, format=vocab.word_or_empty(vocab.FORMATS, md.format),
        category=vocab.word_or_empty(vocab.CATEGORIES, md.category), num_classes=md.num_classes,
        input=input_spec(md.input), tags=tuple(md.tags), description=md.description)


def model_metadata(m: ModelManifest) -> pb.ModelMetadata:
    spec = m.input
    return pb.ModelMetadata(
        name=m.name, version=m.version, format=vocab.FORMATS.get(m.format, pb.MODEL_FORMAT_UNSPECIFIED),
        category=vocab.CATEGORIES.get(m.category, pb.MODEL_CATEGORY_UNSPECIFIED), num_classes=m.num_classes,
        input=pb.InputSpec(channels=spec.channels, height=spec.height, width=spec.width, value_min=spec.value_min,
                           value_max=spec.value_max, mean=spec.mean, std=spec.std),
        tags=m.tags, description=m.description)


def with_input(md: pb.ModelMetadata, spec: InputSpec) -> pb.ModelMetadata:
    """A copy of ``md`` with the (checked, filled) input spec."""
    out = pb.ModelMetadata()
    out.CopyFrom(md)
    out.input.value_max = spec.value_max
    del out.input.mean[:]
    out.input.mean.extend(spec.mean)
    del out.input.std[:]
    out.input.std.extend(spec.std)
    return out


def testset_manifest(spec: pb.TestSetSpec) -> TestSetManifest:
    transform = None
    if spec.HasField("transform"):
        t = spec.transform
        transform = TransformSpec(border=t.border, resize=t.resize, crop_height=t.crop_height,
                                  crop_width=t.crop_width, interpolation=t.interpolation, stretch=t.stretch)
    return TestSetManifest(
        name=spec.name, kind=vocab.word_or_empty(vocab.KINDS, spec.kind), reference=spec.reference,
        group=spec.group, num_classes=spec.num_classes, channels=spec.channels, height=spec.height,
        width=spec.width, num_samples=spec.num_samples, class_subset=tuple(spec.class_subset),
        class_names=tuple(spec.class_names), class_map=tuple(tuple(g.outputs) for g in spec.class_map),
        transform=transform, unlabelled=spec.unlabelled,
        extra_references=tuple(spec.extra_references),
        shards=tuple(ShardEntry(index=s.index, first_sample=s.first_sample, num_samples=s.num_samples)
                     for s in spec.shards))

