"""Patient timeline: one stay's doses given beside recommended (out-of-support flagged), the action
values of a chosen bin, and its vitals, labs and SOFA over the bins. A chemotherapy patient gets the
cycle timeline instead: planned, delivered and recommended dose per cycle, ANC with its nadir and the
1.5 x 10^9/L line, toxicity grades and tumour size."""

from __future__ import annotations

import streamlit as st

from dosewise.app import charts, chemo_charts, page_context
from dosewise.app import data_access as da
from dosewise.app.data_access import chemo
from dosewise.data_schemas import columns as c

selection = page_context.current()
st.title("Patient timeline")
dataset = page_context.require_dataset(selection)
policy = page_context.optional_policy(selection, dataset)
flags = None
if policy is not None:
    with page_context.errors_as_banner("read the policy's OPE report"):
        flags = da.support_flags(page_context.report_for(selection, dataset, policy))
episode_id, stay = page_context.stay_picker(dataset, page="timeline", preferred=da.first_flagged_stay(flags))
last = stay.iloc[-1]
outcome = "terminal" if bool(last[c.TERMINAL]) else "timeout" if bool(last[c.TIMEOUT]) else "open"
st.caption(f"Stay `{episode_id}` · {len(stay)} bins · split `{stay[c.SPLIT].iloc[0]}` · ends {outcome} · "
           f"return {float(stay[c.REWARD].sum()):.2f}")

recommendations, q_values = None, None
if policy is not None:
    with page_context.errors_as_banner("compute the policy's recommendations"):
        recommendations, q_values = da.stay_recommendations(policy, stay)
doses, in_units = da.dose_frame(dataset, stay, recommendations, flags)
if chemo.is_chemo(dataset):
    cycles = chemo.cycle_frame(stay, recommendations, flags)
    grades = chemo.cycle_grades(stay, chemo.grade_columns(dataset))
    st.plotly_chart(chemo_charts.cycle_timeline(cycles, grades), key="cycle_timeline")
    in_units = True
else:
    st.plotly_chart(charts.doses_given_vs_recommended(doses), key="doses")
notes = []
if not in_units:
    notes.append("This dataset records discrete dose bins, not doses in units: bins are quantiles of the "
                 "cohort's doses (bin 0 = none).")
if policy is not None and flags is None:
    notes.append("Out-of-support flags come from the policy's OPE report; none was found for this dataset.")
elif flags is not None and not flags[c.EPISODE_ID].eq(episode_id).any():
    notes.append("Out-of-support flags cover the evaluated split only; this stay is not in it.")
for note in notes:
    st.caption(note)

st.subheader("One bin: given vs recommended, and the action values")
step = page_context.bin_picker(stay, page="timeline")
st.dataframe(da.bin_summary(doses, step), hide_index=True)
if q_values is not None and recommendations is not None:
    row = int(stay.index[stay[c.STEP] == step][0])
    grid = dataset.grid or (1, dataset.info.n_actions)
    chart = charts.action_values(q_values[row], grid, int(stay[c.ACTION].iloc[row]),
                                 int(recommendations["recommended"].iloc[row]))
    st.plotly_chart(chart, key="action_values")
else:
    st.info("Select a registered policy to see its action values.")

st.subheader("Vitals, labs and scores")
columns = st.multiselect("Show", list(dataset.info.state_columns),
                         default=da.default_timeline_columns(dataset), key="timeline_columns")
st.plotly_chart(charts.state_timeline(stay, columns), key="state_timeline")
