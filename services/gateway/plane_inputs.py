"""What a shift's plane fit against several references reads: each board model's accuracy on every extra
reference (measured models: their count aggregates; imported ones: the imported accuracy)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shiftboard.domain.plane_board import PlaneBoard, plane_board
from shiftboard.domain.robustness import ShiftLeaderboard
from shiftboard.services.gateway.aggregates import Aggregate, Aggregator, Need
from shiftboard.v1 import shiftboard_pb2 as pb
from shiftboard.wire import vocab

if TYPE_CHECKING:
    from collections.abc import Mapping

    from shiftboard.adapters.duckdb.catalog import Catalog


def plane_of(catalog: Catalog, aggregator: Aggregator, spec: pb.TestSetSpec, board: ShiftLeaderboard,
             imported: Mapping[str, object], known: dict[tuple[int, str], Aggregate]) -> PlaneBoard | None:
    """The plane fit of a shift that names extra references (else None), over the board's own baseline. A
    model without a finished evaluation (or an imported point) on one of them has no plane ER."""
    extra = list(spec.extra_references)
    if not extra or spec.declared:
        return None
    accs: dict[str, dict[str, float]] = {}
    for testset in extra:
        rows = catalog.query("SELECT model, version, id FROM evaluations WHERE testset = ? AND status = ?",
                             [testset, vocab.SUCCEEDED])
        done = {f"{m}:{v}": int(i) for m, v, i in rows}
        names = [r.model for r in board.rows if r.model not in imported and r.model in done]
        got = aggregator.get([Need(done[n], testset) for n in names], 0, known)
        for n in names:
            aggregate = got[(done[n], "")]
            if aggregate.samples:
                accs.setdefault(n, {})[testset] = aggregate.correct / aggregate.samples
        for point in catalog.imported_points([testset]) if imported else []:
            if point.model in imported:
                accs.setdefault(point.model, {})[testset] = point.accuracy
    complete = {m: [a[t] for t in extra] for m, a in accs.items() if len(a) == len(extra)}
    samples = [int(catalog.get_testset(t).spec.num_samples) for t in extra]
    return plane_board(board, [spec.reference, *extra], complete, samples)
