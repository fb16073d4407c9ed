"""The CLI against the real gateway and object store: happy paths, --json output, clear errors."""

from __future__ import annotations

import hashlib
import json

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
    assert out["SHIFTBOARD_S3_SECRET_KEY"] != gateway.settings.s3_secret_key


def test_model_submit_list_show(cli, tmp_path, gateway):
    path = helpers.torchscript_model(tmp_path / "m.pt")
    out = cli("model", "submit", str(path), "--name", "cli-linear", "--version", "3", "--num-classes", "10",
              "--input-shape", "1,8,8", "--value-range", "0,1", "--mean", "0.5", "--std", "0.25",
              "--category", "robustness-intervention", "--tag", "demo", "--json").output
    stored = json.loads(out)
    assert stored["category"] == "robustness-intervention" and stored["mean"] == [0.5]
    listed = json.loads(cli("model", "list", "--json").output)
    mine = [m for m in listed if m["name"] == "cli-linear"]
    assert len(mine) == 1 and mine[0]["version"] == "3" and mine[0]["tags"] == ["demo"]
    assert mine[0]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert "cli-linear" in cli("model", "show", "cli-linear").output
    # The bytes are in the object store, readable by any S3 client with the generated credentials.
    creds = credentials.s3_credentials(gateway.settings)
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


@pytest.mark.parametrize("make, words", [
    (lambda d: helpers.np.savez(d / "x.npz", labels=helpers.np.zeros(3)) or d / "x.npz", "images"),
    (lambda d: helpers.np.savez(d / "x.npz", images=helpers.np.zeros((4, 8, 8), "uint8"),
                                labels=helpers.np.zeros(3, "int64")) or d / "x.npz", "label"),
    (lambda d: helpers.np.savez(d / "x.npz", images=helpers.np.zeros((0, 8, 8), "uint8"),
                                labels=helpers.np.zeros(0, "int64")) or d / "x.npz", "zero images"),
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
