"""Review: agree / partly / disagree with one bin's recommendation, the dose you would give, and why.

The dose you would give fits the dataset: IV fluid and vasopressor for a sepsis bin; for a
chemotherapy cycle, the dose as a percentage of the planned dose per m2 and the delay in days.

Reviews are stored append-only with the reviewer's identity, the time, the policy's name and
version and the dataset's hash; past reviews are listed and exportable. Each form carries one
review id until it is stored, so a retried submission is stored once, and a retry with changed
content is refused with a message instead of being dropped.
"""

from __future__ import annotations

import io
import uuid

import pandas as pd
import streamlit as st
from pydantic import ValidationError

from dosewise.app import charts, page_context
from dosewise.app import data_access as da
from dosewise.app.data_access import chemo
from dosewise.app.review_export import reviews_csv
from dosewise.app.review_store import ReviewConflictError, ReviewStoreError
from dosewise.data_schemas import VERDICTS, ClinicianReviewSchema
from dosewise.data_schemas import columns as c
from dosewise.data_schemas.review import MAX_REVIEW_DELAY_DAYS, MAX_REVIEW_DOSE_PCT

selection = page_context.current()
st.title("Review a recommendation")
dataset = page_context.require_dataset(selection)
if selection.policy is None:
    page_context.stop_with(
        "No registered policy to review yet.",
        "Register one with `dosewise register --run RUN_ID --name sepsis-dosing`, then pick it in the "
        "sidebar.",
    )
policy = page_context.require_policy(selection, dataset)
with page_context.errors_as_banner("read the policy's OPE report"):
    flags = da.support_flags(page_context.report_for(selection, dataset, policy))
episode_id, stay = page_context.stay_picker(dataset, page="review", preferred=da.first_flagged_stay(flags))
step = page_context.bin_picker(stay, page="review")
with page_context.errors_as_banner("compute the policy's recommendation"):
    recommendations, q_values = da.stay_recommendations(policy, stay)
doses, _ = da.dose_frame(dataset, stay, recommendations, flags)
row = stay[stay[c.STEP] == step].iloc[0]
rec = recommendations[recommendations[c.STEP] == step].iloc[0]
st.markdown(f"**Policy** `{selection.policy.label}` · **stay** `{episode_id}` · **bin** {step} "
            f"(from {pd.Timestamp(row[c.BIN_START]):%Y-%m-%d %H:%M}) · "
            f"**reviewer** `{selection.reviewer.identity}`")
summary_col, chart_col = st.columns([1, 1])
summary_col.dataframe(da.bin_summary(doses, step), hide_index=True)
position = int(stay.index[stay[c.STEP] == step][0])
chart_col.plotly_chart(
    charts.action_values(q_values[position], dataset.grid or (1, dataset.info.n_actions), int(row[c.ACTION]),
                         int(rec["recommended"])),
    key="review_action_values",
)


def _dose(values: pd.Series, key: str) -> float | None:
    value = values.get(key)
    return None if value is None or pd.isna(value) else float(value)


def _shown(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}"


is_chemo = chemo.is_chemo(dataset)
given_fluid, given_vaso = _dose(row, c.FLUID_ML_4H), _dose(row, c.NOREPI_EQ_MCG_KG_MIN)
rec_fluid = _dose(rec, f"recommended_{c.FLUID_ML_4H}")
rec_vaso = _dose(rec, f"recommended_{c.NOREPI_EQ_MCG_KG_MIN}")
given_fraction, given_delay = _dose(row, c.DOSE_FRACTION), _dose(row, c.DELAY_DAYS)
given_pct = None if given_fraction is None else 100.0 * given_fraction
rec_rdi = _dose(rec, f"recommended_{c.RDI_FRACTION}")
if is_chemo:
    st.caption(
        f"Given: {_shown(given_pct)} % of the planned dose, {_shown(given_delay)} day(s) late · "
        f"recommended RDI {_shown(None if rec_rdi is None else 100 * rec_rdi)} % "
        "(dose x planned / actual interval; on schedule, RDI = dose %)")
form_key = f"{dataset.ref.name}|{episode_id}|{step}"
id_key = f"review_id|{form_key}"
if id_key not in st.session_state:
    st.session_state[id_key] = uuid.uuid4().hex
