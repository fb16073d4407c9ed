"""Imported results through the real gateway: ImportResults, the testbed's lines, declared test sets.

A gateway of its own (in-process, port 0, DuckDB in a temporary directory) over the session's real
object store, so that what these tests import does not reach other test files' boards. The shipped
ImageNet testbed grid is imported through the API; the gateway's fit and every ER must equal
:func:`shiftboard.testbed.shift_line` (the domain's computation of the testbed's method) to 1e-9.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pytest
from scipy.special import expit, logit
from typer.testing import CliRunner

from shiftboard.cli.app import app
from shiftboard.client import Client
from shiftboard.domain.errors import FailedPrecondition, InvalidArgument, PermissionDenied, Unauthenticated
from shiftboard.settings import Settings
from shiftboard.testbed import TESTBED_SOURCE, TESTBED_URL, shift_line, shipped_grid
from shiftboard.v1 import shiftboard_pb2 as pb
from tests import helpers
from tests.conftest import GatewayHandle, serving_gateway
from tests.test_gateway import metadata
from tests.test_leaderboard_rpc import add_set, evaluate, train

pytestmark = pytest.mark.stack

V2 = "imagenetv2-matched-frequency-format-val"


@pytest.fixture(scope="module")
def gw(object_store: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayHandle]:
    with serving_gateway(object_store, tmp_path_factory.mktemp("results-gateway"), "results-tests") as handle:
        yield handle


@pytest.fixture(scope="module")
def submitter(gw: GatewayHandle) -> Iterator[Client]:
    token = gw.client.create_token("results-submitter", role=pb.TOKEN_ROLE_SUBMITTER).token
    with Client(gw.target, token) as client:
        yield client


@pytest.fixture(scope="module")
def imported(submitter: Client) -> pb.ImportResultsResponse:
    """The shipped grid, imported once by a submitter."""
    return submitter.import_results(preset="imagenet-testbed")


def test_preset_import_gives_the_testbed_lines(gw, imported):
    grid = shipped_grid()
    assert imported.source == TESTBED_SOURCE and imported.url == TESTBED_URL
    assert imported.version == grid.provenance.version and imported.format == "testbed"
    assert (imported.models, imported.points, imported.stored) == (len(grid.models), len(grid.points),
                                                                   len(grid.points))
    assert imported.replaced == 0 and imported.declared_testsets == len(grid.settings)
    assert not imported.unknown_testsets
    for transform in ("logit", "probit"):
        board = gw.client.leaderboard(shift=V2, transform=transform, resamples=100)
        line = shift_line(grid, V2, transform=transform)
        assert board.reference == "val" and board.er_mode == "binomial"
        assert board.fit.ok and board.fit.n == line.fit.n
        assert board.fit.slope == pytest.approx(line.fit.slope, abs=1e-9)
        assert board.fit.intercept == pytest.approx(line.fit.intercept, abs=1e-9)
        assert board.fit.r2 == pytest.approx(line.fit.r2, abs=1e-9)
        rows = {r.model: r for r in board.rows if r.imported}
        assert set(rows) == set(line.models)
        assert line.er is not None
        for model, er in line.er.items():
            row = rows[model]
            assert row.er == pytest.approx(er, abs=1e-9)
            assert (row.source, row.version, row.url) == (TESTBED_SOURCE, grid.provenance.version, TESTBED_URL)
            assert row.testbed_type == grid.models[model].testbed_type
            assert row.n_shift == 10000 and row.has_er_ci and row.has_diff_ci
        assert {r.model for r in board.rows if r.baseline} == set(line.fit.models)
    # ImageNet-A: accuracies of exactly 0 are left out of the fit and listed.
    board = gw.client.leaderboard(shift="imagenet-a", resamples=50)
    line = shift_line(grid, "imagenet-a")
    assert list(board.fit.excluded) == list(line.fit.excluded) and board.fit.excluded
    assert board.fit.slope == pytest.approx(line.fit.slope, abs=1e-9)
    assert any("left out of the fit" in n for n in board.notes)


def test_reimport_changes_nothing(gw, imported, submitter):
    again = submitter.import_results(preset="imagenet-testbed")
    assert (again.stored, again.replaced, again.unchanged) == (0, 0, imported.points)
    assert again.version == imported.version and again.declared_testsets == 0
    [source] = [s for s in gw.client.imported_sources() if s.source == TESTBED_SOURCE]
    assert (source.points, source.models, source.created_by) == (imported.points, imported.models,
                                                                  "results-submitter")


def _long(path, rows):
    path.write_text("model,testset,accuracy,total,category\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return path


def test_new_version_replaces_and_bad_row_stores_nothing(gw, submitter, tmp_path):
    rows = [(f"lab-{i}", t, a, 1000, "standard") for i in range(4)
            for t, a in (("lab-ref", 0.5 + 0.1 * i), ("lab-shift", 0.3 + 0.1 * i))]
    first = submitter.import_results(_long(tmp_path / "a.csv", rows), format="long", source="lab")
    assert (first.stored, first.replaced, first.models) == (8, 0, 4)
    assert sorted(first.unknown_testsets) == ["lab-ref", "lab-shift"]
    rows[-1] = ("lab-3", "lab-shift", 0.55, 1000, "standard")
    second = submitter.import_results(_long(tmp_path / "b.csv", rows), format="long", source="lab")
    assert (second.stored, second.replaced, second.unchanged) == (8, 8, 0)
    assert second.version != first.version
    [lab] = [s for s in gw.client.imported_sources() if s.source == "lab"]
    assert (lab.version, lab.points) == (second.version, 8)

    before = {s.source: (s.version, s.points) for s in gw.client.imported_sources()}
    bad = rows + [("lab-9", "lab-ref", 1.7, 1000, "standard")]
    with pytest.raises(InvalidArgument, match=r"row 9 .*accuracy '1.7' is outside \[0, 1\]"):
        submitter.import_results(_long(tmp_path / "bad.csv", bad), format="long", source="lab")
    with pytest.raises(InvalidArgument, match="row 2"):
        submitter.import_results(_long(tmp_path / "bad2.csv", [rows[0], ("lab-x", "lab-ref", "", "", "")]),
                                 format="long", source="lab-new")
    assert {s.source: (s.version, s.points) for s in gw.client.imported_sources()} == before


def test_who_may_import(gw, tmp_path):
    with Client(gw.target) as anonymous, pytest.raises(Unauthenticated):
        anonymous.import_results(preset="imagenet-testbed")
    token = gw.client.create_token("results-evaluator", role=pb.TOKEN_ROLE_EVALUATOR).token
    with Client(gw.target, token) as evaluator, pytest.raises(PermissionDenied, match="admin or submitter"):
        evaluator.import_results(preset="imagenet-testbed")
    with pytest.raises(InvalidArgument, match="unknown preset"):
        gw.client.import_results(preset="no-such-grid")


def test_compare_on_imported_is_failed_precondition(gw, imported):
    with pytest.raises(FailedPrecondition, match=r"not available for imported results \(accuracy only\)"):
        gw.client.compare("resnet50", "resnet101", V2)


def test_group_of_declared_shifts(gw, imported):
    board = gw.client.leaderboard(group="imagenet-c.fog", resamples=50)
    assert sorted(s.shift for s in board.shifts) == sorted(
        f"imagenet-c.fog.{k}_{m}" for k in range(1, 6) for m in ("in-memory", "on-disk"))
    ranked = [g for g in board.group_rows if g.complete]
    assert ranked and [g.rank for g in ranked] == sorted(g.rank for g in ranked)
    assert all(g.imported and g.has_mean_er_ci and g.mean_er_ci.low <= g.mean_er <= g.mean_er_ci.high
               for g in ranked)
    grid = shipped_grid()
    lines = [shift_line(grid, s.shift) for s in board.shifts]
    leader = ranked[0]
    assert all(ln.er is not None for ln in lines)
    assert leader.mean_er == pytest.approx(np.mean([ln.er[leader.model] for ln in lines if ln.er is not None]),
                                           abs=1e-9)


def test_declared_then_registered_and_a_measured_model_joins_the_line(gw, imported, tmp_path):
    images, labels = helpers.digits(400)
    path = train(tmp_path / "joiner.pt", 12, seed=5)
    gw.client.submit_model(path, metadata("joiner"))
    rng = np.random.default_rng(1)
    noisy = np.clip(images + rng.normal(0, 50, images.shape), 0, 255).astype(np.uint8)
    # No kind, no reference: both come from the declared settings.
    add_set(gw, tmp_path, "val", images, labels)
    add_set(gw, tmp_path, V2, noisy, labels)
    spec = gw.client.get_testset(V2).spec
    assert (spec.kind, spec.reference) == (pb.TEST_SET_KIND_NATURAL, "val")
    assert gw.client.get_testset("val").spec.kind == pb.TEST_SET_KIND_REFERENCE
    pending = gw.client.list_evaluations(testset=V2)
    assert [(e.key.model, e.status) for e in pending] == [("joiner", pb.EVALUATION_STATUS_PENDING)]
    ref_acc = evaluate(gw, path, "joiner", "val").mean()
    shift_acc = evaluate(gw, path, "joiner", V2).mean()

    board = gw.client.leaderboard(shift=V2, resamples=100)
    line = shift_line(shipped_grid(), V2)
    assert board.fit.slope == pytest.approx(line.fit.slope, abs=1e-9) and board.fit.n == line.fit.n
    joiner = next(r for r in board.rows if r.model == "joiner:1")
    assert not joiner.imported and not joiner.baseline and joiner.has_er and joiner.has_er_ci
    expected = 100 * (shift_acc - expit(line.fit.slope * logit(ref_acc) + line.fit.intercept))
    assert joiner.ref_acc == pytest.approx(ref_acc) and joiner.er == pytest.approx(expected, abs=1e-6)
    assert any("measured models are placed on their line" in n for n in board.notes)
    with pytest.raises(FailedPrecondition, match="not available for imported results"):
        gw.client.compare("joiner", "resnet50", V2)


def test_cli_results(gw, imported, tmp_path):
    env = {k: v for k, v in gw.settings.as_env().items() if v}
    runner = CliRunner()
    out = runner.invoke(app, ["results", "import", "--preset", "imagenet-testbed", "--json"], env=env)
    assert out.exit_code == 0, out.output
    view = json.loads(out.stdout)
    assert view["stored"] == 0 and view["unchanged"] == imported.points and view["version"] == imported.version
    out = runner.invoke(app, ["results", "list", "--json"], env=env)
    assert out.exit_code == 0, out.output
    assert TESTBED_SOURCE in {s["source"] for s in json.loads(out.stdout)}
    out = runner.invoke(app, ["leaderboard", "--shift", V2, "--resamples", "20", "--json"], env=env)
    assert out.exit_code == 0, out.output
    rows = json.loads(out.stdout)["rows"]
    resnet = next(r for r in rows if r["model"] == "resnet50")
    assert resnet["imported"] and resnet["source"] == TESTBED_SOURCE and resnet["url"] == TESTBED_URL
    assert resnet["version"] == imported.version and resnet["er"] is not None
    out = runner.invoke(app, ["leaderboard", "--shift", V2, "--resamples", "20"], env=env)
    assert out.exit_code == 0 and "imported" in out.output
    out = runner.invoke(app, ["results", "list"], env=env)
    assert out.exit_code == 0 and "testbed" in out.output

    grid = tmp_path / "grid.csv"
    grid.write_text("model,val,imagenet-sketch\nresnet50,76.1,abc\n")
    for args, message in [
        (["results", "import", str(grid), "--format", "testbed"], "row 1 (resnet50), column imagenet-sketch"),
        (["results", "import", str(tmp_path / "missing.csv"), "--format", "long"], "is not a file"),
        (["results", "import"], "--preset imagenet-testbed"),
        (["results", "import", str(grid)], "--format testbed"),
        (["results", "import", str(grid), "--format", "wide"], "use testbed"),
    ]:
        out = runner.invoke(app, args, env=env)
        assert out.exit_code == 1, (args, out.output)
        assert message in out.output and "Traceback" not in out.output, (args, out.output)
    no_token = {**env, "SHIFTBOARD_TOKEN": "sbt_not-a-token"}
    out = runner.invoke(app, ["results", "import", "--preset", "imagenet-testbed"], env=no_token)
    assert out.exit_code == 1 and "not valid" in out.output


def test_tables_and_scatter_mark_imported_rows():
    """The leaderboard's tables and scatter tell imported points from measured ones (no servers)."""
    from shiftboard.leaderboard import charts, data

    board = pb.Leaderboard(shift="s", reference="r")
    for model, imported_row in (("mine:1", False), ("resnet50", True)):
        board.rows.append(pb.LeaderboardRow(model=model, category="standard", ref_acc=0.7, shift_acc=0.6, n_ref=100,
                                            n_shift=100, baseline=imported_row, imported=imported_row,
                                            source="grid" if imported_row else ""))
    frame = data.ranking_frame(board)
    assert list(frame["origin"]) == ["measured", "imported"] and list(frame["source"]) == ["", "grid"]
    assert list(data.filter_models(frame, origins=["imported"])["model"]) == ["resnet50"]
    spec = json.dumps(charts.shift_scatter(frame, data.fit_frame(board), "logit").to_dict())
    assert "imported, in the fit" in spec and "square" in spec


