"""Tables the leaderboard shows, built from gateway messages: pandas only, no Streamlit, no gRPC calls.

Accuracies stay fractions (the tables format them as percentages), effective robustness (ER) stays in
percentage points, as on the wire. Every frame here is what the page shows and what its download
buttons export, so column names are short, stable words.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from shiftboard.domain.baseline import TRANSFORMS as TRANSFORMS  # the transforms the pages offer
from shiftboard.domain.errors import ShiftboardError
from shiftboard.v1 import shiftboard_pb2 as pb
from shiftboard.wire import vocab
from shiftboard.wire.views import model_view, testset_view

#: Evaluation status → its word (:mod:`shiftboard.wire.vocab`).
STATUSES = {value: word for word, value in vocab.STATUSES.items()}
MODEL_COLUMNS = ["name", "version", "category", "tags", "num_classes", "input_shape", "description",
                 "size_bytes", "created_at"]
TESTSET_COLUMNS = ["name", "kind", "reference", "group", "num_classes", "num_samples", "num_shards",
                   "input_shape", "description", "created_at"]


# ---------------------------------------------------------------------------- catalog


def model_key(model: pb.Model) -> str:
    """``name:version``, as leaderboard rows name models."""
    return f"{model.metadata.name}:{model.metadata.version}"


def category_of(model: pb.Model) -> str:
    try:
        return vocab.category_word(model.metadata.category)
    except ShiftboardError:
        return "unspecified"


def models_frame(models: Iterable[pb.Model]) -> pd.DataFrame:
    rows = [model_view(m) for m in models]
    return pd.DataFrame(rows, columns=list(rows[0]) if rows else MODEL_COLUMNS)[MODEL_COLUMNS]


def testsets_frame(testsets: Iterable[pb.TestSet]) -> pd.DataFrame:
    rows = [testset_view(t) for t in testsets]
    return pd.DataFrame(rows, columns=list(rows[0]) if rows else TESTSET_COLUMNS)[TESTSET_COLUMNS]


def shifts_of(testsets: Iterable[pb.TestSet]) -> list[str]:
    """Names of the shifted test sets (every kind but reference), by group then name."""
    shifted = [t.spec for t in testsets if t.spec.kind != pb.TEST_SET_KIND_REFERENCE and t.spec.reference]
    return [s.name for s in sorted(shifted, key=lambda s: (s.group, s.name))]


def groups_of(testsets: Iterable[pb.TestSet]) -> list[str]:
    return sorted({t.spec.group for t in testsets
                   if t.spec.group and t.spec.kind != pb.TEST_SET_KIND_REFERENCE})


def class_names(testset: pb.TestSet | None, num_classes: int) -> list[str]:
    """The test set's class names, or the class indices as strings."""
    if testset is not None and len(testset.spec.class_names) >= num_classes:
        return list(testset.spec.class_names)
    return [str(i) for i in range(num_classes)]


# ---------------------------------------------------------------------------- evaluations


@dataclass(frozen=True)
class Progress:
    """How far the evaluations are: counts per status, and samples scored of those started."""

    pending: int
    running: int
    succeeded: int
    failed: int
    samples_done: int
    samples_total: int

    @property
    def total(self) -> int:
        return self.pending + self.running + self.succeeded + self.failed

    @property
    def active(self) -> bool:
        return bool(self.pending or self.running)

    @property
    def fraction(self) -> float:
        """Finished evaluations (succeeded or failed) over all, 1 when there are none."""
        return (self.succeeded + self.failed) / self.total if self.total else 1.0


def progress(evaluations: Iterable[pb.Evaluation]) -> Progress:
    counts = dict.fromkeys(STATUSES.values(), 0)
    done = total = 0
    for e in evaluations:
        counts[STATUSES.get(e.status, vocab.PENDING)] += 1
        done += e.samples_done
        total += e.samples_total
    return Progress(pending=counts[vocab.PENDING], running=counts[vocab.RUNNING], succeeded=counts[vocab.SUCCEEDED],
                    failed=counts[vocab.FAILED], samples_done=done, samples_total=total)


