"""The Model page adds a batch of new ratings to the session's model (``engine.update``).

The counts it shows are those of ``engine.update.update_model`` run directly on the same
inputs, every page then uses the updated model, and a refresh keeps it (streamlit AppTest).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from engine import DataFile, LoadOptions, load_dataset
from engine.analysis import Analysis
from engine.text import literal_markdown
from engine.update import update_model
from tests.conftest import ROOT, SAMPLE_DIR

APP = str(ROOT / "dashboard" / "app.py")
TIMEOUT = 300
NEW_USER = "u9999"


@pytest.fixture
def kept(tmp_path, monkeypatch):
    """Session work goes to a fresh folder."""
    monkeypatch.setenv("RECSYS_SESSION_DIR", str(tmp_path / "sessions"))
    return tmp_path / "sessions"


@pytest.fixture(scope="module")
def sample():
    return load_dataset(SAMPLE_DIR)


def batch_csv(sample) -> bytes:
    """Three changed ratings of u0001, a new pair for u0002, a new user, one row off scale."""
    ratings = sample.ratings
    rows = [
        (r.user_id, r.item_id, 1 if r.rating > 1 else 5)
        for r in ratings[ratings["user_id"] == "u0001"].head(3).itertuples()
    ]
    popular = ratings["item_id"].value_counts().index
    rated = set(ratings.loc[ratings["user_id"] == "u0002", "item_id"])
    rows.append(("u0002", next(i for i in popular if i not in rated), 4))
    rows += [(NEW_USER, item, 5) for item in popular[:6]]
    rows.append(("u0003", popular[0], 9))  # outside the 1-5 scale: rejected
    return ("user_id,item_id,rating\n" + "\n".join(f"{u},{i},{v}" for u, i, v in rows)).encode()


def assert_ok(at: AppTest) -> None:
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def with_batch(content: bytes) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page("views/model.py").run()
    at.file_uploader(key="update_ratings").set_value(("batch.csv", content, "text/csv"))
    return at.run()


def updated_session(content: bytes, refresh: bool = False) -> AppTest:
    at = with_batch(content)
    if refresh:
        at.checkbox(key="update_refresh_items").check().run()
    at.button(key="run_update").click().run()
    return at


@pytest.mark.parametrize("refresh", [False, True], ids=["items kept", "items refreshed"])
def test_the_model_page_shows_the_counts_of_update_model(kept, sample, refresh):
    content = batch_csv(sample)
    at = updated_session(content, refresh)
    assert_ok(at)
    batch = load_dataset(
        ratings=DataFile("batch.csv", content), options=LoadOptions(scale=(1, 5)), batch=True
    )
    direct = update_model(Analysis(sample).model, sample, batch, refresh_items=refresh)
    record = direct.record
    assert metrics(at) == {
        "Ratings added": f"{record.ratings_added:,}",
        "Ratings replaced": f"{record.ratings_replaced:,}",
        "Rows rejected": f"{record.ratings_rejected:,}",
        "Users refit": f"{record.users_refit:,}",
        "New users": f"{record.new_users:,}",
        "Users refit for refreshed items": f"{record.users_refit_for_items:,}",
        "Items refreshed": f"{record.items_refreshed:,}",
        "New items without an item side": f"{record.new_items_without_item_side:,}",
    }
    assert (record.ratings_added, record.ratings_replaced, record.new_users) == (7, 3, 1)
    assert (record.items_refreshed > 0) == refresh
    rejected = next(f.value for f in at.dataframe if "reason" in f.value.columns)
    assert rejected["rows"].tolist() == [1]
    changes = next(f.value for f in at.dataframe if "change" in f.value.columns)
    expected = pd.DataFrame(record.largest_changes)
    assert changes["user_id"].tolist() == expected["user_id"].tolist()
    assert changes["item_id"].tolist() == expected["item_id"].tolist()
    assert np.allclose(changes["change"], expected["change"], atol=1e-6)
    assert any("recomputed on demand for the new data" in i.value for i in at.info)
    assert any(literal_markdown("batch.csv") in s.value for s in at.success)
    # the session's analysis is the updated one: merged data, the updated model
    model = at.session_state["store"].analysis.result("model")
    assert model.fingerprint == record.fingerprint != sample.fingerprint
    assert np.allclose(model.P, direct.model.P, atol=1e-6)
    assert any(f"{sample.n_ratings + 7:,} ratings" in c.value for c in at.caption)


def test_recommendations_use_the_updated_model_and_a_refresh_keeps_it(kept, sample):
    at = updated_session(batch_csv(sample))
    assert_ok(at)
    token = at.query_params["session"]
    at.switch_page("views/recommendations.py").run()
    assert_ok(at)
    assert NEW_USER in at.selectbox(key="recs_user").options
    at.selectbox(key="recs_user").set_value(NEW_USER).run()
    assert_ok(at)
    recs = next(f.value for f in at.dataframe if "raw_prediction" in f.value.columns)
    popular = sample.ratings["item_id"].value_counts().index[:6]
    assert not set(recs["item_id"]) & set(popular)  # the new user's rated items are left out

    again = AppTest.from_file(APP, default_timeout=TIMEOUT)
    again.query_params["session"] = token
    again.switch_page("views/recommendations.py").run()
    assert_ok(again)
    assert NEW_USER in again.selectbox(key="recs_user").options


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (b"\x00\x01\x02", "batch.csv is binary, not a text table"),
        (b"user_id,item_id,rating\nzz1,yy1,3\nzz2,yy1,4\n", "the same kind of ids"),
    ],
    ids=["binary", "foreign ids"],
)
def test_a_bad_batch_is_one_sentence_and_keeps_the_model(kept, content, said):
    at = with_batch(content)
    if content.startswith(b"user_id"):
        at.button(key="run_update").click().run()
    assert not at.exception, at.exception
    (message,) = [e.value for e in at.error]
    assert literal_markdown(said) in message
    assert "unexpected problem" not in message
    assert "session" not in at.query_params  # nothing changed, nothing kept
    assert at.session_state["store"].analysis is None  # still the starting analysis


def test_the_report_page_carries_the_model_update_section(kept, sample):
    """After an update on the Model page the Report page's HTML and JSON have "Model update"."""
    import json
    from dataclasses import replace

    from engine.audit import AuditConfig
    from engine.evaluate import EvaluationConfig

    content = batch_csv(sample)
    at = updated_session(content)
    assert_ok(at)
    store = at.session_state["store"]
    cheap = replace(store.analysis.settings, evaluation=EvaluationConfig(folds=2, models=("SVD",)),
                    audit=AuditConfig(bootstrap=20, permutations=20))  # fmt: skip
    store.analysis = store.analysis.with_settings(cheap)  # the updated model stage is kept
    store.analysis.audit()  # what the Bias audit page's button computes (cheaper settings)
    at.switch_page("views/report.py").run()
    assert_ok(at)
    assert any("**Model update** section" in i.value for i in at.info)
    (files,) = [v for k, v in store.extras.items() if k[0] == "report files"]  # the downloads
    section = json.loads(files["report.json"])["update"]
    source = Analysis(sample)
    assert section["data_fingerprint"] == sample.fingerprint
    assert section["model_key"] == source.key("model")
    batch = section["batch"]  # 3 changed + 1 new pair + 6 of the new user + 1 off scale
    assert (batch["name"], batch["rows_read"], batch["rows_kept"]) == ("batch.csv", 11, 10)
    assert batch["rows_rejected"] == 1 and section["refresh_items"] is False
    assert (section["ratings_added"], section["ratings_replaced"]) == (7, 3)
    assert (section["users_refit"], section["new_users"]) == (3, 1)  # u0001, u0002, u9999
    assert "largest_changes" not in section
    html = files["report.html"].decode("utf-8")
    assert '<section id="update"><h2>Model update</h2>' in html
    assert "3 users with a rating in the batch were refit exactly" in html
    assert "(1 of them new, folded in)" in html
    at.toggle(key="preview_report").set_value(True).run()
    (preview,) = at.get("iframe")
    assert '<section id="update">' in preview.proto.srcdoc


