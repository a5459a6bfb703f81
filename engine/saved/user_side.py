"""One user of a run kept in Spark, on demand: the fitted model and that user's ratings.

``run --engine spark --keep-in-spark`` writes, beside the report's parts (``engine.saved.kept``),
what the User profile and Recommendations pages need of the final fit, without the ratings
ever sitting in one process:

    OUT/user_side/fields.json         ``mu`` and each ratings part's first and last user ``u``
    OUT/user_side/users.parquet       ``user_id, bu, p_1..p_k``: row ``u`` is user index ``u``
    OUT/user_side/items.parquet       ``item_id, bi, n_ratings, q_1..q_k``: row ``i`` is item ``i``
    OUT/user_side/ratings/part-NNNNN.parquet
                                      ``u, i, rating, timestamp`` sorted by ``u`` then ``i``,
                                      about ``RATINGS_PER_PART`` ratings each, users not split
    OUT/user_side/attributes/users.parquet, items.parquet
                                      the user and item attribute tables, when given

``u`` and ``i`` are positions in the ascending raw ids (``engine.spark.load``'s indexing, and
``Interactions``'). The model and attribute tables are a few MB even at 25M ratings (users x
rank); they are read when the run is opened. A user's ratings are read from the one part
that holds them, and an item's raters from every part, each read verified against its
SHA-256 like every other file of the run (``engine.saved.source.Source.read``).

``UserSide.model_for(user_id)`` is a ``TrainedModel`` whose ``interactions`` hold that user's
ratings only (``OneUserInteractions``) with the whole data's ratings per item, so every
explanation, the top-N, the what-if editor and the counterfactual run on it unchanged, and
give what they give on the whole model: the user side is the exact ridge refit, which needs
only the user's own ratings and the item side (``engine.model.ridge``).
``UserSide.model_for_users(user_ids)`` holds the ratings of several users, with every user's
number of ratings and popularity sum (``ListedUsersInteractions``, read from every part once):
what ``engine.compare`` needs to score a window of later ratings.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.data.types import LoadReport, RatingData
from engine.model.config import ModelConfig
from engine.model.interactions import Interactions
from engine.model.svd import TrainedModel
from engine.saved import jsonio
from engine.saved.errors import refuse
from engine.saved.source import Source
from engine.saved.store import write_file

#: The folder, inside the run's ``--out``, of the user side.
FOLDER = "user_side"
#: Ratings per part file (a user's ratings are never split across parts).
RATINGS_PER_PART = 1_000_000
FIELDS = f"{FOLDER}/fields.json"
USERS = f"{FOLDER}/users.parquet"
ITEMS = f"{FOLDER}/items.parquet"
USER_ATTRIBUTES = f"{FOLDER}/attributes/users.parquet"
ITEM_ATTRIBUTES = f"{FOLDER}/attributes/items.parquet"
_FIX = "run the analysis again with run --engine spark --keep-in-spark"


def part_path(number: int) -> str:
    """Return the path, inside the run, of ratings part ``number``."""
    return f"{FOLDER}/ratings/part-{number:05d}.parquet"


def side_tables(
    user_ids: np.ndarray,
    bu: np.ndarray,
    P: np.ndarray,
    item_ids: np.ndarray,
    bi: np.ndarray,
    Q: np.ndarray,
    n_ratings: np.ndarray,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the ``users.parquet`` and ``items.parquet`` tables of a fit (module docstring)."""

    def table(id_name: str, ids: np.ndarray, columns: dict, name: str, M: np.ndarray):
        factors = {f"{name}_{j + 1}": np.asarray(M[:, j], np.float64) for j in range(M.shape[1])}
        return pd.DataFrame({id_name: pd.array(ids, dtype="str"), **columns, **factors})

    users = table("user_id", user_ids, {"bu": np.asarray(bu, np.float64)}, "p", P)
    counts = np.asarray(n_ratings, dtype=np.int64)
    items = table("item_id", item_ids, {"bi": np.asarray(bi, np.float64), "n_ratings": counts},
                  "q", Q)  # fmt: skip
    return users, items


