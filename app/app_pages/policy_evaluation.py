"""Policy evaluation: every OPE estimator with its interval, ESS, support share, calibration,
and the clinicians' value beside the policy's."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dosewise.app import charts, page_context
from dosewise.app import data_access as da

selection = page_context.current()
st.title("Policy evaluation")
dataset = page_context.require_dataset(selection)
if selection.policy is None:
    page_context.stop_with(
        "No registered policy to evaluate yet.",
        "Train, evaluate and register one (`dosewise train`, `dosewise evaluate`, `dosewise register`), "
        "then pick it in the sidebar.",
    )
with page_context.errors_as_banner("read the OPE report"):
    loaded = page_context.report_for(selection, dataset, page_context.optional_policy(selection, dataset))
if loaded is None:
    page_context.stop_with(
        f"No OPE report for `{selection.policy.label}` on dataset `{dataset.ref.name}`.",
        f"Run `dosewise evaluate --trajectories {dataset.ref.path} --policy {selection.policy.uri} "
        f"--out {selection.settings.data_root}/ope` and reload.",
    )
report = loaded.report
estimates = report.estimates_frame()
policy_row, clinician_row = da.headline(estimates)
interval = f"{report.bootstrap.confidence:.0%} bootstrap interval"

cols = st.columns(5)
note = da.headline_reliability(report, policy_row)
policy_interval = f"[{policy_row['ci_low']:.3f}, {policy_row['ci_high']:.3f}]"
difference = (None if clinician_row is None or note is not None
              else f"{policy_row['value'] - clinician_row['value']:+.3f}")  # no arrow for an unreliable value
cols[0].metric(f"Policy value ({policy_row['estimator']})", f"{policy_row['value']:.3f}", delta=difference,
               help=f"{interval} {policy_interval}"
               + ("; the arrow is the difference to the clinicians' value" if difference else ""))
cols[0].caption(f"{interval} {policy_interval}" + (f" · **{note}**" if note else ""))
if clinician_row is not None:
    cols[1].metric(f"Clinicians' value ({clinician_row['estimator']})", f"{clinician_row['value']:.3f}",
                   help=f"{interval} [{clinician_row['ci_low']:.3f}, {clinician_row['ci_high']:.3f}]")
    cols[1].caption(f"{interval} [{clinician_row['ci_low']:.3f}, {clinician_row['ci_high']:.3f}]")
ess = policy_row["ess"]
cols[2].metric("Effective sample size", "n/a" if pd.isna(ess) else f"{ess:,.1f}",
               help=f"Kish ESS of the {policy_row['estimator']} weights, of {report.n_episodes:,} episodes")
cols[3].metric("Out of support", f"{report.support.share_steps_out_of_support:.1%}",
               help=f"share of recommended actions whose behaviour probability < {report.support.threshold}")
cols[4].metric("Behaviour ECE", f"{report.behaviour.heldout_ece:.3f}",
               help=f"{report.behaviour.source}: {report.behaviour.estimator}")
st.caption(f"Report from {loaded.origin} · split `{report.split}` · {report.n_episodes:,} episodes · "
           f"gamma {report.gamma} · epsilon {report.epsilon} · {report.bootstrap.n_resamples} resamples")

if report.bootstrap.fqe_note:
    st.info(report.bootstrap.fqe_note, icon=":material/info:")
if report.fqe_support:
    st.caption("Tabular FQE: how much of each target's value rests on what the fit data never show")
    st.dataframe(pd.DataFrame([{
        "target": s.target, "states": s.n_states,
        "never-logged (state, action) steps per episode": round(s.never_logged_steps, 2),
        "share of its steps": f"{s.never_logged_share:.0%}",
        "episodes reaching a state the data cannot value": f"{s.unknown_share:.1%}",
    } for s in report.fqe_support]), hide_index=True)

ranges = {b.target: (b.ci_low, b.ci_high) for b in report.support_bounds}
st.plotly_chart(charts.ope_forest(estimates, ranges=ranges), key="ope_forest")
notes = [report.reliability(item) for item in report.estimates]
cells = estimates.assign(cell=[f"{r.value:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}]" + (f" ({n})" if n else "")
                               for r, n in zip(estimates.itertuples(), notes, strict=True)])
st.subheader("Policy vs clinicians, by estimator (value [interval], and why not, where it is not reliable)")
st.dataframe(cells.pivot(index="estimator", columns="target", values="cell"))
for warning in report.warnings:
    st.warning(warning)

if report.support_bounds:
    st.subheader("Range of values the data allow")
    st.caption("Where the policy recommends actions the clinicians (almost) never took, no estimator can "
               "know what those actions lead to. These bounds assume the worst and the best possible return "
               "for every episode that reaches one (partial identification); the shaded band in the chart "
               "above is this range with its interval.")
    st.dataframe(pd.DataFrame([{
        "target": b.target, "lower bound": round(b.value_low, 4), "upper bound": round(b.value_high, 4),
        f"{interval}": f"[{b.ci_low:.3f}, {b.ci_high:.3f}]",
        "episodes reaching an out-of-support action": f"{b.share_leaving_support:.0%}",
        "returns assumed possible": f"[{b.return_low:g}, {b.return_high:g}] ({b.return_range_source})",
    } for b in report.support_bounds]), hide_index=True)

st.subheader("Behaviour model calibration")
behaviour = report.behaviour
curve = None
with page_context.errors_as_banner("check the behaviour model"):
    curve = da.behaviour_calibration(str(loaded.folder), behaviour.model_file, dataset.ref.path, dataset,
                                     behaviour.heldout_split)
if curve is not None:
    st.plotly_chart(charts.calibration(curve), key="calibration")
elif behaviour.source == "logged_behaviour_prob":
    st.info("The weights used the logged (known) behaviour probabilities, so no fitted model needs "
            f"calibrating; the held-out ECE of the fitted check model is {behaviour.heldout_ece:.3f}.")
else:
    st.info("The behaviour model file of this report is not available; its held-out ECE is "
            f"{behaviour.heldout_ece:.3f}.")
