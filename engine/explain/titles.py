"""Item titles for display: ``{item_id: title}`` and a lookup that falls back to the id."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from engine.data.types import RatingData

if TYPE_CHECKING:
    import pandas as pd


def item_titles(data: RatingData | None) -> dict[str, str]:
    """Return ``{item_id: title}`` when the dataset has titles, else an empty dict."""
    return titles_in(None if data is None else data.items)


def titles_in(items: pd.DataFrame | None) -> dict[str, str]:
    """Return ``{item_id: title}`` of an item table (``RatingData.items``), empty without titles."""
    if items is None or "title" not in items:
        return {}
    titles = items["title"].dropna().astype(str)
    return dict(zip(titles.index.tolist(), titles.tolist(), strict=True))  # 8x to_dict()


def titles_for(item_ids: Iterable[object], titles: dict[str, str] | None) -> list[str]:
    """Return each item's title, or its id where there is none."""
    titles = titles or {}
    return [titles.get(str(i), str(i)) for i in item_ids]
