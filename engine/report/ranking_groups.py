"""Reading ``Report.ranking_by_group``: which model ranks best for which user group.

``Report.ranking_by_group`` (``engine.report.build.ranking_by_group_table``) holds each
ranking model's NDCG@k over all users and per group of every audited user grouping.
``wide_ranking_table`` lays one grouping out as a reader compares it (a row per group, a
column per model); ``best_model_sentence`` says which model is highest in which groups, and
how each model's values spread across them (the highest minus the lowest, and the lowest
over the highest), so "does the popularity baseline serve these users better?" is answered
where the reader looks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from engine import charts
from engine.audit.tables import ALL_USERS
from engine.report.numbers import NOT_AVAILABLE, missing, value_text

#: How many groups of a minority outcome the sentence names (more are counted only).
NAMED_GROUPS = 3
#: The heading of the comparison, in the report and on the Bias audit page.
RANKING_BY_GROUP = "Ranking by group across models"


def ranking_definition(metric: str, min_users: int, intervals: bool = True) -> str:
    """Define ``Report.ranking_by_group``'s values for the reader (``metric``: "NDCG@10").

    ``intervals``: whether the rows hold the paired differences (``has_intervals``; a kept
    run saved before them has none, and is not told about them).
    """
    text = (
        f"{metric} of each model for every user group the audit compared: the mean over the "
        "group's users with a relevant held-out rating (the users column), each user's NDCG "
        "averaged over the folds in which they were ranked (the audit's convention, so SVD's "
        f"values are the audit table's). Higher is better; n/a where a group has fewer than "
        f"{min_users} such users. 'all users' averages every ranked user the same way, so it "
        "can differ slightly from the accuracy table's NDCG, a mean over the folds; its users "
        "are those ranked in at least one fold, more than the accuracy table's n_users_ranked, "
        "the users ranked per fold (a mean over the folds). The gap "
        "between a model's best- and worst-served groups is given both as a difference and "
        "as a ratio: a model that ranks higher overall can show a larger difference and a "
        "ratio nearer 1 at once."
    )
    if not intervals:
        return text
    return text + (
        " '<model> - SVD (95% CI)' is the mean, over the group's users ranked by both, of the "
        "model's NDCG minus SVD's (positive: the model ranks them better), with its 95% "
        "interval [low, high] (normal approximation of the paired differences, not adjusted "
        "for the number of groups, unlike the audit's Holm-corrected tests): an interval that "
        "holds 0 is no clear difference at this number of users, not evidence of equality."
    )


def has_intervals(rows: pd.DataFrame) -> bool:
    """Whether ``Report.ranking_by_group`` rows hold any paired difference from SVD."""
    return "difference" in rows and bool(rows["difference"].notna().any())


def wide_ranking_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Lay one grouping's rows out as a reader compares them: a row per group.

    Columns ``group``, ``users``, one per model (its value), then ``<model> - <reference>``
    per other model: its paired difference and 95% interval as text (``"+0.0881 (+0.0712
    to +0.105)"``; ``""`` where there is none).

    ``users`` counts the group's users with a relevant held-out rating; where the models
    ranked different users, one ``users (model)`` column per model instead. Groups keep the
    order of ``rows`` ("all users" first); a value is NaN where the group is too small.
    """
    models = list(pd.unique(rows["model"]))
    order = list(pd.unique(rows["group"]))
    values = rows.pivot(index="group", columns="model", values="value").reindex(order)[models]
    users = rows.pivot(index="group", columns="model", values="n_users").reindex(order)[models]
    if users.nunique(axis=1).le(1).all():
        counts = users.iloc[:, [0]].set_axis(["users"], axis=1)
    else:
        counts = users.set_axis([f"users ({m})" for m in models], axis=1)
    wide = pd.concat([counts.astype("int64"), values], axis=1)
    for model in models[1:] if has_intervals(rows) else []:
        own = rows[rows["model"] == model].set_index("group").reindex(order)
        wide[f"{model} - {models[0]} (95% CI)"] = [
            _signed_interval(d, lo, hi)
            for d, lo, hi in zip(own["difference"], own["ci_low"], own["ci_high"], strict=True)
        ]
    wide = wide.reset_index()
    wide.columns.name = None
    return wide


def _signed(value: float) -> str:
    """4 significant figures with a sign, never in e-notation (``+0.00001568``, ``-0.0723``)."""
    return np.format_float_positional(value, precision=4, fractional=False, trim="-", sign=True)


def _signed_interval(difference: float, low: float, high: float) -> str:
    if missing(difference):
        return ""
    return f"{_signed(difference)} [{_signed(low)}, {_signed(high)}]"


def _against_reference(compared: pd.DataFrame) -> str:
    """Count, per other model, the compared groups where its interval is above 0 or below 0.

    `` Against SVD on the same users (95% intervals, not adjusted for the number of groups):
    Popularity higher in 6 of 7 groups, no clear difference in 1 (56+); ...``: the groups of
    the smaller outcomes are named (up to ``NAMED_GROUPS``); "" without intervals.
    """
    models = list(pd.unique(compared["model"]))
    parts = []
    for model in models[1:]:
        own = compared[(compared["model"] == model) & compared["ci_low"].notna()]
        if own.empty:
            continue
        unclear = np.where(own["ci_high"] < 0, "lower", "no clear difference")
        outcome = np.where(own["ci_low"] > 0, "higher", unclear)
        by_outcome = own["group"].astype(str).groupby(outcome, sort=False).agg(list)
        ordered = sorted(by_outcome.items(), key=lambda item: -len(item[1]))
        said = [f"{ordered[0][0]} in {len(ordered[0][1])} of {len(own)} groups"]
        said += [f"{word} in {len(names)} ({_names(names)})" if len(names) <= NAMED_GROUPS
                 else f"{word} in {len(names)}" for word, names in ordered[1:]]  # fmt: skip
        parts.append(f"{model} {', '.join(said)}")
    if not parts:
        return ""
    return (
        f" Against {models[0]} on the same users (95% intervals, not adjusted for the number "
        f"of groups): {'; '.join(parts)}."
    )


