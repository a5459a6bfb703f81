"""Loading external lists and predictions: every rejection counted, ties and duplicates said."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from engine.cli import main
from engine.data import load_dataset
from engine.errors import DataError
from engine.external import ExternalSystem, heldout_from_file, load_lists, load_predictions
from engine.external.load import merge_systems

RATINGS = """user,item,rating,timestamp
u1,a,5,100
u1,d,2,110
u2,b,4,120
u2,c,1,130
u3,d,3,140
u3,e,4,150
u1,e,1,160
u2,a,3,170
"""


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text(RATINGS)
    return load_dataset(ratings=path)


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


LISTS = """user,item,rank,score
u1,a,1,0.9
u1,b,2,0.8
u1,zz,3,0.7
u1,c,4,0.6
u1,a,5,0.5
,b,1,0.5
u2,,1,0.5
u2,a,x,0.5
u2,b,0,0.5
u2,c,1.5,0.5
u9,a,1,0.5
u2,d,1,0.2
u2,e,1,0.9
u3,a,1,
u3,b,2,0.5,extra
"""


def test_every_rejection_reason_is_counted_and_positions_are_kept(tmp_path, data):
    (system,) = load_lists(_write(tmp_path, "lists.csv", LISTS), data, name="mine", k=3)
    report = system.load_reports[0]
    assert report.rejected == {"malformed_row": 1, "missing_user_id": 1, "missing_item_id": 1,
                               "bad_rank": 3, "duplicate": 1, "unknown_user": 1,
                               "unknown_item": 1}  # fmt: skip
    assert report.rows_read == 15
    assert report.rows_kept + report.rows_rejected == report.rows_read
    assert report.rows_kept == 6
    assert (report.unknown_users, report.unknown_items) == (1, 1)
    lists = system.lists
    u1 = lists[lists["user_id"] == "u1"]
    # zz (unknown) held position 3: c keeps the position 4 the user saw
    assert u1[["item_id", "rank"]].values.tolist() == [["a", 1], ["b", 2], ["c", 4]]
    # rank tie at 1: the higher score first, then consecutive positions
    u2 = lists[lists["user_id"] == "u2"]
    assert u2[["item_id", "rank"]].values.tolist() == [["e", 1], ["d", 2]]
    assert report.ties == {"rank_ties": 1}
    assert math.isnan(lists.loc[lists["user_id"] == "u3", "score"].iloc[0])
    assert report.systems["mine"]["short_lists"] == 2  # u2 (2 items) and u3 (1 item) < k = 3
    assert any("share a rank" in n for n in report.notes)
    assert any("fewer than k = 3" in n for n in report.notes)
    assert report.examples["unknown_item"][0]["item"] == "zz"


def test_score_only_lists_are_ordered_by_score_ties_by_item_id(tmp_path, data):
    text = "user,item,score\nu1,c,0.5\nu1,b,0.5\nu1,e,0.9\nu2,a,nan\n"
    (system,) = load_lists(_write(tmp_path, "s.csv", text), data, name="s", k=3)
    assert system.lists[["item_id", "rank"]].values.tolist() == [["e", 1], ["b", 2], ["c", 3]]
    report = system.load_reports[0]
    assert report.ties == {"score_ties": 1}
    assert report.rejected == {"bad_score": 1}


def test_system_column_splits_systems_and_the_given_name_is_not_used(tmp_path, data):
    text = "user,item,rank,model\nu1,a,1,A\nu1,b,1,B\nu2,c,1,B\nu2,d,2,\n"
    systems = load_lists(_write(tmp_path, "m.csv", text), data, name="x", k=1)
    assert [s.name for s in systems] == ["A", "B"]
    assert len(systems[1].lists) == 2
    assert systems[0].load_reports[0].rejected == {"missing_system": 1}
    assert any("was not used" in n for n in systems[0].load_reports[0].notes)


def test_predictions_duplicates_bad_values_unknown_and_out_of_scale(tmp_path, data):
    text = ("user_id,item_id,prediction\nu1,a,4.5\nu1,a,3\nu1,b,nan\nu1,c,7\nu2,zz,3\n"
            "u2,b,2\n")  # fmt: skip
    (system,) = load_predictions(_write(tmp_path, "p.csv", text), data, name="p")
    report = system.load_reports[0]
    assert report.rejected == {"bad_prediction": 1, "duplicate": 1, "unknown_item": 1}
    assert system.predictions.values.tolist() == [["u1", "a", 4.5], ["u1", "c", 7.0],
                                                  ["u2", "b", 2.0]]  # fmt: skip
    assert report.systems["p"]["out_of_scale"] == 1


def test_lists_and_predictions_of_one_name_merge_and_two_lists_clash(data):
    lists = pd.DataFrame({"user_id": ["u1"], "rank": [1], "item_id": ["a"], "score": [1.0]})
    preds = pd.DataFrame({"user_id": ["u1"], "item_id": ["a"], "prediction": [4.0]})
    (merged,) = merge_systems(
        [ExternalSystem("s", lists=lists), ExternalSystem("s", predictions=preds)]
    )
    assert merged.lists is not None and merged.predictions is not None
    with pytest.raises(DataError, match="Two files give lists for the system 's'"):
        merge_systems([ExternalSystem("s", lists=lists), ExternalSystem("s", lists=lists)])


def test_unusable_files_say_what_is_wrong(tmp_path, data):
    with pytest.raises(DataError, match="no recognisable rank or score column"):
        load_lists(_write(tmp_path, "a.csv", "user,item\nu1,a\n"), data)
    with pytest.raises(DataError, match="are not in the rating data"):
        load_lists(_write(tmp_path, "b.csv", "user,item,rank\nx1,q,1\nx2,q,1\n"), data)
    with pytest.raises(DataError, match="does not exist"):
        load_lists(tmp_path / "missing.csv", data)


def test_heldout_file_leaves_out_unknown_and_already_rated_pairs(tmp_path, data):
    text = "user,item,rating\nu1,a,4\nu1,b,5\nu9,a,3\nu3,a,2\n"
    heldout = heldout_from_file(data, _write(tmp_path, "h.csv", text))
    assert heldout.ratings[["user_id", "item_id"]].values.tolist() == [["u1", "b"], ["u3", "a"]]
    assert heldout.source == "file" and heldout.train is data
    assert "2 ratings by 2 users" in heldout.describe()
    assert len(heldout.notes) >= 2


def test_cli_bad_external_file_is_one_sentence_and_exit_2(tmp_path, data, capsys):
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "ratings.csv").write_text(RATINGS)
    bad = _write(tmp_path, "bad.csv", "user,item\nu1,a\n")
    code = main(["audit", str(folder), "--recommendations", str(bad), "--system-name", "x",
                 "--out", str(tmp_path / "out")])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.count("\n") == 0 and "bad.csv" in err and "rank or score" in err
    with pytest.raises(SystemExit) as exit_info:
        main(["audit", str(folder), "--system-name", "x", "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert "give the file first" in capsys.readouterr().err


def test_load_report_counts_distinct_unknown_ids_and_shows_examples_as_text(tmp_path, data):
    from engine.external.load import external_rejected_table

    text = ("user,item,rank\nu1,a,1\nx1,a,1\nx1,b,2\nx2,a,1\nx2,b,2\nx2,c,3\nu2,zz,1\n"
            "u3,zz,1\nu3,yy,2\n")  # fmt: skip
    (system,) = load_lists(_write(tmp_path, "l.csv", text), data, name="l", k=3)
    report = system.load_reports[0]
    assert report.summary() == (
        "l.csv (lists): 9 rows read, 1 kept, 5 rows of 2 users not in the rating data "
        "(rejected), 3 rows with an item not in the rating data (rejected; the file names 2 "
        "such items)"
    )
    table = external_rejected_table(report)
    assert table.to_dict("records") == [
        {"reason": "user is not in the rating data", "rows": "5", "distinct ids": "2 users",
         "example": "row 2: user x1, item a, rank 1; row 3: user x1, item b, rank 2"},
        {"reason": "item is not in the rating data", "rows": "3", "distinct ids": "2 items",
         "example": "row 7: user u2, item zz, rank 1; row 8: user u3, item zz, rank 1"},
    ]  # fmt: skip
    assert "{" not in "".join(table["example"])  # never a raw Python dict
    assert report.to_dict()["example_text"]["unknown_user"][0] == "row 2: user x1, item a, rank 1"


def test_cli_load_report_says_the_distinct_unknown_users(tmp_path, capsys):
    from engine.cli import build_parser
    from engine.external.cli import load_external

    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "ratings.csv").write_text(RATINGS)
    lists = _write(tmp_path, "l.csv", "user,item,rank\nu1,a,1\nx1,a,1\nx1,b,2\nx2,a,1\n")
    args = build_parser().parse_args(["audit", str(folder), "--recommendations", str(lists),
                                      "--out", str(tmp_path / "out")])  # fmt: skip
    (system,) = load_external(args, load_dataset(ratings=folder / "ratings.csv"))
    summary = system.load_reports[0].to_dict()["summary"]
    assert "3 rows of 2 users not in the rating data" in summary
