"""Model page: one model's effective robustness across shifts, accuracy per class, its hardest samples.

A page script of ``app.py`` (run by ``st.navigation`` with ``__name__ == "__main__"``); importing it
does nothing. Its selectors are bound to the URL (``?model=NAME:VERSION&testset=NAME``).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from shiftboard.leaderboard import charts, data, ui

HARDEST_PER_ROW = 6


def render() -> None:
    gateway = ui.Gateway.from_env()
    client = ui.client(gateway)
    models = {data.model_key(m): m for m in client.list_models()}
    if not models:
        st.title("Model")
        st.info("No models yet: `shiftboard model submit PATH --name NAME ...` adds one.")
        return
    names = sorted(models)
    header = st.container()  # the title names the selection, made below it
    top = st.columns([2, 1])
    key = top[0].selectbox("Model", names, key="model", bind="query-params")
    transform = top[1].radio("Transform", data.TRANSFORMS, horizontal=True, key="transform",
                             bind="query-params")
    model = models[key]
    md = model.metadata
    header.title(f"Model: {key}")
    facts = [f"category **{data.category_of(model)}**", f"{md.num_classes} classes",
             f"input {md.input.channels}×{md.input.height}×{md.input.width}"]
    if md.tags:
        facts.append("tags " + ", ".join(f"`{t}`" for t in md.tags))
    header.caption(" · ".join(facts) + (f" · {md.description}" if md.description else ""))

    testsets = {t.spec.name: t for t in client.list_testsets()}
    shifts = data.shifts_of(testsets.values())
    boards, _ = ui.leaderboards(gateway, {s: testsets[s].spec.reference for s in shifts}, transform)
    long = data.er_long_frame(boards)
    mine = long[long["model"] == key].reset_index(drop=True)
    _robustness(mine, key)

    accuracy = ui.accuracies(gateway, ui.fingerprint(), md.name, md.version)
    st.subheader("Accuracy per test set")
    if accuracy.empty:
        st.info(f"{key} has no finished evaluation yet.")
        return
    ui.table(accuracy, f"accuracy-{md.name}-{md.version}", key="accuracy",
             percent=("accuracy", "low", "high"))

    st.subheader("Per test set")
    testset = st.selectbox("Test set", list(accuracy["testset"]), key="testset", bind="query-params")
    predictions = ui.predictions(gateway, ui.fingerprint(testset), md.name, md.version, testset)
    names_of = data.class_names(testsets.get(testset), md.num_classes)
    _per_class(predictions, names_of, key, testset)
    _hardest(gateway, predictions, names_of, key, testset)


def _robustness(mine: pd.DataFrame, key: str) -> None:
    st.subheader("Effective robustness across shifts")
    if mine.empty:
        st.info(f"{key} has no result on a shift and its reference yet.")
        return
    with_er = mine.dropna(subset=["er"])
    cols = st.columns(3)
    cols[0].metric("shifts", len(mine))
    cols[1].metric("mean ER", f"{with_er['er'].mean():+.2f} pp" if not with_er.empty else "–")
    cols[2].metric("best rank", int(with_er["rank"].min()) if not with_er.empty else "–")
    if not with_er.empty:
        st.altair_chart(charts.er_bars(with_er), width="stretch")
    frame = mine[["shift", "reference", "rank", "of", "tie", "ref_acc", "shift_acc", "er", "er_interval",
                  "predicted_shift_acc", "clipped"]]
    ui.table(frame, f"robustness-{key.replace(':', '-')}", key="robustness",
             percent=("ref_acc", "shift_acc", "predicted_shift_acc"),
             config={"er": st.column_config.NumberColumn("ER (pp)", format="%+.2f"),
                     "er_interval": st.column_config.TextColumn("ER interval"),
                     "of": st.column_config.NumberColumn("of", help="Models ranked on this shift.")})


def _per_class(predictions: pd.DataFrame, names: list[str], key: str, testset: str) -> None:
    st.markdown(f"**Accuracy per class** on {testset}")
    frame = data.per_class_accuracy(predictions, names)
    st.altair_chart(charts.class_bars(frame), width="stretch")
    with st.expander("Table"):
        ui.table(frame, f"per-class-{key.replace(':', '-')}-{testset}", key="per-class",
                 percent=("accuracy",))


def _hardest(gateway: ui.Gateway, predictions: pd.DataFrame, names: list[str], key: str,
             testset: str) -> None:
    st.markdown(f"**Hardest samples** on {testset}: wrong, with the highest confidence")
    wrong = int((~predictions["correct"]).sum())
    if not wrong:
        st.success("No sample is wrong.")
        return
    count = st.slider("How many", 1, min(48, wrong), min(12, wrong), key="hardest-count")
    hardest = data.hardest_samples(predictions, count)
    reply = ui.samples(gateway, testset, tuple(int(s) for s in hardest["sample"]))
    images = {s.sample: s for s in reply.samples}
    for start in range(0, len(hardest), HARDEST_PER_ROW):
        cols = st.columns(HARDEST_PER_ROW)
        for col, (_, row) in zip(cols, hardest.iloc[start:start + HARDEST_PER_ROW].iterrows(), strict=False):
            sample = images.get(int(row["sample"]))
            if sample is None:
                continue
            caption = (f"#{row['sample']}: {_name(names, row['label'])} → {_name(names, row['top1'])} "
                       f"({row['confidence']:.0%})")
            col.image(data.image_array(sample.image, reply.channels, reply.height, reply.width),
                      caption=caption, width="stretch", output_format="PNG")
    table = hardest.assign(label_name=[_name(names, v) for v in hardest["label"]],
                           predicted=[_name(names, v) for v in hardest["top1"]],
                           top5=[", ".join(_name(names, int(c)) for c in t) for t in hardest["top5"]])
    table = table[["sample", "label", "label_name", "top1", "predicted", "confidence", "top5"]]
    with st.expander("Table"):
        ui.table(table, f"hardest-{key.replace(':', '-')}-{testset}", key="hardest", percent=("confidence",))


def _name(names: list[str], index: int) -> str:
    return names[index] if 0 <= index < len(names) else str(index)


if __name__ == "__main__":
    render()
