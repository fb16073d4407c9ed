"""The one model/test-set compatibility rule (plain values), and that the gateway's scheduler and the
worker's plan check apply it alike."""

from __future__ import annotations

import pytest

from shiftboard.domain import compatibility as rule  # not its classes: pytest would collect TestSetShape
from shiftboard.domain.errors import InvalidArgument
from shiftboard.flows.evaluate import check_plan
from shiftboard.services.gateway.scheduler import incompatibility as scheduler_incompatibility
from shiftboard.v1 import shiftboard_pb2 as pb

CHW = (1, 8, 8)


def _model(classes: int = 10, chw: tuple[int, int, int] = CHW) -> rule.ModelShape:
    return rule.ModelShape("m:1", chw, classes)


def _testset(classes: int = 10, chw: tuple[int, int, int] = CHW, subset: tuple[int, ...] = (),
            class_map: tuple[tuple[int, ...], ...] = ()) -> rule.TestSetShape:
    return rule.TestSetShape("t", chw, classes, subset, class_map)


@pytest.mark.parametrize(("m", "t"), [
    (_model(10), _testset(10)),  # one label space
    (_model(10), _testset(10, subset=(6, 7))),  # a sub-list of the model's classes
    (_model(1000), _testset(10, subset=(6, 7))),  # a sub-list, the model has more classes
    (_model(10), _testset(4, class_map=((0, 1), (2, 5), (3,), (7, 8, 9)))),  # a class map onto the outputs
    (_model(1000), _testset(2, class_map=((0,), (999,)))),  # a class map, the model has more outputs
], ids=["same", "sub-list", "sub-list-wider-model", "class-map", "class-map-wider-model"])
def test_accepted_pairs(m: rule.ModelShape, t: rule.TestSetShape) -> None:
    assert rule.incompatibility(m, t) is None


@pytest.mark.parametrize(("m", "t", "expected"), [
    (_model(10, (3, 32, 32)), _testset(10), "m:1 takes 3x32x32 images but test set t holds 1x8x8"),
    (_model(10), _testset(10, chw=(1, 8, 9)), "holds 1x8x9: add the test set at the model's input size"),
    (_model(12), _testset(10), "m:1 has 12 classes, test set t 10: they must share one label space"),
    (_model(5), _testset(10), "m:1 has 5 classes, test set t 10"),
    (_model(5), _testset(10, subset=(1, 3)), "test set t has labels and listed classes up to 9"),
    (_model(8), _testset(4, class_map=((0,), (9,))), "the class map of test set t counts output 9"),
], ids=["channels", "width", "more-classes-same-space", "fewer-classes", "sub-list-narrow-model",
        "class-map-beyond-model"])
def test_refused_pairs(m: rule.ModelShape, t: rule.TestSetShape, expected: str) -> None:
    reason = rule.incompatibility(m, t)
    assert reason is not None and expected in reason


def _messages(m: rule.ModelShape, t: rule.TestSetShape) -> tuple[pb.Model, pb.TestSet]:
    c, h, w = m.chw
    name, version = m.label.split(":")
    md = pb.ModelMetadata(name=name, version=version, num_classes=m.num_classes,
                          input=pb.InputSpec(channels=c, height=h, width=w))
    c, h, w = t.chw
    spec = pb.TestSetSpec(name=t.name, num_classes=t.num_classes, channels=c, height=h, width=w,
                          class_subset=list(t.class_subset),
                          class_map=[pb.ClassGroup(outputs=list(g)) for g in t.class_map])
    return pb.Model(metadata=md), pb.TestSet(spec=spec)


@pytest.mark.parametrize(("m", "t"), [
    (_model(10), _testset(10)), (_model(1000), _testset(10, subset=(6, 7))),
    (_model(10), _testset(4, class_map=((0, 1), (9,)))), (_model(10, (3, 32, 32)), _testset(10)),
    (_model(12), _testset(10)), (_model(5), _testset(10, subset=(1,))),
    (_model(8), _testset(2, class_map=((0,), (9,)))),
])
def test_gateway_and_worker_apply_the_same_rule(m: rule.ModelShape, t: rule.TestSetShape) -> None:
    """The scheduler records the same reason the worker's plan check raises (and both accept alike)."""
    model_message, testset_message = _messages(m, t)
    want = rule.incompatibility(m, t)
    assert scheduler_incompatibility(model_message, testset_message) == (want or "")
    plan = pb.EvaluationPlan(model=model_message, testset=testset_message)
    if want is None:
        check_plan(plan)
    else:
        with pytest.raises(InvalidArgument) as caught:
            check_plan(plan)
        assert caught.value.message == want
