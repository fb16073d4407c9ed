"""The shipped ImageNet testbed: its settings, the parsers, and its lines against an independent computation."""

from __future__ import annotations

import csv
import hashlib
import io
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit, logit
from scipy.stats import linregress, norm

from shiftboard.domain.errors import InvalidArgument
from shiftboard.domain.robustness import shift_leaderboard
from shiftboard.testbed import (
    CATEGORY_WORDS,
    class_map,
    class_sublist,
    describe,
    describe_all,
    leaderboard_settings,
    read_long,
    read_model_types,
    read_testbed,
    shift_line,
    shift_lines,
    shift_table,
    shipped_grid,
    write_long,
)
from shiftboard.wire import vocab

DATA = resources.files("shiftboard.testbed").joinpath("data")

# The testbed's natural shifts and the reference each is plotted against (its plotting scripts).
NATURAL = {
    "imagenetv2-matched-frequency": "val",
    "imagenetv2-matched-frequency-format-val": "val",
    "imagenetv2-threshold0.7": "val",
    "imagenetv2-threshold-0.7-format-val": "val",
    "imagenetv2-topimages": "val",
    "imagenetv2-top-images-format-val": "val",
    "imagenetv2-matched-frequency-format-val_subsampled_class_1_8": "val_subsampled_class_1_8",
    "imagenet-sketch": "val",
    "objectnet-1.0-beta": "val-on-objectnet-classes",
    "imagenet-r": "val-on-imagenet-r-classes",
    "imagenet-a": "val-on-imagenet-a-classes",
    "imagenet-vid-robust_pm0": "val-on-vid-robust-classes",
    "imagenet-vid-robust_pm10": "imagenet-vid-robust_pm0",
    "ytbb-robust_pm0": "val-on-ytbb-robust-classes",
    "ytbb-robust_pm10": "ytbb-robust_pm0",
}


@pytest.fixture(scope="module")
def grid() -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(DATA.joinpath("robustness_top1s.csv").read_bytes()), index_col="model")


@pytest.fixture(scope="module")
def types() -> pd.Series:
    return pd.read_csv(io.BytesIO(DATA.joinpath("model_types.csv").read_bytes()), index_col="model")["type"]


def _independent(grid: pd.DataFrame, types: pd.Series, ref: str, shift: str, transform: str) -> dict[str, object]:
    """The testbed's method from scipy primitives: percent in, STANDARD minus aws/batch64/subsample,
    0% and 100% left out of the fit, least squares on logit or probit axes."""
    forward = (lambda p: logit(p / 100)) if transform == "logit" else (lambda p: norm.ppf(p / 100))
    back = (lambda z: 100 * expit(z)) if transform == "logit" else (lambda z: 100 * norm.cdf(z))
    both = grid[[ref, shift]].dropna()
    names = both.index.to_series()
    rule = (types.reindex(both.index) == "STANDARD") & ~names.str.lower().str.contains("aws|batch64|subsample")
    interior = (both[ref] > 0) & (both[ref] < 100) & (both[shift] > 0) & (both[shift] < 100)
    line = both[rule & interior]
    fit = linregress(forward(line[ref].to_numpy()), forward(line[shift].to_numpy()))
    er = both[shift] - back(fit.slope * forward(both[ref].to_numpy()) + fit.intercept)
    return {"slope": fit.slope, "intercept": fit.intercept, "r2": fit.rvalue ** 2, "n": len(line),
            "er": er.to_dict(), "excluded": sorted(both[rule & ~interior].index)}


