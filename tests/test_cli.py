"""The CLI against the real gateway and object store: happy paths, --json output, clear errors."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from minio import Minio
from typer.testing import CliRunner

from shiftboard import credentials
from shiftboard.cli.app import app
from tests import helpers

pytestmark = pytest.mark.stack


@pytest.fixture
def cli(gateway):
    runner = CliRunner()
    env = {k: v for k, v in gateway.settings.as_env().items() if v}
    env["SHIFTBOARD_GATEWAY_ADDRESS"] = gateway.target
    env["SHIFTBOARD_TOKEN"] = ""

    def run(*args: str, ok: bool = True):
        result = runner.invoke(app, list(args), env=env)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    return run


def test_help_explains_commands(cli):
    out = cli("--help").output
    for word in ("up", "down", "status", "config", "model", "testset", "token"):
        assert word in out
    assert "--input-shape" in cli("model", "submit", "--help").output


def test_config_masks_secrets(cli, gateway):
    out = json.loads(cli("config", "--json").output)
    assert out["SHIFTBOARD_GATEWAY_ADDRESS"] == gateway.target
    assert out["SHIFTBOARD_S3_SECRET_KEY"] != gateway.settings.s3_secret_key.get_secret_value()


def test_model_submit_list_show(cli, tmp_path, gateway):
    path = helpers.torchscript_model(tmp_path / "m.pt")
    # Notes (the detected format, the deprecation of TorchScript) go to stderr; --json output to stdout.
    out = cli("model", "submit", str(path), "--name", "cli-linear", "--version", "3", "--num-classes", "10",
              "--input-shape", "1,8,8", "--value-range", "0,1", "--mean", "0.5", "--std", "0.25",
              "--category", "robustness-intervention", "--tag", "demo", "--json").stdout
    stored = json.loads(out)
    assert stored["category"] == "robustness-intervention" and stored["mean"] == [0.5]
    listed = json.loads(cli("model", "list", "--json").output)
    mine = [m for m in listed if m["name"] == "cli-linear"]
    assert len(mine) == 1 and mine[0]["version"] == "3" and mine[0]["tags"] == ["demo"]
    assert mine[0]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert "cli-linear" in cli("model", "show", "cli-linear").output
    # The bytes are in the object store, readable by any S3 client with the generated credentials.
    creds = credentials.s3_credentials(gateway.settings)
    assert creds is not None
    s3 = Minio(gateway.settings.s3_target, access_key=creds.access_key, secret_key=creds.secret_key,
               secure=False)
    key = stored["artifact_uri"].split("/", 3)[3]
    assert s3.get_object(gateway.settings.s3_bucket, key).read() == path.read_bytes()


def test_model_errors_are_one_line(cli, tmp_path):
    bad = helpers.plain_pickle(tmp_path / "p.pt")
    result = cli("model", "submit", str(bad), "--name", "p", "--num-classes", "10", "--input-shape", "1,8,8",
                 ok=False)
    assert result.exit_code == 1
    assert "Error:" in result.output and "pickle" in result.output and "Traceback" not in result.output
    result = cli("model", "submit", str(bad), "--name", "p", "--num-classes", "10", "--input-shape", "1,8",
                 ok=False)
    assert result.exit_code == 1 and "C,H,W" in result.output
    result = cli("model", "show", "does-not-exist", ok=False)
    assert result.exit_code == 1 and "does not exist" in result.output


def test_testset_add_npz_and_imagefolder(cli, tmp_path, gateway):
    npz = helpers.digits_npz(tmp_path / "digits.npz", 500)
    out = json.loads(cli("testset", "add", str(npz), "--name", "cli-digits", "--kind", "reference",
                         "--shard-samples", "200", "--json").output)
    assert out["num_samples"] == 500 and out["num_shards"] == 3 and out["kind"] == "reference"
    folder = helpers.digits_folder(tmp_path / "folder", 60)
    out = json.loads(cli("testset", "add", str(folder), "--name", "cli-folder", "--kind", "natural",
                         "--reference", "cli-digits", "--classes", "0,1,2,3,4,5,6,7,8,9", "--size", "8x8",
                         "--json").output)
    assert out["num_samples"] == 60 and out["reference"] == "cli-digits" and out["input_shape"] == [1, 8, 8]
    listed = {t["name"]: t for t in json.loads(cli("testset", "list", "--json").output)}
    assert {"cli-digits", "cli-folder"} <= set(listed)
    for shard in out["shards"]:
        assert hashlib.sha256(gateway.store.get_bytes(shard["key"])).hexdigest() == shard["sha256"]


def _npz(d: Path, **arrays: Any) -> Path:
    helpers.np.savez(d / "x.npz", **arrays)
    return d / "x.npz"


@pytest.mark.parametrize("make, words", [
    (lambda d: _npz(d, labels=helpers.np.zeros(3)), "images"),
    (lambda d: _npz(d, images=helpers.np.zeros((4, 8, 8), "uint8"), labels=helpers.np.zeros(3, "int64")), "label"),
    (lambda d: _npz(d, images=helpers.np.zeros((0, 8, 8), "uint8"), labels=helpers.np.zeros(0, "int64")),
     "zero images"),
])
def test_testset_add_bad_npz(cli, tmp_path, make, words, gateway):
    before = len(gateway.client.list_testsets())
    result = cli("testset", "add", str(make(tmp_path)), "--name", "bad-npz", "--kind", "reference", ok=False)
    assert result.exit_code == 1 and "Error:" in result.output and words in result.output
    assert len(gateway.client.list_testsets()) == before


def test_testset_add_labels_out_of_range(cli, tmp_path):
    npz = helpers.digits_npz(tmp_path / "d.npz", 100)
    result = cli("testset", "add", str(npz), "--name", "oor", "--kind", "reference", "--num-classes", "5",
                 ok=False)
    assert result.exit_code == 1 and "outside [0, 5)" in result.output


def test_testset_add_bad_imagefolder(cli, tmp_path):
    empty = tmp_path / "empty"
    (empty / "cat").mkdir(parents=True)
    result = cli("testset", "add", str(empty), "--name", "empty", "--kind", "reference", ok=False)
    assert result.exit_code == 1 and "holds no .jpg/.jpeg/.png images" in result.output
    broken = helpers.digits_folder(tmp_path / "broken", 20)
    (broken / "class_0" / "zz-broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    result = cli("testset", "add", str(broken), "--name", "broken", "--kind", "reference", ok=False)
    assert result.exit_code == 1 and "zz-broken.png" in result.output


def test_testset_add_missing_reference(cli, tmp_path):
    npz = helpers.digits_npz(tmp_path / "d.npz", 50)
    result = cli("testset", "add", str(npz), "--name", "shifty", "--kind", "natural", "--reference", "nope",
                 ok=False)
    assert result.exit_code == 1 and "'nope' does not exist" in result.output


def test_token_create_prints_token_once(cli, gateway):
    result = cli("token", "create", "bob")
    token = result.stdout.strip().splitlines()[-1]
    assert token.startswith("sbt_")
    assert gateway.client.create_token("bob2").token != token


def test_mutating_without_token(cli, tmp_path, gateway, monkeypatch):
    runner = CliRunner()
    env = {k: v for k, v in gateway.settings.as_env().items() if v}
    env.update(SHIFTBOARD_GATEWAY_ADDRESS=gateway.target, SHIFTBOARD_TOKEN="sbt_wrong",
               SHIFTBOARD_STATE_DIR=str(tmp_path / "elsewhere"))
    path = helpers.torchscript_model(tmp_path / "m.pt")
    result = runner.invoke(app, ["model", "submit", str(path), "--name", "x", "--num-classes", "10",
                                 "--input-shape", "1,8,8"], env=env)
    assert result.exit_code == 1 and "token is not valid" in result.output


def test_testset_add_transform_and_class_map(cli, tmp_path, gateway):
    """--border/--resize/--crop are recorded in the manifest and shown; class maps from a file or a preset."""
    npz = helpers.digits_npz(tmp_path / "d.npz", 120)
    out = json.loads(cli("testset", "add", str(npz), "--name", "cli-cropped", "--kind", "reference", "--border", "1",
                         "--resize", "12", "--crop", "10", "--interpolation", "bicubic", "--json").output)
    assert out["input_shape"] == [1, 10, 10]
    want = {"border": 1, "resize": 12, "crop": [10, 10], "interpolation": "bicubic", "stretch": False}
    assert out["transform"] == want
    assert json.loads(cli("testset", "show", "cli-cropped", "--json").output)["transform"] == want
    shown = " ".join(cli("testset", "show", "cli-cropped").output.split())  # the console wraps long lines
    assert "transform border 1 px cropped, then shorter side resized to 12 (bicubic), then centre crop 10x10" in shown
    sized = json.loads(cli("testset", "add", str(npz), "--name", "cli-sized", "--kind", "reference", "--size", "16",
                           "--json").output)
    assert sized["input_shape"] == [1, 16, 16] and sized["transform"]["stretch"] is True

    class_map = tmp_path / "map.json"
    class_map.write_text(json.dumps({"low": [0, 1, 2, 3, 4], "high": [5, 6, 7, 8, 9]}))
    images, labels = helpers.digits(120)
    import numpy as np

    np.savez(tmp_path / "halves.npz", images=images, labels=(labels >= 5).astype(np.int64))
    cli("testset", "add", str(npz), "--name", "cli-map-ref", "--kind", "reference")
    mapped = json.loads(cli("testset", "add", str(tmp_path / "halves.npz"), "--name", "cli-halves", "--kind",
                            "natural", "--reference", "cli-map-ref", "--class-map", str(class_map), "--json").output)
    assert mapped["num_classes"] == 2 and mapped["class_names"] == ["low", "high"]
    assert mapped["class_map"] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    assert "class_map 2 classes <- 10 model outputs" in " ".join(cli("testset", "show", "cli-halves").output.split())


@pytest.mark.parametrize(("args", "words"), [
    (["--resize", "8", "--crop", "10"], "--crop 10x10 is larger than --resize 8"),
    (["--resize", "8"], "give --crop too"),
    (["--size", "8", "--crop", "6"], "give one or the other"),
    (["--crop", "6", "--interpolation", "area"], "--interpolation 'area'"),
    (["--class-map-preset", "objectnet"], "not to a reference"),
])
def test_testset_add_bad_transforms_store_nothing(cli, tmp_path, gateway, args, words):
    before = len(gateway.client.list_testsets())
    result = cli("testset", "add", str(helpers.digits_npz(tmp_path / "d.npz", 50)), "--name", "cli-bad-transform",
                 "--kind", "reference", *args, ok=False)
    assert result.exit_code == 1 and "Error:" in result.output and words in result.output
    assert "Traceback" not in result.output
    assert len(gateway.client.list_testsets()) == before


def test_testset_add_class_map_with_an_output_twice_stores_nothing(cli, tmp_path, gateway):
    bad = tmp_path / "bad.json"
    bad.write_text("[[0, 1], [1, 2]]")
    cli("testset", "add", str(helpers.digits_npz(tmp_path / "r.npz", 50)), "--name", "cli-bad-map-ref",
        "--kind", "reference")
    before = len(gateway.client.list_testsets())
    result = cli("testset", "add", str(helpers.digits_npz(tmp_path / "d.npz", 50)), "--name", "cli-bad-map",
                 "--kind", "natural", "--reference", "cli-bad-map-ref", "--class-map", str(bad), ok=False)
    assert result.exit_code == 1 and "model output 1 is mapped to classes 0 and 1" in result.output
    bad.write_text("{not json")
    result = cli("testset", "add", str(tmp_path / "d.npz"), "--name", "cli-bad-map", "--kind", "natural",
                 "--reference", "cli-bad-map-ref", "--class-map", str(bad), ok=False)
    assert result.exit_code == 1 and "is not JSON" in result.output
    assert len(gateway.client.list_testsets()) == before