def write_user_side(
    out: str | Path,
    mu: float,
    users: pd.DataFrame,
    items: pd.DataFrame,
    parts: Iterable[pd.DataFrame],
    user_attributes: pd.DataFrame | None = None,
    item_attributes: pd.DataFrame | None = None,
) -> dict[str, dict[str, Any]]:
    """Write ``OUT/user_side/`` (module docstring); return each file's manifest record.

    ``users``/``items``: ``side_tables``; ``parts``: frames ``u, i, rating, timestamp``
    (``int32``, ``int32``, ``float64``, ``Int64``), each sorted by ``u`` then ``i``, in
    ascending ``u`` without a user in two parts. ``engine.saved.kept.save_kept`` lists the
    records in the run's manifest.
    """
    out = Path(out)
    shutil.rmtree(out / FOLDER, ignore_errors=True)  # an earlier run's, replaced
    files, bounds = write_parts(out, parts)
    return files | write_side_tables(out, mu, users, items, bounds, user_attributes,
                                     item_attributes)  # fmt: skip


def write_parts(
    out: Path, parts: Iterable[pd.DataFrame]
) -> tuple[dict[str, dict[str, Any]], list[list[int]]]:
    """Write each of ``parts`` as ratings part 0, 1, ...; return the records and the bounds.

    The bounds are each part's first and last user ``u`` (``fields.json``'s ``parts``).
    """
    files: dict[str, dict[str, Any]] = {}
    bounds = []
    for number, part in enumerate(parts):
        path = part_path(number)
        files[path] = write_file(out / path, part.reset_index(drop=True), "A ratings part")
        bounds.append([int(part["u"].iat[0]), int(part["u"].iat[-1])])
    return files, bounds


def write_side_tables(
    out: Path,
    mu: float,
    users: pd.DataFrame,
    items: pd.DataFrame,
    bounds: list[list[int]],
    user_attributes: pd.DataFrame | None = None,
    item_attributes: pd.DataFrame | None = None,
) -> dict[str, dict[str, Any]]:
    """Write the user side's tables and ``fields.json`` (after ``write_parts``); the records."""
    files: dict[str, dict[str, Any]] = {}
    tables = {USERS: users, ITEMS: items, USER_ATTRIBUTES: user_attributes,
              ITEM_ATTRIBUTES: item_attributes}  # fmt: skip
    for path, frame in tables.items():
        if frame is not None:
            files[path] = write_file(out / path, frame, f"The user side's {path}")
    fields = {"mu": float(mu), "parts": bounds}
    files[FIELDS] = write_file(out / FIELDS, jsonio.dumps(fields, "The user side's fields"))
    return files


def parts_of(ratings: pd.DataFrame, per_part: int = RATINGS_PER_PART) -> list[pd.DataFrame]:
    """Cut ratings ``u, i, rating, timestamp`` into parts of about ``per_part`` ratings.

    Sorted by ``u`` then ``i``; each part holds the users of one ``user_ranges`` range.
    """
    ratings = ratings.sort_values(["u", "i"], ignore_index=True)
    users = ratings["u"].to_numpy()
    ranges = user_ranges(np.bincount(users), per_part)
    cuts = [np.searchsorted(users, [first, last + 1]) for first, last in ranges]
    return [ratings.iloc[a:b] for a, b in cuts]


def user_ranges(counts: np.ndarray, per_part: int = RATINGS_PER_PART) -> list[tuple[int, int]]:
    """Return each part's first and last user ``u``, for users with ``counts`` ratings.

    A part closes after the first user that brings it to ``per_part`` ratings or more, so
    no user is split.
    """
    total = np.cumsum(counts)
    ranges: list[tuple[int, int]] = []
    first = 0
    while first < len(total):
        before = total[first - 1] if first else 0
        last = min(int(np.searchsorted(total, before + per_part)), len(total) - 1)
        ranges.append((first, last))
        first = last + 1
    return ranges


