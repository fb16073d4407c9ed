"""ImportResults and ListImportedSources: published results as accuracy-only points with provenance.

The parsing and validation live in :mod:`shiftboard.testbed` (no gRPC there): a bad row is an
:class:`~shiftboard.domain.errors.InvalidArgument` naming the row and the fix, raised before anything is
stored. This module receives the file (a header, then its bytes in chunks; or a preset), checks what
the catalog must know (model names, categories, test-set names), and stores everything in one
catalog transaction: the same version of a source changes nothing, a new version replaces it.

Every setting the testbed's protocol understands and the platform has no data for is declared (kind,
reference, groups, sample count, class protocol), so that ``GetLeaderboard(shift=...)`` works on it
at once; registering data under its name later takes the declared kind and reference.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from importlib import resources
from typing import TYPE_CHECKING

import grpc

from shiftboard.domain.errors import InvalidArgument, ResourceExhausted
from shiftboard.services.gateway.interceptor import required_caller
from shiftboard.testbed import TESTBED_SOURCE, TESTBED_URL, ImportedResults, read_long, read_testbed
from shiftboard.v1 import shiftboard_pb2 as pb
from shiftboard.wire import vocab

if TYPE_CHECKING:
    from shiftboard.adapters.duckdb.catalog import Catalog
    from shiftboard.settings import Settings

log = logging.getLogger(__name__)

#: The largest file one ImportResults call takes (the shipped grid is 0.87 MB).
MAX_IMPORT_BYTES = 256 * 1024 * 1024
#: The presets ImportResults knows: name -> the shipped file.
PRESETS = {"imagenet-testbed": "data/robustness_top1s.csv"}
FORMATS = ("testbed", "long")
_MAX_TEXT = 500


def _text(value: str, what: str) -> str:
    value = value.strip()
    if len(value) > _MAX_TEXT or any(ord(c) < 32 for c in value):
        raise InvalidArgument(f"{what} must be one line of at most {_MAX_TEXT} characters")
    return value


class ResultsRpcs:
    """ImportResults and ListImportedSources over the catalog."""

    def __init__(self, catalog: Catalog, settings: Settings) -> None:
        self.catalog = catalog
        self.settings = settings

    def _receive(self, header: pb.ImportResultsHeader, chunks: Iterator[pb.ImportResultsRequest]) -> bytes:
        if header.size_bytes > MAX_IMPORT_BYTES:
            raise ResourceExhausted(f"the file has {header.size_bytes:,} bytes; one import takes at most "
                                    f"{MAX_IMPORT_BYTES:,}: split it into several files (one source each)")
        parts, size = [], 0
        for message in chunks:
            if message.WhichOneof("payload") != "chunk":
                raise InvalidArgument("ImportResults got a second header: send it once, then only chunks")
            size += len(message.chunk)
            if size > MAX_IMPORT_BYTES:
                raise ResourceExhausted(f"the file is larger than {MAX_IMPORT_BYTES:,} bytes, the most one import "
                                        "takes: split it into several files (one source each)")
            parts.append(message.chunk)
        return b"".join(parts)

    def _parse(self, header: pb.ImportResultsHeader, content: bytes) -> ImportedResults:
        source, url = _text(header.source, "source"), _text(header.url, "url")
        model_types = bytes(header.model_types) or None
        if header.preset:
            if header.preset not in PRESETS:
                raise InvalidArgument(f"unknown preset {header.preset!r}: use {', '.join(PRESETS)}")
            if content:
                raise InvalidArgument(f"preset {header.preset} imports the shipped file: send no file with it")
            if header.format not in ("", "testbed"):
                raise InvalidArgument(f"preset {header.preset} is in the testbed layout: leave --format out")
            content = resources.files("shiftboard.testbed").joinpath(PRESETS[header.preset]).read_bytes()
            return read_testbed(content, model_types, source_name=source or TESTBED_SOURCE, url=url or TESTBED_URL)
        if header.format not in FORMATS:
            raise InvalidArgument(f"format {header.format!r}: use testbed (the testbed's grid) or long (model, "
                                  "testset, accuracy or correct+total)")
        if not content:
            raise InvalidArgument("the file is empty: nothing was uploaded")
        name = _text(header.filename, "file name") or "results"
        if header.format == "testbed":
            if header.scale:
                raise InvalidArgument("--scale applies to the long format; the testbed layout is in percent")
            return read_testbed(content, model_types, source_name=source or name, url=url)
        scale = header.scale or "fraction"
        if scale not in ("fraction", "percent"):
            raise InvalidArgument(f"scale {scale!r}: use fraction or percent")
        return read_long(content, scale=scale, model_types=model_types,  # type: ignore[arg-type]
                         source_name=source or name, url=url)

    def _check(self, results: ImportedResults) -> None:
        """What the catalog needs beyond the parser's checks: names it can store, a category per model."""
        bad = [m for m in results.models if ":" in m or len(m) > _MAX_TEXT]
        if bad:
            raise InvalidArgument(f"model name {bad[0]!r} contains ':' or is too long: ':' separates a measured "
                                  "model's name and version here; rename it in the file")
        bad = [t for t in results.testsets if len(t) > _MAX_TEXT or any(ord(c) < 32 for c in t)]
        if bad:
            raise InvalidArgument(f"test-set name {bad[0][:40]!r} is too long or has control characters")
        missing = []
        for name, model in results.models.items():
            if model.category is None and self.catalog.imported_model(name) is None:
                missing.append(name)
        if missing:
            raise InvalidArgument(f"{len(missing)} model(s) have no category (first: {', '.join(missing[:3])}): add "
                                  "a category or model_type column, or pass --model-types FILE")

    def ImportResults(self, request_iterator: Iterator[pb.ImportResultsRequest],
                      context: grpc.ServicerContext) -> pb.ImportResultsResponse:
        """Parse, validate and store a file of published results, all or nothing."""
        caller = required_caller()
        first = next(request_iterator, None)
        if first is None or first.WhichOneof("payload") != "header":
            raise InvalidArgument("the first ImportResults message must carry the header (format, source, ...)")
        header = first.header
        results = self._parse(header, self._receive(header, request_iterator))
        self._check(results)
        results = _with_categories(results, self.catalog)
        registered = {t.spec.name for t in self.catalog.list_testsets()}
        declared = [s for name, s in results.settings.items() if name not in registered]
        unknown = [t for t in results.unknown_settings
                   if t not in registered and self.catalog.declared_testset(t) is None]
        outcome = self.catalog.import_results(results, declared, caller.name)
        prov = results.provenance
        log.info("results of %s (version %s, %s) imported by %s: %d stored, %d unchanged, %d replaced",
                 prov.source, prov.version[:12], prov.format, caller.name, outcome.stored, outcome.unchanged,
                 outcome.replaced)
        return pb.ImportResultsResponse(
            source=prov.source, version=prov.version, url=prov.url, format=prov.format, models=len(results.models),
            points=len(results.points), stored=outcome.stored, unchanged=outcome.unchanged,
            replaced=outcome.replaced, unknown_testsets=unknown, declared_testsets=outcome.declared)

    @staticmethod
    def _declared_classes(spec: pb.TestSetSpec, protocol: str) -> None:
        declared_classes(spec, protocol)

    def ListImportedSources(self, request: pb.ListImportedSourcesRequest,
                            context: grpc.ServicerContext) -> pb.ListImportedSourcesResponse:
        """Every imported source with its version, url, format and counts."""
        out = pb.ListImportedSourcesResponse()
        for row in self.catalog.list_imported_sources():
            item = out.sources.add(source=row.source, version=row.version, url=row.url, format=row.format,
                                   models=row.models, points=row.points, created_by=row.created_by)
            item.imported_at.FromDatetime(row.imported_at.astimezone(dt.UTC).replace(tzinfo=None))
        return out