with st.form("review_form", clear_on_submit=False):
    verdict = st.radio("Your verdict on the recommendation", VERDICTS, index=None, horizontal=True,
                       key=f"verdict|{form_key}")
    left, right = st.columns(2)
    fluid = vaso = dose_pct = delay = None
    if is_chemo:
        start = rec_rdi if rec_rdi is not None else given_fraction or 0.0
        dose_pct = left.number_input(
            "Dose you would give (% of planned)", min_value=0.0, max_value=MAX_REVIEW_DOSE_PCT, step=5.0,
            value=float(min(max(100.0 * start, 0.0), MAX_REVIEW_DOSE_PCT)), format="%.0f",
            help="Of the planned dose per m2; 0 holds the cycle.", key=f"dose_pct|{form_key}")
        delay = right.number_input(
            "Delay you would give (days)", min_value=0, max_value=MAX_REVIEW_DELAY_DAYS, step=1, value=0,
            help="Days after the scheduled start of the cycle.", key=f"delay|{form_key}")
    else:
        fluid = left.number_input("IV fluid you would give (mL/4h)", min_value=0.0, max_value=20000.0,
                                  step=50.0, value=rec_fluid if rec_fluid is not None else given_fluid or 0.0,
                                  key=f"fluid|{form_key}")
        vaso = right.number_input("Vasopressor you would give (norepinephrine-eq mcg/kg/min)", min_value=0.0,
                                  max_value=10.0, step=0.01, format="%.3f",
                                  value=rec_vaso if rec_vaso is not None else given_vaso or 0.0,
                                  key=f"vaso|{form_key}")
    comment = st.text_area("Your reasoning (free text)", max_chars=5000, key=f"comment|{form_key}")
    submitted = st.form_submit_button("Submit review", type="primary")

with page_context.errors_as_banner("open the review database"):
    store = da.review_store(selection.settings.review_db_url)
if submitted:
    if verdict is None:
        st.error("Choose agree, partly or disagree before submitting.")
    else:
        try:
            review = ClinicianReviewSchema(
                review_id=st.session_state[id_key], reviewer=selection.reviewer.identity,
                episode_id=episode_id, step=step,
                bin_start=pd.Timestamp(row[c.BIN_START]).to_pydatetime(), action_given=int(row[c.ACTION]),
                action_recommended=int(rec["recommended"]), given_fluid_ml_4h=given_fluid,
                given_norepi_eq_mcg_kg_min=given_vaso, recommended_fluid_ml_4h=rec_fluid,
                recommended_norepi_eq_mcg_kg_min=rec_vaso, verdict=verdict, reviewer_fluid_ml_4h=fluid,
                reviewer_norepi_eq_mcg_kg_min=vaso, comment=comment, policy_name=selection.policy.name,
                policy_version=selection.policy.version, dataset_name=dataset.ref.name,
                dataset_sha256=dataset.sha256, given_dose_pct_of_planned=given_pct if is_chemo else None,
                given_delay_days=given_delay if is_chemo else None,
                recommended_rdi_fraction=rec_rdi if is_chemo else None,
                reviewer_dose_pct_of_planned=dose_pct,
                reviewer_delay_days=None if delay is None else int(delay),
            )
            store.append(review)
            st.session_state[id_key] = uuid.uuid4().hex  # the next submission is a new review
            st.success(f"Review stored ({verdict}) for stay `{episode_id}`, bin {step}.")
        except ValidationError as exc:
            st.error(f"The review is not valid: {exc.errors()[0]['msg']} ({exc.errors()[0]['loc']}).")
        except ReviewConflictError as exc:
            st.session_state[id_key] = uuid.uuid4().hex
            st.error(f"{exc.message} Submit again to store your judgement as a new review.")
        except ReviewStoreError as exc:
            st.error(f"{exc.message} {exc.hint} Your input is kept in the form above.")

st.subheader("Past reviews")
only_stay = st.toggle("Only this stay", value=False, key="reviews_only_stay")
try:
    past = store.read(episode_id=episode_id if only_stay else None)
except ReviewStoreError as exc:
    st.error(f"{exc.message} {exc.hint}")
    st.stop()
st.caption(f"{len(past):,} review(s) in `{store.display_url}`")
doses_shown = (["reviewer_dose_pct_of_planned", "reviewer_delay_days"] if is_chemo
               else ["reviewer_fluid_ml_4h", "reviewer_norepi_eq_mcg_kg_min"])
shown = ["reviewed_at", "reviewer", "episode_id", "step", "verdict", "action_given", "action_recommended",
         *doses_shown, "comment", "policy_name", "policy_version"]
st.dataframe(past[shown].iloc[::-1], hide_index=True, key="past_reviews")
st.caption("Exports hold every stored field, including the dataset hash and the given/recommended doses.")
csv_col, parquet_col = st.columns(2)
csv_col.download_button("Export CSV", reviews_csv(past).encode("utf-8"), "reviews.csv", "text/csv",
                        key="export_csv")
buffer = io.BytesIO()
past.to_parquet(buffer, index=False)
parquet_col.download_button("Export parquet", buffer.getvalue(), "reviews.parquet",
                            "application/octet-stream", key="export_parquet")
