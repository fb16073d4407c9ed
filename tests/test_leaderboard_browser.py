"""End to end in headless Chromium: the leaderboard served by `streamlit run`, read by a real browser.

`streamlit run leaderboard/app.py` runs as a subprocess on a free port against the session's real
gateway (five evaluated models, see ``test_leaderboard_app.populate``). Debian's ``chromium`` opens
the shift page; the test waits until the ranking table and the scatter plot have rendered, checks the
DOM, and saves a screenshot (and the DOM) under ``artifacts/``.

Chromium is driven over its DevTools protocol on ``--remote-debugging-pipe`` (stdlib only) rather
than with ``--screenshot --virtual-time-budget``: virtual time runs ahead of the real time the
gateway needs to compute the leaderboard, so a one-shot screenshot can catch a blank page.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import helpers
from tests.test_leaderboard_app import APP, MODELS, NOISE, populate

pytestmark = pytest.mark.stack

CHROMIUM = os.environ.get("SHIFTBOARD_TEST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).parents[1] / "artifacts"
WIDTH, HEIGHT = 1400, 2000
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars"]


class Chromium:
    """Headless Chromium and one page of it, driven over the DevTools protocol on fds 3 and 4."""

    def __init__(self, profile: Path) -> None:
        to_browser_r, to_browser_w = os.pipe()
        from_browser_r, from_browser_w = os.pipe()

        def fds_3_and_4() -> None:  # in the child: the pipes become fds 3 (commands) and 4 (replies)
            commands, replies = os.dup(to_browser_r), os.dup(from_browser_w)  # out of the way of 3 and 4
            os.dup2(commands, 3)
            os.dup2(replies, 4)

        with open(profile / "chromium.log", "wb") as log:
            self.process = subprocess.Popen(
                [CHROMIUM, *FLAGS, f"--user-data-dir={profile / 'profile'}", "--remote-debugging-pipe",
                 "about:blank"],
                preexec_fn=fds_3_and_4, close_fds=False, stdout=subprocess.DEVNULL, stderr=log)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._out = os.fdopen(to_browser_w, "wb", buffering=0)
        self._in = os.fdopen(from_browser_r, "rb", buffering=0)
        self._buffer = b""
        self._id = 0
        self._session: str | None = None

    def send(self, method: str, params: dict[str, Any] | None = None, *,
             browser: bool = False) -> dict[str, Any]:
        """One DevTools command and its result; to the page's session unless ``browser``."""
        self._id += 1
        message: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if self._session and not browser:
            message["sessionId"] = self._session
        self._out.write(json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in self._buffer:
                chunk = self._in.read(1 << 16)
                if not chunk:
                    raise RuntimeError(f"Chromium closed the DevTools pipe during {method}")
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]  # type: ignore[no-any-return]

    def open(self, url: str) -> None:
        targets = self.send("Target.getTargets", browser=True)["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        self._session = self.send("Target.attachToTarget", {"targetId": page["targetId"], "flatten": True},
                                  browser=True)["sessionId"]
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False})
        self.send("Page.navigate", {"url": url})

    def evaluate(self, expression: str) -> Any:
        reply = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        return reply["result"].get("value")

    def screenshot(self, path: Path) -> None:
        path.write_bytes(base64.b64decode(self.send("Page.captureScreenshot", {"format": "png"})["data"]))

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, OSError):
            self.send("Browser.close", browser=True)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._out.close()
        self._in.close()


@pytest.fixture
def leaderboard(gateway, tmp_path_factory):
    """The URL of `streamlit run leaderboard/app.py` on a free port, reading from the session's gateway."""
    populate(gateway, tmp_path_factory.mktemp("ui"))
    port = helpers.free_port()
    logs = tmp_path_factory.mktemp("streamlit")
    env = {**os.environ, **gateway.settings.as_env(), "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    log = open(logs / "streamlit.log", "wb")  # noqa: SIM115 - closed at teardown
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", APP, "--server.port", str(port), "--server.address",
         "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
         "--client.toolbarMode", "viewer"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/_stcore/health", timeout=2).text == "ok":
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)
            raise RuntimeError(f"streamlit did not start; log: {logs / 'streamlit.log'}")
        time.sleep(0.3)
    yield url
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    log.close()


_STATE = """(() => {
  const d = document;
  const chart = d.querySelector('[data-testid="stVegaLiteChart"]');
  return {
    title: (d.querySelector('h1') || {}).textContent || '',
    cells: [...d.querySelectorAll('[data-testid="stDataFrame"] [role="gridcell"]')].map(c => c.textContent),
    chart: chart ? (chart.querySelector('svg, canvas') || {}).tagName || '' : '',
    points: chart ? [...chart.querySelectorAll('[aria-label]')].map(e => e.getAttribute('aria-label'))
                                                               .filter(l => l.includes('model: ')) : [],
    errors: [...d.querySelectorAll('[data-testid="stException"], [data-testid="stAlertContentError"]')]
              .map(e => e.textContent),
    running: !!d.querySelector('[data-testid="stStatusWidget"]'),
  };
})()"""


@pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK),
                    reason=f"no Chromium at {CHROMIUM}: install Debian's with `apt-get install -y chromium` "
                           "(or point SHIFTBOARD_TEST_CHROMIUM at one)")
def test_shift_page_renders_ranking_and_plot_in_chromium(leaderboard, tmp_path):
    models = [f"{name}:1" for name in MODELS]
    browser = Chromium(tmp_path)
    try:
        browser.open(f"{leaderboard}/shift?shift={NOISE}")
        deadline = time.monotonic() + 120
        while True:
            state = browser.evaluate(_STATE) or {}
            rendered = (state.get("title") == f"Shift: {NOISE}" and state.get("chart")
                        and all(m in state["cells"] for m in models)
                        and all(any(f"model: {m};" in p for p in state["points"]) for m in models))
            if (rendered and not state["running"]) or state.get("errors") or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        time.sleep(1.0)  # let the chart finish laying out before the picture
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "leaderboard-shift.png"
        browser.screenshot(shot)
        dom = browser.evaluate("document.documentElement.outerHTML")
        (ARTIFACTS / "leaderboard-shift.html").write_text(dom)
        state = browser.evaluate(_STATE)
    finally:
        browser.close()

    assert not state["errors"], state["errors"]
    assert state["title"] == f"Shift: {NOISE}"
    assert set(models) <= set(state["cells"]), "the ranking table lacks models"
    assert state["chart"] in ("svg", "SVG", "CANVAS", "canvas"), "no Vega chart rendered"
    for model in models:  # every model is a point of the scatter plot
        assert any(f"model: {model};" in p for p in state["points"]), model
    assert "tied" in state["cells"]
    header = shot.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", header[16:24]) == (WIDTH, HEIGHT)
