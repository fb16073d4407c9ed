"""The Streamlit app, run by Streamlit's AppTest against the real gateway."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests import helpers
from tests.test_gateway import metadata

pytestmark = pytest.mark.stack

APP = str(Path(__file__).parents[1] / "leaderboard" / "app.py")


def test_first_page_lists_models_and_testsets(gateway, tmp_path, monkeypatch):
    for key, value in gateway.settings.as_env().items():
        monkeypatch.setenv(key, value)
    gateway.client.submit_model(helpers.torchscript_model(tmp_path / "m.pt"), metadata("app-model"))
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert not at.exception
    assert at.title[0].value == "shiftboard"
    frames = [df.value for df in at.dataframe]
    assert any("app-model" in set(frame["name"]) for frame in frames)


def test_unreachable_gateway_shows_error(monkeypatch, tmp_path):
    monkeypatch.setenv("SHIFTBOARD_GATEWAY_ADDRESS", f"127.0.0.1:{helpers.free_port()}")
    monkeypatch.setenv("SHIFTBOARD_STATE_DIR", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert not at.exception
    assert "not reachable" in at.error[0].value
