"""End to end in headless Chromium: the leaderboard served by Streamlit, read by a real browser.

``shiftboard serve leaderboard`` (the stack's own service spec) runs on a free port against the
session's real gateway (five evaluated models, see ``test_leaderboard_app.populate``). Playwright
drives Debian's ``chromium`` (``executable_path``; no browser is downloaded) to the shift page, waits
until the ranking table and the scatter plot have rendered and Streamlit has stopped running the
script, checks the DOM, and saves a screenshot (and the DOM) under ``artifacts/``.
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright

from shiftboard.services.stack.specs import child_env, leaderboard_spec
from tests import helpers
from tests.conftest import GatewayHandle
from tests.test_leaderboard_app import MODELS, NOISE, populate

pytestmark = pytest.mark.stack

CHROMIUM = os.environ.get("SHIFTBOARD_TEST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).parents[1] / "artifacts"
WIDTH, HEIGHT = 1400, 2000
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--hide-scrollbars"]
RENDER_TIMEOUT_MS = 120_000


@pytest.fixture
def leaderboard(gateway: GatewayHandle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of the leaderboard on a free port, reading from the session's gateway."""
    populate(gateway, tmp_path_factory.mktemp("ui"))
    settings = gateway.settings.replace(leaderboard_port=helpers.free_port())
    logs = tmp_path_factory.mktemp("streamlit")
    with helpers.start_service(leaderboard_spec(settings, child_env(settings)), logs / "streamlit.log",
                               timeout_s=60):
        yield settings.leaderboard_url


_STATE = """() => {
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
}"""

#: True once the page shows the title, the chart and every model in the table and the plot, and Streamlit
#: has stopped running the script (or as soon as it shows an error).
_RENDERED = f"""([title, models]) => {{
  const s = ({_STATE})();
  if (s.errors.length) return true;
  return s.title === title && !!s.chart && !s.running && models.every(m => s.cells.includes(m))
    && models.every(m => s.points.some(p => p.includes(`model: ${{m}};`)));
}}"""


@pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK),
                    reason=f"no Chromium at {CHROMIUM}: install Debian's with `apt-get install -y chromium` "
                           "(or point SHIFTBOARD_TEST_CHROMIUM at one)")
def test_shift_page_renders_ranking_and_plot_in_chromium(leaderboard: str) -> None:
    models = [f"{name}:1" for name in MODELS]
    shot = ARTIFACTS / "leaderboard-shift.png"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT}, device_scale_factor=1)
            page.goto(f"{leaderboard}/shift?shift={NOISE}")
            try:
                page.wait_for_function(_RENDERED, arg=[f"Shift: {NOISE}", models], timeout=RENDER_TIMEOUT_MS)
                page.locator('[data-testid="stVegaLiteChart"] :is(svg, canvas)').first.wait_for(state="visible")
            except PlaywrightError:
                pass  # the picture, the DOM and the assertions below show what was missing
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(shot))
            (ARTIFACTS / "leaderboard-shift.html").write_text(page.content())
            state: dict[str, Any] = page.evaluate(_STATE)
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


#: True once the page shows the title, ``charts`` rendered charts and a table cell naming ``model``, and
#: Streamlit has stopped running the script (or as soon as it shows an error).
_CHARTS_RENDERED = """([title, charts, model]) => {
  const d = document;
  const errors = d.querySelectorAll('[data-testid="stException"], [data-testid="stAlertContentError"]');
  if (errors.length) return true;
  const drawn = [...d.querySelectorAll('[data-testid="stVegaLiteChart"]')].filter(c => c.querySelector('svg, canvas'));
  const cells = [...d.querySelectorAll('[data-testid="stDataFrame"] [role="gridcell"]')].map(c => c.textContent);
  return ((d.querySelector('h1') || {}).textContent || '') === title && drawn.length >= charts
    && cells.includes(model) && !d.querySelector('[data-testid="stStatusWidget"]');
}"""


@pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK),
                    reason=f"no Chromium at {CHROMIUM}: install Debian's with `apt-get install -y chromium` "
                           "(or point SHIFTBOARD_TEST_CHROMIUM at one)")
def test_calibration_and_agreement_pages_render_their_charts_in_chromium(leaderboard: str) -> None:
    pages = {"calibration": (f"/calibration?testset={NOISE}&model=ui-m4:1", f"Calibration: {NOISE}"),
             "agreement": (f"/agreement?testset={NOISE}", f"Agreement: {NOISE}")}
    states: dict[str, dict[str, Any]] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            for name, (path, title) in pages.items():
                page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT}, device_scale_factor=1)
                page.goto(f"{leaderboard}{path}")
                # On a timeout the picture and the assertions below show what was missing.
                with contextlib.suppress(PlaywrightError):
                    page.wait_for_function(_CHARTS_RENDERED, arg=[title, 2, "ui-m4:1"], timeout=RENDER_TIMEOUT_MS)
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / f"leaderboard-{name}.png"))
                states[name] = page.evaluate(_STATE) | {"charts": page.locator(
                    '[data-testid="stVegaLiteChart"] :is(svg, canvas)').count()}
        finally:
            browser.close()
    for name, (_, title) in pages.items():
        state = states[name]
        assert not state["errors"], state["errors"]
        assert state["title"] == title
        assert state["charts"] >= 2, f"{name}: {state['charts']} charts drawn"
        assert "ui-m4:1" in state["cells"], f"{name}: the table lacks ui-m4:1"