def test_the_protocol_knows_every_column_and_the_natural_shifts(grid: pd.DataFrame) -> None:
    described = describe_all(grid.columns)
    assert described.unknown == () and len(described.settings) == 213
    natural = {n: s.reference for n, s in described.settings.items() if s.kind == "natural"}
    assert natural == NATURAL
    kinds = [s.kind for s in described.settings.values()]
    assert (kinds.count("synthetic"), kinds.count("adversarial"), kinds.count("reference")) == (187, 4, 7)
    # every val-on-* column is the reference of exactly the shift scored on its classes
    users = {s.reference: n for n, s in described.settings.items() if s.reference and s.reference.startswith("val-on")}
    assert users == {"val-on-imagenet-a-classes": "imagenet-a", "val-on-imagenet-r-classes": "imagenet-r",
                     "val-on-objectnet-classes": "objectnet-1.0-beta",
                     "val-on-vid-robust-classes": "imagenet-vid-robust_pm0",
                     "val-on-ytbb-robust-classes": "ytbb-robust_pm0"}
    fog = described.settings["imagenet-c.fog.3_on-disk"]
    assert (fog.kind, fog.reference, fog.group, fog.samples) == ("synthetic", "val", "imagenet-c.fog_on-disk", 50000)
    assert {"imagenet-c.fog", "imagenet-c.severity-3", "imagenet-c_on-disk", "imagenet-c"} <= set(fog.groups)
    pgd = described.settings["pgd.linf.eps2"]
    assert (pgd.kind, pgd.groups) == ("adversarial", ("pgd.linf", "pgd"))
    assert described.settings["imagenetv2-topimages"].group == "imagenetv2"


def test_sample_counts_make_every_published_accuracy_a_whole_number_of_samples(grid: pd.DataFrame) -> None:
    for name, setting in describe_all(grid.columns).settings.items():
        assert setting.samples is not None, name
        counts = grid[name].dropna().to_numpy() / 100 * setting.samples
        assert np.abs(counts - np.round(counts)).max() < 0.02, name


def test_rules_understand_other_versions_of_the_grid_and_report_the_rest() -> None:
    later = describe_all(["imagenet-c.fog.3_on-disk_10percent", "ytbb-robust_pm4", "imagenetv2-new-format-val",
                          "pgd.l2.eps3", "val-on-imagenet-r-classes", "avg_corruptions", "mystery_pm0"])
    assert later.unknown == ("avg_corruptions", "mystery_pm0")
    assert later.settings["imagenet-c.fog.3_on-disk_10percent"].samples == 5000
    assert later.settings["ytbb-robust_pm4"].reference == "ytbb-robust_pm0"
    assert later.settings["imagenetv2-new-format-val"].kind == "natural"
    assert later.settings["pgd.l2.eps3"].kind == "adversarial"
    assert describe("nothing-like-it") is None


@pytest.mark.parametrize("transform", ["logit", "probit"])
def test_every_natural_shift_matches_an_independent_computation(grid: pd.DataFrame, types: pd.Series,
                                                                transform: str) -> None:
    results = shipped_grid()
    lines = shift_lines(results, kinds=("natural",), transform=transform)
    assert set(lines) == set(NATURAL)
    for shift, ref in NATURAL.items():
        mine, theirs = lines[shift], _independent(grid, types, ref, shift, transform)
        assert mine.reference == ref and mine.fit.ok, shift
        assert mine.fit.n == theirs["n"] and sorted(mine.fit.excluded) == theirs["excluded"], shift
        assert mine.fit.slope == pytest.approx(theirs["slope"], abs=1e-9), shift
        assert mine.fit.intercept == pytest.approx(theirs["intercept"], abs=1e-9), shift
        assert mine.fit.r2 == pytest.approx(theirs["r2"], abs=1e-9), shift
        er = theirs["er"]
        assert isinstance(er, dict) and mine.er is not None and set(mine.er) == set(er), shift
        worst = max(abs(mine.er[m] - er[m]) for m in er)
        assert worst < 0.01, (shift, worst)
    a = lines["imagenet-a"]
    assert a.fit.excluded == ("resnet50",) and "resnet50" in a.baseline and "resnet50" not in a.fit.models
    assert a.er is not None and a.er["resnet50"] < 0  # 0% on ImageNet-A, still measured against the line


