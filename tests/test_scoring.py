"""Scoring rules: top-1/top-5, confidence, correctness, class subsets (hand-computed cases)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shiftboard.domain.errors import InvalidArgument
from shiftboard.domain.manifests import InputSpec
from shiftboard.domain.normalisation import input_affine
from shiftboard.domain.scoring import (
    ClassMap,
    NonFiniteLogits,
    class_map_correct,
    score,
    score_mapped,
    subset_correct,
    subset_index,
)


def test_top1_top5_confidence_and_correct_by_hand() -> None:
    logits = np.array([
        [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        [6.0, 5.0, 4.0, 3.0, 2.0, 1.0, 0.0],
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, math.log(6.0)],
    ], dtype=np.float32)
    labels = np.array([6, 1, 6])
    s = score(logits, labels)
    assert s.top1.tolist() == [6, 0, 6]
    assert s.top5.tolist() == [[6, 5, 4, 3, 2], [0, 1, 2, 3, 4], [6, 0, 1, 2, 3]]
    assert s.correct.tolist() == [True, False, True]
    expected = 1.0 / sum(math.exp(v - 6.0) for v in range(7))
    assert s.confidence[0] == pytest.approx(expected, rel=1e-6)
    assert s.confidence[1] == pytest.approx(expected, rel=1e-6)
    # six zeros and log 6: exp(log 6) / (6 + 6) = 0.5
    assert s.confidence[2] == pytest.approx(0.5, rel=1e-6)
    assert s.top1.dtype == np.int32 and s.top5.dtype == np.int32 and s.confidence.dtype == np.float32


def test_fewer_than_five_classes_pads_with_minus_one() -> None:
    s = score(np.array([[1.0, 3.0, 2.0]]), np.array([1]))
    assert s.top5.tolist() == [[1, 2, 0, -1, -1]]
    assert s.top1.tolist() == [1]
    e = [math.exp(v) for v in (1.0, 3.0, 2.0)]
    assert s.confidence[0] == pytest.approx(e[1] / sum(e), rel=1e-6)


def test_single_class_is_certain() -> None:
    s = score(np.array([[-3.0], [7.0]]), np.array([0, 0]))
    assert s.top1.tolist() == [0, 0]
    assert s.top5.tolist() == [[0, -1, -1, -1, -1]] * 2
    assert s.confidence.tolist() == [1.0, 1.0]


def test_class_subset_restricts_the_argmax_and_the_softmax() -> None:
    # class 0 has the highest logit but is not scored: the prediction is the best of {1, 3, 4}
    logits = np.array([[9.0, 1.0, 8.0, 2.0, 0.0]])
    s = score(logits, np.array([3]), class_subset=[4, 1, 3])
    assert s.top1.tolist() == [3]
    assert s.top5.tolist() == [[3, 1, 4, -1, -1]]
    assert s.correct.tolist() == [True]
    e = [math.exp(v) for v in (1.0, 2.0, 0.0)]
    assert s.confidence[0] == pytest.approx(e[1] / sum(e), rel=1e-6)


def test_label_outside_the_subset_is_never_correct() -> None:
    s = score(np.array([[5.0, 1.0, 2.0]]), np.array([0]), class_subset=[1, 2])
    assert s.top1.tolist() == [2]
    assert s.correct.tolist() == [False]


def test_ties_go_to_the_lower_class_index() -> None:
    s = score(np.array([[1.0, 2.0, 2.0, 0.0, 2.0, 1.0]]), np.array([2]))
    assert s.top1.tolist() == [1]
    assert s.top5.tolist() == [[1, 2, 4, 0, 5]]
    assert s.confidence[0] == pytest.approx(math.exp(2) / (3 * math.exp(2) + 2 * math.e + 1), rel=1e-6)


def test_many_classes_use_the_partial_sort_and_agree_with_a_full_sort() -> None:
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((300, 1000)).astype(np.float32)
    labels = rng.integers(0, 1000, 300)
    s = score(logits, labels)
    full = np.argsort(-logits, axis=1, kind="stable")[:, :5]
    assert (s.top5 == full).all()
    assert (s.top1 == logits.argmax(axis=1)).all()
    # and with a large subset
    subset = np.arange(0, 1000, 5)
    s = score(logits, labels, class_subset=subset)
    full = subset[np.argsort(-logits[:, subset], axis=1, kind="stable")[:, :5]]
    assert (s.top5 == full).all()


def test_matches_torch_softmax_and_topk() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    logits = (rng.standard_normal((64, 10)) * 5).astype(np.float32)
    s = score(logits, np.zeros(64, dtype=np.int64))
    t = torch.from_numpy(logits)
    assert (s.top5 == t.topk(5, dim=1).indices.numpy()).all()
    np.testing.assert_allclose(s.confidence, t.softmax(dim=1).max(dim=1).values.numpy(), atol=1e-6)


def test_non_finite_logits_are_refused() -> None:
    logits = np.zeros((4, 3), dtype=np.float32)
    logits[2, 1] = np.nan
    logits[3, 0] = np.inf
    with pytest.raises(NonFiniteLogits, match="2 sample") as info:
        score(logits, np.zeros(4, dtype=np.int64))
    assert info.value.rows == [2, 3]


@pytest.mark.parametrize(("logits", "labels", "message"), [
    (np.zeros(3), np.zeros(3), "2-d"),
    (np.zeros((2, 3)), np.zeros(3), "labels must have shape"),
    (np.zeros((2, 0)), np.zeros(2), "no classes"),
])
def test_bad_shapes(logits: np.ndarray, labels: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        score(logits, labels)


def test_subset_index_validates_and_normalises() -> None:
    assert subset_index(None, 10) is None
    assert subset_index([], 10) is None
    assert subset_index([3, 1, 3], 10).tolist() == [1, 3]  # type: ignore[union-attr]
    with pytest.raises(ValueError, match=r"outside \[0, 10\)"):
        subset_index([1, 10], 10)
    with pytest.raises(ValueError, match="outside"):
        subset_index([-1], 10)


def test_empty_batch() -> None:
    s = score(np.zeros((0, 10), dtype=np.float32), np.zeros(0, dtype=np.int64))
    assert len(s) == 0 and s.top5.shape == (0, 5)


# --- class maps and exact sub-list correctness (the ImageNet testbed's scoring) -------------------


def test_score_mapped_takes_the_group_maximum_then_the_argmax_by_hand() -> None:
    # outputs 0..5; test-set class 0 <- {1, 4}, class 1 <- {2}, class 2 <- {0, 5}; output 3 is unmapped
    cmap = ClassMap.from_groups([[1, 4], [2], [5, 0]], num_classes=6)
    logits = np.array([[0.0, 1.0, 2.0, 9.0, 3.0, 0.5],    # 3 ignored; maxima (3, 2, 0.5) -> class 0
                       [4.0, 1.0, 3.5, 0.0, 0.0, 0.0]])   # maxima (1, 3.5, 4) -> class 2
    s = score_mapped(logits, np.array([0, 1]), cmap)
    assert s.top1.tolist() == [0, 2] and s.correct.tolist() == [True, False]
    assert s.top5.tolist() == [[0, 1, 2, -1, -1], [2, 1, 0, -1, -1]]
    e = [math.exp(v) for v in (3.0, 2.0, 0.5)]
    assert s.confidence[0] == pytest.approx(e[0] / sum(e), rel=1e-6)


def test_objectnet_class_map_agrees_with_the_testbeds_loop() -> None:
    from shiftboard.testbed import class_map, class_sublist

    groups = class_map("objectnet-1.0-beta")
    cmap = ClassMap.from_groups(list(groups.values()), 1000, names=list(groups))
    assert len(cmap) == 113 and cmap.outputs().tolist() == list(class_sublist("objectnet-1.0-beta"))
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((500, 1000)).astype(np.float32)
    labels = rng.integers(0, 113, 500)
    s = score_mapped(logits, labels, cmap)
    # The testbed: argmax over the 125 mapped outputs, correct when it is one of the label's outputs.
    sub = np.array(class_sublist("objectnet-1.0-beta"))
    members = list(groups.values())
    expected = [int(sub[np.argmax(row[sub])]) in members[y] for row, y in zip(logits, labels, strict=True)]
    assert s.correct.tolist() == expected


def test_subset_correct_is_exact_where_the_stored_top5_undercounts() -> None:
    from shiftboard.domain.paired import restricted_correct

    # 8 classes, sub-list {6, 7}; sample 0 (label 6) has neither 6 nor 7 in its top 5, but 6 beats 7.
    logits = np.array([[9.0, 8.0, 7.0, 6.0, 5.0, 0.0, 1.0, 0.5],
                       [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 2.0],
                       [5.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 2.0]])
    labels = np.array([6, 6, 3])
    exact = subset_correct(logits, labels, [7, 6])
    assert exact.kept.tolist() == [True, True, False] and exact.correct.tolist() == [True, False]
    assert exact.accuracy == 0.5
    stored = score(logits, labels)
    assert restricted_correct(labels, stored.top5, [6, 7]).tolist() == [False, False]  # the undercount


def test_class_map_correct_maps_reference_labels_to_groups() -> None:
    cmap = ClassMap.from_groups([[0, 1], [2]], num_classes=4)
    logits = np.array([[0.0, 3.0, 2.0, 9.0], [5.0, 0.0, 6.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    result = class_map_correct(logits, np.array([0, 1, 3]), cmap)
    assert result.kept.tolist() == [True, True, False]
    assert result.correct.tolist() == [True, False]  # sample 1: label 1 -> class 0, but class 1 (6.0) wins


@pytest.mark.parametrize(("groups", "message"), [
    ([], "at least one class"),
    ([[0], []], "class 1 of the class map has no model outputs"),
    ([[0, 9]], r"outside \[0, 4\)"),
    ([[0, 1], [1]], "model output 1 is mapped to classes 0 and 1"),
])
def test_class_map_validation(groups: list[list[int]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ClassMap.from_groups(groups, num_classes=4)


def test_mapped_scoring_refuses_bad_logits() -> None:
    cmap = ClassMap.from_groups([[0], [1]], num_classes=2)
    with pytest.raises(ValueError, match="for 2 model outputs"):
        score_mapped(np.zeros((1, 3)), np.zeros(1, dtype=np.int64), cmap)
    bad = np.array([[np.nan, 0.0]])
    with pytest.raises(NonFiniteLogits):
        subset_correct(bad, np.array([0]), [0])
    with pytest.raises(ValueError, match="at least one class"):
        subset_correct(np.zeros((1, 2)), np.array([0]), [])


# ------------------------------------------------------------------------------------ input normalisation


def test_input_affine_equals_range_then_mean_and_std() -> None:
    u8 = np.arange(256, dtype=np.float64)
    for channels, low, high, mean, std in ((1, 0.0, 0.0, (), ()), (3, 0.0, 1.0, (0.485, 0.456, 0.406), (0.229,)),
                                           (3, -1.0, 255.0, (0.5,), (2.0, 4.0, 8.0))):
        spec = InputSpec(channels=channels, height=8, width=8, value_min=low, value_max=high, mean=mean, std=std)
        scale, shift = input_affine(spec)
        assert len(scale) == len(shift) == channels
        high = high or 1.0  # an unset range is 0..1
        for c in range(channels):
            m = mean[c if len(mean) > 1 else 0] if mean else 0.0
            s = std[c if len(std) > 1 else 0] if std else 1.0
            np.testing.assert_allclose(u8 * scale[c] + shift[c], (low + u8 / 255 * (high - low) - m) / s, rtol=1e-12)


def test_input_affine_refuses_bad_specs() -> None:
    with pytest.raises(InvalidArgument, match="input mean has 2 values for 3 channels"):
        input_affine(InputSpec(channels=3, height=8, width=8, mean=(0.1, 0.2)))
    with pytest.raises(InvalidArgument, match="input std must be positive"):
        input_affine(InputSpec(channels=1, height=8, width=8, std=(0.0,)))
    with pytest.raises(InvalidArgument, match=r"value range \[1.0, 1.0\] is empty"):
        input_affine(InputSpec(channels=1, height=8, width=8, value_min=1.0, value_max=1.0))
