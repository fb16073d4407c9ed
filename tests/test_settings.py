"""Settings: parsing, validation, masking, and the example env file kept in step with the code."""

from __future__ import annotations

from pathlib import Path

import pytest

from shiftboard.settings import Settings, env_example


def test_from_env_parses_types():
    s = Settings.from_env({"SHIFTBOARD_GATEWAY_PORT": "6000", "SHIFTBOARD_OPEN_READS": "no",
                           "SHIFTBOARD_STATE_DIR": "/tmp/x", "SHIFTBOARD_PROBE_TIMEOUT_S": "2.5"})
    assert s.gateway_port == 6000 and s.open_reads is False and s.probe_timeout_s == 2.5
    assert s.gateway_target == "127.0.0.1:6000" and s.catalog_file == Path("/tmp/x/catalog.duckdb")


@pytest.mark.parametrize("env, words", [
    ({"SHIFTBOARD_GATEWAY_PORT": "abc"}, "SHIFTBOARD_GATEWAY_PORT='abc' is not a valid int"),
    ({"SHIFTBOARD_GATEWAY_PORT": "70000"}, "not a valid port"),
    ({"SHIFTBOARD_OPEN_READS": "maybe"}, "not a valid bool"),
    ({"SHIFTBOARD_OBJECT_STORE": "ceph"}, "use auto, minio, seaweedfs or external"),
])
def test_bad_values_name_the_variable(env, words):
    with pytest.raises(ValueError, match=words):
        Settings.from_env(env)


def test_secrets_are_masked():
    s = Settings(state_dir="/tmp/x", s3_secret_key="supersecretvalue", admin_token="sbt_abcdefghijkl")
    shown = {name: value for name, value, _ in s.describe()}
    assert "supersecretvalue" not in shown["SHIFTBOARD_S3_SECRET_KEY"]
    assert "abcdefghijkl" not in shown["SHIFTBOARD_ADMIN_TOKEN"]


def test_env_example_lists_every_setting():
    committed = (Path(__file__).parents[1] / "deploy" / ".env.example").read_text()
    assert committed == env_example(), "deploy/.env.example is stale: run `make env-example`"
