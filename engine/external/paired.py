r"""Paired comparison of two systems per user group, with ``engine.compare.paired``.

Both systems are judged on the same users (``compare_systems`` put them on the same
footing), so each user :math:`u` has a value under system A and under system B and the
comparison is paired, as a version comparison: per metric, the group value is the audit's
ratio of sums :math:`m_V(G) = f(\sum_{u \in G} a^V_u / \sum_{u \in G} b_u)` and the
difference :math:`d(G) = m_B(G) - m_A(G)`, with a paired bootstrap interval over users and
a sign-flip permutation p-value (``engine.compare.paired``), Holm-adjusted within one metric
by one grouping.

Per-user parts: ``ndcg``, ``recall`` (users with a relevant held-out item, :math:`b_u = 1`),
``aplt``, ``arp`` (listed users, :math:`b_u = 1`), ``rmse`` (:math:`a_u` = squared errors,
:math:`b_u` = pairs, :math:`f = \sqrt{}`) and ``mae`` over held-out pairs both predicted.
Groupings: ``overall``, activity, popularity propensity and every user attribute (from the
data the systems rest on). Groups below ``min_group_size`` users are "insufficient data".

``ROWS`` columns: ``metric, better, grouping, group, n_users, value_a, value_b,
difference, ci_low, ci_high, p_value, p_is_bound, p_adjusted, verdict`` (``B better``,
``B worse``: significant after Holm at ``alpha``; ``no significant difference``;
``insufficient data``; for ``ndcg`` and ``recall``, ``not interpretable: ...`` when either
system's lists hold none of its users' held-out ratings, so that its utility is 0 by
construction: ``SystemsComparison.warnings``).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from engine.audit import measures
from engine.audit.groups import (
    ACTIVITY,
    DERIVED,
    LONG_TAIL,
    PROPENSITY,
    activity_groups,
    item_popularity_groups,
    propensity_groups,
    user_attribute_groups,
)
from engine.audit.stats import holm, identity, is_floor
from engine.compare.paired import (
    paired_bootstrap_ci,
    paired_difference,
    paired_permutation_p,
)
from engine.compare.text import MISSING, difference_text, interval_text, value_text
from engine.errors import ConfigError
from engine.external.audit import SystemAudit
from engine.external.systems import BUILT_IN_SVD, SystemsComparison

OVERALL = "overall"
ROWS = ["metric", "better", "grouping", "group", "n_users", "value_a", "value_b", "difference",
        "ci_low", "ci_high", "p_value", "p_is_bound", "p_adjusted", "verdict"]  # fmt: skip
BETTER = {"ndcg": "higher", "recall": "higher", "aplt": "higher", "arp": "lower",
          "rmse": "lower", "mae": "lower"}  # fmt: skip
#: Metrics judged on held-out ratings in the lists (the utility check applies to them).
UTILITY = ("ndcg", "recall")
#: Start of the verdict of a utility row of a system that cannot score on utility.
NOT_INTERPRETABLE = "not interpretable"


def _parts(audit: SystemAudit, comparison: SystemsComparison) -> dict[str, pd.DataFrame]:
    """Per-user ``a, b`` of each metric (index ``user_id``)."""
    out: dict[str, pd.DataFrame] = {}
    ranking = audit.ranking.set_index("user_id")
    for metric in ("ndcg", "recall"):
        if len(ranking):
            out[metric] = pd.DataFrame({"a": ranking[metric], "b": 1.0})
    lists = audit.lists
    if len(lists):
        popularity = comparison.heldout.train.ratings["item_id"].value_counts()
        long_tail = item_popularity_groups(popularity)[LONG_TAIL]
        out["aplt"] = pd.DataFrame({"a": measures.aplt(lists, long_tail), "b": 1.0})
        out["arp"] = pd.DataFrame({"a": measures.arp(lists, popularity), "b": 1.0})
    acc = audit.accuracy
    if len(acc):
        error = acc["prediction"] - acc["rating"]
        frame = pd.DataFrame({"user_id": acc["user_id"], "se": error**2, "ae": error.abs()})
        sums = frame.groupby("user_id").agg(se=("se", "sum"), ae=("ae", "sum"),
                                            n=("se", "size"))  # fmt: skip
        out["rmse"] = pd.DataFrame({"a": sums["se"], "b": sums["n"].astype(float)})
        out["mae"] = pd.DataFrame({"a": sums["ae"], "b": sums["n"].astype(float)})
    return out


def user_groupings(comparison: SystemsComparison) -> dict[str, pd.Series]:
    """``overall``, user attributes, activity and propensity labels of the data's users."""
    data = comparison.heldout.train
    ratings = data.ratings
    popularity = ratings["item_id"].value_counts()
    profile = ratings.assign(pop=popularity.reindex(ratings["item_id"]).to_numpy()).groupby(
        "user_id").agg(n=("rating", "size"), mean_pop=("pop", "mean"))  # fmt: skip
    config = comparison.config
    attributes = None if config.user_attributes is None else list(config.user_attributes)
    groupings, _ = user_attribute_groups(data.users, profile.index.to_numpy(), attributes,
                                         config.max_groups, reserved=DERIVED)  # fmt: skip
    groupings = {OVERALL: pd.Series(OVERALL, index=profile.index), **groupings}
    groupings[ACTIVITY] = activity_groups(profile["n"])
    groupings[PROPENSITY] = propensity_groups(profile["mean_pop"])
    return groupings