def test_predictions_of_an_imported_model_are_not_available(gw, imported):
    with pytest.raises(FailedPrecondition, match=r"not available for imported results \(accuracy only\)"):
        gw.client.predictions("resnet50", V2)


def test_a_declared_setting_lends_its_class_protocol_when_the_data_fits_it():
    from shiftboard.services.gateway.results_rpcs import ResultsRpcs
    from shiftboard.testbed import class_map, class_sublist

    objectnet = pb.TestSetSpec(name="objectnet-1.0-beta", num_classes=113)
    ResultsRpcs._declared_classes(objectnet, "objectnet-1.0-beta")
    groups = class_map("objectnet-1.0-beta")
    assert [list(g.outputs) for g in objectnet.class_map] == [list(v) for v in groups.values()]
    assert list(objectnet.class_names) == list(groups) and not objectnet.class_subset
    rendition = pb.TestSetSpec(name="imagenet-r", num_classes=1000)
    ResultsRpcs._declared_classes(rendition, "imagenet-r")
    assert tuple(rendition.class_subset) == class_sublist("imagenet-r") and len(rendition.class_subset) == 200
    small = pb.TestSetSpec(name="imagenet-r", num_classes=10)  # labelled in other classes: nothing borrowed
    ResultsRpcs._declared_classes(small, "imagenet-r")
    assert not small.class_subset and not small.class_map


def test_shift_page_offers_declared_groups(gw, imported, monkeypatch):
    """The shift page's group picker lists the groups of imported settings; a large group shows its
    mean table and heatmap (one tab per shift only for small groups)."""
    from tests.test_leaderboard_app import run_page, table

    for key, value in gw.settings.as_env().items():
        monkeypatch.setenv(key, value)
    at = run_page("shift_page.py", view="group", group="imagenet-c.fog")
    assert at.title[0].value == "Group: imagenet-c.fog"
    assert {"imagenet-c.fog", "imagenet-c", "imagenetv2"} <= set(at.selectbox(key="group").options)
    board = gw.client.leaderboard(group="imagenet-c.fog")
    means = table(at, "mean_er", "mean_shift_acc")
    assert set(means["model"]) == {g.model for g in board.group_rows}
    assert [t.label for t in at.tabs] == [b.shift for b in board.shifts]  # 10 shifts: a tab each
