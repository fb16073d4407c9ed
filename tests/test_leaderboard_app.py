"""The Streamlit app, run by Streamlit's AppTest against the real gateway (and its pure table helpers).

The stack tests evaluate five small linear models (trained on scikit-learn's digits, as in
``test_leaderboard_rpc``) on a reference and three shifts, committing predictions computed in-process
as the worker would, and check every page against what the gateway itself answers.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from shiftboard.leaderboard import data
from shiftboard.v1 import shiftboard_pb2 as pb
from shiftboard.wire import vocab
from tests import helpers
from tests.test_gateway import metadata
from tests.test_leaderboard_rpc import add_set, evaluate, train

APP = str(Path(__file__).parents[1] / "leaderboard" / "app.py")
TIMEOUT = 120

REF, NOISE, DIM, FEW, GROUP = "ui-ref", "ui-noise", "ui-dim", "ui-few", "ui-corruptions"
CLASS_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
#: name -> (training steps, input noise while training, category, tags)
MODELS = {
    "ui-m0": (2, 0.0, "standard", ["linear"]),
    "ui-m1": (5, 0.0, "standard", ["linear"]),
    "ui-m2": (12, 0.0, "standard", ["linear"]),
    "ui-m3": (40, 0.0, "standard", ["linear"]),
    "ui-m4": (40, 0.4, "robustness-intervention", ["linear", "noise-aug"]),
}


def populate(gateway, tmp_path: Path) -> dict[str, dict[str, float]]:
    """Test sets and evaluated models for the app (once per gateway); shift accuracy per model and set.

    ``ui-few`` has only two evaluated (standard) models: no baseline fit. One evaluation is left
    running and others pending (submitting a model schedules it everywhere; no worker runs here).
    """
    if REF in {t.spec.name for t in gateway.client.list_testsets()}:
        return _accuracies(gateway)
    images, labels = helpers.digits(600)
    rng = np.random.default_rng(0)
    noisy = np.clip(images + rng.normal(0, 60, images.shape), 0, 255).astype(np.uint8)
    dim = (images * 0.45 + rng.normal(0, 25, images.shape)).clip(0, 255).astype(np.uint8)
    add_set(gateway, tmp_path, REF, images, labels, kind=pb.TEST_SET_KIND_REFERENCE, class_names=CLASS_NAMES)
    add_set(gateway, tmp_path, NOISE, noisy, labels, kind=pb.TEST_SET_KIND_SYNTHETIC, reference=REF,
            group=GROUP, class_names=CLASS_NAMES)
    add_set(gateway, tmp_path, DIM, dim, labels, kind=pb.TEST_SET_KIND_SYNTHETIC, reference=REF, group=GROUP)
    add_set(gateway, tmp_path, FEW, images[:, ::-1], labels, kind=pb.TEST_SET_KIND_NATURAL, reference=REF)
    for i, (name, (steps, noise, category, tags)) in enumerate(MODELS.items()):
        path = train(tmp_path / f"{name}.pt", steps, seed=i, noise=noise)
        md = metadata(name)
        md.category = vocab.category_value(category)
        md.ClearField("tags")
        md.tags.extend(tags)
        md.description = f"A linear model trained for {steps} steps."
        gateway.client.submit_model(path, md)
        for testset in (REF, NOISE, DIM) + ((FEW,) if i < 2 else ()):
            evaluate(gateway, path, name, testset)
    leave_running(gateway)
    return _accuracies(gateway)


def leave_running(gateway) -> None:
    """Start one evaluation and leave it running (with no heartbeat, the gateway hands it out again after
    SHIFTBOARD_EVAL_STALE_S: a test reading "running" starts it again first)."""
    gateway.client.start_evaluation(pb.EvaluationKey(model="ui-m4", version="1", testset=FEW))


def _accuracies(gateway) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for a in gateway.client.accuracy():
        if a.key.model.startswith("ui-"):
            out.setdefault(a.key.testset, {})[f"{a.key.model}:{a.key.version}"] = a.accuracy
    return out


@pytest.fixture
def app_env(gateway, monkeypatch):
    for key, value in gateway.settings.as_env().items():
        monkeypatch.setenv(key, value)
    return gateway


@pytest.fixture
def evaluated(app_env, tmp_path_factory):
    return populate(app_env, tmp_path_factory.mktemp("ui"))


def run_page(page: str | None = None, **params: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    if page:
        at.query_params.update(params)
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def table(at: AppTest, *columns: str) -> pd.DataFrame:
    """The first table on the page with all of ``columns``."""
    for df in at.dataframe:
        if set(columns) <= set(df.value.columns):
            return df.value
    raise AssertionError(f"no table has the columns {columns}")


def charts(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]


def chart_columns(at: AppTest, index: int = 0) -> set[str]:
    """Every column of every data set of a chart (Streamlit sends them as Arrow beside the spec)."""
    chart = at.get("vega_lite_chart")[index].proto
    return {c for d in chart.datasets for c in pa.ipc.open_stream(d.data.data).read_all().column_names}


def chart_values(at: AppTest, column: str, index: int = 0) -> list:
    chart = at.get("vega_lite_chart")[index].proto
    out = []
    for d in chart.datasets:
        table = pa.ipc.open_stream(d.data.data).read_all()
        if column in table.column_names:
            out += table.column(column).to_pylist()
    return out


# ---------------------------------------------------------------------------- first page (kept)


@pytest.mark.stack
def test_first_page_lists_models_and_testsets(app_env, tmp_path):
    app_env.client.submit_model(helpers.torchscript_model(tmp_path / "m.pt"), metadata("app-model"))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert at.title[0].value == "shiftboard"
    frames = [df.value for df in at.dataframe]
    assert any("name" in frame.columns and "app-model" in set(frame["name"]) for frame in frames)


@pytest.mark.stack
def test_unreachable_gateway_shows_error(monkeypatch, tmp_path):
    monkeypatch.setenv("SHIFTBOARD_GATEWAY_ADDRESS", f"127.0.0.1:{helpers.free_port()}")
    monkeypatch.setenv("SHIFTBOARD_STATE_DIR", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert not at.exception
    assert "not reachable" in at.error[0].value


# ---------------------------------------------------------------------------- overview


@pytest.mark.stack
def test_overview_heatmap_table_filters_progress_downloads(evaluated, app_env):
    leave_running(app_env)
    at = run_page()
    matrix = table(at, "mean_er", NOISE, DIM)
    board = app_env.client.leaderboard(shift=NOISE)
    ui_rows = matrix.set_index("model")
    for row in board.rows:
        assert ui_rows.loc[row.model, NOISE] == pytest.approx(row.er)
    assert FEW not in matrix.columns  # no fit there, so no ER: said in a caption instead
    assert any("not enough baseline models (2)" in c.value for c in at.caption)
    ours = matrix[matrix["model"].str.startswith("ui-")]
    assert list(ours["mean_er"]) == sorted(ours["mean_er"], reverse=True)  # best mean ER first

    heatmaps = [s for s in charts(at) if "rect" in json.dumps(s)]
    assert heatmaps, "no ER heatmap"
    assert "ER (pp)" in json.dumps(heatmaps[0])

    labels = [b.label for b in at.get("download_button")]  # type: ignore[union-attr]  # elements, never blocks
    # unfinished and all evaluations, ER matrix, ER pairs, models, test sets
    assert labels.count("CSV") == labels.count("Parquet") == 6
    progress = {m.label: m.value for m in at.metric}
    assert int(progress["running"]) >= 1 and int(progress["pending"]) >= 1
    assert at.get("progress"), "no progress bar"

    at.multiselect(key="categories").set_value(["robustness-intervention"]).run()
    matrix = table(at, "mean_er", NOISE)
    assert set(matrix["category"]) == {"robustness-intervention"}
    at.multiselect(key="categories").set_value([]).run()
    at.multiselect(key="tags").set_value(["noise-aug"]).run()
    assert set(table(at, "mean_er", NOISE)["model"]) == {"ui-m4:1"}


@pytest.mark.stack
def test_overview_buttons_open_the_shift_and_model_pages(evaluated):
    at = run_page()
    at.selectbox(key="open-shift").set_value(NOISE)
    at.button(key="goto-shift").click().run()
    assert not at.exception
    assert at.title[0].value == f"Shift: {NOISE}"
    at = run_page()
    at.selectbox(key="open-model").set_value("ui-m2:1")
    at.button(key="goto-model").click().run()
    assert not at.exception
    assert at.title[0].value == "Model: ui-m2:1"


# ---------------------------------------------------------------------------- shift page


@pytest.mark.stack
def test_shift_page_ranking_fit_and_scatter(evaluated, app_env):
    at = run_page("shift_page.py", shift=NOISE)
    assert at.title[0].value == f"Shift: {NOISE}"
    board = app_env.client.leaderboard(shift=NOISE)
    ranking = table(at, "rank", "tie", "er_interval")
    ours = ranking[ranking["model"].str.startswith("ui-")]
    assert list(ranking["model"]) == [r.model for r in board.rows]
    assert len(ours) == len(MODELS)
    for row, (_, shown) in zip(board.rows, ranking.iterrows(), strict=True):
        assert shown["er"] == pytest.approx(row.er)
        assert shown["rank"] == row.rank
        assert shown["tie"] == ("tied" if row.tied else "")
        assert shown["er_interval"] == f"[{row.er_ci.low:+.2f}, {row.er_ci.high:+.2f}]"
        if row.model in evaluated[NOISE]:  # shown as percentages
            assert shown["ref_acc"] == pytest.approx(100 * evaluated[REF][row.model])
            assert shown["shift_acc"] == pytest.approx(100 * evaluated[NOISE][row.model])
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["slope"] == f"{board.fit.slope:.3f}"
    assert int(metrics["baseline models"]) == board.fit.n
    assert metrics[f"most robust: {board.rows[0].model}"] == f"{board.rows[0].er:+.2f} pp"

    specs = charts(at)
    assert len(specs) == 1
    text = json.dumps(specs[0])
    assert {"band_low_t", "band_high_t", "predicted_t", "category", "er_text"} <= chart_columns(at)
    assert chart_values(at, "line") == ["y = x", "y = x"]
    assert set(chart_values(at, "model")) == {r.model for r in board.rows}
    assert chart_values(at, "band_low") == pytest.approx(list(board.fit.band_low))
    assert "1 / (1 + exp(-datum.value))" in text  # logit axes labelled in accuracy

    at.radio(key="transform").set_value("probit").run()
    assert not at.exception
    probit = app_env.client.leaderboard(shift=NOISE, transform="probit")
    assert {m.label: m.value for m in at.metric}["slope"] == f"{probit.fit.slope:.3f}"
    assert "cumulativeNormal" in json.dumps(charts(at)[0])
    assert at.query_params.get("transform") == "probit"  # shareable


@pytest.mark.stack
def test_shift_page_says_when_the_baseline_is_too_small(evaluated):
    at = run_page("shift_page.py", shift=FEW)
    assert any(w.value == "not enough baseline models (2)" for w in at.warning)
    ranking = table(at, "rank", "tie", "er_interval")
    assert ranking["er"].isna().all() and len(ranking) == 2
    assert charts(at), "the scatter plot is drawn without a fit too"


@pytest.mark.stack
def test_shift_page_group_view(evaluated, app_env):
    at = run_page("shift_page.py", view="group", group=GROUP)
    assert at.title[0].value == f"Group: {GROUP}"
    board = app_env.client.leaderboard(group=GROUP)
    means = table(at, "mean_er", "mean_shift_acc")
    assert set(means["model"]) == {g.model for g in board.group_rows}
    assert [t.label for t in at.tabs] == [b.shift for b in board.shifts]
    assert len(charts(at)) == 1 + len(board.shifts)  # the group heatmap and one scatter per shift


@pytest.mark.stack
def test_shift_page_compares_two_models(evaluated, app_env):
    at = run_page("shift_page.py", shift=NOISE)
    at.selectbox(key="compare-a").set_value("ui-m3:1")
    at.selectbox(key="compare-b").set_value("ui-m4:1")
    at.button(key="compare").click().run()
    assert not at.exception
    c = app_env.client.compare("ui-m3:1", "ui-m4:1", NOISE)
    assert {m.label: m.value for m in at.metric}["p-value"] == f"{c.p_value:.3g}"


# ---------------------------------------------------------------------------- model page


@pytest.mark.stack
def test_model_page_robustness_classes_and_hardest_samples(evaluated, app_env):
    at = run_page("model_page.py", model="ui-m4:1", testset=NOISE)
    assert at.title[0].value == "Model: ui-m4:1"
    across = table(at, "shift", "er", "of")
    assert set(across["shift"]) == {NOISE, DIM}  # not ui-few: ui-m4 has no result there
    er = {r.model: r.er for r in app_env.client.leaderboard(shift=DIM).rows}
    assert across.set_index("shift").loc[DIM, "er"] == pytest.approx(er["ui-m4:1"])
    assert any("er_low" in chart_columns(at, i) for i in range(len(charts(at)))), "no ER bar chart"

    preds = data.predictions_frame(app_env.client.predictions("ui-m4", NOISE, "1"))
    per_class = table(at, "class", "name", "accuracy")
    expected = preds.groupby("label")["correct"].mean()
    assert per_class.set_index("class")["accuracy"].to_dict() == pytest.approx((100 * expected).to_dict())

    hardest = table(at, "label_name", "confidence")
    wrong = preds[~preds["correct"]].sort_values("confidence", ascending=False)
    assert list(hardest["sample"]) == list(wrong["sample"].head(len(hardest)))
    assert (hardest["label"] != hardest["top1"]).all()
    images = at.get("image")
    assert len(images) == len(hardest) == 12
    first = hardest.iloc[0]
    captions = images[0].captions  # type: ignore[union-attr]  # an element, never a block
    assert captions == [f"#{first['sample']}: {first['label_name']} → {first['predicted']} "
                        f"({first['confidence'] / 100:.0%})"]  # the table shows percentages
    accuracy = table(at, "testset", "accuracy")
    shown = accuracy.set_index("testset").loc[NOISE, "accuracy"]
    assert shown == pytest.approx(100 * evaluated[NOISE]["ui-m4:1"])

    at.slider(key="hardest-count").set_value(3).run()
    assert len(at.get("image")) == 3


# ---------------------------------------------------------------------------- tables (no servers)


def _board() -> pb.Leaderboard:
    board = pb.Leaderboard(shift="s", reference="r")
    for i, (model, category, er) in enumerate([("a:1", "standard", 1.5), ("b:1", "more-data", -0.5)]):
        board.rows.append(pb.LeaderboardRow(model=model, category=category, ref_acc=0.8, shift_acc=0.6,
                                            n_ref=10, n_shift=10, has_er=True, er=er, has_er_ci=True,
                                            er_ci=pb.Interval(low=er - 1, high=er + 1), rank=i + 1, tied=True,
                                            tags=["x"] if i else []))
    return board


def test_er_matrix_orders_by_mean_and_filters():
    long = data.er_long_frame({"s": _board(), "t": _board()})
    matrix = data.er_matrix(long, ["t", "s"])
    assert list(matrix["model"]) == ["a:1", "b:1"] and list(matrix.columns[-2:]) == ["t", "s"]
    assert matrix.set_index("model").loc["b:1", "mean_er"] == pytest.approx(-0.5)
    assert list(data.filter_models(long, ["more-data"])["model"].unique()) == ["b:1"]
    assert list(data.filter_models(long, tags=["x"])["model"].unique()) == ["b:1"]
    assert data.ranking_frame(_board())["er_interval"].tolist() == ["[+0.50, +2.50]", "[-1.50, +0.50]"]


def test_downloads_round_trip_through_parquet_and_csv():
    frame = data.ranking_frame(_board()).assign(mixed=[1, "a"], lists=[[], ["t"]])
    back = pd.read_parquet(io.BytesIO(data.to_parquet(frame)))
    assert list(back["model"]) == ["a:1", "b:1"] and list(back["mixed"]) == ["1", "a"]
    assert pd.read_csv(io.BytesIO(data.to_csv(frame)))["er"].tolist() == [1.5, -0.5]


def test_hardest_samples_images_and_fingerprint():
    preds = data.predictions_frame([pb.Predictions(sample=[0, 1, 2], label=[1, 2, 3], top1=[1, 0, 0],
                                                   top5=list(range(15)), confidence=[0.99, 0.6, 0.9],
                                                   correct=[True, False, False])])
    assert list(data.hardest_samples(preds, 5)["sample"]) == [2, 1]
    assert data.per_class_accuracy(preds, CLASS_NAMES)["name"].tolist() == ["one", "two", "three"]
    grey = data.image_array(bytes(range(64)), 1, 8, 8, min_side=32)
    assert grey.shape == (32, 32) and grey[0, 0] == 0 and grey[0, 4] == 1
    assert data.image_array(bytes(3 * 4), 3, 2, 2, min_side=2).shape == (2, 2, 3)
    done = pb.Evaluation(key=pb.EvaluationKey(model="m", version="1", testset="t"),
                         status=pb.EVALUATION_STATUS_SUCCEEDED)
    pending = pb.Evaluation(key=pb.EvaluationKey(model="m", version="1", testset="u"),
                            status=pb.EVALUATION_STATUS_PENDING)
    assert data.results_fingerprint([done, pending]) == data.results_fingerprint([done])
    assert data.results_fingerprint([done]) != data.results_fingerprint([])
    stamps = data.result_stamps([done, pending])
    assert list(stamps) == ["m:1@t"]
    assert data.fingerprint(stamps, {"u"}) == data.fingerprint({}) != data.fingerprint(stamps, {"t"})
    p = data.progress([done, pending])
    assert (p.succeeded, p.pending, p.active, p.fraction) == (1, 1, True, 0.5)