def evaluations_frame(evaluations: Iterable[pb.Evaluation]) -> pd.DataFrame:
    columns = ["model", "testset", "status", "done", "shards", "samples_done", "samples_total",
               "samples_per_second", "attempts", "error", "updated_at"]
    rows = []
    for e in evaluations:
        rows.append({
            "model": f"{e.key.model}:{e.key.version}", "testset": e.key.testset,
            "status": STATUSES.get(e.status, "unspecified"),
            "done": e.samples_done / e.samples_total if e.samples_total else 0.0,
            "shards": f"{e.shards_done}/{e.shards_total}", "samples_done": e.samples_done,
            "samples_total": e.samples_total, "samples_per_second": round(e.samples_per_second, 1),
            "attempts": e.attempts, "error": e.error,
            "updated_at": (e.updated_at.ToDatetime().strftime("%Y-%m-%d %H:%M:%S")
                           if e.updated_at.seconds else ""),
        })
    return pd.DataFrame(rows, columns=columns)


def result_stamps(evaluations: Iterable[pb.Evaluation]) -> dict[str, str]:
    """``model:version@testset`` → when its result was stored, for every succeeded evaluation."""
    return {f"{e.key.model}:{e.key.version}@{e.key.testset}": f"{e.updated_at.seconds}.{e.updated_at.nanos}"
            for e in evaluations if e.status == pb.EVALUATION_STATUS_SUCCEEDED}


def fingerprint(stamps: Mapping[str, str], testsets: Collection[str] | None = None) -> str:
    """A digest of the results (on ``testsets``, or all): it moves exactly when one lands, is redone
    or goes away, so it keys the caches of what is derived from them."""
    keys = sorted(f"{k}#{v}" for k, v in stamps.items()
                  if testsets is None or k.rpartition("@")[2] in testsets)
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()[:16]


def results_fingerprint(evaluations: Iterable[pb.Evaluation]) -> str:
    """:func:`fingerprint` of every result."""
    return fingerprint(result_stamps(evaluations))


# ---------------------------------------------------------------------------- leaderboards


def _interval_text(low: float, high: float) -> str:
    return f"[{low:+.2f}, {high:+.2f}]"


def ranking_frame(board: pb.Leaderboard) -> pd.DataFrame:
    """One row per model of a shift's leaderboard, best ER first (the gateway's order)."""
    columns = ["rank", "tie", "model", "category", "baseline", "ref_acc", "ref_low", "ref_high", "n_ref",
               "shift_acc", "shift_low", "shift_high", "n_shift", "predicted_shift_acc", "er", "er_low",
               "er_high", "er_interval", "tied", "clipped", "tags", "origin", "source", "testbed_type", "estimated"]
    rows = []
    for r in board.rows:
        rows.append({
            "rank": r.rank or None, "tie": "tied" if r.tied else "", "model": r.model, "category": r.category,
            "baseline": r.baseline, "ref_acc": r.ref_acc, "ref_low": r.ref_ci.low, "ref_high": r.ref_ci.high,
            "n_ref": r.n_ref, "shift_acc": r.shift_acc, "shift_low": r.shift_ci.low,
            "shift_high": r.shift_ci.high, "n_shift": r.n_shift,
            "predicted_shift_acc": r.predicted_shift_acc if r.has_er else None,
            "er": r.er if r.has_er else None,
            "er_low": r.er_ci.low if r.has_er_ci else None, "er_high": r.er_ci.high if r.has_er_ci else None,
            "er_interval": _interval_text(r.er_ci.low, r.er_ci.high) if r.has_er_ci else "",
            "tied": r.tied, "clipped": r.clipped, "tags": ", ".join(r.tags),
            "origin": "imported" if r.imported else "measured", "source": r.source, "testbed_type": r.testbed_type,
            "estimated": r.estimated,  # an unlabelled shift: shift_acc is an estimate (bootstrap interval)
        })
    frame = pd.DataFrame(rows, columns=columns)
    return frame.astype({"rank": "Int64", "er": "Float64", "er_low": "Float64", "er_high": "Float64",
                         "predicted_shift_acc": "Float64"})


