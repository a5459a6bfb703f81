"""Ratings indexed for numpy: users and items as integer positions, histories as CSR."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Interactions:
    """Training ratings grouped by user (compressed sparse rows).

    Attributes
    ----------
    user_ids, item_ids
        Raw ids (str) in ascending order; a user's or item's position in these
        arrays is its index in every model array.
    indptr
        ``int64`` of length ``n_users + 1``: user ``u``'s ratings are the slice
        ``indptr[u]:indptr[u + 1]`` of ``items`` and ``ratings``.
    items
        ``int64`` item index of each rating, ascending within a user.
    ratings
        ``float64`` rating values.
    """

    user_ids: np.ndarray
    item_ids: np.ndarray
    indptr: np.ndarray
    items: np.ndarray
    ratings: np.ndarray

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, item_ids: np.ndarray | None = None) -> Interactions:
        """Index a ratings frame (columns ``user_id, item_id, rating``).

        ``item_ids`` fixes the item axis (e.g. the whole catalogue); by default it is
        the items present in ``frame``. Items of ``frame`` missing from it are dropped.
        """
        # factorized as Series: an Arrow-backed id column is hashed in Arrow; its
        # to_numpy() made a Python str per row (on 25M ratings about 3 GB at once, and
        # interpreter memory that stayed fragmented afterwards)
        user_codes, user_ids = pd.factorize(frame["user_id"], sort=True)
        if item_ids is None:
            item_codes, item_ids = pd.factorize(frame["item_id"], sort=True)
        else:
            codes, present = pd.factorize(frame["item_id"])
            position = pd.Index(item_ids).get_indexer(np.asarray(present, dtype=object))
            item_codes = np.where(codes >= 0, position[codes], -1)
            del codes
        ratings = frame["rating"].to_numpy(dtype=np.float64)
        keep = item_codes >= 0
        if not keep.all():  # masked only when something is dropped: each mask is a copy
            user_codes, item_codes, ratings = user_codes[keep], item_codes[keep], ratings[keep]
        del keep
        indptr = np.zeros(len(user_ids) + 1, dtype=np.int64)
        np.cumsum(np.bincount(user_codes, minlength=len(user_ids)), out=indptr[1:])
        order = np.lexsort((item_codes, user_codes))
        del user_codes
        return cls(
            user_ids=np.asarray(user_ids, dtype=object),
            item_ids=np.asarray(item_ids, dtype=object),
            indptr=indptr,
            items=item_codes.astype(np.int64, copy=False)[order],
            ratings=ratings[order],
        )

    @property
    def n_users(self) -> int:
        """Number of users."""
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        """Number of items on the item axis."""
        return len(self.item_ids)

    @property
    def n_ratings(self) -> int:
        """Number of ratings."""
        return len(self.ratings)

    @cached_property
    def _user_lookup(self) -> pd.Index:
        return pd.Index(self.user_ids)

    @cached_property
    def _item_lookup(self) -> pd.Index:
        return pd.Index(self.item_ids)

    def user_index(self, user_ids: np.ndarray | list[str]) -> np.ndarray:
        """Positions of raw user ids, ``-1`` where unknown.

        The lookup table is built once per ``Interactions`` (a new ``pd.Index`` per call
        hashed every id again: per-user callers then cost users x ids).
        """
        return self._user_lookup.get_indexer(np.asarray(user_ids, dtype=object))

    def item_index(self, item_ids: np.ndarray | list[str]) -> np.ndarray:
        """Positions of raw item ids, ``-1`` where unknown (lookup built once, as users')."""
        return self._item_lookup.get_indexer(np.asarray(item_ids, dtype=object))

    def history(self, user: int) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(item indices, ratings)`` of one user."""
        lo, hi = self.indptr[user], self.indptr[user + 1]
        return self.items[lo:hi], self.ratings[lo:hi]

    def counts_per_user(self) -> np.ndarray:
        """Return the number of ratings of each user."""
        return np.diff(self.indptr)

    def counts_per_item(self) -> np.ndarray:
        """Return the number of ratings of each item."""
        return np.bincount(self.items, minlength=self.n_items)

    def raters(self, item: int) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(user indices, ratings)`` of the users who rated item ``item``."""
        rated = self.items == item
        return self.rows()[rated], self.ratings[rated]

    def rows(self) -> np.ndarray:
        """User index of every rating (the CSR rows expanded)."""
        return np.repeat(np.arange(self.n_users), np.diff(self.indptr))

    def popularity_sums(self) -> np.ndarray:
        """Return, per user, the sum of the rating counts of the items they rated.

        ``float64``; divided by ``counts_per_user`` it is the mean popularity of the
        user's items (the popularity-propensity groups of ``engine.compare``).
        """
        return np.bincount(self.rows(), weights=self.counts_per_item()[self.items],
                           minlength=self.n_users)  # fmt: skip

    def rated_mask(self, users: np.ndarray) -> np.ndarray:
        """Boolean ``(len(users), n_items)`` matrix: True where the user rated the item."""
        mask = np.zeros((len(users), self.n_items), dtype=bool)
        for row, user in enumerate(users):
            mask[row, self.history(user)[0]] = True
        return mask