@dataclass(frozen=True)
class OneUserInteractions(Interactions):
    """``Interactions`` on the whole data's id axes holding one user's ratings.

    ``counts_per_item`` is the whole data's ``item_counts`` (which items have factors, the
    popularity fallback), and ``raters`` reads an item's raters with ``read_raters``; the
    CSR arrays hold only the user's ratings, so ``history`` of any other user is empty.
    """

    item_counts: np.ndarray
    read_raters: Callable[[int], tuple[np.ndarray, np.ndarray]]

    @property
    def n_ratings(self) -> int:
        """Number of ratings of the whole data."""
        return int(self.item_counts.sum())

    def counts_per_item(self) -> np.ndarray:
        """Return the whole data's number of ratings of each item."""
        return self.item_counts

    def raters(self, item: int) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(user indices, ratings)`` of item ``item``'s raters in the whole data."""
        return self.read_raters(item)


@dataclass(frozen=True)
class ListedUsersInteractions(OneUserInteractions):
    """``OneUserInteractions`` holding the ratings of a list of users, with every user's totals.

    ``counts_per_user`` and ``popularity_sums`` are the whole data's (``UserSide.user_totals``),
    so which users are known and their activity and popularity groups are those of the
    whole data; ``history`` and ``rated_mask`` are right for the listed users only.
    """

    user_counts: np.ndarray
    user_popularity: np.ndarray

    def counts_per_user(self) -> np.ndarray:
        """Return the whole data's number of ratings of each user."""
        return self.user_counts

    def popularity_sums(self) -> np.ndarray:
        """Return the whole data's ``Interactions.popularity_sums``."""
        return self.user_popularity


