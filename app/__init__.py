"""Front ends: the root `dosewise` command line and the Streamlit clinician review app.

Importing this package imports nothing heavy (no streamlit, no torch).
"""
