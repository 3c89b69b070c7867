"""Entry script of the clinician review app (`dosewise review` runs it with `streamlit run`).

Sets the page, guards it behind the login when one is configured, renders the dataset and policy
pickers, and hands over to the page the user chose (`st.navigation` over `app_pages/`).
"""

from __future__ import annotations

import streamlit as st

from dosewise.app import auth, page_context
from dosewise.app.settings import AppSettings

st.set_page_config(page_title="Dosewise review", page_icon=":material/vaccines:", layout="wide")

settings = AppSettings.from_env()
reviewer = auth.require_reviewer(settings)
navigation = st.navigation(
    [
        st.Page("app_pages/cohort_overview.py", title="Cohort", icon=":material/groups:", default=True),
        st.Page("app_pages/patient_timeline.py", title="Patient timeline", icon=":material/timeline:"),
        st.Page("app_pages/policy_evaluation.py", title="Policy evaluation", icon=":material/balance:"),
        st.Page("app_pages/recommendation_review.py", title="Review", icon=":material/rate_review:"),
    ]
)
page_context.render_sidebar(settings, reviewer)
navigation.run()
