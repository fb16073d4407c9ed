"""CLI errors against the real gateway and object store: one `Error: ...` line, exit 1, no traceback,
nothing half-written; and a model's version defaulting to its newest.

The worker's side of an evaluation is played by the test itself (predictions computed in-process with
torch, committed through the gateway's evaluator RPCs), as in tests/test_evaluations.py: what is under
test is the CLI, and it needs pairs that are finished, running, pending and failed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner, Result

from shiftboard import testsets as ts
from shiftboard.cli.app import app
from shiftboard.v1 import shiftboard_pb2 as pb
from tests import helpers
from tests.test_evaluations import torch_predictions
from tests.test_gateway import metadata, prepared, spec_of

pytestmark = pytest.mark.stack

MODEL, FINISHED, RUNNING, FAILED = "clierr-model", "clierr-finished", "clierr-running", "clierr-failed"
FAILURE = "Triton said [bold]no[/bold] to [nan, 1.0]"


@pytest.fixture
def cli(gateway):
    """``cli(*args, ok=True)``: the CLI against the session's gateway, as tests/test_cli.py runs it; wide
    (300 columns), so that tables do not wrap the text a test looks for."""
    runner = CliRunner()
    env = {k: v for k, v in gateway.settings.as_env().items() if v}
    env.update(SHIFTBOARD_GATEWAY_ADDRESS=gateway.target, SHIFTBOARD_TOKEN="", COLUMNS="300")

    def run(*args: str, ok: bool = True) -> Result:
        result = runner.invoke(app, list(args), env=env)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    return run


def one_error_line(result: Result, *words: str) -> str:
    """The single ``Error: ...`` line of a failed command (exit 1, no exception escaped)."""
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lines = [line for line in result.output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error: ")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


@dataclass
class Pairs:
    model_path: Path
    shards: dict[str, list[tuple[object, object, int]]]


def _commit(gateway, pairs: Pairs, key: pb.EvaluationKey, *, upto: int | None = None, finish: bool = True) -> None:
    plan = gateway.client.start_evaluation(key, f"run-{key.version}-{key.testset}")
    for i in list(plan.pending_shards)[:upto]:
        images, labels, first = pairs.shards[key.testset][i]
        gateway.client.commit_shard(key, i, torch_predictions(pairs.model_path, images, labels, first), 0.1)
    if finish:
        gateway.client.finish_evaluation(key)


@pytest.fixture(scope="module")
def pairs(gateway, tmp_path_factory) -> Pairs:
    """MODEL version 1: succeeded on FINISHED, running (1 of 3 shards) on RUNNING, failed on FAILED;
    version 2 (the newest): pending everywhere."""
    tmp = tmp_path_factory.mktemp("cli-errors")
    shards: dict[str, list[tuple[object, object, int]]] = {}
    for name in (FINISHED, RUNNING, FAILED):
        (tmp / name).mkdir()
        p = prepared(tmp / name, 300)
        testset = gateway.client.add_testset(spec_of(name, p), [s.path for s in p.shards])
        shards[name] = [(*ts.read_shard(gateway.store.get_bytes(s.key)), s.first_sample)
                        for s in testset.spec.shards]
    path = helpers.torchscript_model(tmp / "m.pt", seed=5)
    gateway.client.submit_model(path, metadata(MODEL, "1"))
    result = Pairs(path, shards)
    _commit(gateway, result, pb.EvaluationKey(model=MODEL, version="1", testset=FINISHED))
    _commit(gateway, result, pb.EvaluationKey(model=MODEL, version="1", testset=RUNNING), upto=1, finish=False)
    key = pb.EvaluationKey(model=MODEL, version="1", testset=FAILED)
    gateway.client.start_evaluation(key, "run-failed")
    gateway.client.finish_evaluation(key, failed=True, error=FAILURE)
    gateway.client.submit_model(path, metadata(MODEL, "2"))
    return result


# ------------------------------------------------------------------------------------------ predictions


def test_predictions_to_a_missing_directory_is_one_line(cli, pairs, tmp_path):
    missing = tmp_path / "missing" / "dir"
    result = cli("predictions", MODEL, FINISHED, "--version", "1", "-o", str(missing / "x.parquet"), ok=False)
    one_error_line(result, f"directory {missing} does not exist", "mkdir -p")
    assert not missing.parent.exists()
    # A parent that is a file, and an output that is a directory.
    a_file = tmp_path / "file"
    a_file.write_text("x")
    one_error_line(cli("predictions", MODEL, FINISHED, "--version", "1", "-o", str(a_file / "x.csv"), ok=False),
                   "does not exist")
    (tmp_path / "d.parquet").mkdir()
    one_error_line(cli("predictions", MODEL, FINISHED, "--version", "1", "-o", str(tmp_path / "d.parquet"),
                       ok=False), "is a directory")


def run_shiftboard(gateway, *args: str) -> str:
    """The installed command in its own process, not the test runner: its one ``Error:`` line (exit 1)."""
    env = {**os.environ, **{k: v for k, v in gateway.settings.as_env().items() if v}}
    exe = Path(sys.executable).with_name("shiftboard")
    done = subprocess.run([str(exe), *args], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error: ")]
    # Above it, at most the progress bar of an upload that had started.
    assert len(errors) == 1 and done.stderr.strip().endswith(errors[0]), done.stderr
    return errors[0]


def test_predictions_to_a_missing_directory_in_a_real_process(pairs, gateway, tmp_path):
    line = run_shiftboard(gateway, "predictions", MODEL, FINISHED, "--version", "1", "-o",
                          str(tmp_path / "missing" / "x.parquet"))
    assert "does not exist" in line


def test_predictions_of_a_finished_pair(cli, pairs, tmp_path):
    out = tmp_path / "p.parquet"
    result = cli("predictions", MODEL, FINISHED, "--version", "1", "-o", str(out))
    assert f"wrote 300 predictions of {MODEL}:1 on {FINISHED}" in result.output
    assert pq.read_table(out).num_rows == 300
    assert [p.name for p in tmp_path.iterdir()] == ["p.parquet"]  # no temporary file left beside it


@pytest.mark.parametrize(("testset", "words"), [
    (RUNNING, ["is not finished", "it is running (1/3 shards)", "eval watch"]),
    (FAILED, ["is not finished", f"it failed ({FAILURE})", "eval request --model"]),
])
def test_predictions_of_an_unfinished_pair_are_refused(cli, pairs, tmp_path, testset, words):
    out = tmp_path / "p.csv"
    line = one_error_line(cli("predictions", MODEL, testset, "--version", "1", "-o", str(out), ok=False), *words)
    assert f"{MODEL}:1 on {testset}" in line
    assert not out.exists() and not list(tmp_path.iterdir())


def test_predictions_default_to_the_newest_version(cli, pairs, gateway, tmp_path):
    out = tmp_path / "p.parquet"
    # Version 2 is the newest, and pending: refused, naming the version it chose.
    one_error_line(cli("predictions", MODEL, FINISHED, "-o", str(out), ok=False),
                   f"{MODEL}:2 on {FINISHED} is not finished", "it is pending")
    assert not out.exists()
    _commit(gateway, pairs, pb.EvaluationKey(model=MODEL, version="2", testset=FINISHED))
    result = cli("predictions", MODEL, FINISHED, "-o", str(out))
    assert f"of {MODEL}:2 on {FINISHED}" in result.output and pq.read_table(out).num_rows == 300
    # compare takes NAME or NAME:VERSION: the name alone is the newest.
    compared = cli("compare", f"{MODEL}:1", MODEL, "--testset", FINISHED).output
    assert f"{MODEL}:1:" in compared and f"{MODEL}:2:" in compared


def test_predictions_without_an_evaluation(cli, pairs, tmp_path):
    one_error_line(cli("predictions", MODEL, "clierr-no-such-set", "-o", str(tmp_path / "p.csv"), ok=False),
                   "clierr-no-such-set", "does not exist")
    one_error_line(cli("predictions", "clierr-no-such-model", FINISHED, "-o", str(tmp_path / "p.csv"), ok=False),
                   "clierr-no-such-model", "does not exist")
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------------------------------ eval list


def test_eval_list_with_no_match_names_the_filter(cli, pairs):
    out = cli("eval", "list", "--model", MODEL, "--testset", FINISHED, "--status", "running").output
    assert "no evaluations yet" not in out
    assert f"no evaluation matches --model {MODEL} --testset {FINISHED} --status running" in out
    rows = json.loads(cli("eval", "list", "--model", MODEL, "--status", "succeeded", "--json").output)
    assert FINISHED in {r["testset"] for r in rows}


def test_eval_list_shows_an_error_with_brackets(cli, pairs):
    out = cli("eval", "list", "--model", MODEL, "--testset", FAILED, "--status", "failed").output
    assert FAILURE in out, out  # the markup-like text as it is


# ------------------------------------------------------------------------------------------ model submit


@pytest.mark.parametrize(("args", "words"), [
    (["--input-shape", "-1,8,8"], ["--input-shape '-1,8,8'", "channels is -1", "use 1 (grayscale), 3 (RGB) or 4"]),
    (["--input-shape", "1,0,8"], ["--input-shape '1,0,8'", "height is 0", "1 to 4096 pixels"]),
    (["--input-shape", "1,8,99999"], ["--input-shape '1,8,99999'", "width is 99999"]),
    (["--input-shape", "1,8,8", "--value-range", "nan,1"], ["--value-range 'nan,1'", "[nan, 1.0]", "min < max"]),
    (["--input-shape", "1,8,8", "--value-range", "1,0"], ["--value-range '1,0'", "[1.0, 0.0]"]),
    (["--input-shape", "1,8,8", "--mean", "0.5,0.5"], ["--mean '0.5,0.5'", "2 values for 1 channels"]),
    (["--input-shape", "3,8,8", "--std", "1,0,1"], ["--std '1,0,1'", "positive"]),
    (["--input-shape", "1,8,8", "--std", "inf"], ["--std 'inf'", "finite"]),
])
def test_model_submit_bad_input_names_the_option(cli, gateway, tmp_path, args, words):
    before = len(gateway.client.list_models())
    path = helpers.torchscript_model(tmp_path / "m.pt")
    result = cli("model", "submit", str(path), "--name", "clierr-bad-input", "--num-classes", "10", *args, ok=False)
    one_error_line(result, *words)
    assert len(gateway.client.list_models()) == before


def test_model_submit_unreadable_file_is_one_line(cli, gateway):
    """A path that is a file but cannot be read (procfs: EIO at offset 0): gRPC would only say "Exception
    iterating requests!"."""
    before = len(gateway.client.list_models())
    result = cli("model", "submit", "/proc/self/mem", "--name", "clierr-unreadable", "--num-classes", "10",
                 "--input-shape", "1,8,8", ok=False)
    one_error_line(result, "cannot read the model file '/proc/self/mem'", "Input/output error")
    assert len(gateway.client.list_models()) == before


