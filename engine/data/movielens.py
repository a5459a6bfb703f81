"""Readers for the MovieLens layouts, recognised by their file names.

* ``ml-100k``: ``u.data`` (tab, no header: user, item, rating, timestamp),
  ``u.user`` (``|``: id, age, gender, occupation, zip), ``u.item`` (``|``, Latin-1:
  id, title, release date, video release date, IMDb URL, 19 genre flags named
  by ``u.genre``).
* ``ml-1m``: ``ratings.dat``, ``users.dat`` (gender, age code, occupation code, zip),
  ``movies.dat`` (title, ``|``-separated genres), ``::``-separated, Latin-1.
* ``ml-latest`` / ``ml-latest-small``: ``ratings.csv`` (half stars) and
  ``movies.csv`` (``|``-separated genres), UTF-8 with headers.

Reference: F. M. Harper and J. A. Konstan, "The MovieLens Datasets: History and
Context", ACM TiiS 5(4), 2015.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import pandas as pd

from engine.data.archive import Archive
from engine.data.tables import RawTable, read_text_table
from engine.data.types import DataFile
from engine.errors import DataError, one_line

ML100K_GENRES = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)
ML1M_AGE_BANDS = {
    "1": "Under 18",
    "18": "18-24",
    "25": "25-34",
    "35": "35-44",
    "45": "45-49",
    "50": "50-55",
    "56": "56+",
}
ML1M_OCCUPATIONS = (
    "other",
    "academic/educator",
    "artist",
    "clerical/admin",
    "college/grad student",
    "customer service",
    "doctor/health care",
    "executive/managerial",
    "farmer",
    "homemaker",
    "K-12 student",
    "lawyer",
    "programmer",
    "retired",
    "sales/marketing",
    "scientist",
    "self-employed",
    "technician/engineer",
    "tradesman/craftsman",
    "unemployed",
    "writer",
)
RATING_COLUMNS = {
    "user": "column_1",
    "item": "column_2",
    "rating": "column_3",
    "timestamp": "column_4",
}


@dataclass
class MovieLensFiles:
    """What a MovieLens reader produced: the raw ratings and attribute frames.

    ``users`` / ``items`` are raw frames whose first column is the id, ready for
    ``engine.data.attributes``; ``columns`` maps rating fields to ``ratings`` columns.
    """

    variant: str
    ratings: RawTable
    columns: dict[str, str]
    users: pd.DataFrame | None
    items: pd.DataFrame | None
    user_file: str | None
    item_file: str | None


def _pipe_table(file: DataFile, sep: str, names: list[str]) -> pd.DataFrame:
    text = file.content.decode("latin_1")
    if sep == "::":
        text, sep = text.replace("::", "\x1f"), "\x1f"
    try:
        return pd.read_csv(
            io.StringIO(text),
            sep=sep,
            header=None,
            names=names,
            dtype=str,
            keep_default_na=False,
            quoting=csv.QUOTE_NONE,
            engine="c",
            index_col=False,
        )
    except (pd.errors.ParserError, ValueError) as e:
        raise DataError(
            f"{file.name} does not have the MovieLens layout ({one_line(e)}): use the original "
            "file."
        ) from e


def _read_100k(archive: Archive, ratings_member: str) -> MovieLensFiles:
    ratings = read_text_table(
        archive.read(ratings_member), set(), delimiter="\t", header=False, encoding="latin_1"
    )
    users = items = None
    user_member, item_member = archive.find("u.user"), archive.find("u.item")
    if user_member:
        users = _pipe_table(
            archive.read(user_member), "|", ["user_id", "age", "gender", "occupation", "zip_code"]
        )
    if item_member:
        genres = list(ML100K_GENRES)
        genre_member = archive.find("u.genre")
        if genre_member:
            listed = _pipe_table(archive.read(genre_member), "|", ["genre", "index"])
            listed = listed[listed["genre"].str.strip() != ""]
            genres = list(listed.sort_values("index", key=lambda s: s.astype(int))["genre"])
        raw = _pipe_table(
            archive.read(item_member),
            "|",
            ["item_id", "title", "release_date", "video_release_date", "imdb_url", *genres],
        )
        flags = raw[genres].eq("1").to_numpy()
        raw["genres"] = [
            "|".join(g for g, f in zip(genres, row, strict=True) if f) for row in flags
        ]
        items = raw[["item_id", "title", "genres", "release_date"]]
    return MovieLensFiles(
        "movielens-100k", ratings, RATING_COLUMNS, users, items, user_member, item_member
    )


def _read_1m(archive: Archive, ratings_member: str) -> MovieLensFiles:
    ratings = read_text_table(
        archive.read(ratings_member), set(), delimiter="::", header=False, encoding="latin_1"
    )
    users = items = None
    user_member, item_member = archive.find("users.dat"), archive.find("movies.dat")
    if user_member:
        users = _pipe_table(
            archive.read(user_member), "::", ["user_id", "gender", "age", "occupation", "zip_code"]
        )
        users["age_band"] = users["age"].map(ML1M_AGE_BANDS).fillna(users["age"])
        codes = pd.to_numeric(users["occupation"], errors="coerce")
        users["occupation"] = [
            ML1M_OCCUPATIONS[int(c)] if c == c and 0 <= c < len(ML1M_OCCUPATIONS) else str(c)
            for c in codes
        ]
        users = users[["user_id", "gender", "age_band", "occupation", "zip_code"]]
    if item_member:
        items = _pipe_table(archive.read(item_member), "::", ["item_id", "title", "genres"])
    return MovieLensFiles(
        "movielens-1m", ratings, RATING_COLUMNS, users, items, user_member, item_member
    )


def _read_latest(archive: Archive, ratings_member: str) -> MovieLensFiles:
    ratings = read_text_table(archive.read(ratings_member), set(), delimiter=",", header=True)
    columns = {"user": "userId", "item": "movieId", "rating": "rating", "timestamp": "timestamp"}
    missing = [c for c in columns.values() if c not in ratings.frame.columns]
    if missing:
        raise DataError(
            f"{ratings.name} lacks the MovieLens columns {', '.join(missing)}: use the original "
            "ratings.csv, or load it as a plain rating file."
        )
    items = None
    item_member = archive.find("movies.csv")
    if item_member:
        items = read_text_table(archive.read(item_member), set(), delimiter=",", header=True).frame
    return MovieLensFiles("movielens-latest", ratings, columns, None, items, None, item_member)


def read_movielens(archive: Archive) -> MovieLensFiles | None:
    """Recognise a MovieLens layout in ``archive`` and read it; ``None`` if it is not one."""
    if member := archive.find("u.data"):
        return _read_100k(archive, member)
    if member := archive.find("ratings.dat"):
        return _read_1m(archive, member)
    if (member := archive.find("ratings.csv")) and archive.find("movies.csv"):
        return _read_latest(archive, member)
    return None
