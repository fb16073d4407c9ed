"""Add a test set from a local file or folder: shard it, upload the shards, register the manifest.

The one code path behind `shiftboard testset add` and `shiftboard demo`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from shiftboard import testsets as ts
from shiftboard.client import Client
from shiftboard.v1 import shiftboard_pb2 as pb


def upload_testset(
    client: Client, path: str | Path, *, name: str, kind: pb.TestSetKind, reference: str = "", group: str = "",
    description: str = "", num_classes: int | None = None, class_subset: Sequence[int] | None = None,
    size: tuple[int, int] | None = None, channels: int | None = None, shard_samples: int | None = None,
    shard_bytes: int = ts.DEFAULT_SHARD_BYTES, on_shard: Callable[[int, int], None] | None = None,
    on_prepared: Callable[[ts.PreparedTestSet], None] | None = None, on_upload: Callable[[int], None] | None = None,
    transform: ts.Transform | None = None, class_map: Sequence[Sequence[int]] | None = None,
    class_names: Sequence[str] = (), unlabelled: bool = False, extra_references: Sequence[str] = (),
) -> tuple[ts.PreparedTestSet, pb.TestSet]:
    """Shard ``path`` into a temporary directory, upload the shards and register them (all or nothing).

    ``class_map`` gives, for each class of the set, the model outputs that count as it; ``class_names``
    name the classes where the source does not. ``unlabelled`` registers the set without labels (any the
    source has are ignored): its accuracy is only ever estimated.
    """
    with tempfile.TemporaryDirectory(prefix="shiftboard-shards-") as tmp:
        prepared = ts.prepare_testset(path, out_dir=tmp, shard_samples=shard_samples, shard_bytes=shard_bytes,
                                      size=size, channels=channels, num_classes=num_classes,
                                      class_subset=class_subset, on_progress=on_shard, transform=transform,
                                      labelled=not unlabelled)
        if on_prepared:
            on_prepared(prepared)
        spec = pb.TestSetSpec(
            name=name, kind=kind, reference=reference, group=group, num_classes=prepared.num_classes,
            class_subset=list(prepared.class_subset or ()), channels=prepared.channels, height=prepared.height,
            width=prepared.width, num_samples=prepared.num_samples, description=description,
            class_names=list(prepared.class_names) or list(class_names),
            shards=[pb.Shard(index=s.index, first_sample=s.first_sample, num_samples=s.num_samples,
                             size_bytes=s.size_bytes, sha256=s.sha256) for s in prepared.shards],
            class_map=[pb.ClassGroup(outputs=list(g)) for g in class_map or ()], unlabelled=unlabelled,
            extra_references=list(extra_references),
        )
        if prepared.transform is not None:
            spec.transform.CopyFrom(pb.ImageTransform(**prepared.transform.record()))
        testset = client.add_testset(spec, [s.path for s in prepared.shards], on_progress=on_upload)
    return prepared, testset
