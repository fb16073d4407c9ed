"""`shiftboard demo --small` on the real stack, as the README's main command runs it (at small size)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from shiftboard.cli.app import app
from shiftboard.settings import Settings
from tests.helpers import PORT_SETTINGS, service_ports
from tests.stack_fixtures import RunningStack

pytestmark = pytest.mark.stack


def test_the_session_stack_uses_no_default_port(running_stack: RunningStack) -> None:
    defaults = {c.port for c in service_ports(Settings(object_store="seaweedfs"))}
    settings = running_stack.settings
    assert not {c.port for c in service_ports(settings)} & defaults
    assert not {getattr(settings, name) for name in PORT_SETTINGS} & defaults


def test_demo_small_runs_and_reruns(running_stack: RunningStack) -> None:
    env = {k: v for k, v in running_stack.settings.as_env().items() if v}
    env["COLUMNS"] = "160"
    runner = CliRunner()
    result = runner.invoke(app, ["demo", "--small", "--timeout", "600"], env=env)
    assert result.exit_code == 0, result.output
    assert "stack: already running" in result.output
    assert "standard models lie on a line, R² =" in result.output
    assert "effective robustness by category" in result.output and "done in" in result.output
    # Everything went through the API: the test sets, the models, and their evaluations.
    testsets = json.loads(runner.invoke(app, ["testset", "list", "--json"], env=env).stdout)
    demo_sets = {t["name"] for t in testsets if t["name"].startswith("digits")}
    assert {"digits", "digits-printed", "digits-printed-unlabelled"} <= demo_sets and len(demo_sets) == 8
    # the natural shift again without labels: its accuracies estimated (agreement on the line)
    assert "unlabelled shift digits-printed-unlabelled" in result.output and "estimates within" in result.output
    assert [t["unlabelled"] for t in testsets if t["name"] == "digits-printed-unlabelled"] == [True]
    models = json.loads(runner.invoke(app, ["model", "list", "--json"], env=env).stdout)
    categories = {m["category"] for m in models if m["description"]}
    assert {"standard", "robustness-intervention", "more-data"} <= categories
    evaluations = json.loads(runner.invoke(app, ["eval", "list", "--json", "--testset", "digits-printed"],
                                           env=env).stdout)
    assert evaluations and all(e["status"] == "succeeded" for e in evaluations), evaluations
    # A re-run reuses the testbed, the zoo and every registration.
    again = runner.invoke(app, ["demo", "--small"], env=env)
    assert again.exit_code == 0, again.output
    assert "testbed: reusing" in again.output and "zoo: reusing" in again.output
