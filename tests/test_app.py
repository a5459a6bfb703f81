"""Every page the dashboard registers shows what it is for (streamlit AppTest).

``dashboard/app.py`` turns an error escaping a page into one message (``page_failed``),
so ``not at.exception`` alone can never fail: ``assert_ok`` also requires that no error
message is shown, and each page's test checks its key table, chart or metric against
the engine.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from dashboard.routes import PAGES
from engine import EvaluationConfig, dataset_profile, load_dataset
from engine.report import find_chromium
from engine.text import literal_markdown
from engine.whatif import DUPLICATE, MOVED_DOWN, UNKNOWN_ITEM
from tests.conftest import ROOT, SAMPLE_DIR

APP = str(ROOT / "dashboard" / "app.py")
TIMEOUT = 180
#: Training, the 5-fold evaluation and the audit in one run (slow on a shared 2-core machine).
AUDIT_TIMEOUT = 900
#: The sentence ``dashboard.components.page_failed`` starts its message with.
PAGE_FAILED = "hit an unexpected problem"


@pytest.fixture(scope="module")
def sample():
    return load_dataset(SAMPLE_DIR)


def app() -> AppTest:
    return AppTest.from_file(APP, default_timeout=TIMEOUT)


def assert_ok(at: AppTest) -> None:
    """No exception and no error message (a page's failure is shown as ``st.error``)."""
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]


def frame_with(at: AppTest, *columns: str) -> pd.DataFrame:
    """The first table that has these columns (AppTest exposes no keys for dataframes)."""
    for frame in at.dataframe:
        value = frame.value
        if hasattr(value, "columns") and set(columns) <= set(value.columns):
            return value
    raise AssertionError(f"no table with columns {columns}")


def has_frame_with(at: AppTest, *columns: str) -> bool:
    try:
        frame_with(at, *columns)
    except AssertionError:
        return False
    return True


def page(path: str) -> AppTest:
    at = app()
    at.switch_page(path)
    return at.run()


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def user_ratings(sample, user_id: str) -> pd.DataFrame:
    return sample.ratings[sample.ratings["user_id"] == user_id]


# --- what each page shows on opening -------------------------------------------------


def shows_the_profile(at: AppTest, sample) -> None:
    truth = dataset_profile(sample)
    assert metrics(at) == {
        "Users": f"{truth.n_users:,}",
        "Items": f"{truth.n_items:,}",
        "Ratings": f"{truth.n_ratings:,}",
        "Density": f"{truth.density:.2%}",
        "Mean rating": f"{truth.rating_mean:.2f}",
    }
    assert len(at.get("plotly_chart")) >= 3  # rating histogram, activity, long tail


def offers_training(at: AppTest, sample) -> None:
    assert at.button(key="train") is not None
    assert any("Train the model" in i.value for i in at.info)


def shows_the_users_ratings(at: AppTest, sample) -> None:
    user = at.selectbox(key="profile_user").value
    mine = user_ratings(sample, user)
    shown = metrics(at)
    assert shown["Ratings"] == f"{len(mine):,}"
    assert shown["Mean rating"] == f"{mine['rating'].mean():.2f}"
    assert shown["Population mean"] == f"{sample.ratings['rating'].mean():.2f}"
    table = frame_with(at, "item_id", "rating")
    assert sorted(table["item_id"]) == sorted(mine["item_id"])
    assert len(frame_with(at, "user_id", "similarity")) == 10  # most similar users
    first = pd.to_datetime(mine["timestamp"].min(), unit="s", utc=True)
    period = f"{len(mine):,} ratings given within "
    (caption,) = [c.value for c in at.caption if c.value.startswith(period)]
    assert f"({first:%Y-%m-%d %H:%M} to " in caption


def lists_n_unrated_items(at: AppTest, sample) -> None:
    user = at.selectbox(key="recs_user").value
    n = at.slider(key="list_length").value
    recs = frame_with(at, "rank", "raw_prediction")
    assert recs["rank"].tolist() == list(range(1, n + 1))
    assert not set(recs["item_id"]) & set(user_ratings(sample, user)["item_id"])
    assert recs["raw_prediction"].is_monotonic_decreasing
    assert "rank_before" not in recs  # no edit yet
    assert len(at.get("plotly_chart")) >= 2  # factor waterfall and "because you rated" bars
    assert any("adds up to it" in c.value for c in at.caption)
    assert not any(s.value.startswith("Counterfactual") for s in [*at.success, *at.info])


def asks_to_run_the_audit(at: AppTest, sample) -> None:
    assert at.button(key="run_audit") is not None
    assert any("Run the audit" in i.value for i in at.info)


