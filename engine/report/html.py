r"""Render a ``Report`` as one self-contained HTML file (works offline, prints cleanly).

- plotly.js is inlined once in ``<head>``; no CDN, no external font, image or stylesheet.
- Every string that came from the analyst's data (titles, group and attribute names, file
  and column names, dataset name) is escaped with ``html.escape``. Chart data is embedded
  as JSON with ``<``, ``>`` and ``&`` written as ``\\u003c``/``\\u003e``/``\\u0026`` (so
  no text can close the script element), and data-derived chart labels are written as
  entities (so plotly's pseudo-HTML labels cannot carry tags).
- The output is byte-for-byte the same for the same report (chart ids are sequential).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from html import escape
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

from engine import charts
from engine.audit.groups import DERIVED_DEFINITIONS
from engine.audit.registry import direction_words
from engine.audit.stats import format_p_value
from engine.report.build import CONVENTIONS, HASHED_FOLDS, SECTIONS, Report, references
from engine.report.findings import KINDS, Finding, catalogue_shares
from engine.report.numbers import (
    NOT_AVAILABLE,
    count_text,
    percent_text,
    ratio_text,
    value_text,
)
from engine.report.over_time import over_time_section
from engine.report.ranking_groups import (
    RANKING_BY_GROUP,
    grouping_view,
    has_intervals,
    ranking_definition,
)
from engine.report.reading import hints_by_group
from engine.report.summary import SUMMARY_RULE
from engine.report.systems import systems_section
from engine.report.update_section import summary_lead, update_section_html
from engine.text import literal_plotly

if TYPE_CHECKING:
    from engine.monitor import Monitoring

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
 margin:0 auto;max-width:1100px;padding:24px;color:#1d1d1d;line-height:1.45}
h1{font-size:1.7em;margin-bottom:.2em}h2{border-bottom:2px solid #264653;padding-bottom:.2em;
 margin-top:1.8em}h3{margin-top:1.4em}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.86em;width:100%}
th,td{border:1px solid #d0d0d0;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#eef3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.flagged td{background:#fde8e8}tr.insufficient td{color:#888}tr.reference td{font-weight:600}
.meta{color:#555}.badge{display:inline-block;padding:1px 8px;border-radius:10px;
 background:#f4a261;color:#000;font-size:.8em}.chart{width:100%;margin:.5em 0 1em}
.finding{margin:.3em 0}ul.kind{margin-top:.2em}
ol.executive{padding-left:1.4em}ol.executive li{margin:.5em 0}.check{color:#264653}
tr.notable td{background:#fff4e5}
@media print{body{max-width:none;padding:0}h2{break-after:avoid}
 .chart,table,tr{break-inside:avoid}a{color:inherit;text-decoration:none}}
"""
_JSON_ESCAPES = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026"}
_DATA_KEYS = ("x", "y", "text", "customdata", "name")
_PLOT_CONFIG = {"displaylogo": False, "responsive": True, "showLink": False}


#: Why the trade-off's overall RMSE can differ from the accuracy table's in the last digit.
POOLED_RMSE = (
    "overall_rmse pools every held-out rating of the model (the accuracy table averages the "
    "folds' RMSE, so the two can differ in the last digits); max_gap is the largest minus "
    "the smallest group RMSE among the groups_compared groups. The more groups, the wider "
    "that range tends to be, so compare models within one attribute, not the gaps of two "
    "attributes with different numbers of groups."
)
#: Why the catalogue-level coverage differs from the accuracy table's.
FULL_FIT_LISTS = (
    "Of the audited lists: every user's top-k from the model fitted on all ratings, as in the "
    "rest of this section (the accuracy table's coverage is the mean over the folds' lists)."
)


def _cell(value: Any, kind: str) -> str:
    if value is None or (isinstance(value, (float, np.floating)) and np.isnan(value)):
        return NOT_AVAILABLE
    if value is pd.NA:
        return NOT_AVAILABLE
    if kind == "p":
        return escape(format_p_value(float(value)))
    if kind == "pct":
        return percent_text(value)
    if kind == "int":
        return count_text(value)
    if kind == "ratio":
        return ratio_text(value)
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else ""
    if isinstance(value, (float, np.floating)):
        return value_text(value)
    return escape(str(value))


