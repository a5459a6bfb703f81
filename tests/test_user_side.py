"""One user of a run kept in Spark, read on demand: equal to the whole in-memory model.

The kept run is made without Spark, as in ``tests/test_kept_pages.py``, with the user side
written from the in-memory model by the same writer (``write_user_side``) that
``engine.spark.user_side`` feeds; ``tests/test_spark_run.py`` checks what Spark writes.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from engine import explain_prediction
from engine.data.profile import dataset_profile, user_profile
from engine.explain import factor_labels, item_titles
from engine.explain.labels import latent_tastes
from engine.explain.neighbours import most_similar_users
from engine.recommend import recommend_for_vector
from engine.report.build import report_parts
from engine.saved.errors import SavedAnalysisError
from engine.saved.kept import open_kept, save_kept
from engine.saved.user_side import FOLDER, parts_of, user_ranges
from engine.text import literal_markdown
from engine.whatif import counterfactual_for
from tests.conftest import REPORT_CREATED, write_side

#: Ratings per part here: the hostile sample's 98,533 ratings fall into 5 parts.
PER_PART = 20_000


@pytest.fixture(scope="module")
def side_run(hostile_report, tmp_path_factory):
    """``(folder, data, model)``: a kept run of the hostile sample with its user side."""
    data, model, evaluation, result, _ = hostile_report
    folder = tmp_path_factory.mktemp("side") / "run"
    parts = report_parts(data, model, evaluation, result, datetime.fromisoformat(REPORT_CREATED))
    save_kept(folder, parts, result, "elsewhere", write_side(folder, data, model, PER_PART))
    return folder, data, model


def test_parts_end_at_a_users_last_rating():
    # users with 3, 5, 1, 4 ratings, parts of >= 4: [3+5], [1+4]
    assert user_ranges(np.array([3, 5, 1, 4]), 4) == [(0, 1), (2, 3)]
    assert user_ranges(np.array([3, 5, 1, 4]), 100) == [(0, 3)]
    assert user_ranges(np.array([9, 1, 1]), 4) == [(0, 0), (1, 2)]
    ratings = pd.DataFrame({"u": [1, 0, 0, 1, 2], "i": [0, 1, 0, 1, 0], "rating": 1.0})
    parts = parts_of(ratings, 2)
    assert [p["u"].tolist() for p in parts] == [[0, 0], [1, 1], [2]]
    assert [p["i"].tolist() for p in parts] == [[0, 1], [0, 1], [0]]


def test_every_users_model_is_the_whole_models(side_run):
    """For the first and last user of each part and every 50th: the history, the refit and
    the top-10 equal the in-memory model's; so do the raters of every 100th item."""
    folder, _, model = side_run
    side = open_kept(folder).users
    assert len(side.bounds) == 5  # several parts, so a user is looked up among them
    inter = model.interactions
    users = {*side.bounds.ravel().tolist(), *range(0, inter.n_users, 50)}
    for user in sorted(users):
        user_id = inter.user_ids[user]
        one = side.model_for(user_id)
        mine, full = one.user_vector(user), model.user_vector(user)
        np.testing.assert_array_equal(mine.items, full.items)
        np.testing.assert_array_equal(mine.ratings, full.ratings)
        refit = one.fold_in(inter.item_ids[mine.items], mine.ratings)
        np.testing.assert_allclose(refit.pu, model.P[user], atol=1e-10)
        pd.testing.assert_frame_equal(recommend_for_vector(one, mine, 10, user_id),
                                      recommend_for_vector(model, full, 10, user_id))  # fmt: skip
    np.testing.assert_array_equal(one.interactions.counts_per_item(), inter.counts_per_item())
    for item in range(0, inter.n_items, 100):
        users, ratings = side.raters(item)
        expected = inter.raters(item)
        np.testing.assert_array_equal(users, expected[0])
        np.testing.assert_array_equal(ratings, expected[1])


def test_an_explanation_from_one_user_is_the_whole_models(side_run):
    """Every view of ``explain_prediction`` (similar users read from every part) and the
    counterfactual equal the in-memory model's, for the most active user's top 2 items."""
    folder, data, model = side_run
    side = open_kept(folder).users
    user = int(np.argmax(model.interactions.counts_per_user()))
    user_id = model.interactions.user_ids[user]
    one = side.model_for(user_id)
    top = recommend_for_vector(model, model.user_vector(user), 2, user_id)["item_id"]
    for item_id in top:
        same = {"counterfactual": False}  # Shapley refolds by fold_in, checked above
        a = explain_prediction(one, user_id, item_id, data=side.data_for(user_id), **same)
        b = explain_prediction(model, user_id, item_id, data=data, **same)
        for view in ("factors", "history"):
            np.testing.assert_allclose(getattr(a, view).values, getattr(b, view).values,
                                       atol=1e-12)  # fmt: skip
        pd.testing.assert_frame_equal(a.similar_users, b.similar_users)
        pd.testing.assert_frame_equal(a.similar_items, b.similar_items)
        assert a.title == b.title and a.notes == b.notes
        cf_a = counterfactual_for(one, one.user_vector(user), item_id, 10)
        cf_b = counterfactual_for(model, model.user_vector(user), item_id, 10)
        assert (cf_a.found, cf_a.removed) == (cf_b.found, cf_b.removed)