def compare_pair(comparison: SystemsComparison, a: str, b: str) -> pd.DataFrame:
    """Paired rows (``ROWS``) of system ``b`` against system ``a`` (module docstring).

    Raises
    ------
    ConfigError
        ``a`` or ``b`` is not a compared system, or they are the same.
    """
    names = comparison.names
    unknown = [n for n in (a, b) if n not in names]
    if unknown or a == b:
        raise ConfigError(
            f"Choose two different systems among {', '.join(names)} to compare"
            + (f" ({', '.join(map(repr, unknown))} is not one)." if unknown else ".")
        )
    config = comparison.config
    parts_a = _parts(comparison.audits[a], comparison)
    parts_b = _parts(comparison.audits[b], comparison)
    groupings = user_groupings(comparison)
    rows = []
    for metric in [m for m in BETTER if m in parts_a and m in parts_b]:
        users = parts_a[metric].index.intersection(parts_b[metric].index)
        pa, pb = parts_a[metric].loc[users], parts_b[metric].loc[users]
        transform = np.sqrt if metric == "rmse" else identity
        for grouping, labels in groupings.items():
            block = []
            groups = labels.reindex(users)
            for group in sorted(groups.dropna().unique(), key=str):
                inside = (groups == group).to_numpy()
                rng = np.random.default_rng([config.seed, len(rows)])
                a_a, a_b = pa["a"].to_numpy()[inside], pb["a"].to_numpy()[inside]
                den = pa["b"].to_numpy()[inside]
                row = {"metric": metric, "better": BETTER[metric], "grouping": grouping,
                       "group": group, "n_users": int(inside.sum())}  # fmt: skip
                if inside.sum() < config.min_group_size:
                    row.update(value_a=np.nan, value_b=np.nan, difference=np.nan,
                               ci_low=np.nan, ci_high=np.nan, p_value=np.nan,
                               p_is_bound=False, verdict="insufficient data")  # fmt: skip
                else:
                    value_a, value_b, diff = paired_difference(a_a, a_b, den, transform)
                    low, high = paired_bootstrap_ci(a_a, a_b, den, transform,
                                                    config.bootstrap, rng)  # fmt: skip
                    p = paired_permutation_p(a_a, a_b, den, transform, config.permutations, rng)
                    row.update(value_a=value_a, value_b=value_b, difference=diff, ci_low=low,
                               ci_high=high, p_value=p,
                               p_is_bound=bool(np.isfinite(p) and is_floor(p, config.permutations)),
                               verdict="")  # fmt: skip
                block.append(row)
            adjusted = holm(np.array([r["p_value"] for r in block], float))
            blind = [n for n in (a, b) if metric in UTILITY and comparison.utility_blind(n)]
            for row, p_adj in zip(block, adjusted, strict=True):
                row["p_adjusted"] = p_adj
                if row["verdict"] == "" and blind:
                    row["verdict"] = NOT_INTERPRETABLE + _blind_reason(blind)
                elif row["verdict"] == "":
                    row["verdict"] = _verdict(row, config.alpha)
            rows += block
    return pd.DataFrame(rows, columns=ROWS)