def table(
    frame: pd.DataFrame,
    columns: dict[str, str] | None = None,
    kinds: dict[str, str] | None = None,
    row_class: Callable[[pd.Series], str] | None = None,
) -> str:
    """Return an HTML table of ``frame`` (``columns``: column -> header); cells are escaped."""
    columns = columns or {c: c for c in frame.columns}
    kinds = kinds or {}
    head = "".join(f"<th>{escape(h)}</th>" for h in columns.values())
    body = []
    for _, row in frame.iterrows():
        css = row_class(row) if row_class else ""
        cells = "".join(
            f'<td class="num">{_cell(row[c], kinds.get(c, ""))}</td>'
            if _is_number(row[c])
            else f"<td>{_cell(row[c], kinds.get(c, ''))}</td>"
            for c in columns
        )
        body.append(f'<tr class="{css}">{cells}</tr>' if css else f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _is_number(value: Any) -> bool:
    return value is pd.NA or (
        isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, (bool, np.bool_))
    )


def _pairs(items: Iterable[tuple[str, Any]]) -> str:
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{_cell(v, '')}</td></tr>" for k, v in items)
    return f"<table>{rows}</table>"


def _entities(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if isinstance(value, list):
        return [_entities(v) for v in value]
    return value


class _Charts:
    """Sequentially numbered chart placeholders with their JSON (deterministic ids)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, fig: go.Figure, literal: bool = False) -> str:
        """Return the chart's placeholder and script.

        ``literal``: the chart builder already wrote its data text with
        ``engine.text.literal_plotly``, so it is not escaped twice.
        """
        self.count += 1
        spec = json.loads(pio.to_json(fig, validate=False))
        for trace in spec.get("data", []) if not literal else []:
            for key in _DATA_KEYS:
                if key in trace:
                    trace[key] = _entities(trace[key])
        spec["layout"]["template"] = "__TEMPLATE__"
        payload = json.dumps(spec, sort_keys=True, separators=(",", ":"))
        payload = payload.translate(_JSON_ESCAPES).replace('"__TEMPLATE__"', "TEMPLATE")
        chart_id = f"chart-{self.count}"
        return (
            f'<div id="{chart_id}" class="chart"></div><script>(function(){{var s={payload};'
            f'Plotly.newPlot("{chart_id}",s.data,s.layout,CONFIG);}})();</script>'
        )


def render_html(report: Report, monitoring: Monitoring | None = None) -> str:
    """Return the report as a complete HTML document (UTF-8 text).

    ``monitoring`` (``engine.monitor.Monitoring``; default ``report.monitoring``), when
    there is one, adds the "Over time" section at the end (``engine.report.over_time``).
    """
    monitoring = monitoring if monitoring is not None else report.monitoring
    chart = _Charts()
    body = [_header(report)]
    if report.update is not None:  # "Model update" (engine.report.update_section)
        body.append(update_section_html(report.update))
    # "Systems side by side" (engine.report.systems): right after the summary of findings
    systems_after = "summary" if "summary" in report.sections else None
    if report.systems is not None and systems_after is None:
        body.append(systems_section(report.systems))
    for key in report.sections:
        body.append(f'<section id="{key}"><h2>{escape(SECTIONS[key])}</h2>')
        body.append(_SECTION_RENDERERS[key](report, chart))
        body.append("</section>")
        if report.systems is not None and key == systems_after:
            body.append(systems_section(report.systems))
    if monitoring is not None:
        body.append(over_time_section(monitoring, chart))
    template = pio.templates["plotly_white"].to_plotly_json()
    template_json = json.dumps(template, sort_keys=True, separators=(",", ":"))
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(report.title)}</title><style>{_CSS}</style>"
        f'<script type="text/javascript">{get_plotlyjs()}</script>'
        f"<script>var TEMPLATE={template_json.translate(_JSON_ESCAPES)};"
        f"var CONFIG={json.dumps(_PLOT_CONFIG, sort_keys=True)};</script>"
        f"</head><body>{''.join(body)}</body></html>\n"
    )


def _header(report: Report) -> str:
    prov = report.provenance
    synthetic = ' <span class="badge">synthetic data</span>' if prov["dataset"]["synthetic"] else ""
    return (
        f"<header><h1>{escape(report.title)}{synthetic}</h1>"
        f'<p class="meta">Created {escape(prov["created"])} · dataset fingerprint '
        f"<code>{escape(prov['dataset']['fingerprint'][:16])}</code> · "
        f"{prov['dataset']['users']:,} users, {prov['dataset']['items']:,} items, "
        f"{prov['dataset']['rows_kept']:,} ratings. Aggregates only: no user ids or "
        "individual ratings.</p></header>"
    )


def _summary(report: Report, chart: _Charts) -> str:
    band = report.audit_config["band"]
    parts = [executive_summary_html(report)]
    if report.systems is not None:  # the summary is the built-in SVD's, not the systems'
        parts[0] = parts[0].replace(
            "<h3>Executive summary</h3>", "<h3>Executive summary: about the built-in SVD</h3>", 1
        )
    parts.append(
        "<h3>About this audit</h3>" + "".join(f"<p>{escape(s)}</p>" for s in report.headline)
    )
    if not report.findings:
        parts.append("<p><strong>No disparity is flagged.</strong></p>")
    for kind, label in KINDS.items():
        chosen = [f for f in report.findings if f.kind == kind]
        if chosen:
            parts.append(
                f"<h3>{escape(label)}: flagged ({len(chosen)})</h3>{_findings_list(chosen)}"
            )
    if report.notable:
        parts.append(
            f"<h3>Notable: significant, inside [{band[0]}, {band[1]}] ({len(report.notable)})</h3>"
            "<p class='meta'>Gaps that survive Holm's correction but stay inside the band: too "
            "small to flag, too consistent to ignore. Largest first.</p>"
            + _findings_list(sorted(report.notable, key=lambda f: -_severity(f)))
        )
    return "".join(parts)


def _severity(finding: Finding) -> float:
    return finding.severity if np.isfinite(finding.severity) else float("inf")


def _findings_list(chosen: list[Finding]) -> str:
    items = "".join(f'<li class="finding">{escape(f.sentence)}</li>' for f in chosen)
    return f"<ul class='kind'>{items}</ul>"


def executive_summary_html(report: Report) -> str:
    """Return the executive summary: heading, numbered items (headline, detail, check next).

    An updated analysis's report starts it with what its figures are of (``summary_lead``).
    """
    lead = summary_lead(report.update)
    lead = f"<p><strong>{escape(lead)}</strong></p>" if lead else ""
    if not report.summary:
        return (
            f"<h3>Executive summary</h3>{lead}<p><strong>No disparity of the recommender is "
            "flagged or notable, and no baseline ranks better than SVD.</strong> The detail "
            "follows.</p>"
        )
    items = "".join(
        f"<li><strong>{escape(i.headline)}</strong> {escape(i.detail)}"
        f'<br><span class="check"><em>Check next:</em> {escape(i.check_next)}.</span></li>'
        for i in report.summary
    )
    more = (
        len(report.findings)
        + len(report.notable)
        - sum(len(i.metrics) for i in report.summary if i.kind != "evaluation")
    )
    tail = f"<p class='meta'>{more} more findings follow in the detail.</p>" if more > 0 else ""
    return (
        f"<h3>Executive summary</h3>{lead}<p class='meta'>{SUMMARY_RULE}</p>"
        f'<ol class="executive">{items}</ol>{tail}'
    )


def _data(report: Report, chart: _Charts) -> str:
    rows = report.metrics[report.metrics["scope"] != "model"]
    parts = [
        "<p>These numbers describe the ratings themselves, before any model: who rated what, "
        "and how much. They explain where a disparity may come from, but they are not "
        "disparities of the recommender and are never flagged.</p>"
    ]
    if report.context:
        parts.append("<ul>" + "".join(f"<li>{escape(s)}</li>" for s in report.context) + "</ul>")
    elif len(rows):
        parts.append("<p>No item group's share of the ratings leaves the band.</p>")
    catalogue = catalogue_shares(report.metrics)
    for grouping, part in rows.groupby("grouping", sort=False):
        for metric, selected in part.groupby("metric", sort=False):
            shares = (
                catalogue.xs(grouping, level=0)
                if grouping in catalogue.index.get_level_values(0)
                else None
            )
            title = f"{_name(report, metric)} by {grouping} vs the catalogue share"
            fig = charts.group_metric(selected, literal_plotly(title), shares)
            parts.append(chart(fig, literal=True))
    if report.hints:
        items = "".join(
            f"<li><strong>{escape(h.grouping)} = {escape(h.group)}</strong> "
            f"({escape(', '.join(_name(report, m) for m in h.metrics))}): "
            f"{escape('; '.join(h.sentences))}</li>"
            for h in hints_by_group(report.hints)
        )
        parts.append(
            "<h3>Profile differences of flagged user groups (root-cause hints)</h3><p "
            "class='meta'>How the group's own ratings differ from everyone else's (not proven "
            f"causes).</p><ul>{items}</ul>"
        )
    if len(rows):
        parts.append("<h3>Data rows</h3>" + _metric_rows(rows))
    return "".join(parts)


def _dataset(report: Report, chart: _Charts) -> str:
    d, load = report.dataset, report.load
    numbers = _pairs(
        [
            ("name", d["name"]), ("synthetic", "yes" if d["synthetic"] else "no"),
            ("users", f"{d['n_users']:,}"), ("items", f"{d['n_items']:,}"),
            ("ratings", f"{d['n_ratings']:,}"), ("density", f"{d['density']:.4%}"),
            ("rating scale", load["scale"]),
            ("mean rating", f"{d['rating_mean']:.3f} (std {d['rating_std']:.3f})"),
            ("ratings per user (median)", f"{d['ratings_per_user']['median']:g}"),
            ("ratings per item (median)", f"{d['ratings_per_item']['median']:g}"),
            ("long-tail share of the catalogue", f"{d['long_tail_item_share']:.1%}"),
            ("user attributes", ", ".join(d["user_attributes"]) or "none"),
            ("item attributes", ", ".join(d["item_attributes"]) or "none"),
        ]
    )  # fmt: skip
    files = pd.DataFrame(
        [
            {"role": f["role"], "file": f["name"], "format": f["format"],
             "encoding": f["encoding"] or "", "columns used": ", ".join(
                 f"{k} = {v}" for k, v in f["columns"].items()),
             "ignored": ", ".join(f["ignored_columns"])}
            for f in load["files"]
        ]
    )  # fmt: skip
    rejected = pd.DataFrame(
        [{"reason": k, "rows": v} for k, v in load["rejected"].items()], columns=["reason", "rows"]
    )
    parts = [
        numbers,
        "<h3>Load report</h3>",
        f"<p>{load['rows_read']:,} rows read, {load['rows_kept']:,} kept, "
        f"{load['rows_rejected']:,} rejected. Duplicate (user, item) pairs: "
        f"{escape(load['duplicate_policy'])}.</p>",
        table(files) if len(files) else "",
        table(rejected, kinds={"rows": "int"}) if len(rejected) else "<p>No row was rejected.</p>",
        "".join(f"<p class='meta'>{escape(w)}</p>" for w in load["warnings"]),
    ]
    if report.profile is not None:
        parts.append(chart(charts.rating_histogram(report.profile)))
        parts.append(chart(charts.long_tail_curve(report.profile)))
    return "".join(parts)


def relevance_sentence(evaluation: dict[str, Any]) -> str:
    """Return the relevance rule and where its threshold came from.

    For example ``relevant = rating >= 4, three quarters of the way up the 1-5 scale``, from
    ``Report.model["evaluation"]``.
    """
    rule = evaluation.get("relevance_rule")
    return rule or f"relevant = rating >= {evaluation['relevance_threshold']:g}"


def accuracy_table(accuracy: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Mean over folds per ``model`` x ``metric``, and why any cell of it is n/a.

    A model with no ``rmse`` row ranks items without predicting ratings, so its RMSE and
    MAE are n/a; other n/a cells are explained by the evaluation's notes.
    """
    wide = accuracy.pivot_table(index="model", columns="metric", values="mean", sort=False,
                                dropna=False).reset_index()  # fmt: skip
    rated = set(accuracy.loc[accuracy["metric"] == "rmse", "model"])
    reasons = [
        f"{model} ranks items without predicting ratings, so its RMSE and MAE are n/a."
        for model in wide["model"]
        if model not in rated and "rmse" in wide
    ]
    return wide, reasons


def _protocol_sentence(evaluation: dict[str, Any]) -> str:
    """Return the evaluation protocol, top-N setting and relevance rule as one paragraph."""
    ranking = f"top-N metrics at k = {evaluation['k']}, {escape(relevance_sentence(evaluation))}"
    if evaluation.get("fold_assignment") == HASHED_FOLDS:  # kept in Spark: the protocol says
        return f"<p>{escape(evaluation['protocol'])} T{ranking[1:]}. Mean over folds:</p>"
    if evaluation.get("split", "kfold") == "kfold":
        return (
            f"<p>{evaluation['folds']}-fold cross-validation (seed {evaluation['seed']}), "
            f"paired folds for every model; {ranking}. Mean over folds:</p>"
        )
    over = "Mean over the windows" if evaluation["folds"] > 1 else "Figures of the split"
    return (
        f"<p>Evaluation: {escape(evaluation['protocol'])} Every model is trained and tested "
        f"on the same split(s); {ranking}. {over}:</p>"
    )


def _model(report: Report, chart: _Charts) -> str:
    config, evaluation = report.model["config"], report.model["evaluation"]
    accuracy, reasons = accuracy_table(report.accuracy)
    reasons += list(evaluation.get("notes", []))
    parts = [
        _pairs([(k, v) for k, v in config.items()]),
        _protocol_sentence(evaluation),
        table(accuracy),
    ]
    if reasons:
        items = "".join(f"<li>{escape(r)}</li>" for r in reasons)
        heading = f"Notes on these figures (why a value is {NOT_AVAILABLE}, what was adjusted):"
        parts.append(f"<p class='meta'>{heading}</p><ul>{items}</ul>")
    if report.tradeoff["model"].nunique() == 1:  # one point per grouping: nothing to chart
        parts.append(
            "<p>Accuracy gap by user attribute: the overall RMSE and the largest minus the "
            "smallest group RMSE (max_gap, lower = fairer) among the groups large enough to "
            f"compare (groups_compared; {NOT_AVAILABLE} where fewer than two), for the one "
            "model evaluated:</p>"
        )
        parts.append(table(report.tradeoff))
        return "".join(parts) + _ranking_by_group(report, chart)
    if len(report.tradeoff):
        parts.append(f"<p class='meta'>{POOLED_RMSE}</p>")
    for grouping, rows in report.tradeoff.groupby("grouping", sort=False):
        if rows["max_gap"].isna().all():  # no point to chart
            parts.append(
                f"<p>Accuracy by {escape(str(grouping))}: fewer than two groups are large "
                f"enough to compare, so no gap ({NOT_AVAILABLE}):</p>"
            )
            parts.append(table(rows))
            continue
        fig = charts.model_group_gaps(rows)
        title = literal_plotly(f"Accuracy vs fairness by {grouping} (lower-left is better)")
        fig.update_layout(title=title)
        parts.append(chart(fig, literal=True))
        parts.append(table(rows))
    return "".join(parts) + _ranking_by_group(report, chart)


def _ranking_by_group(report: Report, chart: _Charts) -> str:
    """Each ranking model's NDCG@k per user group: a sentence, bars and a table per grouping."""
    frame = report.ranking_by_group
    if frame is None or not len(frame):
        return ""
    metric = f"NDCG@{report.model['evaluation']['k']}"
    minimum = report.audit_config["min_group_size"]
    defined = ranking_definition(metric, minimum, has_intervals(frame))
    parts = [f"<h3>{RANKING_BY_GROUP}</h3><p>{escape(defined)}</p>"]
    for grouping, rows in frame.groupby("grouping", sort=False):
        sentence, fig, wide = grouping_view(rows, metric, minimum)
        parts.append(f"<p>{escape(sentence)}</p>")
        if fig is not None:
            fig.update_layout(title=literal_plotly(f"{metric} by {grouping} per model"))
            parts.append(chart(fig, literal=True))
        parts.append(table(wide))
    return "".join(parts)


def _metric_rows(rows: pd.DataFrame) -> str:
    shown = {
        "metric": "metric", "grouping": "grouping", "group": "group", "n_users": "users",
        "n_items": "items", "n_raters": "raters", "n_ratings": "ratings", "value": "value",
        "ci_low": "CI low", "ci_high": "CI high", "ratio": "ratio", "p_shown": "adjusted p",
        "p_method": "test", "tier": "tier", "status": "status", "direction": "direction",
    }  # fmt: skip
    frame = rows.assign(p_shown=[
        format_p_value(float(p), bool(b)) or NOT_AVAILABLE
        for p, b in zip(rows["p_adjusted"], rows["p_is_bound"], strict=True)
    ])  # fmt: skip
    for column in ("n_users", "n_items", "n_raters"):
        if frame[column].isna().all():
            shown.pop(column)
    return table(
        frame,
        shown,
        kinds={
            "n_users": "int",
            "n_items": "int",
            "n_raters": "int",
            "n_ratings": "int",
            "ratio": "ratio",
        },
        row_class=lambda r: (
            {
                "flagged": "flagged",
                "notable": "notable",
            }.get(r["tier"], "")
            or {"insufficient data": "insufficient", "reference": "reference"}.get(r["status"], "")
        ),
    )


def _direction(definition: dict[str, Any]) -> str:
    return direction_words(definition.get("level", ""), definition["better"])


#: A family's heading where its name alone would read as something else: "Popularity"
#: is also the popularity baseline's name, so the popularity-bias measures say so.
FAMILY_HEADINGS = {"popularity": "Popularity bias"}


def family_heading(family: str) -> str:
    """Return the heading of a metric family in the audit (``FAMILY_HEADINGS``, else its name)."""
    return FAMILY_HEADINGS.get(family, family.capitalize())


def _family(report: Report, chart: _Charts, family: str) -> str:
    every = report.metrics[report.metrics["family"] == family]
    rows = every[every["scope"] == "model"]
    band = report.audit_config["band"]
    title = literal_plotly(f"{family_heading(family)}: ratio to reference")
    parts = [
        "<ul>"
        + "".join(
            f"<li><strong>{escape(m)}</strong>: {escape(report.definitions[m]['definition'])} "
            f"({escape(_direction(report.definitions[m]))})</li>"
            for m in rows["metric"].unique()
        )
        + "</ul>",
        chart(charts.disparity_overview(rows, band, title), literal=True),
    ]
    catalogue = catalogue_shares(report.metrics)
    shown = rows["tier"].isin(["flagged", "notable"]) | (
        rows["reference_group"] == "catalogue share"
    )
    for metric, grouping in (
        rows[shown][["metric", "grouping"]].drop_duplicates().itertuples(index=False)
    ):
        selected = rows[(rows["metric"] == metric) & (rows["grouping"] == grouping)]
        data_rows = every[(every["scope"] != "model") & (every["grouping"] == grouping)]
        level = catalogue.index.get_level_values(0)
        shares = catalogue.xs(grouping, level=0) if grouping in level else None
        fig = charts.group_metric(
            selected, literal_plotly(f"{metric} by {grouping} (95% CI)"), shares,
            data_rows if len(data_rows) else None,
        )  # fmt: skip
        parts.append(chart(fig, literal=True))
    parts.append(_metric_rows(rows))
    return "".join(parts)


def _audit(report: Report, chart: _Charts) -> str:
    families = [f for f in report.metrics["family"].unique() if f != "explanations"]
    parts = [
        f"<h3>{escape(family_heading(family))}</h3>{_family(report, chart, family)}"
        for family in families
    ]
    parts.append("<h3>Catalogue-level measures</h3>"
                 f"<p class='meta'>{FULL_FIT_LISTS}</p>" + table(report.catalogue))  # fmt: skip
    counts = {"share": "pct", "recommendations": "int", "ratings": "int"}
    parts.append("<h3>Most recommended items</h3>" + table(report.top_items, kinds=counts))
    if len(report.yao):
        parts.append("<h3>Yao &amp; Huang unfairness (each group vs the rest)</h3>"
                     "<p class='meta'>Where a grouping has two groups, each group's rest is the "
                     "other group: both rows compare the same pair, so they are equal.</p>"
                     + table(report.yao, kinds={"n_users": "int", "n_items": "int"}))  # fmt: skip
    if len(report.delta_gap):
        parts.append("<h3>Delta-GAP by popularity propensity</h3>"
                     + table(report.delta_gap, kinds={"n_users": "int"}))  # fmt: skip
    if len(report.bias_disparity):
        parts.append("<h3>Bias disparity (user group x item category)</h3>"
                     + table(report.bias_disparity))  # fmt: skip
    return "".join(parts)


def _explanations(report: Report, chart: _Charts) -> str:
    if not (report.metrics["family"] == "explanations").any():
        return "<p>Explanation measures were not part of this audit.</p>"
    return _family(report, chart, "explanations")


def _insufficient(report: Report, chart: _Charts) -> str:
    groups = report.insufficient
    if groups.empty:
        return "<p>Every group has enough users.</p>"
    return (
        f"<p>{escape(report.insufficient_note)}</p><details><summary>The {len(groups):,} groups"
        "</summary>" + table(groups, kinds={"n_users": "int", "n_raters": "int"}) + "</details>"
    )


def _name(report: Report, metric: str) -> str:
    """How ``metric`` is named in sentences (its definition's ``name``, else the key)."""
    return report.definitions.get(metric, {}).get("name", metric)


def _audited_attributes(report: Report) -> dict:
    """Return the audit settings; ``None`` attributes (every suitable one) named as audited."""
    config = dict(report.audit_config)
    audited = config.pop("audited_attributes", None) or {}
    for kind in ("user", "item"):
        if config.get(f"{kind}_attributes") is None:
            names = list(audited.get(kind, {}))
            config[f"{kind}_attributes"] = (
                f"every suitable one: {', '.join(names)}" if names else "none suitable"
            )
    return config


def _definitions(report: Report, chart: _Charts) -> str:
    frame = pd.DataFrame(
        [{"metric": k, **v, "references": "; ".join(v["references"])}
         for k, v in report.definitions.items()],
        columns=["metric", "name", "family", "level", "better", "definition", "formula",
                 "references"],
    )  # fmt: skip
    config = _pairs((k, ", ".join(map(str, v)) if isinstance(v, (list, tuple)) else v)
                    for k, v in _audited_attributes(report).items())  # fmt: skip
    audited = set(report.metrics["grouping"].astype(str))
    derived = [f"<li><strong>{escape(name)}</strong>: {escape(words)}</li>"
               for name, words in DERIVED_DEFINITIONS.items() if name in audited]  # fmt: skip
    return (
        table(frame)
        + ("<h3>Derived groupings</h3><ul>" + "".join(derived) + "</ul>" if derived else "")
        + "<h3>Conventions</h3><ul>"
        + "".join(f"<li>{escape(c)}</li>" for c in CONVENTIONS)
        + "</ul><h3>Audit settings</h3>"
        + config
        + "<h3>References</h3><ul>"
        + "".join(f"<li>{escape(r)}</li>" for r in references(report.definitions))
        + "</ul>"
    )


def _limitations(report: Report, chart: _Charts) -> str:
    return "<ul>" + "".join(f"<li>{escape(s)}</li>" for s in report.limitations) + "</ul>"


def _provenance(report: Report, chart: _Charts) -> str:
    prov = report.provenance
    rows = [(f"dataset {k}", v) for k, v in prov["dataset"].items()]
    rows += [(f"model {k}", v) for k, v in prov["model"]["config"].items()]
    rows += [("evaluation seed", prov["evaluation_seed"])]
    rows += [(f"version of {k}", v) for k, v in prov["versions"].items()]
    rows += [("created", prov["created"])]
    return _pairs(rows)


_SECTION_RENDERERS: dict[str, Callable[[Report, _Charts], str]] = {
    "summary": _summary,
    "data": _data,
    "dataset": _dataset,
    "model": _model,
    "audit": _audit,
    "explanations": _explanations,
    "insufficient": _insufficient,
    "definitions": _definitions,
    "limitations": _limitations,
    "provenance": _provenance,
}
