r"""Popularity, calibration and exposure measures of top-N lists, each with its definition.

Inputs are tidy lists (``user_id, rank, item_id``), item popularity
:math:`\phi(i)` = number of training ratings of ``i``, and ``n_users``.

Per user ``u`` with list :math:`L_u` (all in the direction stated; references in
Abdollahpouri et al. 2019, "Managing popularity bias in recommender systems with
personalized re-ranking", and Elliot's metric catalogue):

* ARP (average recommendation popularity) = :math:`\frac{1}{|L_u|}\sum_{i \in L_u}\phi(i)`;
  lower = less popularity bias.
* APLT = share of :math:`L_u` in the long tail; ACLT = their count; higher = more long tail.
* Novelty = :math:`\frac{1}{|L_u|}\sum_{i\in L_u} -\log_2(\phi(i)/n_\text{users})` bits; higher
  = less popular (more novel) items.
* Miscalibration (Steck, "Calibrated recommendations", RecSys 2018):
  :math:`C_{KL}(p, q) = \sum_g p(g|u) \log_2 \frac{p(g|u)}{\tilde q(g|u)}`,
  :math:`\tilde q = (1-\alpha) q + \alpha p`, :math:`\alpha = 0.01`; ``p`` is the genre mix of the
  user's history, ``q`` of the list, each item spreading weight 1 equally over its genres.
  0 = perfectly calibrated, higher = worse.

Catalogue level (one value per model):

* Coverage = share of the catalogue in at least one list; higher = more items exposed.
* Gini of exposure over the *whole* catalogue (unrecommended items count with 0):
  :math:`G = \frac{\sum_j (2j - n - 1) e_{(j)}}{n \sum_j e_{(j)}}` with counts sorted
  ascending; 0 = every item equally exposed, 1 = one item gets everything.
* PopRSP / PopREO (Zhu et al., "Measuring and mitigating item under-recommendation bias",
  SIGIR 2020) over item groups :math:`g`: RSP uses
  :math:`P(g) = \frac{\sum_u |L_u \cap g|}{\sum_u |g \setminus \text{train}_u|}`, REO uses
  :math:`P(g) = \frac{\sum_u |L_u \cap g \cap \text{test}^+_u|}{\sum_u |g \cap \text{test}^+_u|}`;
  the value is :math:`\operatorname{std}(P)/\operatorname{mean}(P)` (population std); 0 = parity.
* Exposure share of an item group = :math:`\frac{\sum_u \sum_{i \in L_u \cap g} 1/\log_2(1 +
  \text{rank}_i)}{\sum_u \sum_{i \in L_u} 1/\log_2(1 + \text{rank}_i)}` (position-weighted),
  compared with the group's catalogue share and interaction share.
* Bias disparity (Tsintzou et al., 2018) for user group :math:`G` and item category
  :math:`C`: :math:`B(G,C) = P(C|G)/P(C)` with :math:`P(C|G)` the share of the group's
  items (ratings or recommendations) in :math:`C` and :math:`P(C)` the category's catalogue
  share; :math:`BD = (B_R - B_S)/B_S`: > 0 the recommender amplifies the group's preference
  for the category, < 0 dampens it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

ALPHA = 0.01


def position_weights(ranks: pd.Series) -> np.ndarray:
    """``1 / log2(1 + rank)`` (rank 1 -> 1)."""
    return 1 / np.log2(1 + ranks.to_numpy(float))


def per_user_mean(lists: pd.DataFrame, values: pd.Series) -> pd.Series:
    """Mean of ``values[item]`` over each user's list (index ``user_id``)."""
    mapped = values.reindex(lists["item_id"]).to_numpy(float)
    return pd.Series(mapped, index=lists.index).groupby(lists["user_id"]).mean()


def arp(lists: pd.DataFrame, popularity: pd.Series) -> pd.Series:
    """Average recommendation popularity per user (module docstring)."""
    return per_user_mean(lists, popularity)


def aplt(lists: pd.DataFrame, long_tail: pd.Series) -> pd.Series:
    """Share of each user's list in the long tail."""
    return per_user_mean(lists, long_tail.astype(float))


def aclt(lists: pd.DataFrame, long_tail: pd.Series) -> pd.Series:
    """Count the long-tail items in each user's list."""
    flags = long_tail.astype(float).reindex(lists["item_id"]).to_numpy()
    return pd.Series(flags, index=lists.index).groupby(lists["user_id"]).sum()


def novelty(lists: pd.DataFrame, popularity: pd.Series, n_users: int) -> pd.Series:
    """Mean self-information ``-log2(phi(i) / n_users)`` of each user's list, in bits."""
    bits = -np.log2(popularity.clip(lower=1) / n_users)
    return per_user_mean(lists, bits)


def coverage(lists: pd.DataFrame, n_items: int) -> float:
    """Share of the catalogue recommended to at least one user."""
    return lists["item_id"].nunique() / n_items