def fit_summary(board: pb.Leaderboard) -> dict[str, Any]:
    fit = board.fit
    return {"ok": fit.ok, "reason": fit.reason, "transform": fit.transform or "logit", "n": fit.n,
            "slope": fit.slope if fit.ok else None, "intercept": fit.intercept if fit.ok else None,
            "r2": fit.r2 if fit.ok else None,
            "slope_ci": (fit.slope_ci.low, fit.slope_ci.high) if fit.grid else None,
            "intercept_ci": (fit.intercept_ci.low, fit.intercept_ci.high) if fit.grid else None}


def agreement_frame(board: pb.Leaderboard) -> pd.DataFrame:
    """One row per model pair of an unlabelled shift's agreement line: the two models and their agreement
    (share of equal top-1) on the reference and on the shift; empty for a labelled shift."""
    a = board.agreement
    return pd.DataFrame({"model_a": list(a.pair_a), "model_b": list(a.pair_b),
                         "ref_agreement": list(a.ref_agreement), "shift_agreement": list(a.shift_agreement)},
                        columns=["model_a", "model_b", "ref_agreement", "shift_agreement"])


def fit_frame(board: pb.Leaderboard) -> pd.DataFrame:
    """The baseline fit and its bootstrap band at the gateway's grid of reference accuracies."""
    fit = board.fit
    return pd.DataFrame({"ref_acc": list(fit.grid), "predicted": list(fit.predicted),
                         "band_low": list(fit.band_low), "band_high": list(fit.band_high)})


def group_frame(board: pb.Leaderboard) -> pd.DataFrame:
    columns = ["model", "category", "shifts", "mean_ref_acc", "mean_shift_acc", "mean_er", "er_shifts"]
    rows = [{"model": g.model, "category": g.category, "shifts": f"{g.shifts}/{g.of}",
             "mean_ref_acc": g.mean_ref_acc, "mean_shift_acc": g.mean_shift_acc,
             "mean_er": g.mean_er if g.has_er else None, "er_shifts": g.er_shifts} for g in board.group_rows]
    frame = pd.DataFrame(rows, columns=columns).astype({"mean_er": "Float64"})
    return frame.sort_values("mean_er", ascending=False, na_position="last", kind="stable", ignore_index=True)


def er_long_frame(boards: Mapping[str, pb.Leaderboard]) -> pd.DataFrame:
    """One row per (model, shift) over several shifts' leaderboards."""
    frames = []
    for shift, board in boards.items():
        frame = ranking_frame(board)
        frame.insert(0, "shift", shift)
        frame.insert(1, "reference", board.reference)
        frame["of"] = int(frame["rank"].notna().sum())
        frames.append(frame)
    if not frames:
        empty = ranking_frame(pb.Leaderboard())
        return empty.assign(shift=pd.Series(dtype=str), reference=pd.Series(dtype=str),
                            of=pd.Series(dtype=int))
    return pd.concat(frames, ignore_index=True)


