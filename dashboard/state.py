"""Loading and caching of datasets for the pages (layout-free)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from engine import DatasetProfile, RatingData, dataset_profile, load_dataset

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "sample_data"


@st.cache_resource(show_spinner="Loading the sample dataset...")
def sample_dataset() -> RatingData:
    """Load the bundled synthetic sample (shared by all sessions: it holds no user data)."""
    return load_dataset(SAMPLE_DIR)


@st.cache_data(show_spinner=False, hash_funcs={RatingData: lambda d: d.fingerprint})
def profile_of(data: RatingData) -> DatasetProfile:
    """Return the profile of ``data``, cached by its fingerprint."""
    return dataset_profile(data)