def declared_defaults(catalog: Catalog, spec: pb.TestSetSpec) -> None:
    """Fill a new test set's kind, reference and group from the setting declared under its name."""
    declared = catalog.declared_testset(spec.name)
    if declared is None:
        return
    if spec.kind == pb.TEST_SET_KIND_UNSPECIFIED:
        spec.kind = vocab.kind_value(declared.kind)
    if not spec.reference and declared.reference and spec.kind != pb.TEST_SET_KIND_REFERENCE:
        spec.reference = declared.reference
    if not spec.group and declared.groups:
        spec.group = declared.groups[0]
    if declared.class_protocol and not spec.class_subset and not spec.class_map:
        declared_classes(spec, declared.class_protocol)


def declared_classes(spec: pb.TestSetSpec, protocol: str) -> None:
    """The setting's class protocol, when the data fits it: a many-to-one map (ObjectNet) for a set
    labelled in its own classes, or the sub-list for a set labelled in the reference's classes."""
    from shiftboard.testbed import class_map, class_sublist

    groups = class_map(protocol)
    many_to_one = any(len(outputs) > 1 for outputs in groups.values())
    if many_to_one and spec.num_classes == len(groups):
        spec.class_map.extend(pb.ClassGroup(outputs=list(outputs)) for outputs in groups.values())
        if not spec.class_names:
            spec.class_names.extend(groups)
    elif not many_to_one:
        subset = class_sublist(protocol)
        if subset and max(subset) < spec.num_classes:
            spec.class_subset.extend(subset)


def _with_categories(results: ImportedResults, catalog: Catalog) -> ImportedResults:
    """Models the file gives no category take the one an earlier import gave them."""
    from dataclasses import replace

    models = dict(results.models)
    for name, model in models.items():
        if model.category is None:
            known = catalog.imported_model(name)
            if known is not None:
                models[name] = replace(model, category=known[0])
    return replace(results, models=models)
