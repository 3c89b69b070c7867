"""Pages of the review app; each is a Streamlit script run by `st.navigation`, never imported."""
