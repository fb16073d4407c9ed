"""The shiftboard leaderboard (Streamlit). Reads everything through the gateway, never the catalog file.

Run by `shiftboard serve leaderboard` (which `shiftboard up` starts) with the SHIFTBOARD_* settings in
its environment.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from shiftboard import credentials
from shiftboard.client import Client
from shiftboard.errors import ShiftboardError
from shiftboard.settings import Settings
from shiftboard.views import model_view, testset_view

st.set_page_config(page_title="shiftboard", layout="wide")


@st.cache_resource
def _client(target: str, token: str | None) -> Client:
    return Client(target, token)


def main() -> None:
    st.title("shiftboard")
    st.caption("Effective robustness of image classifiers under distribution shift.")
    settings = Settings.from_env()
    client = _client(settings.gateway_target, credentials.client_token(settings))
    try:
        models = [model_view(m) for m in client.list_models()]
        testsets = [testset_view(t) for t in client.list_testsets()]
    except ShiftboardError as exc:
        st.error(f"The gateway at {client.target} did not answer: {exc.message}")
        return
    col_models, col_sets = st.columns(2)
    col_models.metric("models", len(models))
    col_sets.metric("test sets", len(testsets))

    st.subheader("Models")
    if models:
        frame = pd.DataFrame(models)[["name", "version", "category", "num_classes", "input_shape", "tags",
                                      "size_bytes", "created_at"]]
        st.dataframe(frame, hide_index=True, width="stretch")
    else:
        st.info("No models yet: `shiftboard model submit PATH --name NAME ...` adds one.")

    st.subheader("Test sets")
    if testsets:
        frame = pd.DataFrame(testsets)[["name", "kind", "reference", "group", "num_classes", "num_samples",
                                        "num_shards", "input_shape", "created_at"]]
        st.dataframe(frame, hide_index=True, width="stretch")
    else:
        st.info("No test sets yet: `shiftboard testset add PATH --name NAME --kind reference` adds one.")


main()