def best_model_sentence(rows: pd.DataFrame, metric: str, min_users: int) -> str:
    """Which model has the highest ``metric`` in which group of one grouping, in a sentence.

    ``rows``: one grouping's ``Report.ranking_by_group`` rows; ``metric``: its name for the
    reader (``"NDCG@10"``); ``min_users``: the size below which a group has no value. Ties
    name every tied model. With two groups or more compared, each model's spread across them
    follows: its highest group value minus its lowest, and its lowest over its highest (1 =
    even; n/a when every group's is 0), both, because a model that ranks better overall can
    show a larger difference and a ratio nearer 1 at once. With one group compared the models
    are not compared by this grouping. Groups without a value are counted, not compared.
    """
    grouping = str(rows["grouping"].iloc[0])
    groups = rows[rows["group"] != ALL_USERS]
    compared = groups[groups["value"].notna()]
    n_small = groups.loc[groups["value"].isna(), "group"].nunique()
    small = (
        f" {n_small} {'group' if n_small == 1 else 'groups'} with fewer than {min_users} users "
        f"with a relevant held-out rating {'is' if n_small == 1 else 'are'} not compared."
        if n_small
        else ""
    )
    overall = _best(rows[rows["group"] == ALL_USERS])
    highest = f"{_names(overall)} {'has' if len(overall) == 1 else 'have'} the highest {metric}"
    if compared_groups(rows) < 2:
        which = ("No group" if compared.empty else
                 f"Only one group ({compared['group'].iloc[0]})")  # fmt: skip
        return (
            f"{which} of {grouping} has at least {min_users} users with a relevant held-out "
            "rating, so "
            f"the models are not compared by {grouping}; over all users {highest}."
        )
    tail = _spread(compared) + _against_reference(compared) + small
    best = {group: _best(part) for group, part in compared.groupby("group", sort=False)}
    holders = {tuple(models) for models in best.values()}
    if len(holders) == 1:
        (models,) = holders
        where = f"in every {grouping} group compared ({len(best)})"
        also = " and over all users" if list(models) == overall else ""
        text = f"Highest {metric} {where}{also}: {_names(list(models))}"
        if not also:
            text += f"; over all users: {_names(overall)}"
        return text + "." + tail
    by_models: dict[tuple[str, ...], list[str]] = {}
    for group, models in best.items():
        by_models.setdefault(tuple(models), []).append(str(group))
    parts = [f"{_names(list(models))} in {_names(names)}" for models, names in by_models.items()]
    return (
        f"Highest {metric} by {grouping} group: {'; '.join(parts)} (over all users: "
        f"{_names(overall)}; values: {_values(compared)})." + tail
    )


def grouping_view(
    rows: pd.DataFrame, metric: str, min_users: int
) -> tuple[str, go.Figure | None, pd.DataFrame]:
    """Return what the report and the Bias audit page show of one grouping, in order.

    ``best_model_sentence``, the bars (``engine.charts.ranking_by_group``; ``None`` with
    fewer than two groups compared: one group alone is no comparison) and
    ``wide_ranking_table``.
    """
    fig = charts.ranking_by_group(rows, metric) if compared_groups(rows) >= 2 else None
    return best_model_sentence(rows, metric, min_users), fig, wide_ranking_table(rows)


def compared_groups(rows: pd.DataFrame) -> int:
    """How many groups of one grouping's rows have a value (are large enough to compare)."""
    groups = rows[(rows["group"] != ALL_USERS) & rows["value"].notna()]
    return int(groups["group"].nunique())


def _spread(compared: pd.DataFrame) -> str:
    """`` Gap between the best- and worst-served groups, per model, ...: SVD 0.026 (0.69)``."""
    span = compared.groupby("model", sort=False)["value"].agg(["min", "max"])
    ratios = span["min"] / span["max"].where(span["max"] > 0)
    shown = ", ".join(
        f"{m} {value_text(high - low)} ({NOT_AVAILABLE if missing(r) else f'{r:.2f}'})"
        for m, low, high, r in zip(span.index, span["min"], span["max"], ratios, strict=True)
    )
    return (
        f" Gap between the best- and worst-served groups, per model, as a difference (and as "
        f"worst over best, 1 = even): {shown}."
    )


def _best(part: pd.DataFrame) -> list[str]:
    top = part["value"].max()
    return [str(m) for m in part.loc[part["value"] == top, "model"]]


def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _values(compared: pd.DataFrame) -> str:
    return ", ".join(
        f"{group}: " + " vs ".join(f"{m} {value_text(v)}" for m, v in
                                   zip(part["model"], part["value"], strict=True))
        for group, part in compared.groupby("group", sort=False)
    )  # fmt: skip