def test_after_an_update_the_compare_page_puts_the_session_as_b(kept, sample, tmp_path):
    """The updated session is version B by default; the analysis it came from, uploaded as
    A, is named as its source ("B is A's model updated ...")."""
    from engine.saved import save_analysis, zip_analysis

    source = Analysis(sample)
    source.model  # noqa: B018  (computed, so the saved analysis holds it)
    a_zip = zip_analysis(save_analysis(source, tmp_path / "A"))
    at = updated_session(batch_csv(sample))
    assert_ok(at)
    at.switch_page("views/compare.py").run()
    assert at.radio(key="compare_this").value == "This session's analysis is B"
    users = sample.ratings["user_id"].unique()[:40]
    later = int(pd.to_numeric(sample.ratings["timestamp"]).max()) + 1
    window = "user_id,item_id,rating,timestamp\n" + "\n".join(
        f"{u},{sample.ratings['item_id'].iat[n * 13]},{1 + n % 5},{later + n}"
        for n, u in enumerate(users))  # fmt: skip
    at.file_uploader(key="compare_a").set_value(("A.zip", a_zip, "application/zip"))
    at.file_uploader(key="compare_window").set_value(("window.csv", window.encode(), "text/csv"))
    for key, value in (("compare_boot", 20), ("compare_perm", 50), ("compare_min", 10)):
        at.number_input(key=key).set_value(value)
    at.run()
    at.button(key="run_compare").click().run()
    assert_ok(at)
    compared = at.session_state["compare_compared"]
    assert (compared["a"]["name"], compared["b"]["name"]) == ("A.zip", "This session's analysis")
    assert compared["relation"] == "B is A's model updated (not retrained) with batch.csv."