def test_the_leaderboard_path_gives_the_same_er_as_the_lines() -> None:
    results = shipped_grid()
    line = shift_line(results, "objectnet-1.0-beta")
    board = shift_leaderboard(shift_table(results, "objectnet-1.0-beta"), leaderboard_settings(resamples=200),
                              shift="objectnet-1.0-beta")
    assert board.fit.n == line.fit.n and board.fit.slope == pytest.approx(line.fit.slope, abs=1e-12)
    assert line.er is not None
    for row in board.rows:
        assert row.er == pytest.approx(line.er[row.model], abs=1e-9)
        assert row.baseline == (row.model in line.fit.models)
    assert board.er_mode == "binomial" and all(r.diff_ci is not None for r in board.rows)
    a = shift_leaderboard(shift_table(results, "imagenet-a"), leaderboard_settings(resamples=0))
    assert any("left out of the fit" in n and "resnet50" in n for n in a.notes)


def test_shipped_data_licence_and_citation() -> None:
    assert "MIT License" in DATA.joinpath("LICENSE").read_text("utf-8")
    readme = DATA.joinpath("README.md").read_text("utf-8")
    assert "Taori" in readme and "NeurIPS 2020" in readme and "MIT" in readme
    protocols = {p: class_sublist(p) for p in ("imagenet-r", "imagenet-a", "objectnet-1.0-beta")}
    assert [len(v) for v in protocols.values()] == [200, 200, 125]
    objectnet = class_map("objectnet-1.0-beta")
    assert len(objectnet) == 113 and sum(len(v) for v in objectnet.values()) == 125
    results = shipped_grid()
    digest = hashlib.sha256(DATA.joinpath("robustness_top1s.csv").read_bytes()).hexdigest()
    assert results.provenance.version == digest and results.provenance.url.startswith("https://github.com/")
    assert len(results.models) == 338 and len(results.points) == int(pd.read_csv(
        io.BytesIO(DATA.joinpath("robustness_top1s.csv").read_bytes()), index_col=0).notna().sum().sum())


def test_categories_cover_the_platform_words_and_the_testbed_types() -> None:
    assert set(vocab.CATEGORIES) <= set(CATEGORY_WORDS)
    results = shipped_grid()
    seen = {(m.testbed_type, m.category) for m in results.models.values()}
    assert ("LP_ADV", "lp-adversarial") in seen and ("LOW_ACCURACY_CNN", "low-accuracy") in seen
    assert ("ROBUST_INTV", "robustness-intervention") in seen and ("MORE_DATA", "more-data") in seen


def test_reparsing_is_identical_and_an_edit_is_a_new_version(tmp_path: Path) -> None:
    content = DATA.joinpath("robustness_top1s.csv").read_bytes()
    path = tmp_path / "grid.csv"
    path.write_bytes(content)
    one, two = read_testbed(path), read_testbed(str(path))
    assert one == two and one.provenance.version == hashlib.sha256(content).hexdigest()
    edited = read_testbed(content.replace(b"76.13", b"76.14", 1))
    assert edited.provenance.version != one.provenance.version and edited.points != one.points


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_long_format_round_trip(tmp_path: Path, suffix: str) -> None:
    results = shipped_grid()
    back = read_long(write_long(results, tmp_path / f"grid{suffix}"))
    assert back.models == results.models and back.points == results.points
    assert back.settings == results.settings and back.provenance.format == "long"
    again = read_long(tmp_path / f"grid{suffix}")
    assert again == back


def test_long_format_counts_percent_and_unknown_test_sets() -> None:
    text = ("model,testset,correct,total,category,source,url\n"
            "a,val,761,1000,standard,paper,https://x\n"
            "a,digits-printed,50,100,standard,,\n")
    results = read_long(text)
    val, digits = results.points
    assert (val.accuracy, val.samples, val.correct, val.source, val.url) == (0.761, 1000, 761, "paper", "https://x")
    assert results.unknown_settings == ("digits-printed",) and "val" in results.settings
    percent = read_long("model,testset,accuracy\nb,imagenet-sketch,35.5\n", scale="percent",
                        model_types={"b": "MORE_DATA"})
    (point,) = percent.points
    assert point.accuracy == pytest.approx(0.355) and point.samples == 50889
    assert percent.models["b"].category == "more-data"


