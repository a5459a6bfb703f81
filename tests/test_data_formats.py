"""engine.data reads every supported layout into the same canonical ratings."""

from __future__ import annotations

import gzip
import io
import json

import pandas as pd
import pytest

from engine import ColumnMapping, DataFile, load_dataset
from tests.conftest import SAMPLE_DIR, zip_bytes

ROWS = [
    ("u1", "i1", 5, 978300760),
    ("u1", "i2", 3, 978300860),
    ("u2", "i1", 4, 978302109),
    ("u2", "i3", 1, 978302209),
]
EXPECTED = pd.DataFrame(ROWS, columns=["user_id", "item_id", "rating", "timestamp"])


def text_of(sep: str, header: bool = True, rows=ROWS) -> str:
    lines = [sep.join(["user_id", "item_id", "rating", "timestamp"])] if header else []
    lines += [sep.join(str(v) for v in row) for row in rows]
    return "\n".join(lines) + "\n"


def assert_canonical(data, expected=EXPECTED) -> None:
    got = data.ratings
    assert list(got.columns) == ["user_id", "item_id", "rating", "timestamp"]
    assert got["user_id"].tolist() == expected["user_id"].tolist()
    assert got["item_id"].tolist() == expected["item_id"].tolist()
    assert got["rating"].tolist() == pytest.approx(expected["rating"].astype(float).tolist())
    assert got["timestamp"].tolist() == expected["timestamp"].tolist()
    assert data.report.rows_kept + data.report.rows_rejected == data.report.rows_read


@pytest.mark.parametrize(
    ("sep", "header", "expected_delimiter"),
    [
        (",", True, ","),
        (",", False, ","),
        ("\t", True, "\t"),
        ("\t", False, "\t"),
        (";", True, ";"),
        ("|", True, "|"),
        ("::", False, "::"),
        ("::", True, "::"),
        ("  ", False, " "),
    ],
)
def test_delimited_text_is_sniffed_with_or_without_header(sep, header, expected_delimiter):
    data = load_dataset(DataFile("r.txt", text_of(sep, header).encode()))
    assert_canonical(data)
    report = data.report.files[0]
    assert report.delimiter == expected_delimiter
    assert report.header is header


def test_headerless_columns_are_detected_by_content():
    # Timestamp first, rating last: content decides, not position.
    text = "\n".join(f"{ts},{u},{i},{r}" for u, i, r, ts in ROWS * 3) + "\n"
    data = load_dataset(DataFile("r.csv", text.encode()))
    cols = data.report.files[0].columns
    assert cols == {
        "timestamp": "column_1",
        "rating": "column_4",
        "user": "column_2",
        "item": "column_3",
    }
    assert data.report.files[0].detection["rating"] == "content"


@pytest.mark.parametrize(
    ("names", "mapped"),
    [
        (["User-ID", "ISBN", "Book-Rating"], ("User-ID", "ISBN", "Book-Rating")),
        (["customerId", "productId", "stars"], ("customerId", "productId", "stars")),
        (["userId", "movieId", "rating"], ("userId", "movieId", "rating")),
    ],
)
def test_columns_are_detected_by_name(names, mapped):
    text = ",".join(names) + "\n" + "\n".join(f"{u},{i},{r}" for u, i, r, _ in ROWS)
    data = load_dataset(DataFile("r.csv", text.encode()))
    cols = data.report.files[0].columns
    assert (cols["user"], cols["item"], cols["rating"]) == mapped
    assert "timestamp" not in cols
    assert data.ratings["timestamp"].isna().all()


def test_explicit_mapping_overrides_detection():
    text = "rating,who,what,score\n" + "\n".join(f"9,{u},{i},{r}" for u, i, r, _ in ROWS)
    mapping = ColumnMapping(user="who", item="what", rating="score")
    data = load_dataset(DataFile("r.csv", text.encode()), mapping=mapping)
    assert data.ratings["rating"].tolist() == [5.0, 3.0, 4.0, 1.0]
    assert data.report.files[0].detection["rating"] == "given"
    assert data.report.files[0].ignored_columns == ["rating"]
    assert data.report.warnings[0].startswith("Columns rating of r.csv are not user, item")


def test_parquet_with_integer_ids_and_float_ratings():
    frame = pd.DataFrame(
        {"user": [1, 1, 2, 2], "item": [10, 20, 10, 30], "rating": [4.5, 3.0, 2.5, 5.0]}
    )
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    data = load_dataset(DataFile("r.parquet", buffer.getvalue()))
    assert data.report.files[0].format == "parquet"
    assert data.ratings["user_id"].tolist() == ["1", "1", "2", "2"]
    assert data.ratings["item_id"].tolist() == ["10", "20", "10", "30"]
    assert (data.scale.low, data.scale.high, data.scale.step) == (0.5, 5.0, 0.5)