def test_model_delete_defaults_to_the_newest_version(cli, gateway, tmp_path):
    path = helpers.torchscript_model(tmp_path / "m.pt")
    for version in ("1", "2"):
        gateway.client.submit_model(path, metadata("clierr-delete", version))
    out = cli("model", "delete", "clierr-delete").output
    assert "deleted model clierr-delete version 2; versions left: 1" in out
    assert [m.metadata.version for m in gateway.client.list_models() if m.metadata.name == "clierr-delete"] == ["1"]
    one_error_line(cli("model", "delete", "clierr-delete", "--version", "2", ok=False), "does not exist")


# ------------------------------------------------------------------------------------------ others


def test_results_import_unreadable_file_is_one_line(cli):
    one_error_line(cli("results", "import", "/proc/self/mem", "--format", "long", ok=False),
                   "cannot read the results file '/proc/self/mem'")
    one_error_line(cli("results", "import", "/no/such.csv", "--format", "long", ok=False), "is not a file")


def test_unreadable_uploads_in_a_real_process(gateway):
    """gRPC logs the failed request stream itself (with a traceback) unless the client keeps it quiet."""
    assert "cannot read the results file" in run_shiftboard(gateway, "results", "import", "/proc/self/mem",
                                                            "--format", "long")
    assert "cannot read the model file" in run_shiftboard(gateway, "model", "submit", "/proc/self/mem", "--name",
                                                          "clierr-unreadable", "--num-classes", "10",
                                                          "--input-shape", "1,8,8")


