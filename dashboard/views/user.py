"""User profile page: ratings, rating and genre tastes vs the population, latent tastes."""

from __future__ import annotations

import streamlit as st

from dashboard import state
from dashboard.components import pick_user, shared_page
from engine import charts
from engine.data.profile import rating_period, user_profile
from engine.explain.labels import latent_tastes
from engine.explain.neighbours import most_similar_users
from engine.text import literal_markdown

#: Number formats of the tables: factor values and similarities 3 decimals, z-scores 2.
DECIMALS_3 = st.column_config.NumberColumn(format="%.3f")
DECIMALS_2 = st.column_config.NumberColumn(format="%.2f")


def render() -> None:
    """Lay out the page; its objects die with the run (see ``dashboard.janitor``).

    On a run kept in Spark it reads the chosen user only (``state.user_model``), against
    the run's stored profile as the population.
    """
    run = shared_page("User profile")
    user_id = pick_user(state.user_ids(), key="profile_user")
    data, model = state.user_model(user_id)
    profile = user_profile(data, user_id, None if run is None else run.parts.profile)

    cols = st.columns(3)
    cols[0].metric("Ratings", f"{len(profile.ratings):,}")
    cols[1].metric("Mean rating", f"{profile.ratings['rating'].mean():.2f}")
    cols[2].metric("Population mean", f"{profile.population_mean:.2f}")
    if profile.attributes:
        st.markdown(" · ".join(f"**{literal_markdown(k)}**: {literal_markdown(v)}"
                               for k, v in profile.attributes.items()))  # fmt: skip

    left, right = st.columns(2)
    left.plotly_chart(
        charts.shares_vs_population(profile.histogram, "rating", "Ratings given"), key="user_hist"
    )
    if len(profile.genres):
        right.plotly_chart(
            charts.shares_vs_population(profile.genres.head(12), "genre", "Genre tastes"),
            key="user_genres",
        )
        right.caption("Share of the user's rated items in each genre, whatever the rating "
                      "(an item in several genres counts an equal share in each), against "
                      "the share of all ratings; how they rated shows on the left.")  # fmt: skip

    user = int(model.interactions.user_index([user_id])[0])
    vector = model.user_vector(user)
    st.subheader("Latent tastes")
    st.caption(
        "The factors on which this user differs most from the average user (z = standard "
        "deviations). Factors are only defined up to rotation; labels name the item attributes "
        "each correlates with."
    )
    st.dataframe(
        latent_tastes(model, vector.pu, state.labels(data, model)), hide_index=True,
        key="latent_tastes", column_config={"value": DECIMALS_3, "z": DECIMALS_2},
    )  # fmt: skip

    st.subheader("Ratings")
    period = rating_period(profile.ratings["rated_at"])
    if period:
        st.caption(period)
    st.dataframe(
        profile.ratings, hide_index=True, key="user_ratings",
        column_config={"rated_at": st.column_config.DatetimeColumn(
            "rated at (UTC)", format="YYYY-MM-DD HH:mm", timezone="UTC")},
    )  # fmt: skip

    st.subheader("Most similar users")
    st.caption("Cosine similarity of latent user factors (1 = same tastes).")
    st.dataframe(most_similar_users(model, vector, 10, exclude_user=user), hide_index=True,
                 key="similar_users", column_config={"similarity": DECIMALS_3})  # fmt: skip


render()
