"""Settings: parsing, validation, masking, and the example env file kept in step with the code."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from shiftboard.settings import SECTIONS, Settings, SettingsError, env_example, env_name, secret_fields


def test_from_env_parses_types():
    s = Settings.from_env({"SHIFTBOARD_GATEWAY_PORT": "6000", "SHIFTBOARD_OPEN_READS": "no",
                           "SHIFTBOARD_STATE_DIR": "/tmp/x", "SHIFTBOARD_PROBE_TIMEOUT_S": "2.5"})
    assert s.gateway_port == 6000 and s.open_reads is False and s.probe_timeout_s == 2.5
    assert s.gateway_target == "127.0.0.1:6000" and s.catalog_file == Path("/tmp/x/catalog.duckdb")


def test_from_env_skips_empty_and_unknown_variables_and_applies_overrides():
    s = Settings.from_env({"SHIFTBOARD_GATEWAY_PORT": "", "SHIFTBOARD_TEST_OBJECT_STORE": "ceph",
                           "SHIFTBOARD_TRITON_TLS": " FALSE ", "SHIFTBOARD_HOST": "10.0.0.1"},
                          host="10.0.0.2", state_dir=None)
    assert s.gateway_port == 50051 and s.triton_tls is False and s.host == "10.0.0.2"


def test_construction_reads_no_environment(monkeypatch):
    monkeypatch.setenv("SHIFTBOARD_GATEWAY_PORT", "6001")
    assert Settings().gateway_port == 50051
    assert Settings.from_env().gateway_port == 6001


@pytest.mark.parametrize("env, words", [
    ({"SHIFTBOARD_GATEWAY_PORT": "abc"}, "SHIFTBOARD_GATEWAY_PORT='abc' is not a valid int"),
    ({"SHIFTBOARD_GATEWAY_PORT": "70000"}, "not a valid port"),
    ({"SHIFTBOARD_OPEN_READS": "maybe"}, "not a valid bool"),
    ({"SHIFTBOARD_OBJECT_STORE": "ceph"}, "use auto, minio, seaweedfs or external"),
])
def test_bad_values_name_the_variable(env, words):
    with pytest.raises(ValueError, match=words):
        Settings.from_env(env)


@pytest.mark.parametrize("env, message", [
    ({"SHIFTBOARD_EVAL_CONCURRENCY": "0"}, "SHIFTBOARD_EVAL_CONCURRENCY='0' must be at least 1 (default: 2)"),
    ({"SHIFTBOARD_PROBE_TIMEOUT_S": "soon"},
     "SHIFTBOARD_PROBE_TIMEOUT_S='soon' is not a valid float: give a number (default: 120.0)"),
    ({"SHIFTBOARD_WORKER_POLL_S": "0"}, "SHIFTBOARD_WORKER_POLL_S='0' must be positive (default: 0.5)"),
    ({"SHIFTBOARD_SANDBOX": "on"},
     "SHIFTBOARD_SANDBOX='on' is not a valid choice: use required, best-effort or off (default: required)"),
    ({"SHIFTBOARD_MAX_STREAMS": "16"}, "SHIFTBOARD_MAX_STREAMS=16 must be below SHIFTBOARD_GATEWAY_WORKERS=16: "
     "streams would take every thread and starve unary calls and health checks"),
    ({"SHIFTBOARD_S3_PORT": "-1", "SHIFTBOARD_SHARD_BYTES": "big"},
     "SHIFTBOARD_S3_PORT='-1' is not a valid port (0-65535): pick a free port in that range (default: 9000); "
     "SHIFTBOARD_SHARD_BYTES='big' is not a valid int: give a whole number (default: 67108864)"),
])
def test_a_bad_value_is_one_line_with_the_variable_and_the_fix(env, message):
    with pytest.raises(SettingsError) as err:
        Settings.from_env(env)
    assert str(err.value) == message


def test_bad_arguments_and_replace_are_checked_too():
    with pytest.raises(SettingsError, match="^SHIFTBOARD_GATEWAY_WORKERS='x' is not a valid int"):
        Settings(state_dir="/tmp/x").replace(gateway_workers="x")
    with pytest.raises(SettingsError, match="^gateway_prot is not a setting"):
        Settings(gateway_prot=1)  # type: ignore[call-arg]
    with pytest.raises(SettingsError) as err:
        Settings(admin_token=12345678901)  # type: ignore[arg-type]
    assert str(err.value) == "SHIFTBOARD_ADMIN_TOKEN is not text" and "12345678901" not in str(err.value)


def test_secrets_are_masked():
    s = Settings(state_dir="/tmp/x", s3_secret_key=SecretStr("supersecretvalue"),
                 admin_token=SecretStr("sbt_abcdefghijkl"))
    shown = {name: value for name, value, _ in s.describe()}
    assert "supersecretvalue" not in shown["SHIFTBOARD_S3_SECRET_KEY"]
    assert "abcdefghijkl" not in shown["SHIFTBOARD_ADMIN_TOKEN"]


def test_secrets_never_show_in_repr_str_or_json():
    values = {name: f"{name}-value-0123456789" for name in secret_fields()}
    s = Settings.from_env({env_name(name): value for name, value in values.items()}, state_dir="/tmp/x")
    assert set(secret_fields()) >= {"token", "admin_token", "evaluator_token", "s3_access_key", "s3_secret_key",
                                    "triton_api_key", "prefect_auth_string"}
    for text in (repr(s), str(s), f"{s}", s.model_dump_json(), repr(s.replace(host="0.0.0.0"))):
        assert "value-0123456789" not in text
    assert s.secrets() == values
    assert s.s3_secret_key.get_secret_value() == values["s3_secret_key"]


def test_as_env_hands_every_value_to_a_child_process():
    s = Settings(state_dir="/tmp/x", admin_token=SecretStr("sbt_admin-secret"), triton_tls=False, probe_timeout_s=2.5)
    env = s.as_env()
    assert env["SHIFTBOARD_ADMIN_TOKEN"] == "sbt_admin-secret" and env["SHIFTBOARD_TRITON_TLS"] == "false"
    assert Settings.from_env(env) == s


def test_settings_error_at_the_cli_is_one_line_without_a_traceback(tmp_path):
    from shiftboard.cli.app import app

    result = CliRunner().invoke(app, ["config"], env={"SHIFTBOARD_STATE_DIR": str(tmp_path),
                                                      "SHIFTBOARD_GATEWAY_PORT": "abc"})
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines[0].startswith("Error: SHIFTBOARD_GATEWAY_PORT='abc' is not a valid int"), result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, SettingsError)


def test_env_example_lists_every_setting():
    committed = (Path(__file__).parents[1] / "deploy" / ".env.example").read_text()
    assert committed == env_example(), "deploy/.env.example is stale: run `make env-example`"


def test_env_example_groups_and_describes_every_setting():
    text = env_example()
    assert set(SECTIONS) <= set(Settings.model_fields) and next(iter(SECTIONS)) == next(iter(Settings.model_fields))
    assert [line for line in text.splitlines() if line.startswith("# ---- ")] == [
        f"# ---- {title}" for title in SECTIONS.values()]
    for name, info in Settings.model_fields.items():
        assert info.description and f"# {info.description}\n# {env_name(name)}=" in text
    for name in secret_fields():
        assert f"# {env_name(name)}=\n" in text