def _blind_reason(names: list[str]) -> str:
    return f" ({' and '.join(names)}: no listed item is among the users' held-out ratings)"


def _verdict(row: dict, alpha: float) -> str:
    if not (np.isfinite(row["p_adjusted"]) and row["p_adjusted"] < alpha):
        return "no significant difference"
    higher = row["difference"] > 0
    return "B better" if higher == (row["better"] == "higher") else "B worse"


def pair_sentences(rows: pd.DataFrame, a: str, b: str) -> list[str]:
    """One sentence per metric: the overall difference, and the groups where B differs."""
    out = []
    for metric, block in rows.groupby("metric", sort=False):
        overall = block[block["grouping"] == OVERALL]
        if overall.empty or overall.iloc[0]["verdict"] == "insufficient data":
            continue
        head = overall.iloc[0]
        if str(head["verdict"]).startswith(NOT_INTERPRETABLE):
            out.append(
                f"{metric}: {a} {head['value_a']:.3f}, {b} {head['value_b']:.3f}: no verdict, "
                f"{head['verdict']}; its utility of 0 says nothing about its quality."
            )
            continue
        found = block[(block["grouping"] != OVERALL)
                      & block["verdict"].isin(["B better", "B worse"])]  # fmt: skip
        verdict = str(head["verdict"]).replace("B ", f"{b} ")
        text = (f"{metric}: {a} {head['value_a']:.3f}, {b} {head['value_b']:.3f} "
                f"(difference {head['difference']:+.3f}; {verdict} overall")  # fmt: skip
        if len(found):
            named = ", ".join(f"{r.grouping} = {r.group} ({r.verdict.replace('B ', '')})"
                              for r in found.head(3).itertuples())  # fmt: skip
            text += f"; significant in {named}"
        out.append(text + ").")
    return out


def with_pairs(comparison: SystemsComparison, reference: str | None = None) -> SystemsComparison:
    """Return ``comparison`` with the paired sentences of each other system vs ``reference``.

    ``reference`` defaults to the built-in SVD; ``pairs`` maps ``"B vs A"`` to
    ``pair_sentences`` of ``compare_pair(comparison, A, B)``.
    """
    a = reference or BUILT_IN_SVD
    pairs = {}
    for b in comparison.names:
        if b != a:
            pairs[f"{b} vs {a}"] = pair_sentences(compare_pair(comparison, a, b), a, b)
    return replace(comparison, pairs=pairs)


def paired_display(rows: pd.DataFrame, a: str, b: str) -> pd.DataFrame:
    """Return the paired rows as shown to a reader: every cell text, systems called by name.

    Values as 4 significant figures, differences and their interval signed with 4 decimals
    (``engine.compare.text``, as the Compare page); p-values with
    ``engine.audit.stats.format_p_value`` (a permutation floor as ``< 0.0005``); a missing
    value as ``—``; no ``p_is_bound`` column; verdicts and headers name ``a`` and ``b``.
    """
    from engine.audit.stats import format_p_value

    def p_text(p: object, bound: object) -> str:
        text = format_p_value(float(p), bool(bound)) if p is not None and pd.notna(p) else ""
        return text or "—"

    out = pd.DataFrame({
        "metric": rows["metric"].astype(str),
        "better": rows["better"].astype(str) + " is better",
        "grouping": rows["grouping"].astype(str),
        "group": rows["group"].astype(str),
        "users": [f"{int(n):,}" for n in rows["n_users"]],
        a: [value_text(v) or MISSING for v in rows["value_a"]],
        b: [value_text(v) or MISSING for v in rows["value_b"]],
        f"{b} − {a}": [difference_text(v) or MISSING for v in rows["difference"]],
        "95% interval": [interval_text(lo, hi) or MISSING
                         for lo, hi in zip(rows["ci_low"], rows["ci_high"], strict=True)],
        "p": [p_text(p, bound) for p, bound in zip(rows["p_value"], rows["p_is_bound"],
                                                    strict=True)],
        "p (Holm)": [p_text(p, bound) for p, bound in zip(rows["p_adjusted"], rows["p_is_bound"],
                                                           strict=True)],
        "verdict": [str(v).replace("B better", f"{b} better").replace("B worse", f"{b} worse")
                    for v in rows["verdict"]],
    })  # fmt: skip
    return out
