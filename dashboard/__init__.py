"""Streamlit dashboard: thin pages over ``engine``."""
