"""The comparison report: two versions scored on one window, as HTML, JSON, CSV and PDF.

``describe_versions`` says what was compared (A, B and the window: names, fingerprints,
sizes, the dates of the last training rating and of the window, and whether B is A
updated); ``render_comparison`` renders an ``engine.compare.Comparison`` with it to
``{file name: bytes}`` (``COMPARISON_FILES``), written by ``engine.report.write.write_files``.
The formats are chosen with ``engine.report.write.parse_formats`` (``html,json,csv,pdf``).

* JSON (``COMPARISON_SCHEMA`` = "1.3"): ``kind``, ``schema_version``, ``title``,
  ``created``, ``compared``, ``sentences``, ``counts``, ``rows`` (every row of
  ``engine.compare.ROW_COLUMNS``; missing values are ``null``), ``method``, ``notes`` and
  ``settings``. ``sentences``, ``counts``, ``notes`` and ``settings`` are
  ``Comparison.to_dict()``'s. 1.1 (the population holds users and items a version does
  not know, predicted by its fallback) added to ``counts``: ``n_fallback_a``,
  ``n_fallback_b``, ``fallback_a``, ``fallback_b`` (by reason), ``users_new_to_a``,
  ``users_new_to_b``, ``users_ndcg_fallback_a``, ``users_ndcg_fallback_b``; the
  ``pairs_excluded`` reasons are only "not after the training data" and "pair in a
  version's training data". 1.2 added the rows' ``catalogue_share`` (exposure rows: the
  group's share of the grouping's items; groups of a multi-valued attribute overlap),
  the rows of ``grouping`` "users known to A or B" (RMSE and NDCG@k over the users at
  least one version knows, when some users are known to neither) and, in ``counts``,
  ``users_known``, ``pairs_known``, ``users_neither``, ``pairs_neither``. 1.3 added
  ``compared.a.model`` and ``compared.b.model``: the engine and settings (``model_text``),
  since versions of two engines (a run kept in Spark, a Surprise analysis) can be compared.
* CSV: the rows, one per (metric, grouping, group), formula-injection safe (as the report).
* HTML (``engine.report.comparison_html``): self-contained (plotly.js inlined), every data
  string escaped; PDF: that HTML printed by headless Chromium (``engine.report.pdf``).

Aggregates only: per-group values, counts and dates; no user id and no rating.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from engine.report.formats import _plain, neutralise_formula
from engine.report.write import parse_formats

if TYPE_CHECKING:
    from engine.compare import Comparison
    from engine.compare.versions import Version
    from engine.data.types import RatingData
    from engine.model.config import ModelConfig

COMPARISON_SCHEMA = "1.3"
#: format -> file name of the comparison report.
COMPARISON_FILES: dict[str, str] = {
    "html": "comparison.html",
    "json": "comparison.json",
    "csv": "comparison.csv",
    "pdf": "comparison.pdf",
}


def _date(seconds: float | None) -> str | None:
    """``seconds`` since the Unix epoch as an ISO 8601 UTC time; None when unknown."""
    if seconds is None or pd.isna(seconds):
        return None
    return datetime.fromtimestamp(float(seconds), UTC).isoformat(timespec="seconds")


def model_text(config: ModelConfig) -> str:
    """Return the engine and main settings of a version's SVD.

    E.g. "SVD (spark engine), 20 factors, 20 epochs" (under Spark the epochs are ALS's
    iterations).
    """
    return f"SVD ({config.engine} engine), {config.n_factors} factors, {config.n_epochs} epochs"


def _version(version: Version) -> dict[str, Any]:
    return {
        "name": version.name, "dataset": version.dataset, "fingerprint": version.fingerprint,
        "model_key": version.model_key, "model": model_text(version.model.config),
        "ratings": version.n_ratings, "users": version.n_users, "items": version.n_items,
        "first_rating": _date(version.first_timestamp),
        "last_rating": _date(version.last_timestamp),
    }  # fmt: skip


def _origin(version: Version) -> tuple[tuple[object, object], str] | None:
    """Return ``((data, model) updated from, batch name)`` of a version made by ``update``."""
    derived = version.derived_from
    if not derived or derived.get("by") != "update":
        return None
    batch = (derived.get("record") or {}).get("batch") or {}
    return (derived.get("data"), derived.get("model")), str(batch.get("name", "a batch"))


def relation(version_a: Version, version_b: Version) -> str:
    """Return how B relates to A, from their ``derived_from`` (``""``: not known).

    "B is A's model updated (not retrained) with X." when B was updated from A; when A was
    updated from B, says that B - A then reads the update backwards; when both were updated
    from one model, says so.
    """
    origin_a, origin_b = _origin(version_a), _origin(version_b)
    key_a = (version_a.fingerprint, version_a.model_key)
    key_b = (version_b.fingerprint, version_b.model_key)
    if origin_b and origin_b[0] == key_a:
        return f"B is A's model updated (not retrained) with {origin_b[1]}."
    if origin_a and origin_a[0] == key_b:
        return (f"A is B's model updated (not retrained) with {origin_a[1]}: B is the older "
                "version, so B - A reads the update backwards (swap A and B to read what the "
                "update did).")  # fmt: skip
    if origin_a and origin_b and origin_a[0] == origin_b[0]:
        return (f"A and B are both updates of the same model: A with {origin_a[1]}, B with "
                f"{origin_b[1]}.")  # fmt: skip
    return ""


def describe_versions(version_a: Version, version_b: Version, window: RatingData) -> dict[str, Any]:
    """Return what was compared: ``{"a", "b", "window", "relation"}``.

    ``a``, ``b``: name, dataset name, data fingerprint, model key, model (``model_text``),
    ratings, users, items and the first and last training rating (ISO 8601 UTC; None
    without timestamps). ``window``: file name, rows kept, users, items and its first and
    last rating. ``relation``: ``relation``'s sentence (from the versions' ``derived_from``,
    set by ``update``), else "".
    """
    first, last = window.time_span()
    a, b = _version(version_a), _version(version_b)
    return {"a": a, "b": b, "relation": relation(version_a, version_b),
            "window": {"name": window.name, "ratings": window.n_ratings,
                       "users": window.n_users, "items": window.n_items,
                       "first_rating": _date(first), "last_rating": _date(last)}}  # fmt: skip


def _dates(first: str | None, last: str | None) -> str:
    return f"{first[:10]} to {last[:10]}" if first and last else "no timestamps"


def compared_table(compared: dict[str, Any]) -> pd.DataFrame:
    """Return what was compared: a row per version and one for the window (page's table).

    Columns ``""`` (A, B, window), name, dataset, model (engine and settings), ratings,
    users, items, dates (the training ratings' or the window's first and last day); counts
    as text.
    """
    rows = []
    for label in ("a", "b"):
        v = compared[label]
        rows.append({"": label.upper(), "name": v["name"], "dataset": v["dataset"],
                     "model": v["model"], "ratings": f"{v['ratings']:,}",
                     "users": f"{v['users']:,}", "items": f"{v['items']:,}",
                     "dates": "training " + _dates(v["first_rating"],
                                                   v["last_rating"])})  # fmt: skip
    w = compared["window"]
    rows.append({"": "window", "name": w["name"], "dataset": "", "model": "",
                 "ratings": f"{w['ratings']:,}", "users": f"{w['users']:,}",
                 "items": f"{w['items']:,}",
                 "dates": "window " + _dates(w["first_rating"], w["last_rating"])})  # fmt: skip
    return pd.DataFrame(rows)


def compared_sentences(compared: dict[str, Any], counts: dict[str, Any]) -> list[str]:
    """Return how B relates to A and what the window held: ratings, users, fallbacks.

    The text of the report's "What was compared" below its table (page and report).
    """
    excluded = ", ".join(f"{n:,} {r}" for r, n in counts["pairs_excluded"].items() if n)
    out = [compared["relation"]] if compared.get("relation") else []
    out.append(
        f"{counts['pairs_used']:,} of {counts['window_ratings']:,} window ratings scored by "
        f"both versions ({counts['users_rmse']:,} users; excluded: {excluded or 'none'})."
    )
    out.append(
        "; ".join(
            f"{name} predicted {counts[f'n_fallback_{v}']:,} of them by its fallback "
            f"({counts[f'users_new_to_{v}']:,} users it had not seen)"
            for name, v in (("A", "a"), ("B", "b"))
        )
        + "."
    )
    if counts.get("users_neither"):
        out.append(
            f"{counts['users_known']:,} users ({counts['pairs_known']:,} ratings) are known to "
            f"A or B; {counts['users_neither']:,} ({counts['pairs_neither']:,} ratings) to "
            "neither (both versions' fallbacks)."
        )
    return out


def method(comparison: Comparison) -> list[str]:
    """Return the method as sentences, with this comparison's settings."""
    c = comparison.config
    return [
        "Both versions score the same window of later ratings, as each would have served "
        "them: every window rating given after both versions' training data, of a pair "
        "neither was trained on. A version predicts a rating with its model or, when it has "
        "no training rating of the user or the item, with its fallback, as the evaluation "
        "predicts cold-start ratings (the model without the unknown side: mu + b_i for a "
        "user it has not seen, mu + b_u for an item, mu for both), clipped to the scale; "
        "the ratings each version predicted by its fallback are counted. A group's RMSE is "
        "the ratio of sums sqrt(sum of squared errors / number of ratings) over its users. "
        "NDCG@k compares each version's own top-k list (for a user it has not seen: its "
        "fallback list, its k most-rated items) with the user's relevant window items "
        "(rating >= the threshold). An exposure share is the position-weighted share "
        "(1 / log2(1 + rank)) of a user's list going to an item group.",
        "Groups: the audit's user groups (attributes, activity, popularity propensity) and "
        "item groups (attributes, item popularity). Attributes group every user and item; "
        "activity, popularity propensity and item popularity come from A's training data, "
        "and the users (items) A has no training rating of form their group 'new to A'. "
        "RMSE per item group sums each user's squared errors on the window ratings of the "
        "group's items, under A and under B; its size is the number of raters in the "
        "window.",
        f"Differences are B - A. 95% confidence intervals: percentile bootstrap over users "
        f"resampled in pairs ({c.bootstrap:,} replicates). p-values: paired permutation "
        f"(sign-flip) test, A and B swapped per user at random ({c.permutations:,} "
        f"permutations; p >= 1/{c.permutations + 1:,}, shown as a bound at that floor).",
        f"Holm's correction within one (metric, grouping); a difference is significant when "
        f"its adjusted p is below {c.alpha:g}: 'improved' or 'worsened' in the metric's "
        "better direction (RMSE lower, NDCG higher), 'higher' or 'lower' for an exposure "
        "share (no better direction). The verdict is this Holm-adjusted test; the 95% "
        "interval is per row and not adjusted for the other rows, so a row whose interval "
        "excludes 0 can still show no significant change: such rows are marked 'interval "
        "excludes 0; not significant after Holm'.",
        f"Groups with fewer than {c.min_group_size:,} users (item groups: raters) are "
        "'insufficient data': their values are shown, but no interval and no test.",
        "Users neither version knows are predicted by both versions' fallbacks; where those "
        "agree their difference is 0 by construction and dilutes the overall difference. "
        "When there are such users, RMSE and NDCG@k get a second overall row, 'users known "
        "to A or B': the same paired test over the users at least one version knows, a Holm "
        "family of its own. An exposure share counts an item in each of its groups (e.g. "
        "each of its genres), so the shares of a multi-valued attribute add up to more than "
        "100%; each is shown with its catalogue share (the share of the grouping's items).",
    ]


def comparison_document(
    comparison: Comparison, compared: dict[str, Any], created: datetime | None = None
) -> dict[str, Any]:
    """Return the JSON document (module docstring) as plain data."""
    a, b = compared["a"]["name"], compared["b"]["name"]
    return _plain({
        "kind": "version comparison",
        "schema_version": COMPARISON_SCHEMA,
        "title": f"Version comparison: {a} vs {b}",
        "created": (created or datetime.now(UTC)).isoformat(timespec="seconds"),
        "compared": compared,
        **comparison.to_dict(),
        "rows": comparison.rows.astype(object).to_dict(orient="records"),
        "method": method(comparison),
    })  # fmt: skip


def render_comparison(
    comparison: Comparison,
    compared: dict[str, Any],
    formats: str | list[str],
    created: datetime | None = None,
) -> dict[str, bytes]:
    """Return ``{file name: bytes}`` of the chosen formats (``COMPARISON_FILES``).

    Raises ``ConfigError`` (an unknown format) or, for a PDF, ``ChromiumNotFound`` /
    ``EngineError`` with one sentence.
    """
    chosen = parse_formats(formats)
    document = comparison_document(comparison, compared, created)
    out: dict[str, bytes] = {}
    html = ""
    if {"html", "pdf"} & set(chosen):
        from engine.report.comparison_html import comparison_html

        html = comparison_html(document)
    for name in chosen:
        if name == "html":
            out[COMPARISON_FILES[name]] = html.encode("utf-8")
        elif name == "json":
            text = json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False)
            out[COMPARISON_FILES[name]] = (text + "\n").encode("utf-8")
        elif name == "csv":
            frame = comparison.rows.astype(object).map(neutralise_formula)
            out[COMPARISON_FILES[name]] = frame.to_csv(index=False, lineterminator="\n").encode()
        else:
            from engine.report.pdf import render_pdf

            out[COMPARISON_FILES[name]] = render_pdf(html)
    return out
