"""The dashboard keeps uploaded external systems across a refresh; "Forget my data" forgets them.

Pages run in Streamlit's AppTest; a "refresh" is a new AppTest (a new browser session)
opened with the first session's URL query parameters (as ``tests/test_state.py``).
"""

from __future__ import annotations

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from dashboard import sessions
from engine.saved import read_saved
from engine.text import literal_markdown
from tests.conftest import ROOT, SAMPLE_DIR

APP = str(ROOT / "dashboard" / "app.py")


@pytest.fixture
def kept(tmp_path, monkeypatch):
    """Session work goes to a fresh folder."""
    monkeypatch.setenv("RECSYS_SESSION_DIR", str(tmp_path / "sessions"))
    return tmp_path / "sessions"


def _lists_csv() -> bytes:
    """Every sample user gets the sample's 10 most rated items (user, item, rank)."""
    ratings = pd.read_csv(SAMPLE_DIR / "ratings.csv", dtype=str)
    popular = ratings["item_id"].value_counts().index[:10]
    users = sorted(ratings["user_id"].unique())
    rows = [f"{u},{i},{r + 1}" for u in users for r, i in enumerate(popular)]
    return ("user,item,rank\n" + "\n".join(rows) + "\n").encode()


def new_session(token: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    if token is not None:
        at.query_params["session"] = token
    return at.run()


def shown(at: AppTest) -> bool:
    """Whether the Data page lists the system ``pop`` with its lists."""
    return any(literal_markdown("pop: lists") == m.value for m in at.markdown)


def lists_kept(at: AppTest) -> pd.DataFrame | None:
    systems = at.session_state["store"].extras.get(("external",), [])
    return systems[0].lists if systems else None


def test_uploaded_systems_survive_a_refresh_and_forget_my_data_removes_them(kept):
    at = add_pop(new_session())
    assert not at.exception, at.exception
    assert shown(at)
    uploaded = lists_kept(at)
    token = at.query_params["session"]
    assert sessions.is_token(token)
    folder = sessions.folder_of(token, sessions.SessionLimits(kept))
    assert (folder / "systems" / "lists_0.parquet").is_file()

    again = new_session(token)  # a refresh
    assert not again.exception, again.exception
    assert shown(again)
    pd.testing.assert_frame_equal(lists_kept(again), uploaded)

    again.sidebar.button(key="forget_my_data").click().run()
    assert not shown(again) and lists_kept(again) is None
    assert not folder.exists()
    later = new_session(token)
    assert not shown(later) and lists_kept(later) is None


def test_removing_the_systems_is_kept_across_a_refresh(kept):
    at = add_pop(new_session())
    token = at.query_params["session"]
    at.button(key="clear_external").click().run()
    assert not at.exception, at.exception
    assert not shown(at)
    assert not shown(new_session(token))


def _heldout_csv(new: bool = True) -> bytes:
    """Ratings of sample users on items they have not rated (``new``), else already rated."""
    ratings = pd.read_csv(SAMPLE_DIR / "ratings.csv", dtype=str)
    if not new:
        rows = ratings.head(30)
    else:
        items = sorted(ratings["item_id"].unique())
        rated = set(zip(ratings["user_id"], ratings["item_id"], strict=True))
        pairs = [(u, i) for u in sorted(ratings["user_id"].unique())[:60] for i in items[:40]
                 if (u, i) not in rated][:200]  # fmt: skip
        rows = pd.DataFrame(pairs, columns=["user_id", "item_id"]).assign(rating="4")
    return rows[["user_id", "item_id", "rating"]].to_csv(index=False).encode()


def add_pop(at: AppTest) -> AppTest:
    at.file_uploader(key="upload_external").set_value(("pop.csv", _lists_csv(), "text/csv"))
    at.run()
    at.text_input(key="external_name").set_value("pop").run()
    at.button(key="add_external").click().run()
    return at


def heldout_of(at: AppTest):
    return at.session_state["store"].extras.get(("heldout",))


def test_a_heldout_file_judges_the_systems_and_is_kept_across_a_refresh(kept):
    at = add_pop(new_session())
    at.file_uploader(key="upload_heldout").set_value(("held.csv", _heldout_csv(), "text/csv"))
    at.run()
    at.button(key="use_heldout").click().run()
    assert not at.exception, at.exception
    held = heldout_of(at)
    assert (held.source, held.name, len(held.ratings)) == ("file", "held.csv", 200)
    assert any(literal_markdown(held.describe()) == c.value for c in at.caption)
    again = new_session(at.query_params["session"])
    back = heldout_of(again)
    assert (back.source, back.name) == ("file", "held.csv")
    pd.testing.assert_frame_equal(back.ratings, held.ratings)
    again.button(key="clear_heldout").click().run()
    assert heldout_of(again) is None
    assert heldout_of(new_session(again.query_params["session"])) is None


def test_a_heldout_file_of_already_rated_pairs_is_refused_with_one_sentence(kept):
    at = add_pop(new_session())
    at.file_uploader(key="upload_heldout").set_value(
        ("old.csv", _heldout_csv(new=False), "text/csv")
    )
    at.run()
    at.button(key="use_heldout").click().run()
    assert not at.exception, at.exception
    assert heldout_of(at) is None
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "old" in errors[0] and "a new rating by a known user" in errors[0]


def test_the_analysis_zip_carries_the_systems(kept, tmp_path):
    at = add_pop(new_session())
    at.toggle(key="prepare_analysis").set_value(True).run()
    assert not at.exception, at.exception
    extras = at.session_state["store"].extras
    zipped = next(v for k, v in extras.items() if k[0] == "analysis zip")
    (tmp_path / "analysis.zip").write_bytes(zipped)
    saved = read_saved(tmp_path / "analysis.zip")
    assert [s.name for s in saved.systems.systems] == ["pop"]
    pd.testing.assert_frame_equal(saved.systems.systems[0].lists, lists_kept(at))


def _lists_with_unknown_users_csv() -> bytes:
    """The popularity lists plus 3 users (30 rows) the sample does not have."""
    extra = "\n".join(f"nobody{u},{r + 1},{r + 1}" for u in range(3) for r in range(10))
    return _lists_csv() + (extra + "\n").encode()


def test_data_page_load_report_counts_unknown_users_and_shows_rows_as_text(kept):
    at = new_session()
    at.file_uploader(key="upload_external").set_value(
        ("pop.csv", _lists_with_unknown_users_csv(), "text/csv")
    )
    at.run()
    at.text_input(key="external_name").set_value("pop").run()
    at.button(key="add_external").click().run()
    assert not at.exception, at.exception
    captions = [c.value for c in at.caption]
    assert any("30 rows of 3 users not in the rating data" in c for c in captions), captions
    (table,) = [d.value for d in at.dataframe if "distinct ids" in getattr(d.value, "columns", [])]
    row = table.iloc[0]
    assert (row["rows"], row["distinct ids"]) == ("30", "3 users")
    assert row["example"].startswith("row ") and "user nobody0, item 1, rank 1" in row["example"]
    assert "{" not in row["example"]


def test_recommendations_page_shows_the_systems_list_beside_the_svds_before_any_comparison(kept):
    at = add_pop(new_session())
    at.switch_page("views/recommendations.py").run()
    assert not at.exception, at.exception
    frames = [d.value for d in at.dataframe]
    mine = next(f for f in frames if list(f.columns) == ["rank", "title", "score", "item_id"])
    ratings = pd.read_csv(SAMPLE_DIR / "ratings.csv", dtype=str)
    assert mine["item_id"].tolist() == ratings["item_id"].value_counts().index[:10].tolist()
    assert mine["rank"].tolist() == list(range(1, 11))
    assert any(list(f.columns) == ["rank", "title", "prediction"] for f in frames)  # the SVD's
    infos = [i.value for i in at.info]
    assert any("compare the systems on the Bias audit page" in i for i in infos), infos
    assert not any("once they are compared" in c.value for c in at.caption)