def test_one_users_profile_against_the_stored_population(side_run):
    """``user_profile`` of one user's ``RatingData`` with the run's profile as population
    equals the profile computed from all ratings."""
    folder, data, _ = side_run
    run = open_kept(folder)
    for user_id in data.ratings["user_id"].unique()[:5]:
        mine = user_profile(run.users.data_for(user_id), user_id, run.parts.profile)
        full = user_profile(data, user_id)
        pd.testing.assert_frame_equal(mine.ratings, full.ratings)
        pd.testing.assert_frame_equal(mine.histogram, full.histogram)
        pd.testing.assert_frame_equal(mine.genres, full.genres, atol=1e-12)
        assert mine.attributes == full.attributes
        assert mine.population_mean == pytest.approx(full.population_mean, abs=1e-12)
    assert dataset_profile(data).rating_mean == pytest.approx(run.parts.profile.rating_mean)


def test_a_modified_part_is_refused_when_read(side_run, tmp_path):
    """A part is verified when read: a changed byte is one sentence naming the part."""
    folder, _, model = side_run
    copy = tmp_path / "run"
    shutil.copytree(folder, copy)
    part = copy / FOLDER / "ratings" / "part-00001.parquet"
    content = bytearray(part.read_bytes())
    content[len(content) // 2] ^= 1
    part.write_bytes(bytes(content))
    side = open_kept(copy).users  # opens: parts are read on demand
    last = model.interactions.user_ids[-1]
    assert len(side.model_for(last).interactions.items)  # another part: unaffected
    with pytest.raises(SavedAnalysisError, match=r"part-00001\.parquet does not match its SHA-256"):
        side.raters(0)


def test_a_run_saved_without_a_user_side_opens_without_one(side_run, tmp_path):
    """Schema 1 (before the user side and ``derived_from``) still opens, with ``users`` None."""
    copy = tmp_path / "run"
    shutil.copytree(side_run[0], copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    assert manifest.pop("derived_from") is None  # schema 3's field
    manifest["schema_version"] = "1"
    manifest["files"] = {k: v for k, v in manifest["files"].items() if k.startswith("kept/")}
    (copy / "manifest.json").write_text(json.dumps(manifest))
    assert open_kept(copy).users is None


def test_the_user_pages_of_a_kept_run_show_the_whole_models_user(
    side_run, started_on, sessions_dir
):
    """A server started on the kept run has the User profile and Recommendations pages; for
    the most active user they show the whole in-memory model's numbers: ratings, population
    mean, latent tastes, most similar users, the top-10, the explained prediction, the
    similar users who rated it, and the counterfactual."""
    folder, data, model = side_run
    inter = model.interactions
    user = int(np.argmax(inter.counts_per_user()))
    user_id = inter.user_ids[user]
    vector = model.user_vector(user)
    at = started_on(folder)
    assert not at.exception and not at.error
    stored = f"a copy of its {len(data.ratings):,} ratings"  # the Data page says what it keeps
    assert any(stored in c.value for c in at.caption), [c.value for c in at.caption]
    at.switch_page("views/user.py").run()
    at.selectbox(key="profile_user").set_value(user_id).run()
    assert not at.exception and not at.error, at.error
    shown = {m.label: m.value for m in at.metric}
    assert shown["Ratings"] == f"{inter.counts_per_user()[user]:,}"
    assert shown["Population mean"] == f"{data.ratings['rating'].mean():.2f}"
    labels = list(factor_labels(model, data.items, item_titles(data))["label"])
    tastes = latent_tastes(model, vector.pu, labels)
    pd.testing.assert_frame_equal(_table(at, tastes.columns), tastes)
    similar = most_similar_users(model, vector, 10, user)
    pd.testing.assert_frame_equal(_table(at, similar.columns), similar)

    at.switch_page("views/recommendations.py").run()
    assert not at.exception and not at.error, at.error
    assert at.selectbox(key="recs_user").value == user_id  # the choice is shared
    recs = _table(at, ["rank", "item_id", "title", "prediction", "raw_prediction"])
    expected = recommend_for_vector(model, vector, 10, user_id)
    assert recs["item_id"].tolist() == expected["item_id"].tolist()
    np.testing.assert_allclose(recs["raw_prediction"], expected["raw_prediction"], atol=1e-12)
    first = expected["item_id"].iat[0]
    bundle = explain_prediction(model, user_id, first, data=data, counterfactual=False)
    assert any(f"Predicted {bundle.prediction:.3f}" in c.value for c in at.caption)
    similar = _table(at, bundle.similar_users.columns)
    pd.testing.assert_frame_equal(similar, bundle.similar_users)
    at.button(key="find_counterfactual").click().run()
    assert not at.exception and not at.error
    found = counterfactual_for(model, vector, first, 10)
    said = [m.value for m in [*at.success, *at.info] if m.value.startswith("Counterfactual")]
    assert said and literal_markdown(found.message) in said[0]


def _table(at, columns) -> pd.DataFrame:
    """Return the page's first table with exactly ``columns``."""
    return next(f.value for f in at.dataframe if list(f.value.columns) == list(columns))


def test_a_crafted_part_with_its_hash_recorded_is_refused_when_read(side_run, tmp_path):
    """A part rewritten with an unknown item and its new SHA-256 put in the manifest still
    does not reach the pages: one sentence naming the part."""
    from engine.saved.store import write_file

    copy = tmp_path / "run"
    shutil.copytree(side_run[0], copy)
    path = f"{FOLDER}/ratings/part-00000.parquet"
    part = open_kept(copy).users.part(0)
    part.loc[part.index[0], "i"] = 99_999
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["files"][path] = write_file(copy / path, part, "part")
    (copy / "manifest.json").write_text(json.dumps(manifest))
    side = open_kept(copy).users
    with pytest.raises(SavedAnalysisError, match=r"part-00000\.parquet holds ratings outside"):
        side.model_for(side.user_ids[0])