def asks_for_an_audit_first(at: AppTest, sample) -> None:
    assert any("Run the audit on the Bias audit page first" in i.value for i in at.info)
    assert not at.get("download_button")


def asks_to_run_the_monitoring(at: AppTest, sample) -> None:
    assert at.button(key="run_monitor") is not None
    assert any("Run the monitoring" in i.value for i in at.info)
    assert not at.get("plotly_chart")


def asks_for_version_b(at: AppTest, sample) -> None:
    assert any("Upload version B" in i.value for i in at.info)
    assert not at.button  # nothing to compare yet


ON_OPENING: dict[str, Callable[[AppTest, object], None]] = {
    "views/data.py": shows_the_profile,
    "views/model.py": offers_training,
    "views/user.py": shows_the_users_ratings,
    "views/recommendations.py": lists_n_unrated_items,
    "views/audit.py": asks_to_run_the_audit,
    "views/over_time.py": asks_to_run_the_monitoring,
    "views/report.py": asks_for_an_audit_first,
    "views/compare.py": asks_for_version_b,
}


def test_every_registered_page_has_an_opening_check():
    assert sorted(ON_OPENING) == sorted(r.path for r in PAGES)


@pytest.mark.parametrize("route", PAGES, ids=lambda r: r.title)
def test_each_registered_page_shows_its_content(route, sample):
    at = page(route.path)
    assert_ok(at)
    assert at.title[0].value == route.title
    assert any("Synthetic sample data" in i.value for i in at.info)
    ON_OPENING[route.path](at, sample)


# --- Data ------------------------------------------------------------------------------


def test_upload_with_mapping_replaces_the_dataset_for_this_session():
    at = app().run()
    rows = [f"p{u},m{i},{(u * 7 + i) % 5 + 1}" for u in range(12) for i in range(9) if (u + i) % 4]
    text = "who,what,stars\n" + "\n".join(rows)
    at.file_uploader(key="upload_ratings").set_value(("mine.csv", text.encode(), "text/csv"))
    at.run()
    assert [s.value for s in at.selectbox if s.key == "map_rating"] == ["stars"]
    at.button(key="load_upload").click().run()
    assert_ok(at)
    shown = metrics(at)
    assert shown["Users"] == "12" and shown["Items"] == "9"
    assert shown["Ratings"] == f"{len(rows):,}"
    assert not any("Synthetic sample data" in i.value for i in at.info)
    assert literal_markdown("mine.csv") in at.caption[0].value  # the name shown literally


def test_reading_options_decide_how_a_european_file_is_read():
    at = app().run()
    content = (ROOT / "tests" / "data" / "bad" / "european_mixed_decimals.csv").read_bytes()
    at.file_uploader(key="upload_ratings").set_value(("euro.csv", content, "text/csv"))
    at.selectbox(key="read_decimal").set_value("point 3.5").run()
    at.button(key="load_upload").click().run()
    assert not at.exception, at.exception
    rejected = frame_with(at, "reason", "rows")
    assert "rating is empty, NaN or not a number" in set(rejected["reason"])
    at.selectbox(key="read_decimal").set_value("comma 3,5").run()
    at.button(key="load_upload").click().run()
    assert_ok(at)
    assert not any("not a number" in str(f.value) for f in at.dataframe)
    assert any("were read as decimals" in w.value for w in at.warning)
    assert any("counts as relevant" in m.value for m in at.markdown)


def test_bad_upload_shows_the_engine_message_and_keeps_the_sample(sample):
    at = app().run()
    at.file_uploader(key="upload_ratings").set_value(("bad.csv", b"\x00\x01\x02", "text/csv"))
    at.run()
    assert not at.exception
    (message,) = [e.value for e in at.error]
    assert literal_markdown("bad.csv is binary, not a text table") in message
    assert PAGE_FAILED not in message
    assert any("Synthetic sample data" in i.value for i in at.info)
    assert metrics(at)["Users"] == f"{sample.n_users:,}"


# --- Model -----------------------------------------------------------------------------


def test_model_page_evaluates_a_temporal_split_and_states_it():
    at = page("views/model.py")
    at.selectbox(key="split").set_value("temporal").run()
    assert_ok(at)
    assert at.slider(key="test_share").value == 0.2
    assert any("temporal split, the last 20% of the time span" in c.value for c in at.caption)
    at.button(key="train").click().run(timeout=AUDIT_TIMEOUT)
    assert_ok(at)
    assert frame_with(at, "rmse", "ndcg").index[0] == "SVD"
    assert any(c.value.startswith("Temporal split") and "UTC" in c.value for c in at.caption)