def er_matrix(long: pd.DataFrame, shifts: Sequence[str] | None = None) -> pd.DataFrame:
    """Models × shifts of ER (percentage points), with category, tags and mean ER; best mean first."""
    if long.empty:
        return pd.DataFrame(columns=["model", "category", "tags", "mean_er", "shifts_evaluated"])
    order = list(shifts) if shifts is not None else list(dict.fromkeys(long["shift"]))
    wide = long.pivot_table(index="model", columns="shift", values="er", aggfunc="first", dropna=False)
    wide = wide.reindex(columns=[s for s in order if s in wide.columns]).astype("float64")
    wide = wide.dropna(axis="columns", how="all")  # a shift without a fit has no ER to show
    info = long.drop_duplicates("model").set_index("model")[[c for c in ("category", "origin", "tags") if c in long]]
    out = info.join(wide, how="left")
    out.insert(2, "mean_er", wide.mean(axis=1, skipna=True))
    out.insert(3, "shifts_evaluated", long.groupby("model")["shift"].nunique())
    out = out.sort_values("mean_er", ascending=False, na_position="last", kind="stable")
    out.columns.name = None
    return out.reset_index()


def filter_models(frame: pd.DataFrame, categories: Iterable[str] = (),
                  tags: Iterable[str] = (), origins: Iterable[str] = ()) -> pd.DataFrame:
    """Rows whose category is one of ``categories``, that carry any of ``tags`` and whose origin
    (measured, imported) is one of ``origins`` (empty: no filter)."""
    keep = pd.Series(True, index=frame.index)
    categories, tags, origins = set(categories), set(tags), set(origins)
    if categories:
        keep &= frame["category"].isin(categories)
    if origins and "origin" in frame:
        keep &= frame["origin"].isin(origins)
    if tags:
        keep &= frame["tags"].map(lambda t: bool(tags & set(_tag_list(t))))
    return frame[keep]


def _tag_list(tags: Any) -> list[str]:
    if isinstance(tags, str):
        return [t.strip() for t in tags.split(",") if t.strip()]
    return list(tags) if tags is not None else []


def all_tags(frame: pd.DataFrame) -> list[str]:
    return sorted({t for tags in frame.get("tags", []) for t in _tag_list(tags)})


def category_order(present: Iterable[str]) -> list[str]:
    """Categories in the vocabulary's order (so colours stay put), unknown ones after."""
    present = set(present)
    return [c for c in vocab.CATEGORIES if c in present] + sorted(present - set(vocab.CATEGORIES))


# ---------------------------------------------------------------------------- per-sample results


def predictions_frame(batches: Iterable[pb.Predictions]) -> pd.DataFrame:
    """Per-sample predictions of one evaluation: sample, label, top1, top5 (list), confidence, correct."""
    sample: list[int] = []
    label: list[int] = []
    top1: list[int] = []
    top5: list[int] = []
    confidence: list[float] = []
    correct: list[bool] = []
    for b in batches:
        sample.extend(b.sample)
        label.extend(b.label)
        top1.extend(b.top1)
        top5.extend(b.top5)
        confidence.extend(b.confidence)
        correct.extend(b.correct)
    k = len(top5) // len(sample) if sample else 5
    if len(correct) != len(sample):  # a set registered without labels: correctness unknown (label -1)
        correct = [False] * len(sample)
    return pd.DataFrame({
        "sample": np.asarray(sample, dtype=np.int64), "label": np.asarray(label, dtype=np.int64),
        "top1": np.asarray(top1, dtype=np.int64),
        "top5": list(np.asarray(top5, dtype=np.int64).reshape(len(sample), k)) if sample else [],
        "confidence": np.asarray(confidence, dtype=np.float64), "correct": np.asarray(correct, dtype=bool),
    })


def per_class_accuracy(predictions: pd.DataFrame, names: Sequence[str] | None = None) -> pd.DataFrame:
    """Accuracy of each true class present in ``predictions``."""
    grouped = predictions.groupby("label")["correct"].agg(["size", "sum"]).reset_index()
    grouped.columns = ["class", "samples", "correct"]
    grouped["accuracy"] = grouped["correct"] / grouped["samples"]
    grouped.insert(1, "name", [names[c] if names and 0 <= c < len(names) else str(c)
                               for c in grouped["class"]])
    return grouped.astype({"class": "int64", "samples": "int64", "correct": "int64"})