def _grid(*rows: str, header: str = "model,val,imagenet-sketch") -> str:
    return "\n".join([header, *rows]) + "\n"


@pytest.mark.parametrize(("text", "types", "message"), [
    (_grid("resnet50,76.1,101"), None, r"row 1 \(resnet50\), column imagenet-sketch: '101' is not a percentage"),
    (_grid("resnet50,76.1,abc"), None, r"'abc' is not a percentage in \[0, 100\]"),
    (_grid("resnet50,76.1,20", "resnet50,70,20"), None, "row 2: model resnet50 appears again"),
    (_grid("resnet50,76.1"), None, "row 1 has 2 cells for 3 columns"),
    (_grid("newnet,76.1,20"), None, r"1 model\(s\) have no type .*newnet.*add a `model,type` row"),
    (_grid("newnet,76.1,20"), "model,type\nnewnet,BIGGER\n", "unknown model type 'BIGGER' for newnet"),
    (_grid("resnet50,1,2", header="name,val,x"), None, "the first column is 'name': it must be `model`"),
    (_grid("resnet50,1,2", header="model,val,val"), None, r"column 3 \(val\) repeats column 2"),
    ("", None, "is empty"),
    (_grid(), None, "no model rows"),
])
def test_testbed_parser_errors(text: str, types: str | None, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        read_testbed(text if "\n" in text else text.encode(), model_types=types)


@pytest.mark.parametrize(("text", "message"), [
    ("model,testset,accuracy\na,val,76.1\n", r"accuracy '76.1' is outside \[0, 1\]: give fractions, or read the file "
                                             r"as percentages"),
    ("model,testset,correct,total\na,val,11,10\n", r"correct 11 is outside \[0, total=10\]"),
    ("model,testset,correct,total\na,val,1.5,10\n", "must be whole numbers"),
    ("model,testset\na,val\n", r"missing column\(s\) accuracy \(or correct and total\)"),
    ("model,accuracy\na,0.5\n", r"missing column\(s\) testset"),
    ("model,testset,acuracy\na,val,0.5\n", "unknown column.*'acuracy'"),
    ("model,testset,accuracy\na,val,0.5\na,val,0.6\n", "row 2: a on val appears again"),
    ("model,testset,accuracy,category\na,val,0.5,fancy\n", "unknown category 'fancy'"),
    ("model,testset,accuracy,category\na,val,0.5,standard\na,x,0.5,more-data\n", "give each model one category"),
    ("model,testset,accuracy,correct,total\na,val,0.5,7,10\n", "disagrees with correct/total"),
    ("model,testset,accuracy\n,val,0.5\n", "row 1: model is empty"),
])
def test_long_parser_errors(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        read_long(text)


def test_errors_list_several_problems_and_return_nothing(tmp_path: Path) -> None:
    rows = [f"m{i},testset{i},{2 + i}" for i in range(8)]
    with pytest.raises(InvalidArgument, match=r"row 1 .*; row 2 .*\(and 3 more\)"):
        read_long("model,testset,accuracy\n" + "\n".join(rows) + "\n")
    with pytest.raises(InvalidArgument, match="cannot read results table"):
        read_long(tmp_path / "missing.csv")
    with pytest.raises(InvalidArgument, match="header must be `model,type`"):
        read_model_types("kind,model\n")


def test_shift_table_needs_sample_counts_and_a_known_shift() -> None:
    results = read_long("model,testset,accuracy,category\na,val,0.5,standard\na,mystery,0.4,standard\n")
    with pytest.raises(InvalidArgument, match="mystery is not a setting the testbed protocol knows"):
        shift_table(results, "mystery")
    with pytest.raises(InvalidArgument, match="is a reference setting"):
        shift_line(results, "val")


def test_the_shipped_csv_is_what_the_csv_module_reads() -> None:
    rows = list(csv.reader(io.StringIO(DATA.joinpath("robustness_top1s.csv").read_text("utf-8"))))
    assert rows[0][0] == "model" and len(rows) == 339 and {len(r) for r in rows} == {214}
