"""Streamlit glue shared by the leaderboard's pages: the gateway client, cached reads, downloads, progress.

Reads are cached per gateway (target and token) and per *results fingerprint*, a digest of the
succeeded evaluations on the test sets a read depends on: a shift's leaderboard is recomputed exactly
when a result lands on that shift or its reference. The progress panel polls the cheap evaluation
list and reruns the page when any result lands.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st

from shiftboard import credentials
from shiftboard.client import Client
from shiftboard.domain.errors import ShiftboardError
from shiftboard.settings import Settings
from shiftboard.v1 import shiftboard_pb2 as pb
from shiftboard.wire import vocab

from . import data

#: Page scripts, relative to ``app.py``; the app registers them with ``st.navigation``.
OVERVIEW, SHIFT, MODEL = "overview_page.py", "shift_page.py", "model_page.py"
CALIBRATION, AGREEMENT = "calibration_page.py", "agreement_page.py"
FINGERPRINT_KEY = "results_fingerprint"
STAMPS_KEY = "result_stamps"
ACTIVE_KEY = "evaluations_active"
#: Seconds between progress polls while evaluations are pending or running, and while idle.
POLL_ACTIVE_S, POLL_IDLE_S = 3.0, 30.0
MAX_SAMPLES = 1024  # GetSamples takes at most this many per call
#: Headers of the fraction columns that tables show as percentages.
PERCENT_LABELS = {"ref_acc": "reference acc", "shift_acc": "shift acc",
                  "predicted_shift_acc": "predicted shift acc", "mean_ref_acc": "mean reference acc",
                  "mean_shift_acc": "mean shift acc", "low": "95% low", "high": "95% high"}


@dataclass(frozen=True)
class Gateway:
    """Where the app reads from: hashable, so it keys the caches."""

    target: str
    token: str | None

    @classmethod
    def from_env(cls) -> Gateway:
        settings = Settings.from_env()
        return cls(settings.gateway_target, credentials.client_token(settings))


@st.cache_resource(show_spinner=False)
def _client(target: str, token: str | None) -> Client:
    return Client(target, token, timeout_s=120.0)


def client(gateway: Gateway | None = None) -> Client:
    gateway = gateway or Gateway.from_env()
    return _client(gateway.target, gateway.token)


def show_error(exc: ShiftboardError) -> None:
    st.error(f"Could not read from the gateway: {exc.message}", icon=":material/cloud_off:")


# ---------------------------------------------------------------------------- cached reads


@st.cache_data(show_spinner=False, max_entries=256)
def leaderboard(gateway: Gateway, fingerprint: str, *, shift: str = "", group: str = "",
                transform: str = "logit") -> pb.Leaderboard:
    return _client(gateway.target, gateway.token).leaderboard(shift=shift, group=group, transform=transform)


def leaderboards(gateway: Gateway, shifts: Mapping[str, str],
                 transform: str = "logit") -> tuple[dict[str, pb.Leaderboard], dict[str, str]]:
    """The leaderboard of every shift that has results (``shifts``: shift → its reference), and the
    error of each shift whose leaderboard failed. Each is cached on its own; misses run concurrently."""
    keys = {s: fingerprint(s, ref) for s, ref in shifts.items()}  # session state: read in this thread

    def one(shift: str) -> pb.Leaderboard | ShiftboardError:
        try:
            return leaderboard(gateway, keys[shift], shift=shift, transform=transform)
        except ShiftboardError as exc:
            return exc

    with st.spinner("Computing the leaderboards…", show_time=True), ThreadPoolExecutor(max_workers=4) as pool:
        results = dict(zip(shifts, pool.map(one, shifts), strict=True))
    boards = {s: r for s, r in results.items() if isinstance(r, pb.Leaderboard) and len(r.rows)}
    errors = {s: r.message for s, r in results.items() if isinstance(r, ShiftboardError)}
    return boards, errors


@st.cache_data(show_spinner=False, max_entries=8)
def overview(gateway: Gateway, fingerprint: str, imported: str, transform: str = "logit") -> dict[str, pb.Leaderboard]:
    """Every shift's board without intervals, in one request (``imported`` keys the imported sources)."""
    boards = _client(gateway.target, gateway.token).overview(transform=transform)
    return {b.shift: b for b in boards}


def imported_key(gateway: Gateway) -> str:
    """Source and version of every imported source: moves when an import changes something."""
    sources = _client(gateway.target, gateway.token).imported_sources()
    return ";".join(f"{s.source}@{s.version}" for s in sources)


@st.cache_data(show_spinner=False, max_entries=64)
def accuracies(gateway: Gateway, fingerprint: str, name: str, version: str) -> pd.DataFrame:
    """Accuracy of one model version on each test set it finished, with Clopper-Pearson intervals."""
    rows = [{"testset": a.key.testset, "accuracy": a.accuracy, "low": a.ci_low, "high": a.ci_high,
             "correct": a.correct, "samples": a.samples}
            for a in _client(gateway.target, gateway.token).accuracy(model=name) if a.key.version == version]
    return pd.DataFrame(rows, columns=["testset", "accuracy", "low", "high", "correct", "samples"])


@st.cache_data(show_spinner="Reading the predictions…", max_entries=32)
def predictions(gateway: Gateway, fingerprint: str, model: str, version: str, testset: str) -> pd.DataFrame:
    return data.predictions_frame(_client(gateway.target, gateway.token).predictions(model, testset, version))


@st.cache_data(show_spinner=False, max_entries=64, ttl=3600)
def samples(gateway: Gateway, testset: str, indices: tuple[int, ...]) -> pb.GetSamplesResponse:
    return _client(gateway.target, gateway.token).samples(testset, list(indices[:MAX_SAMPLES]))


