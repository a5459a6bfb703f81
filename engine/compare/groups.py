"""The groups of a version comparison: the audit's groupings over the comparison's population.

The population (``engine.compare.measures``) holds users and items version A never saw
(e.g. the users an update folded in), so every grouping says where they go:

* User attributes (the audit's ``user_attribute_groups``): from the users table, for A's
  training users and the population's other users alike: an attribute belongs to the
  user, not to A's training, so a user new to A is grouped by it like any other.
* Activity and popularity propensity (``activity_groups``, ``propensity_groups``): derived
  from A's training ratings, as in the audit, for the users A has a training rating of.
  They are undefined for a user A never saw; such users form the stated group
  ``NEW_TO_A`` ("new to A") of both derived groupings, so every grouping covers the whole
  population and "new to A" gets its own row and verdict.
* Known to (``KNOWN_TO``, the comparison's own grouping): which versions have a training
  rating of the user: "A and B", "B only" (e.g. the users an update folded in: where an
  update's main effect shows), "A only" and "neither" (both predict them by their
  fallback; identical fallbacks give them no difference).
* Item attributes (``item_attribute_groups``): from the items table, for A's items, B's
  items and the window's items alike.
* Item popularity (``item_popularity_groups``: short head / long tail by A's training
  counts) for the items A has a training rating of; the other items of B or of the window
  form the group ``NEW_TO_A`` (present only when there is such an item).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.audit.config import AuditConfig
from engine.audit.groups import (
    ACTIVITY,
    DERIVED,
    ITEM_POPULARITY,
    PROPENSITY,
    activity_groups,
    item_attribute_groups,
    item_popularity_groups,
    propensity_groups,
    user_attribute_groups,
)
from engine.model.svd import TrainedModel

#: The group of the derived groupings holding the users (items) A has no training rating of.
NEW_TO_A = "new to A"
#: The user grouping by which versions have a training rating of the user.
KNOWN_TO = "known to"
#: (new to A, new to B) -> group of ``KNOWN_TO``.
KNOWN_TO_GROUPS = {(False, False): "A and B", (True, False): "B only",
                   (False, True): "A only", (True, True): "neither"}  # fmt: skip


def _ordered(known: np.ndarray, others: pd.Index | np.ndarray) -> pd.Index:
    """``known`` ids, then the ids of ``others`` not among them (first seen order)."""
    known_index = pd.Index(known, dtype=object)
    rest = pd.Index(pd.unique(np.asarray(others, dtype=object)), dtype=object)
    return known_index.append(rest[~rest.isin(known_index)])


def user_groupings(
    model_a: TrainedModel,
    users_table: pd.DataFrame | None,
    population: pd.DataFrame,
    config: AuditConfig,
) -> tuple[dict[str, pd.Series], list[str]]:
    """Label Series (index ``user_id``) per user grouping of A's users and ``population``.

    ``population``: the per-user table of ``engine.compare.measures.user_values`` (index
    ``user_id``; ``new_to_a``, ``new_to_b``). Returns the groupings and their notes
    (module docstring).
    """
    inter = model_a.interactions
    sizes_all = inter.counts_per_user()
    trained = sizes_all > 0
    ids = pd.Index(inter.user_ids[trained], name="user_id", dtype=object)
    everyone = _ordered(ids.to_numpy(), population.index).rename("user_id")
    sizes = pd.Series(sizes_all[trained], index=ids, dtype=float)
    mean_pop = pd.Series(inter.popularity_sums()[trained], index=ids) / sizes
    attributes = None if config.user_attributes is None else list(config.user_attributes)
    groupings, notes = user_attribute_groups(
        users_table,
        everyone.to_numpy(),
        attributes,
        config.max_groups,
        reserved=(*DERIVED, KNOWN_TO),
    )
    groupings = {name: s.set_axis(everyone) for name, s in groupings.items()}
    pairs = zip(population["new_to_a"], population["new_to_b"], strict=True)
    known_to = [KNOWN_TO_GROUPS[bool(a), bool(b)] for a, b in pairs]
    groupings[KNOWN_TO] = pd.Series(known_to, index=population.index, name=KNOWN_TO, dtype=object)
    for name, labels in ((ACTIVITY, activity_groups(sizes)),
                         (PROPENSITY, propensity_groups(mean_pop))):  # fmt: skip
        groupings[name] = labels.reindex(everyone).fillna(NEW_TO_A).rename(name)
    return groupings, notes


def item_groupings(
    model_a: TrainedModel,
    model_b: TrainedModel,
    items_table: pd.DataFrame | None,
    window_items: pd.Series | np.ndarray,
    config: AuditConfig,
) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """Membership tables (index ``item_id``) per item grouping, and notes (module docstring).

    Items: A's, then B's and the window's others, so B's lists of items new to A are
    grouped too.
    """
    inter = model_a.interactions
    counts_all = inter.counts_per_item()
    trained = counts_all > 0
    known = np.asarray(inter.item_ids, dtype=object)[trained]
    b_items = model_b.interactions.item_ids[model_b.interactions.counts_per_item() > 0]
    others = np.concatenate([np.asarray(inter.item_ids, dtype=object)[~trained],
                             np.asarray(b_items, dtype=object),
                             np.asarray(window_items, dtype=object)])  # fmt: skip
    everyone = _ordered(known, others)
    attributes = None if config.item_attributes is None else list(config.item_attributes)
    groupings, notes = item_attribute_groups(
        items_table, everyone.to_numpy(), attributes, config.max_groups, reserved=DERIVED
    )
    counts = pd.Series(counts_all[trained], index=pd.Index(known, dtype=object))
    popularity = item_popularity_groups(counts).reindex(everyone, fill_value=False)
    new = ~everyone.isin(pd.Index(known, dtype=object))
    if new.any():
        popularity[NEW_TO_A] = new
    groupings[ITEM_POPULARITY] = popularity.astype(bool)
    return {n: g.set_axis(g.index.astype(object)) for n, g in groupings.items()}, notes