def test_gzip_text_is_decompressed():
    data = load_dataset(DataFile("r.csv.gz", gzip.compress(text_of(",").encode())))
    assert_canonical(data)


def test_utf8_bom_and_crlf_and_mixed_line_endings():
    text = text_of(",").replace("\n", "\r\n", 2)
    data = load_dataset(DataFile("r.csv", b"\xef\xbb\xbf" + text.encode()))
    assert_canonical(data)
    assert data.report.files[0].columns["user"] == "user_id"


def test_utf16_with_bom_is_decoded():
    data = load_dataset(DataFile("r.csv", text_of("\t").encode("utf-16")))
    assert_canonical(data)
    assert data.report.files[0].encoding == "utf-16"


def test_latin1_item_titles_load_correctly(tmp_path):
    (tmp_path / "ratings.csv").write_text(text_of(","), encoding="utf-8")
    items = "item_id;title;genres\ni1;Misérables, Les (1995);Drama|Romance\ni2;Café Noir (1991);\n"
    (tmp_path / "items.csv").write_bytes(items.encode("latin-1"))
    data = load_dataset(tmp_path)
    assert data.items.loc["i1", "title"] == "Misérables, Les (1995)"
    assert data.items.loc["i2", "title"] == "Café Noir (1991)"
    assert data.items.loc["i1", "genres"] == ("Drama", "Romance")
    assert data.items.loc["i2", "genres"] == ()
    assert data.items.loc["i1", "year"] == 1995
    (items_report,) = [f for f in data.report.files if f.role == "items"]
    assert items_report.encoding in {"cp1252", "latin_1"}
    assert data.report.attribute_coverage["items_without_attributes"] == 1


def test_folder_with_users_and_items(tmp_path):
    (tmp_path / "ratings.tsv").write_text(text_of("\t"))
    (tmp_path / "users.csv").write_text("user_id,gender,age,zip\nu1,F,34,02139\nu2,M,61,10001\n")
    data = load_dataset(tmp_path)
    assert data.users.loc["u1", "gender"] == "F"
    assert data.users["age"].dtype == "Int64"
    assert data.users.loc["u2", "age"] == 61
    assert data.users.loc["u1", "zip"] == "02139"  # a code with a leading zero stays text
    assert data.name == tmp_path.name


def ml_latest_files() -> dict[str, str]:
    return {
        "ml-latest-small/ratings.csv": "userId,movieId,rating,timestamp\n"
        "1,1,4.0,964982703\n1,3,4.5,964981247\n2,1,0.5,964982224\n2,2,3.5,964983815\n",
        "ml-latest-small/movies.csv": "movieId,title,genres\n"
        "1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\n"
        '2,"American President, The (1995)",Comedy|Drama|Romance\n'
        "3,Some Film (2019),(no genres listed)\n",
        "ml-latest-small/links.csv": "movieId,imdbId,tmdbId\n1,0114709,862\n",
    }


def test_movielens_latest_zip_half_stars_and_genres():
    data = load_dataset(DataFile("ml-latest-small.zip", zip_bytes(ml_latest_files())))
    assert data.report.files[0].format == "movielens-latest"
    assert data.n_ratings == 4
    assert (data.scale.low, data.scale.high, data.scale.step) == (0.5, 5.0, 0.5)
    assert data.items.loc["2", "title"] == "American President, The (1995)"
    assert data.items.loc["1", "genres"][:2] == ("Adventure", "Animation")
    assert data.items.loc["3", "genres"] == ()
    assert data.items.loc["3", "year"] == 2019
    assert data.users is None


def test_movielens_latest_folder(tmp_path):
    for name, content in ml_latest_files().items():
        path = tmp_path / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(content)
    data = load_dataset(tmp_path / "ml-latest-small")
    assert data.report.files[0].format == "movielens-latest"
    assert data.n_ratings == 4