def gini(counts: np.ndarray) -> float:
    """Gini coefficient of non-negative counts (0 = equal; see module docstring)."""
    x = np.sort(np.asarray(counts, float))
    n, total = len(x), x.sum()
    if n == 0 or total == 0:
        return 0.0
    j = np.arange(1, n + 1)
    return float(((2 * j - n - 1) * x).sum() / (n * total))


def exposure_gini(lists: pd.DataFrame, catalogue: np.ndarray) -> float:
    """Gini of how often each catalogue item is recommended (unrecommended items count)."""
    counts = lists["item_id"].value_counts().reindex(catalogue, fill_value=0)
    return gini(counts.to_numpy())


def _std_over_mean(p: np.ndarray) -> float:
    p = p[np.isfinite(p)]
    return float(np.std(p) / np.mean(p)) if len(p) and np.mean(p) > 0 else float("nan")


def rsp(lists: pd.DataFrame, membership: pd.DataFrame, train: pd.DataFrame) -> float:
    """Ranking-based statistical parity across item groups (std/mean of ``P(g)``)."""
    users = lists["user_id"].unique()
    # the listed users' ratings per item: one pass over the ratings, not one per group
    rated = train.loc[train["user_id"].isin(users), "item_id"].value_counts()
    return rsp_of_counts(lists, membership, rated)


def rsp_of_counts(lists: pd.DataFrame, membership: pd.DataFrame, rated: pd.Series) -> float:
    """``rsp`` with ``rated``: per item (index ``item_id``), the listed users' ratings.

    ``P(g) = |listed items in g| / (|listed users| x |g| - ratings of g by listed users)``
    (the candidate pairs: items a listed user has not rated).
    """
    n_users = lists["user_id"].nunique()
    p = []
    for group in membership.columns:
        members = membership.index[membership[group]]
        recommended = lists["item_id"].isin(members).sum()
        candidates = n_users * len(members) - int(rated.reindex(members).sum())
        p.append(recommended / candidates if candidates > 0 else np.nan)
    return _std_over_mean(np.array(p, float))


def reo(lists: pd.DataFrame, membership: pd.DataFrame, relevant: pd.DataFrame) -> float:
    """Ranking-based equal opportunity across item groups (std/mean of ``P(g)``).

    ``relevant`` holds the held-out relevant pairs (``user_id, item_id``) of the users
    whose lists are given; ``lists`` must come from the same folds.
    ``P(g) = |hits in g| / |relevant pairs in g|`` (``reo_of_hits``).
    """
    return reo_of_hits(*held_out_hits(lists, relevant), membership)


def held_out_hits(lists: pd.DataFrame, relevant: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Return the items of the listed pairs that are relevant held-out pairs, and of those.

    Computed once per fold, then counted per item group (``reo_of_counts``) for every
    grouping (the join is the costly part: millions of pairs a fold at 25M ratings).
    """
    keys = ["user_id", "item_id"]
    hits = lists[keys].merge(relevant[keys], on=keys)
    return hits["item_id"], relevant["item_id"]


def reo_of_hits(hits: pd.Series, relevant: pd.Series, membership: pd.DataFrame) -> float:
    """``reo`` from the hit items and relevant items of ``held_out_hits``."""
    return reo_of_counts(hits.value_counts(), relevant.value_counts(), membership)


def reo_of_counts(hits: pd.Series, relevant: pd.Series, membership: pd.DataFrame) -> float:
    """``reo`` from per-item counts (index ``item_id``) of hits and of relevant pairs.

    ``P(g) = sum_{i in g} hits_i / sum_{i in g} relevant_i`` (NaN for a group without a
    relevant pair), then std/mean over the groups (NaN when no group has one).
    """
    p = []
    for group in membership.columns:
        members = membership.index[membership[group].to_numpy(bool)]
        denominator = relevant.reindex(members).sum()
        p.append(hits.reindex(members).sum() / denominator if denominator else np.nan)
    return _std_over_mean(np.array(p, float))


def genre_distribution(pairs: pd.DataFrame, genres: pd.Series) -> pd.DataFrame:
    """Per user genre mix ``p(g|u)``: each item spreads weight 1 equally over its genres.

    ``pairs`` has ``user_id, item_id``; ``genres`` maps item ids to tuples. Returns a
    users x genres frame whose rows sum to 1 (users without genres are absent).
    """
    exploded = pairs[["user_id", "item_id"]].assign(
        genre=genres.reindex(pairs["item_id"]).to_numpy()
    )
    has_genre = exploded["genre"].map(lambda g: isinstance(g, tuple) and len(g) > 0)
    exploded = exploded[has_genre.astype(bool)]
    if exploded.empty:
        return pd.DataFrame(index=pd.Index([], name="user_id", dtype=object), dtype=float)
    exploded["weight"] = 1 / exploded["genre"].map(len)
    exploded = exploded.explode("genre")
    table = exploded.pivot_table(
        index="user_id", columns="genre", values="weight", aggfunc="sum", fill_value=0.0
    )
    return table.div(table.sum(axis=1), axis=0)


def miscalibration(
    history: pd.DataFrame, lists: pd.DataFrame, genres: pd.Series, alpha: float = ALPHA
) -> pd.Series:
    """Steck's ``C_KL(p || (1 - alpha) q + alpha p)`` per user, log base 2 (module docstring)."""
    return miscalibration_of(genre_distribution(history, genres), lists, genres, alpha)


def miscalibration_of(
    p: pd.DataFrame, lists: pd.DataFrame, genres: pd.Series, alpha: float = ALPHA
) -> pd.Series:
    """``miscalibration`` from the users' history genre mix ``p`` (``genre_distribution``).

    One value per user of ``p`` (index ``user_id``, columns genres, rows summing to 1).
    """
    q = genre_distribution(lists, genres).reindex(index=p.index, columns=p.columns, fill_value=0)
    q_smooth = (1 - alpha) * q + alpha * p
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log2(p / q_smooth), 0.0)
    return pd.Series(terms.sum(axis=1), index=p.index)


