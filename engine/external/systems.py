"""Every system side by side: external ones, the built-in SVD and popularity, same footing.

``compare_systems`` judges every system on the same held-out ratings (``HeldOut``) and the
same users:

* The built-in SVD is trained on ``HeldOut.train`` (what the lists rest on) with the
  analysis's model settings; its lists are ``recommend_all(svd, k)`` (scores = unclipped
  predictions) and its predictions those of the held-out pairs whose user and item it knows.
  Popularity ranks items by their number of ratings in ``HeldOut.train`` (no predictions).
* Same users: every system's lists are cut to the users listed by *every* system with
  lists (after leaving out users and items outside ``HeldOut.train``); accuracy to the
  held-out pairs predicted by every system with predictions. What each system lost is noted.
* Each system is then audited with the built-in audit (``engine.external.audit``), so the
  side-by-side ``table`` and each ``audits[name].result`` hold the same families,
  statistics, tiers and minimum sizes as the built-in audit.
* External systems with scores get a surrogate (``engine.external.surrogate``).

``table`` columns (one row per system; NaN where a system has no value): ``system, kind``
(``built-in`` / ``external``), ``n_users`` (users with an audited list), ``n_users_ranked``
(the users NDCG and recall average over: listed users with a relevant held-out rating),
``n_pairs`` (held-out pairs predicted), ``ndcg, recall`` (mean over ``n_users_ranked``,
higher = better), ``rmse, mae`` (lower = better), ``aplt`` (mean long-tail share of
lists, higher = less popularity bias), ``arp`` (mean popularity of listed items),
``long_tail_exposure`` (position-weighted exposure share of the long tail), ``coverage``
(share of the catalogue listed), ``gini_exposure`` (0 = equal), ``miscalibration``
(lower = better), ``flagged`` (flagged audit rows), ``surrogate_r2`` (overall R^2), then the
utility check: ``n_listed`` (audited (user, listed item) pairs), ``n_hits`` (those that are
a held-out rating of that user), ``n_relevant_hits`` (of a relevant held-out rating) and
``utility_interpretable`` (``False`` when the system's lists hold no held-out rating of
their users although some of those users have relevant ones: its NDCG and recall are 0 by
construction; ``None`` without lists or without such users).

Utility check: a system whose listed items are never among its users' held-out ratings
(typically lists built excluding every item the user ever rated, held-out period
included) cannot score on utility, whatever its quality. ``warnings`` then holds one
sentence per such system, and the paired comparison (``engine.external.paired``) gives its
utility rows no verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from engine.audit import AuditConfig, measures
from engine.audit.groups import ITEM_POPULARITY, LONG_TAIL, item_popularity_groups
from engine.external.audit import SystemAudit, audit_system
from engine.external.heldout import HeldOut
from engine.external.surrogate import Surrogate, SurrogateError, fit_surrogate
from engine.external.types import ExternalSystem
from engine.metrics import resolve_threshold
from engine.model import ModelConfig, TrainedModel, train
from engine.model.comparators import train_popularity
from engine.recommend import recommend_all

BUILT_IN_SVD = "SVD (built-in)"
BUILT_IN_POPULARITY = "Popularity (built-in)"
TABLE_COLUMNS = ["system", "kind", "n_users", "n_users_ranked", "n_pairs", "ndcg", "recall",
                 "rmse", "mae", "aplt", "arp", "long_tail_exposure", "coverage",
                 "gini_exposure", "miscalibration", "flagged", "surrogate_r2", "n_listed",
                 "n_hits", "n_relevant_hits", "utility_interpretable"]  # fmt: skip
#: Columns of the utility check (module docstring).
CHECK_COLUMNS = ["n_listed", "n_hits", "n_relevant_hits", "utility_interpretable"]


@dataclass(frozen=True)
class SystemsComparison:
    """The side by side of every system (module docstring).

    Attributes
    ----------
    heldout
        The held-out ratings and the data the systems rest on.
    audits
        ``SystemAudit`` per system name, built-ins first, in the order compared.
    table
        ``TABLE_COLUMNS``, one row per system.
    surrogates
        ``Surrogate`` per external system with scores.
    model
        The built-in SVD trained on ``heldout.train`` (the surrogates' item space).
    external
        The external systems as loaded (full lists and predictions).
    config
        The audit settings every system was audited with.
    notes
        Sentences on users and pairs left out to put the systems on the same footing.
    pairs
        Heading ("B vs A") -> sentences of the paired comparison
        (``engine.external.paired.with_pairs``); empty until computed.
    warnings
        System name -> the utility check's warning (module docstring), for each system
        whose lists cannot score on utility.
    """

    heldout: HeldOut
    audits: dict[str, SystemAudit]
    table: pd.DataFrame
    surrogates: dict[str, Surrogate]
    model: TrainedModel = field(repr=False)
    external: tuple[ExternalSystem, ...] = ()
    config: AuditConfig = field(default_factory=AuditConfig)
    notes: list[str] = field(default_factory=list)
    pairs: dict[str, list[str]] = field(default_factory=dict)
    warnings: dict[str, str] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        """System names in the order compared."""
        return list(self.audits)

    def utility_blind(self, name: str) -> bool:
        """Whether ``name``'s NDCG and recall are not interpretable (the utility check)."""
        return name in self.warnings

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: held-out ratings, load reports, the table, surrogates and notes."""
        reports = {r.name: r.to_dict() for s in self.external for r in s.load_reports}
        return {
            "heldout": self.heldout.to_dict(),
            "load_reports": list(reports.values()),
            "table": self.table.to_dict("records"),
            "surrogates": {n: s.to_dict() for n, s in self.surrogates.items()},
            "warnings": list(self.warnings.values()),
            "notes": list(self.notes),
            "pairs": dict(self.pairs),
            "flagged": {n: _flagged(a) for n, a in self.audits.items()},
        }


def _flagged(audit: SystemAudit) -> list[dict[str, Any]]:
    rows = audit.result.flagged()
    return rows[["metric", "grouping", "group", "value", "ratio"]].to_dict("records")


def built_in_systems(model: TrainedModel, heldout: HeldOut, k: int) -> list[ExternalSystem]:
    """Return the built-in SVD and popularity as systems (module docstring)."""
    svd_lists = recommend_all(model, k)
    svd_lists = svd_lists.assign(score=svd_lists["raw_prediction"])[
        ["user_id", "rank", "item_id", "score"]
    ]
    held = heldout.ratings
    inter = model.interactions
    users, items = (
        inter.user_index(held["user_id"].to_numpy()),
        inter.item_index(held["item_id"].to_numpy()),
    )
    known = (users >= 0) & (items >= 0)
    predictions = pd.DataFrame({
        "user_id": held["user_id"].to_numpy(object)[known],
        "item_id": held["item_id"].to_numpy(object)[known],
        "prediction": model.predict_pairs(users[known], items[known]),
    })  # fmt: skip
    train_ratings = heldout.train.ratings
    popularity = train_popularity(train_ratings, model.scale)
    pop_lists = recommend_all(popularity, k).assign(score=np.nan)[
        ["user_id", "rank", "item_id", "score"]
    ]
    return [
        ExternalSystem(BUILT_IN_SVD, lists=svd_lists, predictions=predictions),
        ExternalSystem(BUILT_IN_POPULARITY, lists=pop_lists),
    ]


def _same_footing(
    systems: list[ExternalSystem], heldout: HeldOut, k: int, notes: list[str]
) -> list[ExternalSystem]:
    """Cut lists to the users every system lists, predictions to the pairs every one predicts."""
    train = heldout.train.ratings
    known_users = pd.Index(pd.unique(train["user_id"]))
    known_items = pd.Index(pd.unique(train["item_id"]))
    listed = [
        set(s.lists.loc[s.lists["user_id"].isin(known_users)
                        & s.lists["item_id"].isin(known_items), "user_id"])
        for s in systems if s.lists is not None
    ]  # fmt: skip
    common_users = set.intersection(*listed) if listed else set()
    held_pairs = heldout.ratings[["user_id", "item_id"]]
    predicted = [
        pd.MultiIndex.from_frame(s.predictions[["user_id", "item_id"]].merge(held_pairs))
        for s in systems if s.predictions is not None
    ]  # fmt: skip
    common_pairs = predicted[0]
    for pairs in predicted[1:]:
        common_pairs = common_pairs.intersection(pairs)
    out = []
    for system in systems:
        lists, predictions = system.lists, system.predictions
        if lists is not None:
            keep = lists["user_id"].isin(common_users)
            lost = lists.loc[~keep & lists["user_id"].isin(known_users), "user_id"].nunique()
            if lost:
                notes.append(
                    f"{system.name}: the lists of {lost:,} users are left out because another "
                    "system has no list for them (every system is compared on the same users)."
                )
            lists = lists[keep].reset_index(drop=True)
        if predictions is not None and len(predicted) > 1:
            pairs = pd.MultiIndex.from_frame(predictions[["user_id", "item_id"]])
            on_held = pairs.isin(pd.MultiIndex.from_frame(held_pairs))
            keep = pairs.isin(common_pairs)
            if (on_held & ~keep).sum():
                notes.append(
                    f"{system.name}: {int((on_held & ~keep).sum()):,} predicted held-out pairs "
                    "are left out because another system did not predict them."
                )
            predictions = predictions[keep | ~on_held].reset_index(drop=True)
        out.append(replace(system, lists=lists, predictions=predictions))
    return out


def list_means(lists: pd.DataFrame, heldout: HeldOut) -> dict[str, float]:
    """Mean over listed users of APLT, ARP and miscalibration (``engine.audit.measures``).

    Popularity and the long tail come from ``heldout.train``; miscalibration needs item
    genres (NaN without).
    """
    if not len(lists):
        return {"aplt": np.nan, "arp": np.nan, "miscalibration": np.nan}
    data = heldout.train
    popularity = data.ratings["item_id"].value_counts()
    long_tail = item_popularity_groups(popularity)[LONG_TAIL]
    out = {
        "aplt": float(measures.aplt(lists, long_tail).mean()),
        "arp": float(measures.arp(lists, popularity).mean()),
        "miscalibration": np.nan,
    }
    if data.items is not None and "genres" in data.items:
        listed = pd.unique(lists["user_id"])
        history = data.ratings.loc[data.ratings["user_id"].isin(listed), ["user_id", "item_id"]]
        values = measures.miscalibration(history, lists, data.items["genres"]).dropna()
        out["miscalibration"] = float(values.mean()) if len(values) else np.nan
    return out


def utility_check(audit: SystemAudit, heldout: HeldOut, threshold: float) -> dict[str, Any]:
    """Return the utility check of a system's audited lists (``CHECK_COLUMNS``, module doc)."""
    lists = audit.lists
    held = heldout.ratings[["user_id", "item_id", "rating"]]
    hits = lists[["user_id", "item_id"]].merge(held, on=["user_id", "item_id"])
    n_hits = len(hits)
    interpretable = None
    if len(lists) and len(audit.ranking):
        interpretable = n_hits > 0
    return {"n_listed": len(lists), "n_hits": n_hits,
            "n_relevant_hits": int((hits["rating"] >= threshold).sum()),
            "utility_interpretable": interpretable}  # fmt: skip


def utility_warning(name: str, check: dict[str, Any], heldout: HeldOut) -> str | None:
    """Return the warning of a system whose lists cannot score on utility, else ``None``."""
    if check["utility_interpretable"] is not False:
        return None
    when = ("rated after the cut" if heldout.source == "temporal"
            else "rated in the held-out file")  # fmt: skip
    return (
        f"None of {name}'s {check['n_listed']:,} listed items is among its users' held-out "
        f"ratings: its lists cannot score on utility (were they built excluding items users "
        f"{when}?). Its NDCG and recall of 0 say nothing about its quality."
    )


def _row(
    audit: SystemAudit, kind: str, surrogate: Surrogate | None, heldout: HeldOut
) -> dict[str, Any]:
    result, ranking, acc, lists = audit.result, audit.ranking, audit.accuracy, audit.lists
    catalogue = result.catalogue.set_index("metric")["value"]
    exposure = result.metrics[(result.metrics["metric"] == "exposure_share")
                              & (result.metrics["grouping"] == ITEM_POPULARITY)
                              & (result.metrics["group"] == LONG_TAIL)]  # fmt: skip
    error = acc["prediction"] - acc["rating"]
    listed = len(lists) > 0
    return {
        "system": audit.name, "kind": kind,
        "n_users": int(lists["user_id"].nunique()), "n_users_ranked": len(ranking),
        "n_pairs": len(acc),
        "ndcg": float(ranking["ndcg"].mean()) if len(ranking) else np.nan,
        "recall": float(ranking["recall"].mean()) if len(ranking) else np.nan,
        "rmse": float(np.sqrt(np.mean(error**2))) if len(acc) else np.nan,
        "mae": float(np.mean(np.abs(error))) if len(acc) else np.nan,
        **list_means(lists, heldout),
        "long_tail_exposure": float(exposure["value"].iloc[0]) if len(exposure) else np.nan,
        "coverage": float(catalogue.get("coverage", np.nan)) if listed else np.nan,
        "gini_exposure": float(catalogue.get("gini_exposure", np.nan)) if listed else np.nan,
        "flagged": int(result.metrics["flag"].sum()),
        "surrogate_r2": surrogate.overall_r2 if surrogate is not None else np.nan,
    }  # fmt: skip


def compare_systems(
    data_heldout: HeldOut,
    systems: list[ExternalSystem],
    *,
    model_config: ModelConfig | None = None,
    config: AuditConfig | None = None,
    model: TrainedModel | None = None,
) -> SystemsComparison:
    """Audit every system side by side (module docstring).

    ``model`` is the built-in SVD trained on ``data_heldout.train`` when the caller has it
    (trained with ``model_config`` otherwise).
    """
    heldout = data_heldout
    config = config or AuditConfig()
    model = model or train(heldout.train, model_config or ModelConfig())
    k = min(config.k, model.interactions.n_items)
    notes: list[str] = list(heldout.notes)
    everyone = built_in_systems(model, heldout, k) + list(systems)
    footing = _same_footing(everyone, heldout, k, notes)
    audits = {s.name: audit_system(s, heldout, model, config) for s in footing}
    surrogates: dict[str, Surrogate] = {}
    for system in systems:
        if not system.has_scores:
            notes.append(f"{system.name}: no scores, so no surrogate explanation.")
            continue
        try:
            surrogates[system.name] = fit_surrogate(system, model, top_n=k)
        except SurrogateError as e:
            notes.append(str(e))
    builtin = {BUILT_IN_SVD, BUILT_IN_POPULARITY}
    threshold, _, _, _ = resolve_threshold(config.threshold, heldout.train.scale)
    rows, warnings = [], {}
    for name, audit in audits.items():
        check = utility_check(audit, heldout, threshold)
        row = _row(audit, "built-in" if name in builtin else "external", surrogates.get(name),
                   heldout)  # fmt: skip
        rows.append(row | check)
        warning = utility_warning(name, check, heldout)
        if warning is not None:
            warnings[name] = warning
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    table["utility_interpretable"] = table["utility_interpretable"].astype(object)
    return SystemsComparison(heldout, audits, table, surrogates, model, tuple(systems), config,
                             notes, warnings=warnings)  # fmt: skip


def _percent(value: float) -> str:
    return "n/a" if pd.isna(value) else f"{value:.1%}"


def system_summaries(comparison: SystemsComparison) -> dict[str, str]:
    """Return one or two sentences per external system (the side by side's opening).

    Utility vs the SVD and popularity, long-tail exposure, coverage, flagged rows and the
    utility check's warning.
    """
    table = comparison.table.set_index("system")
    svd = table.loc[BUILT_IN_SVD] if BUILT_IN_SVD in table.index else None
    pop = table.loc[BUILT_IN_POPULARITY] if BUILT_IN_POPULARITY in table.index else None
    out = {}
    for name in comparison.names:
        row = table.loc[name]
        if row["kind"] != "external":
            continue
        parts = []
        if pd.notna(row["ndcg"]):
            versus = "; ".join(f"{label} {other['ndcg']:.3f}" for label, other in
                               (("SVD", svd), ("popularity", pop))
                               if other is not None and pd.notna(other["ndcg"]))  # fmt: skip
            utility = (f"NDCG@k {row['ndcg']:.3f} over {int(row['n_users_ranked']):,} users"
                       + (f" ({versus})" if versus else ""))  # fmt: skip
            if comparison.utility_blind(name):
                utility += ", not interpretable (see the warning)"
            parts.append(utility)
        if pd.notna(row["rmse"]):
            parts.append(
                f"RMSE {row['rmse']:.3f}"
                + (f" (SVD {svd['rmse']:.3f})" if svd is not None and pd.notna(svd["rmse"]) else "")
            )
        if pd.notna(row["long_tail_exposure"]):
            parts.append(
                f"long-tail exposure {_percent(row['long_tail_exposure'])}"
                + (f" (SVD {_percent(svd['long_tail_exposure'])})" if svd is not None else "")
            )
        if pd.notna(row["coverage"]):
            parts.append(
                f"coverage {_percent(row['coverage'])} of the catalogue"
                + (f" (SVD {_percent(svd['coverage'])})" if svd is not None else "")
            )
        if int(row["n_users"]) == 0:
            parts.append("no lists, so no utility or exposure")
        text = f"{name}: " + "; ".join(parts) + f". {int(row['flagged']):,} flagged audit rows"
        text += f" (SVD {int(svd['flagged']):,})." if svd is not None else "."
        if name in comparison.warnings:
            text += " Warning: " + comparison.warnings[name]
        out[name] = text
    return out