def test_movielens_1m_zip_latin1_age_bands_and_occupations():
    files = {
        "ml-1m/ratings.dat": "1::1193::5::978300760\n1::661::3::978302109\n"
        "2::1193::4::978298413\n2::3068::2::978299000\n",
        "ml-1m/users.dat": "1::F::1::10::48067\n2::M::56::16::70072\n",
        "ml-1m/movies.dat": "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
        "661::James and the Giant Peach (1996)::Animation|Children's|Musical\n"
        "3068::Verdict, The (1982)::Drama\n"
        "100::Cité des enfants perdus, La (1995)::Adventure|Sci-Fi\n",
    }
    archive = zip_bytes({k: v.encode("latin-1") for k, v in files.items()})
    data = load_dataset(DataFile("ml-1m.zip", archive))
    assert data.report.files[0].format == "movielens-1m"
    assert data.users.loc["1", "age_band"] == "Under 18"
    assert data.users.loc["2", "age_band"] == "56+"
    assert data.users.loc["1", "occupation"] == "K-12 student"
    assert data.users.loc["2", "occupation"] == "self-employed"
    assert data.items.loc["100", "title"] == "Cité des enfants perdus, La (1995)"
    assert data.items.loc["661", "genres"] == ("Animation", "Children's", "Musical")
    assert data.report.attribute_coverage["attribute_items_without_ratings"] == 1


def ml100k_checks(data) -> None:
    assert (data.n_users, data.n_items, data.n_ratings) == (943, 1682, 100_000)
    assert data.report.files[0].format == "movielens-100k"
    assert list(data.users.columns) == ["age", "gender", "occupation", "zip_code"]
    assert data.users.loc["1", "age"] == 24
    assert data.users.loc["2", "gender"] == "F"
    assert data.users.loc["1", "occupation"] == "technician"
    genres = {g for gs in data.items["genres"] for g in gs}
    assert len(genres) == 19
    assert data.items.loc["1", "genres"] == ("Animation", "Children's", "Comedy")
    assert data.items.loc["1", "year"] == 1995
    titles = set(data.items["title"])
    assert "Misérables, Les (1995)" in titles
    assert "C'est arrivé près de chez vous (1992)" in titles
    assert data.report.rows_rejected == 0


def test_movielens_100k_folder(ml100k):
    ml100k_checks(load_dataset(ml100k))


def test_movielens_100k_zip(ml100k):
    files = {f"ml-100k/{p.name}": p.read_bytes() for p in ml100k.iterdir() if p.is_file()}
    data = load_dataset(DataFile("ml-100k.zip", zip_bytes(files)))
    ml100k_checks(data)
    assert data.fingerprint == load_dataset(ml100k).fingerprint


def test_sample_data_is_labelled_synthetic_and_matches_ground_truth():
    data = load_dataset(SAMPLE_DIR)
    truth = json.loads((SAMPLE_DIR / "ground_truth.json").read_text())
    assert data.synthetic is True
    assert data.n_users == truth["counts"]["users"]
    assert data.n_ratings == truth["counts"]["ratings"]
    assert data.n_items == truth["counts"]["rated_items"]
    assert set(data.users.columns) == {"gender", "age_band", "region", "cohort"}
    assert {"title", "genres", "year", "provider"} <= set(data.items.columns)


def test_explicit_files_override_and_supplement():
    ratings = DataFile("r.csv", text_of(",").encode())
    users = DataFile("people.csv", b"id,region\nu1,North\nu2,South\nu9,East\n")
    data = load_dataset(ratings=ratings, users=users)
    assert data.users.loc["u2", "region"] == "South"
    assert data.report.attribute_coverage == {
        "users_without_attributes": 0,
        "attribute_users_without_ratings": 1,
    }


@pytest.mark.parametrize("storage", ["str", "object"])
def test_fingerprint_is_the_sha256_of_the_joined_ids_however_they_are_stored(storage):
    import hashlib

    import numpy as np

    from engine.data.load import fingerprint_of

    users, items = ["u1", "ü2", "日本", "u1"], ["x", "", "x\x1fy", "z"]
    ratings = pd.DataFrame({
        "user_id": pd.array(users, dtype=storage), "item_id": pd.array(items, dtype=storage),
        "rating": [1.0, 2.5, 3.0, 4.0], "timestamp": pd.array([5, None, 7, 8], dtype="Int64"),
    })  # fmt: skip
    expected = hashlib.sha256(b"rating-data-v1\n")  # the definition, written out
    for ids in (users, items):
        expected.update("\x1f".join(ids).encode("utf-8") + b"\x1e")
    expected.update(np.array([1.0, 2.5, 3.0, 4.0]).tobytes())
    expected.update(np.array([5.0, -1.0, 7.0, 8.0]).tobytes() + b"\x1e\x1e")
    assert fingerprint_of(ratings, None, None) == expected.hexdigest()