@st.cache_data(show_spinner=False, max_entries=64)
def comparison(gateway: Gateway, fingerprint: str, a: str, b: str, testset: str) -> pb.Comparison:
    return _client(gateway.target, gateway.token).compare(a, b, testset)


@st.cache_data(show_spinner="Computing the calibration…", max_entries=32)
def calibration(gateway: Gateway, fingerprint: str, testset: str) -> pb.Calibration:
    return _client(gateway.target, gateway.token).calibration(testset)


@st.cache_data(show_spinner="Computing the agreement…", max_entries=32)
def consistency_matrix(gateway: Gateway, fingerprint: str, testset: str) -> pb.ConsistencyMatrix:
    return _client(gateway.target, gateway.token).consistency_matrix(testset)


def fingerprint(*testsets: str) -> str:
    """The fingerprint of the results this run renders, on ``testsets`` (none named: all of them)."""
    if not testsets:
        return str(st.session_state.get(FINGERPRINT_KEY, ""))
    return data.fingerprint(st.session_state.get(STAMPS_KEY, {}), set(testsets))


def remember(evaluations: Sequence[pb.Evaluation]) -> None:
    """Record what this run renders (set by the app before the page runs): the results, and whether
    evaluations are under way."""
    stamps = data.result_stamps(evaluations)
    st.session_state[STAMPS_KEY] = stamps
    st.session_state[FINGERPRINT_KEY] = data.fingerprint(stamps)
    st.session_state[ACTIVE_KEY] = data.progress(evaluations).active


# ---------------------------------------------------------------------------- widgets


def table(frame: pd.DataFrame, stem: str, *, key: str, percent: Sequence[str] = (),
          config: dict[str, Any] | None = None, column_order: Sequence[str] | None = None) -> None:
    """``frame`` as a sortable table, fractions in ``percent`` shown as percentages, and its downloads.

    The downloads hold ``frame`` as given (fractions stay fractions).
    """
    shown = frame.assign(**{c: frame[c].astype("Float64") * 100 for c in percent if c in frame})
    column_config: dict[str, Any] = {
        c: st.column_config.NumberColumn(PERCENT_LABELS.get(c, c), format="%.2f%%") for c in percent}
    column_config.update(config or {})
    st.dataframe(shown, hide_index=True, width="stretch", key=key, column_config=column_config,
                 column_order=column_order, placeholder="–")
    downloads(frame, stem, key=key)


def downloads(frame: pd.DataFrame, stem: str, *, key: str) -> None:
    """CSV and Parquet download buttons for ``frame``."""
    left, right, _ = st.columns([1, 1, 6], gap="small")
    left.download_button("CSV", data.to_csv(frame), file_name=f"{stem}.csv", mime="text/csv",
                         key=f"{key}-csv", icon=":material/download:", on_click="ignore")
    right.download_button("Parquet", data.to_parquet(frame), file_name=f"{stem}.parquet",
                          mime="application/vnd.apache.parquet", key=f"{key}-parquet",
                          icon=":material/download:", on_click="ignore")


def goto(page: str, **params: str) -> None:
    """Switch to ``page`` with ``params`` in its URL (the pages bind their selectors to them)."""
    st.switch_page(page, query_params={k: v for k, v in params.items() if v})


# ---------------------------------------------------------------------------- progress


def progress_panel(gateway: Gateway, *, detailed: bool) -> None:
    """Evaluation progress, polled on its own; reruns the page when a result lands.

    The polling interval is fixed when the fragment is made, so it is made per run: short while
    evaluations are pending or running, long while idle.
    """
    every = POLL_ACTIVE_S if st.session_state.get(ACTIVE_KEY) else POLL_IDLE_S
    st.fragment(run_every=every)(_progress_body)(gateway, detailed)


def _progress_body(gateway: Gateway, detailed: bool) -> None:
    try:
        evaluations = client(gateway).list_evaluations()
    except ShiftboardError as exc:
        st.caption(f"Evaluations: unavailable ({exc.message})")
        return
    p = data.progress(evaluations)
    moved = data.results_fingerprint(evaluations) != fingerprint()
    if moved or p.active != bool(st.session_state.get(ACTIVE_KEY)):
        st.rerun(scope="app")  # results landed: recompute what the page shows (and the poll interval)
    if not detailed:
        st.caption(f"**Evaluations** · {p.succeeded} done · {p.running} running · {p.pending} pending"
                   + (f" · {p.failed} failed" if p.failed else ""))
        if p.total:
            st.progress(p.fraction)
        return
    cols = st.columns(4)
    cols[0].metric(vocab.PENDING, p.pending)
    cols[1].metric(vocab.RUNNING, p.running)
    cols[2].metric(vocab.SUCCEEDED, p.succeeded)
    cols[3].metric(vocab.FAILED, p.failed)
    if not p.total:
        st.info("No evaluations yet: submitting a model or a test set schedules them.")
        return
    text = f"{p.succeeded + p.failed} of {p.total} evaluations finished"
    if p.active and p.samples_total:
        text += f" · {p.samples_done:,} of {p.samples_total:,} samples scored"
    st.progress(p.fraction, text=text)
    frame = data.evaluations_frame(evaluations)
    config = {"done": st.column_config.ProgressColumn("done", min_value=0.0, max_value=1.0, format="percent"),
              "samples_per_second": st.column_config.NumberColumn("samples/s", format="%.1f")}
    unfinished = frame[frame["status"] != vocab.SUCCEEDED]
    if not unfinished.empty:
        table(unfinished, "evaluations-unfinished", key="evaluations-unfinished", config=config)
    with st.expander(f"All evaluations ({len(frame)})"):
        table(frame, "evaluations", key="evaluations", config=config)