@pytest.mark.parametrize(("args", "words"), [
    (["--size", "99999"], ["--size '99999'", "at most 4096 pixels"]),
    (["--crop", "5000x8"], ["--crop '5000x8'", "at most 4096 pixels"]),
    (["--size", "-1"], ["--size", "give HxW"]),
])
def test_testset_add_sizes_are_checked_first(cli, gateway, tmp_path, args, words):
    before = len(gateway.client.list_testsets())
    npz = helpers.digits_npz(tmp_path / "d.npz", 50)
    one_error_line(cli("testset", "add", str(npz), "--name", "clierr-size", "--kind", "reference", *args, ok=False),
                   *words)
    assert len(gateway.client.list_testsets()) == before


def test_testset_add_missing_file_is_one_line(cli, gateway, tmp_path):
    before = len(gateway.client.list_testsets())
    one_error_line(cli("testset", "add", str(tmp_path / "nope.npz"), "--name", "clierr-missing", "--kind",
                       "reference", ok=False), "does not exist")
    assert len(gateway.client.list_testsets()) == before


def test_leaderboard_negative_resamples_is_named(cli):
    one_error_line(cli("leaderboard", "--shift", FINISHED, "--resamples", "-3", ok=False),
                   "--resamples -3", "0: the gateway's default")


def test_error_messages_are_not_rich_markup(cli):
    """A message holding `[...]` is printed verbatim (Rich would take `[nan, 1.0]` for a tag)."""
    one_error_line(cli("testset", "list", "--kind", "[bold]x[/bold]", ok=False), "'[bold]x[/bold]'")