class UserSide:
    """The user side of a kept run, opened from its ``Source`` (``open_user_side``).

    Attributes: ``mu``; ``bu``, ``P`` (users) and ``bi``, ``Q``, ``item_counts`` (items)
    as arrays; ``user_ids``/``item_ids``; ``config`` and ``scale`` of the run;
    ``user_attributes``/``item_attributes`` (``RatingData``'s tables, or ``None``).
    """

    def __init__(
        self, source: Source, config: ModelConfig, load: LoadReport, name: str, key: str
    ) -> None:
        self._source, self.config, self.load, self.name, self.key = source, config, load, name, key
        fields = source.json(FIELDS)
        where = source.where(FIELDS)
        if not isinstance(fields, dict) or set(fields) != {"mu", "parts"}:
            raise refuse(where, "is not the user side's fields (mu, parts)", _FIX)
        self.mu = _number(fields["mu"], where)
        users, items = source.table(USERS), source.table(ITEMS)
        k = config.n_factors
        p = [f"p_{j + 1}" for j in range(k)]
        q = [f"q_{j + 1}" for j in range(k)]
        _columns(users, ["user_id", "bu", *p], source.where(USERS))
        _columns(items, ["item_id", "bi", "n_ratings", *q], source.where(ITEMS))
        self.user_ids = users["user_id"].to_numpy(dtype=object)
        self.item_ids = items["item_id"].to_numpy(dtype=object)
        self.bu, self.P = users["bu"].to_numpy(np.float64), users[p].to_numpy(np.float64)
        self.bi, self.Q = items["bi"].to_numpy(np.float64), items[q].to_numpy(np.float64)
        self.item_counts = items["n_ratings"].to_numpy(np.int64)
        self._bounds = _bounds(fields["parts"], len(self.user_ids), where)
        self.user_attributes = _optional(source, USER_ATTRIBUTES)
        self.item_attributes = _optional(source, ITEM_ATTRIBUTES)
        self._users = pd.Index(self.user_ids)
        self.scale = (load.scale.low, load.scale.high)

    @property
    def bounds(self) -> np.ndarray:
        """Return each ratings part's first and last user ``u`` (one row per part)."""
        return self._bounds.copy()

    def user_index(self, user_id: str) -> int:
        """Return the index of raw user id ``user_id``, ``-1`` when the run has no such user."""
        return int(self._users.get_indexer([user_id])[0])

    def ratings(self, user: int) -> pd.DataFrame:
        """Return user ``user``'s rows ``u, i, rating, timestamp`` (by ``i``), from its part."""
        number = int(np.searchsorted(self._bounds[:, 1], user))
        if user < 0 or number >= len(self._bounds) or self._bounds[number, 0] > user:
            return pd.DataFrame({"u": [], "i": [], "rating": [], "timestamp": []})
        part = self.part(number)
        users = part["u"].to_numpy()
        lo, hi = np.searchsorted(users, user), np.searchsorted(users, user, side="right")
        return part.iloc[lo:hi]

    @lru_cache(maxsize=256)  # noqa: B019  (the run's lifetime: it holds the run anyway)
    def raters(self, item: int) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(user indices, ratings)`` of item ``item``'s raters, read from every part.

        Kept for the last 256 items asked (two arrays of their raters each): an explanation
        asks again whenever its item is chosen again.
        """
        found = [part.loc[part["i"] == item, ["u", "rating"]] for part in map(
            self.part, range(len(self._bounds)))]  # fmt: skip
        rows = pd.concat(found) if found else pd.DataFrame({"u": [], "rating": []})
        return rows["u"].to_numpy(np.int64), rows["rating"].to_numpy(np.float64)

    @lru_cache(maxsize=1)  # noqa: B019  (one part: a user's data and model read it in turn)
    def part(self, number: int) -> pd.DataFrame:
        """Read part ``number``, verified (users in its range, sorted; items known; on scale)."""
        path = part_path(number)
        where = self._source.where(path)
        part = self._source.table(path)
        _columns(part, ["u", "i", "rating", "timestamp"], where)
        users, items = part["u"].to_numpy(np.int64), part["i"].to_numpy(np.int64)
        first, last = self._bounds[number]
        ok = (
            len(users) > 0 and users[0] == first and users[-1] == last
            and bool((np.diff(users) >= 0).all())
            and bool(((items >= 0) & (items < len(self.item_ids))).all())
            and bool(part["rating"].between(*self.scale).all())
        )  # fmt: skip
        if not ok:
            raise refuse(where, "holds ratings outside its users, items or rating scale", _FIX)
        return part

    def model_for(self, user_id: str) -> TrainedModel:
        """Return the run's model with ``user_id``'s ratings (``OneUserInteractions``).

        ``bu``/``P`` of every user are the fit's; the user's own ``(b_u, p_u)`` refit from
        its ratings equals them (the same ridge solve, ``engine.model.ridge``).
        """
        indptr, items, ratings = self._csr(np.array([self.user_index(user_id)]))
        interactions = OneUserInteractions(
            self.user_ids, self.item_ids, indptr, items, ratings, item_counts=self.item_counts,
            read_raters=self.raters,
        )  # fmt: skip
        return self._model(interactions)

    def model_for_users(self, user_ids: Iterable[str]) -> TrainedModel:
        """Return the run's model with the ratings of ``user_ids`` (``ListedUsersInteractions``).

        Ids the run does not have are ignored (a model has no ratings of them). Each part
        holding a listed user is read once; the totals of every user are read once per run.
        """
        users = self._users.get_indexer(pd.Index(pd.unique(np.asarray(list(user_ids),
                                                                      dtype=object))))  # fmt: skip
        indptr, items, ratings = self._csr(users[users >= 0])
        counts, popularity = self.user_totals()
        interactions = ListedUsersInteractions(
            self.user_ids, self.item_ids, indptr, items, ratings, item_counts=self.item_counts,
            read_raters=self.raters, user_counts=counts, user_popularity=popularity,
        )  # fmt: skip
        return self._model(interactions)

    def _model(self, interactions: Interactions) -> TrainedModel:
        return TrainedModel(self.config, self.mu, self.bu, self.bi, self.P, self.Q,
                            interactions, self.scale, self.key)  # fmt: skip

    def _csr(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``indptr, items, ratings`` on the whole user axis holding the ratings of ``users``.

        ``users``: user indices (``-1``: none). Each part is read once, in order.
        """
        wanted = np.unique(users[users >= 0])
        numbers = np.searchsorted(self._bounds[:, 1], wanted)
        found = []
        for number in np.unique(numbers[numbers < len(self._bounds)]):
            part = self.part(int(number))
            found.append(part[np.isin(part["u"].to_numpy(np.int64), wanted[numbers == number])])
        rows = pd.concat(found) if found else pd.DataFrame({"u": [], "i": [], "rating": []})
        counts = np.bincount(rows["u"].to_numpy(np.int64), minlength=len(self.user_ids))
        indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return indptr, rows["i"].to_numpy(np.int64), rows["rating"].to_numpy(np.float64)

    @lru_cache(maxsize=1)  # noqa: B019  (the run's lifetime: it holds the run anyway)
    def user_totals(self) -> tuple[np.ndarray, np.ndarray]:
        """Return every user's number of ratings and popularity sum, read from every part.

        The popularity sum of a user is the sum, over the items they rated, of each item's
        number of ratings (``Interactions.popularity_sums``). Parts never split a user, so
        each user's sum is added in the same order as over the whole data.
        """
        n = len(self.user_ids)
        counts, sums = np.zeros(n, dtype=np.int64), np.zeros(n)
        for number in range(len(self._bounds)):
            part = self.part(number)
            users, items = part["u"].to_numpy(np.int64), part["i"].to_numpy(np.int64)
            counts += np.bincount(users, minlength=n)
            sums += np.bincount(users, weights=self.item_counts[items].astype(np.float64),
                                minlength=n)  # fmt: skip
        return counts, sums

    def data_for(self, user_id: str) -> RatingData:
        """Return a ``RatingData`` of ``user_id``'s ratings only, with the attribute tables.

        Its ``fingerprint`` is the run's key: what depends only on the run (factor labels)
        is computed once for every user.
        """
        rows = self.ratings(self.user_index(user_id))
        ratings = pd.DataFrame({
            "user_id": pd.array([user_id] * len(rows), dtype="str"),
            "item_id": pd.array(self.item_ids[rows["i"].to_numpy(np.int64)], dtype="str"),
            "rating": rows["rating"].to_numpy(np.float64),
            "timestamp": pd.array(rows["timestamp"], dtype="Int64"),
        })  # fmt: skip
        return RatingData(ratings, self.user_attributes, self.item_attributes, self.load.scale,
                          self.key, self.load, self.name)  # fmt: skip


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
        raise refuse(where, f"has mu = {value!r}, not a finite number", _FIX)
    return float(value)