def hardest_samples(predictions: pd.DataFrame, k: int) -> pd.DataFrame:
    """The ``k`` wrong predictions made with the highest confidence."""
    wrong = predictions[~predictions["correct"]]
    return wrong.sort_values(["confidence", "sample"], ascending=[False, True]).head(k).reset_index(drop=True)


def image_array(image: bytes, channels: int, height: int, width: int, *, min_side: int = 96) -> np.ndarray:
    """A C×H×W uint8 sample as H×W (grey) or H×W×C, enlarged by an integer factor to ``min_side``."""
    array = np.frombuffer(image, dtype=np.uint8).reshape(channels, height, width)
    out = array[0] if channels == 1 else np.transpose(array[:3], (1, 2, 0))
    factor = max(1, -(-min_side // max(1, min(height, width))))
    return np.repeat(np.repeat(out, factor, axis=0), factor, axis=1) if factor > 1 else out


# ---------------------------------------------------------------------------- downloads


def to_csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def to_parquet(frame: pd.DataFrame) -> bytes:
    """Parquet bytes; a column of mixed Python objects, which Arrow cannot type, is written as text."""
    buffer = io.BytesIO()
    try:
        frame.to_parquet(buffer, index=False)
    except (TypeError, ValueError):  # pyarrow.ArrowInvalid is a ValueError
        buffer = io.BytesIO()
        text = {c: frame[c].map(lambda v: None if v is None else str(v)) for c in frame.columns
                if frame[c].dtype == object}
        frame.assign(**text).to_parquet(buffer, index=False)
    return buffer.getvalue()


# ---------------------------------------------------------------------------- several references


def plane_summary(board: pb.Leaderboard) -> dict[str, Any] | None:
    """The plane fit of a shift with several references (None for a shift with one)."""
    if not board.HasField("plane"):
        return None
    p = board.plane
    return {"ok": p.ok, "reason": p.reason, "transform": p.transform or "logit", "n": p.n,
            "references": list(p.references), "coefficients": list(p.coefficients) if p.ok else None,
            "intercept": p.intercept if p.ok else None, "r2": p.r2 if p.ok else None}


def plane_frame(board: pb.Leaderboard) -> pd.DataFrame:
    """One row per model with a plane ER: shift accuracy, the plane's prediction, its plane ER and ER, and
    ``in_plane`` (a baseline model of the plane fit)."""
    columns = ["model", "category", "in_plane", "shift_acc", "n_shift", "plane_predicted_shift_acc", "plane_er",
               "er"]
    rows = [{"model": r.model, "category": r.category, "in_plane": r.baseline, "shift_acc": r.shift_acc,
             "n_shift": r.n_shift, "plane_predicted_shift_acc": r.plane_predicted_shift_acc, "plane_er": r.plane_er,
             "er": r.er if r.has_er else None} for r in board.rows if r.has_plane_er]
    return pd.DataFrame(rows, columns=columns).astype({"er": "Float64"})


def with_plane(rows: pd.DataFrame, board: pb.Leaderboard) -> pd.DataFrame:
    """``rows`` (:func:`ranking_frame`) with ``plane_er``, its interval (``plane_er_interval``) and
    ``plane_predicted_shift_acc`` (empty without)."""
    by_model = {r.model: r for r in board.rows if r.has_plane_er}
    return rows.assign(
        plane_er=pd.array([by_model[m].plane_er if m in by_model else None for m in rows["model"]], dtype="Float64"),
        plane_er_interval=[_interval_text(by_model[m].plane_er_ci.low, by_model[m].plane_er_ci.high)
                           if m in by_model and by_model[m].has_plane_er_ci else "" for m in rows["model"]],
        plane_predicted_shift_acc=pd.array([by_model[m].plane_predicted_shift_acc if m in by_model else None
                                            for m in rows["model"]], dtype="Float64"))