def test_model_page_trains_and_shows_a_row_per_model():
    at = page("views/model.py")
    at.button(key="train").click().run(timeout=AUDIT_TIMEOUT)
    assert_ok(at)
    chosen = [w for w in at.multiselect if w.key == "comparators"]
    comparators = chosen[0].value if chosen else list(EvaluationConfig().models[1:])
    table = frame_with(at, "rmse", "ndcg", "coverage")
    assert list(table.index) == ["SVD", *comparators]
    rmse = float(table.loc["SVD", "rmse"].split(" ± ")[0])
    assert 0.5 < rmse < 1.5  # a 1-5 scale: far better than guessing, not perfect
    if "Popularity" in table.index:
        assert table.loc["Popularity", "rmse"] == "n/a"  # ranks only


# --- Recommendations -------------------------------------------------------------------


def test_switching_user_changes_the_list():
    at = page("views/recommendations.py")
    before = frame_with(at, "rank", "raw_prediction")["item_id"].tolist()
    user = at.selectbox(key="recs_user").value
    other = "u0002" if user != "u0002" else "u0003"
    at.selectbox(key="recs_user").set_value(other).run()
    assert_ok(at)
    assert frame_with(at, "rank", "raw_prediction")["item_id"].tolist() != before


def test_a_what_if_edit_names_unused_rows_and_items_that_left_the_list(sample):
    at = page("views/recommendations.py")
    user = at.selectbox(key="recs_user").value
    n = at.slider(key="list_length").value
    history = at.data_editor(key=f"whatif_{user}").value
    before = frame_with(at, "rank", "raw_prediction")["item_id"].tolist()
    first = history["item_id"].iat[0]
    # Lower every rating to 1, add an unknown item and enter the first item twice.
    at.session_state[f"whatif_{user}"] = {
        "edited_rows": {row: {"rating": 1.0} for row in range(len(history))},
        "added_rows": [{"item_id": "no-such-item", "rating": 4.0},
                       {"item_id": first, "rating": 2.0}],
        "deleted_rows": [],
    }  # fmt: skip
    at.run()
    assert_ok(at)
    final = np.where(history["item_id"] == first, 2.0, 1.0)  # the last row of `first` wins
    changed = int((final != history["rating"].to_numpy()).sum())
    (summary,) = [i.value for i in at.info if i.value.startswith("What-if:")]
    assert summary.startswith(f"What-if: 0 added, {changed} changed, 0 removed (")
    assert "Not known to the model, not used: no-such-item." in summary
    unused = frame_with(at, "row", "reason")
    assert unused["row"].tolist() == [1, len(history) + 1]  # editor rows, 1 = first
    assert unused[["item_id", "reason"]].values.tolist() == [
        [first, DUPLICATE], ["no-such-item", UNKNOWN_ITEM]
    ]  # fmt: skip
    recs = frame_with(at, "rank", "rank_before")
    assert len(recs) == n and recs["rank_before"].notna().all()  # every item was ranked before
    left = [i for i in before if i not in set(recs["item_id"])]
    assert left  # every rating lowered to 1: the list changes
    dropped = frame_with(at, "rank_after", "reason")
    assert dropped["item_id"].tolist() == left and (dropped["reason"] == MOVED_DOWN).all()
    left_sentence = f"left the top {n} after the edit:**"
    assert [m.value for m in at.markdown if m.value.endswith(left_sentence)] == [
        f"**{len(left)} item{'s' * (len(left) > 1)} {left_sentence}"
    ]


def test_the_counterfactual_is_searched_only_on_request():
    at = page("views/recommendations.py")
    assert not any(s.value.startswith("Counterfactual") for s in [*at.success, *at.info])
    at.button(key="find_counterfactual").click().run()
    assert_ok(at)
    found = [m.value for m in [*at.success, *at.info] if m.value.startswith("Counterfactual:")]
    assert len(found) == 1
    at.run()  # another rerun keeps the answer without searching again
    assert [m.value for m in [*at.success, *at.info] if m.value.startswith("Counterfactual:")] \
        == found  # fmt: skip
    assert not [b for b in at.button if b.key == "find_counterfactual"]


# --- Bias audit and Report -------------------------------------------------------------


