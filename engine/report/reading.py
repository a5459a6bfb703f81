"""The audit as a reader meets it: summary, tiers, data context, in one object for the page.

``read_audit`` gives the Bias audit page what the report's first pages say, without
building the whole report (no dataset profile, no model comparison): the audit table
with its tier columns, the executive summary, the flagged and notable rows, the
data-scope rows with their sentences, and the insufficient-data sentence.
``display_rows`` turns audit rows into a table for reading (p-values as text).
``hints_by_group`` gives one root-cause line per group, however many of its rows are flagged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from engine.audit.rows import COUNT_COLUMNS
from engine.audit.run import AuditResult
from engine.audit.stats import format_p_value
from engine.evaluate import Evaluation
from engine.report.build import model_accuracy, withhold_by_size, withhold_small_groups
from engine.report.findings import catalogue_shares
from engine.report.numbers import count_text
from engine.report.summary import (
    SummaryItem,
    data_context,
    executive_summary,
    insufficient_summary,
    protocol_words,
)

#: Columns of ``display_rows``, in order (``p_value`` and ``p_adjusted`` as text).
DISPLAY_COLUMNS = [
    "tier", "family", "metric", "grouping", "group", "direction", "n_users", "n_items",
    "n_raters", "n_ratings", "value", "ci_low", "ci_high", "reference_group", "ratio",
    "p_value", "p_adjusted", "p_method", "severity", "status",
]  # fmt: skip


@dataclass(frozen=True)
class AuditReading:
    """What a reader of one audit sees first.

    Attributes
    ----------
    metrics
        The audit table (``AuditResult.metrics``, with its scope, tier and severity).
    summary
        The executive summary (at most 7 ``SummaryItem`` s, most severe first).
    flagged, notable
        Model-scope rows of each tier, most severe first.
    data
        Data-scope rows (properties of the ratings), most severe first.
    context
        Sentences on the data rows outside the band ("What the data shows").
    insufficient
        ``grouping, group, n_users, n_raters`` of every group below the minimum size.
    insufficient_note
        One sentence counting them per grouping.
    catalogue
        Catalogue share of each item group, indexed by ``(grouping, group)``.
    yao, delta_gap
        ``AuditResult.yao`` and ``delta_gap`` with the values of groups below the minimum
        size withheld, as the report shows them.
    """

    metrics: pd.DataFrame
    summary: list[SummaryItem]
    flagged: pd.DataFrame
    notable: pd.DataFrame
    data: pd.DataFrame
    context: list[str]
    insufficient: pd.DataFrame
    insufficient_note: str
    catalogue: pd.Series = field(repr=False)
    yao: pd.DataFrame = field(repr=False)
    delta_gap: pd.DataFrame = field(repr=False)


def read_audit(result: AuditResult, evaluation: Evaluation, n_users: int) -> AuditReading:
    """Return the ``AuditReading`` of ``result`` (``evaluation``: the audited model's folds).

    ``n_users`` is the dataset's number of users (affected by an evaluation finding).
    """
    return read_audit_parts(result, model_accuracy(evaluation), asdict(evaluation.evaluation),
                            n_users)  # fmt: skip


def read_audit_parts(
    result: AuditResult, accuracy: pd.DataFrame, settings: dict[str, Any], n_users: int
) -> AuditReading:
    """Return the ``AuditReading`` of ``result`` from the evaluation's summary, not its folds.

    ``accuracy``: ``model_accuracy``'s table; ``settings``: the evaluation's settings with
    at least ``split``, ``folds`` and ``k`` (``EvaluationConfig`` as a dict, or
    ``Report.model["evaluation"]``), as a run kept in Spark stores them
    (``engine.saved.kept``); ``n_users`` as in ``read_audit``. As in the report, the values
    of groups below the minimum size are withheld (``withhold_small_groups``).
    """
    metrics = withhold_small_groups(result.metrics, result.config.min_group_size)
    model = metrics[metrics["scope"] == "model"]

    def ranked(rows: pd.DataFrame) -> pd.DataFrame:
        return rows.sort_values("severity", ascending=False, kind="stable", na_position="last")

    small = metrics[metrics["status"] == "insufficient data"]
    return AuditReading(
        metrics=metrics,
        summary=executive_summary(
            metrics,
            accuracy,
            result.config,
            n_users,
            result.registry,
            k=int(settings["k"]),
            protocol=protocol_words(settings),
            delta_gap=result.delta_gap,
        ),
        flagged=ranked(model[model["tier"] == "flagged"]),
        notable=ranked(model[model["tier"] == "notable"]),
        data=ranked(metrics[metrics["scope"] != "model"]),
        context=data_context(metrics, result.config, result.registry),
        insufficient=_sizes_as_text(
            small[["grouping", "group", "n_users", "n_raters"]]
            .drop_duplicates(["grouping", "group"])
            .reset_index(drop=True)
        ),
        insufficient_note=insufficient_summary(metrics, result.config.min_group_size),
        catalogue=catalogue_shares(metrics, result.registry),
        yao=withhold_by_size(result.yao, result.config.min_group_size),
        delta_gap=withhold_by_size(result.delta_gap, result.config.min_group_size),
    )


def display_rows(rows: pd.DataFrame, drop: tuple[str, ...] = ()) -> pd.DataFrame:
    """Audit rows for reading: ``DISPLAY_COLUMNS`` but ``drop``, p-values as text.

    p-values are written by ``engine.audit.stats.format_p_value`` (a bound as "< 0.0005");
    the size columns as text, "—" where a size does not apply (``n_users`` of an item
    group, ``n_items`` and ``n_raters`` of a user group), never a bare "None".
    """
    bound = rows["p_is_bound"].astype(bool)
    shown = _sizes_as_text(rows).assign(
        p_value=[format_p_value(float(p), b) for p, b in zip(rows["p_value"], bound, strict=True)],
        p_adjusted=[format_p_value(float(p), b)
                    for p, b in zip(rows["p_adjusted"], bound, strict=True)],
    )  # fmt: skip
    columns = [c for c in DISPLAY_COLUMNS if c in shown and c not in drop]
    return shown[columns].reset_index(drop=True)


def _sizes_as_text(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with its size columns as text: "1,682", or "—" where a size does not apply."""
    sizes = {c: [count_text(v) or "—" for v in rows[c]] for c in COUNT_COLUMNS if c in rows}
    return rows.assign(**sizes)


@dataclass(frozen=True)
class GroupHint:
    """The root-cause hint of one user group: its profile differences, said once.

    ``metrics`` are the keys of the group's flagged or notable rows, in the audit's order;
    ``sentences`` are the group's profile differences (the same for each of its rows).
    """

    grouping: str
    group: str
    metrics: tuple[str, ...]
    sentences: tuple[str, ...]


def hints_by_group(hints: list[dict]) -> list[GroupHint]:
    """Merge ``AuditResult.hints`` (one per flagged or notable row) into one per group.

    The audit tests a group's profile traits once and gives every row of the group the same
    sentences; a reader needs them once, with the metrics they may explain.
    """
    merged: dict[tuple[str, str], GroupHint] = {}
    for hint in hints:
        key = (str(hint["grouping"]), str(hint["group"]))
        seen = merged.get(key)
        metrics = (*seen.metrics, hint["metric"]) if seen else (hint["metric"],)
        merged[key] = GroupHint(*key, tuple(dict.fromkeys(metrics)), tuple(hint["sentences"]))
    return list(merged.values())
