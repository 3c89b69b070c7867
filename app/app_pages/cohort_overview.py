"""Cohort: size, inclusion funnel, quarantined rows by rule, demographics, clinician vs policy actions."""

from __future__ import annotations

import streamlit as st

from dosewise.app import charts, page_context
from dosewise.app import data_access as da
from dosewise.data_schemas import columns as c

selection = page_context.current()
st.title("Cohort")
dataset = page_context.require_dataset(selection)
frame = dataset.trajectories

cols = st.columns(4)
cols[0].metric("Stays", f"{frame[c.EPISODE_ID].nunique():,}")
cols[1].metric("Bins", f"{len(frame):,}")
cols[2].metric("Actions", dataset.info.n_actions)
cols[3].metric("Quarantined rows", f"{int(dataset.quarantine['rows'].sum()):,}")
st.caption(f"Dataset `{dataset.ref.name}` · `{dataset.manifest.kind}` · trajectories SHA-256 "
           f"`{dataset.sha256[:12]}…` · made {dataset.manifest.created_at[:19]}")

if len(dataset.funnel):
    st.plotly_chart(charts.inclusion_funnel(dataset.funnel), key="funnel")
else:
    st.info("This dataset records no inclusion funnel (e.g. simulator episodes have no cohort rules).")
if len(dataset.quarantine):
    st.plotly_chart(charts.quarantine_by_rule(dataset.quarantine), key="quarantine")
else:
    st.success("No rows were quarantined while building this dataset.")

age, group = da.cohort_columns(dataset.cohort)
if dataset.cohort is not None and (age or group):
    st.plotly_chart(charts.demographics(dataset.cohort, age, group), key="demographics")
else:
    st.info("No demographics: this dataset has no `cohort.parquet` with age or gender columns.")

st.subheader("Actions: clinicians vs policy")
policy = page_context.optional_policy(selection, dataset)
grid = dataset.grid or (1, dataset.info.n_actions)
if policy is not None and selection.policy is not None:
    with page_context.errors_as_banner("compute the policy's actions"):
        actions = da.dataset_recommendations(dataset.ref.path, selection.policy.uri, dataset, policy)
    heatmap = charts.action_heatmap(actions["clinician"].to_numpy(), actions["policy"].to_numpy(), grid)
    st.plotly_chart(heatmap, key="action_heatmap")
    agree = float((actions["clinician"] == actions["policy"]).mean())
    st.caption(f"The policy recommends the clinicians' action in {agree:.1%} of {len(actions):,} bins.")
else:
    st.plotly_chart(charts.action_heatmap(frame[c.ACTION].to_numpy(), None, grid), key="action_heatmap")