def _columns(frame: pd.DataFrame, columns: list[str], where: str) -> None:
    if list(frame.columns) != columns:
        raise refuse(where, f"does not have the columns {', '.join(columns[:6])}...", _FIX)
    numeric = frame.columns[frame.columns.str.match(r"^(bu|bi|rating|[pq]_\d+)$")]
    if len(frame) and not np.isfinite(frame[numeric].to_numpy(np.float64)).all():
        raise refuse(where, "holds a value that is NaN or infinite", _FIX)


def _bounds(parts: object, n_users: int, where: str) -> np.ndarray:
    ok = isinstance(parts, list) and all(
        isinstance(b, list) and len(b) == 2 and all(type(x) is int for x in b) for b in parts
    )
    bounds = np.asarray(parts if ok else [], dtype=np.int64).reshape(-1, 2)
    ordered = ok and (bounds[:, 0] <= bounds[:, 1]).all() and (bounds[1:, 0] > bounds[:-1, 1]).all()
    if not ordered or (len(bounds) and (bounds[0, 0] < 0 or bounds[-1, 1] >= n_users)):
        raise refuse(where, "lists ratings parts that are not ascending ranges of users", _FIX)
    return bounds


def _optional(source: Source, path: str) -> pd.DataFrame | None:
    return source.table(path) if path in source.entries else None


def open_user_side(
    source: Source, config: ModelConfig, load: LoadReport, name: str, key: str
) -> UserSide | None:
    """Open the run's user side, or ``None`` when the run was saved without one."""
    if FIELDS not in source.entries:
        return None
    return UserSide(source, config, load, name, key)
