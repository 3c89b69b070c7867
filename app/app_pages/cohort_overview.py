"""Cohort: size, inclusion funnel, quarantined rows by rule, demographics, clinician vs policy actions;
for chemotherapy datasets also the regimen mix, cycles per patient, RDI distribution and toxicity rates."""

from __future__ import annotations

import streamlit as st

from dosewise.app import charts, chemo_charts, page_context
from dosewise.app import data_access as da
from dosewise.app.data_access import chemo
from dosewise.data_schemas import columns as c

selection = page_context.current()
st.title("Cohort")
dataset = page_context.require_dataset(selection)
frame = dataset.trajectories
is_chemo = chemo.is_chemo(dataset)

cols = st.columns(4)
cols[0].metric("Patients" if is_chemo else "Stays", f"{frame[c.EPISODE_ID].nunique():,}")
cols[1].metric("Cycles" if is_chemo else "Bins", f"{len(frame):,}")
cols[2].metric("Actions", dataset.info.n_actions)
cols[3].metric("Quarantined rows", f"{int(dataset.quarantine['rows'].sum()):,}")
st.caption(f"Dataset `{dataset.ref.name}` · `{dataset.manifest.kind}` · trajectories SHA-256 "
           f"`{dataset.sha256[:12]}…` · made {dataset.manifest.created_at[:19]}")

if is_chemo:
    st.subheader("Chemotherapy cycles")
    summary = chemo.cohort_summary(dataset)
    left, right = st.columns(2)
    if len(summary.regimens):
        left.plotly_chart(chemo_charts.regimen_mix(summary.regimens), key="regimen_mix")
    else:
        left.info("No regimen per patient: this dataset has no cohort.parquet with a `regimen` column.")
    per_patient = chemo_charts.cycles_per_patient(summary.cycles_per_patient)
    right.plotly_chart(per_patient, key="cycles_per_patient")
    left, right = st.columns(2)
    edges = list(dataset.info.action_bin_edges.get(chemo.RDI, []))
    left.plotly_chart(chemo_charts.rdi_distribution(summary.rdi, edges), key="rdi_distribution")
    right.plotly_chart(chemo_charts.toxicity_rates(chemo.toxicity_rates(dataset)), key="toxicity_rates")

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
