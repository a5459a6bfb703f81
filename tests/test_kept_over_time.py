"""A kept run's data per window, read part by part, equals the monitor's on the whole data.

The run is the hostile sample's, written as a kept run without Spark in 5 ratings parts (as
``tests/test_kept_update.py``); the updated run adds a batch of ratings after the data's
last, so its windows reach further. Each must give ``engine.monitor``'s windows (status,
partial coverage), data table and rating distribution for the same ratings.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from engine import DataFile, load_dataset
from engine.errors import ConfigError
from engine.ids import object_ids
from engine.monitor import MonitorConfig
from engine.monitor_data import data_table, distribution, window_status
from engine.monitor_windows import assign_windows, make_windows, partial_windows
from engine.report.build import report_parts
from engine.saved.kept import open_kept, save_kept
from engine.saved.kept_over_time import data_over_time, distribution_table
from engine.saved.kept_update import update_kept
from tests.conftest import REPORT_CREATED, write_side

PER_PART = 20_000


@pytest.fixture(scope="module")
def runs(hostile_report, tmp_path_factory):
    """``(kept folder, updated kept folder, data, merged data)``: the batch is up to 400 new
    pairs of 40 users over the 40 days after the data's last rating, and 3 of a new user."""
    data, model, evaluation, result, _ = hostile_report
    folder = tmp_path_factory.mktemp("kept-over-time")
    parts = report_parts(data, model, evaluation, result, datetime.fromisoformat(REPORT_CREATED))
    save_kept(folder / "A", parts, result, "elsewhere", write_side(folder / "A", data, model,
                                                                     PER_PART))  # fmt: skip
    rng = np.random.default_rng(3)
    ratings = data.ratings
    rated = set(zip(ratings["user_id"], ratings["item_id"], strict=True))
    users, items = ratings["user_id"].unique()[:40], ratings["item_id"].unique()
    start = int(ratings["timestamp"].max()) + 1
    rows = [(u, i, int(rng.integers(1, 6)), start + n * 8640) for n, (u, i) in enumerate(
        (u, i) for u in users for i in items[:12] if (u, i) not in rated)][:400]  # fmt: skip
    rows += [("zz-new", items[n], 4, start + 86_400 * 39) for n in range(3)]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    batch = load_dataset(DataFile("batch.csv", frame.to_csv(index=False).encode()), batch=True)
    update_kept(folder / "A", batch, folder / "B")
    from engine.update import update_model

    merged = update_model(model, data, batch).data
    return folder / "A", folder / "B", data, merged


def _expected(data, window: str):
    """``monitor``'s windows (with status and partial coverage), table and distribution."""
    ratings = object_ids(data.ratings)
    times = ratings["timestamp"].to_numpy("float64", na_value=np.nan)
    windows = make_windows(times, window)
    of = assign_windows(times, windows)
    table = data_table(ratings, windows, of)
    config = MonitorConfig()
    status, reason = window_status(table, config.min_ratings, config.min_group_size)
    windows = windows.assign(status=status, reason=reason, partial=partial_windows(times, windows))
    return windows, table, distribution(ratings, windows, of)


@pytest.mark.parametrize("window", ["week", "month"])
@pytest.mark.parametrize("updated", [False, True], ids=["run", "updated run"])
def test_the_data_per_window_equals_the_monitors(runs, window, updated):
    a, b, data, merged = runs
    result = data_over_time(open_kept(b if updated else a), window)
    windows, table, shares = _expected(merged if updated else data, window)
    pd.testing.assert_frame_equal(result.windows, windows)
    pd.testing.assert_frame_equal(result.data, table, check_exact=False, rtol=1e-12)
    pd.testing.assert_frame_equal(result.distribution, shares, check_exact=False, rtol=1e-12)
    assert result.data["n_ratings"].sum() == (merged if updated else data).n_ratings


def test_the_updated_runs_latest_windows_hold_the_batch(runs):
    a, b, data, merged = runs
    before, after = data_over_time(open_kept(a), "week"), data_over_time(open_kept(b), "week")
    assert len(after.windows) > len(before.windows)  # 40 more days
    added = after.data["n_ratings"].sum() - before.data["n_ratings"].sum()
    assert added == merged.n_ratings - data.n_ratings > 300  # the batch, every pair new
    assert after.data["new_users"].sum() == before.data["new_users"].sum() + 1  # zz-new
    wide = distribution_table(after)
    assert list(wide.columns) == ["window", "1", "2", "3", "4", "5"]
    assert np.allclose(wide.drop(columns="window").sum(axis=1), 100, atol=0.3)


def test_a_run_without_user_side_or_times_is_refused_in_one_sentence(runs, hostile_report,
                                                                     tmp_path):  # fmt: skip
    data, model, evaluation, result, _ = hostile_report
    save_kept(tmp_path / "bare", report_parts(data, model, evaluation, result), result, "x")
    with pytest.raises(ConfigError, match="saved without its user side"):
        data_over_time(open_kept(tmp_path / "bare"))
    with pytest.raises(ConfigError, match="Unknown window 'fortnight'"):
        data_over_time(open_kept(runs[0]), "fortnight")


def test_the_kept_over_time_page_shows_the_table(runs, started_on, sessions_dir):
    a, _, data, _ = runs
    at = started_on(a)
    at.switch_page("views/kept_over_time.py").run()
    assert not at.exception and not at.error
    assert any("Model quality and fairness per window are not shown" in m.value
               for m in at.markdown)  # fmt: skip
    at.button(key="run_kept_monitor").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    _, table, _ = _expected(data, "month")
    shown = next(f.value for f in at.dataframe if "n_ratings" in f.value.columns)
    assert shown["n_ratings"].tolist() == table["n_ratings"].tolist()
    assert shown["new_users"].tolist() == table["new_users"].tolist()
