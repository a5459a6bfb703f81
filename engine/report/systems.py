"""The report's optional "Systems side by side" section (``engine.external``).

``engine.report.html.render_html`` places it right after the summary of findings when
``Report.systems`` is set (``audit`` and ``run`` with ``--recommendations`` /
``--predictions``). Aggregates only: a summary of each uploaded system
(``engine.external.systems.system_summaries``) and the utility check's warnings first, then
which held-out ratings were used, each file's load report, the side-by-side table, the
flagged rows per system, the surrogates' fidelity and the paired comparison of each
external system with the built-in SVD (overall sentences). Every data string is escaped.

``systems_json`` is the same section as plain data (the report JSON's optional
``systems`` object, schema 2.5) and ``systems_metric_rows`` each system's audit rows (the
CSV's rows with a ``system`` column); both aggregates only: no user id, no load report
example row, groups below the minimum size withheld as in the built-in audit's rows.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

import pandas as pd

from engine.external.systems import system_summaries
from engine.report.build import METRIC_COLUMNS, withhold_small_groups
from engine.report.over_time import plain_table

if TYPE_CHECKING:
    from engine.external.systems import SystemsComparison

#: The side-by-side columns shown, with headers (definitions in ``engine.external.systems``).
COLUMNS = {"system": "system", "n_users": "users with a list",
           "n_users_ranked": "users NDCG/recall average over (a relevant held-out rating)",
           "ndcg": "NDCG@k", "recall": "Recall@k", "n_hits": "listed items held out",
           "n_relevant_hits": "listed items held out and relevant",
           "rmse": "RMSE", "aplt": "long-tail share (APLT)", "arp": "ARP",
           "long_tail_exposure": "long-tail exposure", "coverage": "coverage",
           "gini_exposure": "Gini of exposure", "miscalibration": "miscalibration",
           "flagged": "flagged rows", "surrogate_r2": "surrogate R^2"}  # fmt: skip
#: What a utility cell of a system that cannot score on utility shows after its number.
BLIND = " (not interpretable)"


def shown_table(comparison: SystemsComparison) -> pd.DataFrame:
    """Return the side by side as shown.

    NDCG and recall of a system the utility check warns about read ``0.000 (not
    interpretable)``.
    """
    table = comparison.table.copy()
    for column in ("ndcg", "recall"):
        table[column] = [
            f"{v:.3f}{BLIND}" if comparison.utility_blind(n) and pd.notna(v) else v
            for n, v in zip(table["system"], table[column], strict=True)
        ]
    return table


def _list(sentences: list[str]) -> str:
    return "<ul>" + "".join(f"<li>{escape(s)}</li>" for s in sentences) + "</ul>"


def systems_section(comparison: SystemsComparison) -> str:
    """Return the ``<section id="systems">`` HTML of a ``SystemsComparison``.

    Its ``pairs`` (heading -> sentences, ``engine.external.with_pairs``) are shown last.
    """
    c = comparison
    reports = {r.name: r for s in c.external for r in s.load_reports}
    loads = [r.summary() + ("; " + " ".join(r.notes) if r.notes else "")
             for r in reports.values()]  # fmt: skip
    flagged = []
    for name, audit in c.audits.items():
        rows = audit.result.flagged()
        shown = "; ".join(f"{r.metric} for {r.grouping} = {r.group} (ratio {r.ratio:.2f})"
                          for r in rows.head(5).itertuples())  # fmt: skip
        flagged.append(f"{name}: {len(rows)} flagged" + (f", e.g. {shown}" if shown else ""))
    surrogates = [
        f"{name}: overall R^2 = {s.overall_r2:.3f}, mean top-{s.top_n} overlap "
        f"{s.mean_overlap:.0%} over {len(s.users):,} users; {s.to_dict()['statuses']['ok']:,} "
        f"users at or above R^2 = {s.min_r2:g} can be explained through it"
        for name, s in c.surrogates.items()
    ]
    paired = "".join(f"<h3>{escape(head)}</h3>{_list(lines)}" for head, lines in c.pairs.items())
    summaries = system_summaries(c)
    warnings = "".join(f'<p class="warning" style="background:#fde8e8;padding:6px 10px">'
                       f"<strong>Warning: {escape(w)}</strong></p>"
                       for w in c.warnings.values())  # fmt: skip
    return (
        '<section id="systems"><h2>Systems side by side</h2>'
        + ("<h3>Your systems in brief</h3>" + _list(list(summaries.values())) if summaries
           else "")
        + warnings
        + f"<p>{escape(c.heldout.describe())} Every system is audited with the same families, "
        "statistics, tiers and minimum group sizes as the built-in audit, on the same users "
        "and held-out ratings.</p>"
        + "<h3>Load reports</h3>" + _list(loads)
        + "<h3>Side by side</h3>" + plain_table(shown_table(c), COLUMNS)
        + "<h3>Flagged per system</h3>" + _list(flagged)
        + ("<h3>Surrogate fidelity</h3>" + _list(surrogates) + "<p>A surrogate explanation "
           "describes the built-in SVD's ridge user side fitted to the system's scores, not the "
           "system itself; it is only shown with its fidelity.</p>" if surrogates else "")
        + paired + _list(c.notes) + "</section>"
    )  # fmt: skip


#: Fields of a load report in the JSON (counts and sentences; never its example rows).
LOAD_FIELDS = ("name", "kind", "rows_read", "rows_kept", "rows_rejected", "rejected",
               "unknown_users", "unknown_items", "summary")  # fmt: skip


def systems_json(comparison: SystemsComparison) -> dict[str, Any]:
    """Return the side by side as JSON-ready data (the report JSON's ``systems``, 2.5).

    ``heldout``: which held-out ratings were used (source, sentence, counts, cut and dates);
    ``rows``: one per system, ``engine.external.systems.TABLE_COLUMNS`` (the HTML table's
    numbers; NaN becomes ``null`` when rendered); ``surrogates``: each surrogate's fidelity
    summary; ``load``: each file's counts; ``pairs``: the paired comparison's sentences;
    ``notes``: what was left out to put the systems on the same footing; ``warnings``: the
    utility check's sentences (systems whose lists cannot score on utility) and
    ``summaries``: one short summary per uploaded system (both optional in the schema).
    """
    c = comparison
    reports = {r.name: r.to_dict() for s in c.external for r in s.load_reports}
    return {
        "heldout": c.heldout.to_dict(),
        "rows": c.table.astype(object).to_dict("records"),
        "surrogates": [s.to_dict() for s in c.surrogates.values()],
        "load": [{f: r[f] for f in LOAD_FIELDS} for r in reports.values()],
        "pairs": {head: list(lines) for head, lines in c.pairs.items()},
        "notes": list(c.notes),
        "warnings": list(c.warnings.values()),
        "summaries": list(system_summaries(c).values()),
    }


def systems_metric_rows(comparison: SystemsComparison) -> pd.DataFrame:
    """Every system's audit rows: ``METRIC_COLUMNS`` then ``system``, small groups withheld."""
    minimum = comparison.config.min_group_size
    parts = [
        withhold_small_groups(audit.result.metrics[METRIC_COLUMNS], minimum).assign(system=name)
        for name, audit in comparison.audits.items()
    ]
    return (
        pd.concat(parts, ignore_index=True)
        if parts
        else pd.DataFrame(columns=[*METRIC_COLUMNS, "system"])
    )