def weight_by_user(
    users: pd.Series, items: pd.Series, weights: np.ndarray, membership: pd.DataFrame
) -> tuple[np.ndarray, pd.DataFrame]:
    """Each user's total weight and weight per item group (for shares and their bootstrap).

    Returns ``(total, by_group)``: ``total[u]`` sums ``weights`` over user ``u``'s rows,
    ``by_group`` (users x groups) over the rows whose item is in the group.
    """
    codes, uniques = pd.factorize(users)
    total = np.bincount(codes, weights=weights, minlength=len(uniques))
    by_group = pd.DataFrame(
        {
            group: np.bincount(
                codes,
                weights=weights * items.isin(membership.index[membership[group]]).to_numpy(),
                minlength=len(uniques),
            )
            for group in membership.columns
        },
        index=uniques,
    )
    return total, by_group


def exposure_shares(lists: pd.DataFrame, membership: pd.DataFrame) -> pd.Series:
    """Position-weighted exposure share of each item group (module docstring)."""
    total, by_group = weight_by_user(
        lists["user_id"], lists["item_id"], position_weights(lists["rank"]), membership
    )
    return by_group.sum() / total.sum()


def bias_disparity(
    labels: pd.Series, history: pd.DataFrame, lists: pd.DataFrame, membership: pd.DataFrame
) -> pd.DataFrame:
    """``BD(G, C)`` for every user group G (``labels``) and item category C (``membership``).

    Returns columns ``user_group, category, b_input, b_recommended, bias_disparity``.
    """
    return bias_disparity_of_counts(category_counts(labels, history, membership), labels,
                                    lists, membership)  # fmt: skip


def category_counts(
    labels: pd.Series, history: pd.DataFrame, membership: pd.DataFrame
) -> pd.DataFrame:
    """Per user group (index, sorted), its users' ratings ``n`` and those in each category.

    Columns ``n`` and one per column of ``membership`` (an item in several categories counts
    in each).
    """
    rows = {}
    for group in sorted(labels.unique()):
        inputs = history[history["user_id"].isin(labels.index[labels == group])]["item_id"]
        rows[group] = {"n": len(inputs)} | {
            category: int(inputs.isin(membership.index[membership[category]]).sum())
            for category in membership.columns
        }
    return pd.DataFrame.from_dict(rows, orient="index", columns=["n", *membership.columns])


def bias_disparity_of_counts(
    counts: pd.DataFrame, labels: pd.Series, lists: pd.DataFrame, membership: pd.DataFrame
) -> pd.DataFrame:
    """``bias_disparity`` with the input side as ``category_counts``' table.

    ``b_input = (ratings of G in C / ratings of G) / catalogue share of C``; ``b_recommended``
    the same over G's lists; ``BD = (b_recommended - b_input) / b_input`` (NaN when
    ``b_input`` is not positive).
    """
    catalogue_share = membership.mean()
    rows = []
    for group in sorted(labels.unique()):
        recs = lists[lists["user_id"].isin(labels.index[labels == group])]["item_id"]
        n = counts.loc[group, "n"] if group in counts.index else 0
        for category in membership.columns:
            in_category = membership.index[membership[category]]
            share_in = counts.loc[group, category] / n if n else np.nan
            share_rec = recs.isin(in_category).mean() if len(recs) else np.nan
            b_in = share_in / catalogue_share[category]
            b_rec = share_rec / catalogue_share[category]
            rows.append((group, category, b_in, b_rec,
                         (b_rec - b_in) / b_in if b_in > 0 else np.nan))  # fmt: skip
    return pd.DataFrame(
        rows, columns=["user_group", "category", "b_input", "b_recommended", "bias_disparity"]
    )