def test_audit_and_report_pages_run_the_audit_and_offer_downloads(sample):
    at = page("views/audit.py")
    at.button(key="run_audit").click().run(timeout=AUDIT_TIMEOUT)
    assert_ok(at)
    flagged = frame_with(at, "direction", "p_adjusted", "family")
    assert ((flagged["metric"] == "rmse") & (flagged["group"] == "55+")).any()
    groupings = set(at.selectbox(key="audit_grouping").options)
    assert {"age_band", "gender", "region"} <= groupings
    at.selectbox(key="audit_grouping").set_value("age_band").run()
    (by_group,) = [  # the table of the chosen metric and grouping (not flagged/notable/data)
        f.value for f in at.dataframe
        if hasattr(f.value, "columns") and {"group", "n_users", "grouping"} <= set(f.value.columns)
        and set(f.value["grouping"]) == {"age_band"} and f.value["metric"].nunique() == 1
    ]  # fmt: skip
    assert set(by_group["group"]) == set(sample.users["age_band"].unique())
    assert by_group["n_users"].str.replace(",", "").astype(int).sum() == sample.n_users
    sizes = by_group[["n_users", "n_items", "n_raters", "n_ratings"]]
    assert not sizes.isna().any().any()  # "—" where a size does not apply, never None
    assert set(by_group["n_raters"]) == {"—"}  # a user grouping has no raters column value
    ranking_by = at.selectbox(key="ranking_grouping")  # each model's NDCG by the audit's groups
    assert {"gender", "activity", "popularity propensity"} <= set(ranking_by.options)
    ranking_by.set_value("gender").run()
    (ranking,) = [f.value for f in at.dataframe if "Popularity" in getattr(f.value, "columns", ())]
    assert list(ranking.columns) == ["group", "users", "SVD", "BaselineOnly", "Popularity",
                                     "BaselineOnly - SVD (95% CI)",
                                     "Popularity - SVD (95% CI)"]  # fmt: skip
    assert ranking["group"].tolist() == ["all users", *sorted(sample.users["gender"].unique())]
    small = ranking["SVD"] == "n/a"  # a group too small reads as the caption defines it
    assert small.any() and (ranking.loc[small, "Popularity"] == "n/a").all()
    said = [m.value.replace("\\", "") for m in at.markdown]  # literal_markdown's escapes
    assert any(m.startswith("Highest NDCG@10 in every gender group") for m in said)
    at.switch_page("views/report.py").run()
    assert_ok(at)
    keys = {b.key for b in at.get("download_button")}
    assert keys == {"download_html", "download_json", "download_csv", "download_zip"}
    at.multiselect(key="report_sections").set_value(["provenance", "summary"]).run()
    at.toggle(key="preview_report").set_value(True).run()
    (preview,) = at.get("iframe")
    html = preview.proto.srcdoc
    assert 'id="summary"' in html and 'id="provenance"' in html and 'id="audit"' not in html
    assert "RMSE is worse for age_band = 55+" in html
    if find_chromium() is not None:
        at.button(key="build_pdf").click().run()
        assert_ok(at)
        labels = {b.key: b.proto.label for b in at.get("download_button")}
        assert labels["download_pdf"] == "report.pdf"
        assert labels["download_zip"] == "All four formats (zip)"


def test_report_page_without_chromium_offers_html_and_says_how_to_get_the_pdf(monkeypatch):
    monkeypatch.setenv("REPORT_CHROMIUM", "/nonexistent/chromium")
    at = page("views/audit.py")
    at.button(key="run_audit").click().run(timeout=AUDIT_TIMEOUT)
    at.switch_page("views/report.py").run()
    assert_ok(at)
    assert at.button(key="build_pdf").proto.disabled
    assert any("apt-get update && apt-get install -y chromium" in c.value for c in at.caption)
    assert "download_html" in {b.key for b in at.get("download_button")}


# --- failures --------------------------------------------------------------------------


def test_an_error_escaping_a_page_is_one_message_and_other_pages_keep_working(monkeypatch):
    from dashboard import state

    def broken(data):
        raise RuntimeError("profile exploded")

    monkeypatch.setattr(state, "profile", broken)
    at = page("views/data.py")
    assert not at.exception, at.exception
    (message,) = [e.value for e in at.error]
    assert message.startswith("The Data page hit an unexpected problem (RuntimeError: profile")
    at.switch_page("views/recommendations.py").run()
    assert_ok(at)
    assert has_frame_with(at, "rank", "raw_prediction")


def test_assert_ok_fails_on_a_page_failure_message(monkeypatch):
    """The guard itself: a page failure is not an exception, yet ``assert_ok`` catches it."""
    from dashboard import state

    monkeypatch.setattr(state, "profile", lambda data: 1 / 0)
    at = page("views/data.py")
    assert not at.exception
    with pytest.raises(AssertionError, match=PAGE_FAILED):
        assert_ok(at)


def test_the_two_starting_points_of_the_explanation_charts_are_named_with_their_values():
    at = page("views/recommendations.py")
    assert_ok(at)
    (line,) = [c.value for c in at.caption if c.value.startswith("Two starting points")]
    (predicted,) = [c.value for c in at.caption if c.value.startswith("Predicted ")]
    waterfall, history, end = (float(x) for x in re.findall(r"\d+\.\d{3}", line))
    assert end == float(re.match(r"Predicted (\d+\.\d{3})", predicted).group(1))
    assert waterfall != history  # two different bases, both named
