"""Id columns held as Python strings, one object per distinct id.

pandas 3 keeps text in Arrow-backed string columns. Code that reads ids row by row
(Surprise's ``Dataset.load_from_df``) or tests membership (``isin``, ``merge`` on a whole
group) goes through one pyarrow scalar per value there: 2.5x (row reads) to 100x
(``isin``) slower than on ``object`` columns. ``object_ids`` gives ``object`` columns with
the same values. Each distinct id is one ``str`` that all its rows point to
(``pd.factorize``), not one object per row: 8 bytes a row instead of about 60, which on
25M ratings is 0.4 GB instead of 3 GB.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

#: The id columns of canonical tables.
ID_COLUMNS: tuple[str, ...] = ("user_id", "item_id")


def shared_strings(values: pd.Series) -> pd.Series:
    """``values`` as an ``object`` Series (same index), one object per distinct value.

    Missing values (never in canonical ids) are converted as they are. An ``object``
    Series is returned as it is (a copy would cost 8 bytes a row and change nothing read).
    """
    if values.dtype == object:
        return values
    codes, uniques = pd.factorize(values)
    if (codes < 0).any():
        return values.astype(object)
    return pd.Series(
        np.asarray(uniques, dtype=object)[codes], index=values.index, name=values.name,
        dtype=object,
    )  # fmt: skip


def object_ids(frame: pd.DataFrame | pd.Series) -> pd.DataFrame | pd.Series:
    """``frame`` with its id columns (``ID_COLUMNS``; a Series itself) as ``object`` strings.

    The values are the same strings; only the storage changes (module docstring).
    """
    if isinstance(frame, pd.Series):
        return shared_strings(frame)
    ids = {c: shared_strings(frame[c]) for c in ID_COLUMNS if c in frame.columns}
    return frame.assign(**ids) if ids else frame


def arrow_strings(values: pd.Series | pd.Index, large: bool = False) -> pa.Array:
    """Return text ``values`` as one Arrow ``string`` (``large_string``) array.

    ``values``: ``str``, ``string``, ``object`` of str or categorical of str. Built from
    the values' own Arrow data where they have it (pandas' ``str`` columns, however many
    chunks), not through a Python ``str`` per row.
    """
    data = pa.array(values.array, from_pandas=True)  # a ChunkedArray for a chunked column
    data = data.cast(pa.large_string() if large else pa.string())
    return data.combine_chunks() if isinstance(data, pa.ChunkedArray) else data
