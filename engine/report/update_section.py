"""The report's optional "Model update" section: what ``python -m engine update`` changed.

An analysis made by ``update`` (``engine.update.update_analysis``) is saved with
``derived_from = {"by": "update", "data", "model", "record"}`` in its manifest
(``engine.saved.manifest``): the data fingerprint and model key of the analysis it was
updated from, and the ``UpdateRecord`` as a dictionary. ``update_section`` turns that into
the plain data of ``Report.update`` (the JSON report's ``update`` object, schema 2.4);
``update_section_html`` renders it (HTML and PDF). ``with_update`` attaches it to a report;
``update_origin`` builds the same ``derived_from`` for an update made elsewhere (the
dashboard's Model page keeps it in the session, so its Report page carries the section).
The CSV stays the audit's tidy metric rows (the update is not a metric row).

Aggregates only: the record's ``largest_changes`` (user and item ids) are left out; the
section keeps the largest and median size of the touched users' largest prediction
change. What it means for the reader (``reading``): the touched users' parameters are
the exact ridge solution of their whole history on the model's item side; the others are
unchanged; the global mean is kept; without item refresh the touched items keep their
trained side and new items have none (predicted ``mu + b_u``); the report's accuracy
comes from the evaluation, a retrain on the merged data, which measures the method and
not this update. A run kept in Spark updated by ``engine.saved.kept_update`` has
``derived_from["after"]`` (the merged data's name, sizes and dates): its report's
evaluation and audit stay those of the run it was updated from, on the data before the
batch (``evaluated`` is "source", else "merged"; schema 2.8), and the reading says so.
"""

from __future__ import annotations

import dataclasses
from html import escape
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.report.build import Report

#: The record's counts copied into the section, with their labels in the HTML table.
COUNTS: dict[str, str] = {
    "ratings_added": "ratings of new (user, item) pairs",
    "ratings_replaced": "ratings replacing a saved rating of the pair",
    "ratings_replaced_changed": "of which changed value",
    "users_refit": "users refit (every user with a rating in the batch)",
    "new_users": "of which new users, folded in",
    "users_refit_for_items": "other users refit because an item they rated was refreshed",
    "items_touched": "items with a rating in the batch",
    "items_refreshed": "items refreshed (mirror ridge step)",
    "new_items": "new items",
    "new_items_without_item_side": "new items without bias or factors",
}


def _count(record: dict[str, Any], key: str) -> int:
    value = record.get(key)
    return int(value) if isinstance(value, (int, float)) else 0


def update_section(derived_from: dict[str, Any] | None) -> dict[str, Any] | None:
    """Return ``Report.update`` from a manifest's ``derived_from`` (None when not an update).

    Keys: ``data_fingerprint`` and ``model_key`` (the analysis updated from), ``record``
    (True when the update's record was saved; an analysis saved before it was not has
    only the two keys), ``batch`` (name, fingerprint, rows read, kept, rejected and
    rejected by reason), ``refresh_items``, every key of ``COUNTS``, ``max_abs_change``
    and ``median_abs_change`` (stars, of each touched existing user's largest unclipped
    prediction change over the old items), ``seconds`` (the update's wall time),
    ``reading`` (sentences: what it means), ``notes`` (the record's conventions),
    ``evaluated`` ("merged": the report's evaluation retrains on the merged data; "source":
    a kept run's, of the run updated from) and, for "source", ``after`` (the merged data's
    name, ratings, users and items).
    """
    if not derived_from or derived_from.get("by") != "update":
        return None
    record = derived_from.get("record")
    section: dict[str, Any] = {
        "data_fingerprint": str(derived_from.get("data", "")),
        "model_key": str(derived_from.get("model", "")),
        "record": isinstance(record, dict),
    }
    if not isinstance(record, dict):
        section["reading"] = [
            f"This model was updated from the analysis of the data "
            f"{section['data_fingerprint'][:12]} (model {section['model_key'][:12]}), not "
            "retrained; the update's record was not saved with this analysis, so what it "
            "changed cannot be shown."
        ]
        return section
    batch = dict(record.get("batch") or {})
    rejected = {str(k): int(v) for k, v in (batch.get("rejected") or {}).items()}
    section["batch"] = {
        "name": str(batch.get("name", "")),
        "fingerprint": str(batch.get("fingerprint", "")),
        "rows_read": int(batch.get("rows_read") or 0),
        "rows_kept": int(batch.get("rows_kept") or 0),
        "rows_rejected": _count(record, "ratings_rejected"),
        "rejected": rejected,
    }
    section["refresh_items"] = bool(record.get("refresh_items"))
    section.update({key: _count(record, key) for key in COUNTS})
    for key in ("max_abs_change", "median_abs_change"):
        value = record.get(key)
        section[key] = float(value) if isinstance(value, (int, float)) else None
    section["seconds"] = float((record.get("seconds") or {}).get("total") or 0.0)
    after = derived_from.get("after")
    section["evaluated"] = "source" if isinstance(after, dict) else "merged"
    if isinstance(after, dict):
        section["after"] = {key: after.get(key) for key in ("name", "ratings", "users", "items")}
    section["reading"] = _reading(section)
    section["notes"] = [str(n) for n in record.get("notes") or []]
    return section


def _reading(s: dict[str, Any]) -> list[str]:
    """Return what the update means for a reader of this report, in sentences."""
    batch = s["batch"]
    reasons = ", ".join(f"{n:,} {r}" for r, n in batch["rejected"].items() if n)
    out = [
        f"This model was not retrained: it is the model of the "
        f"{'run kept in Spark' if s['evaluated'] == 'source' else 'analysis'} of the data "
        f"{s['data_fingerprint'][:12]} (model {s['model_key'][:12]}), updated with the batch "
        f"{batch['name']} ({batch['rows_read']:,} rows read, {batch['rows_kept']:,} kept, "
        f"{batch['rows_rejected']:,} rejected{': ' + reasons if reasons else ''}) in "
        f"{s['seconds']:.2f} s.",
        f"{s['users_refit']:,} users with a rating in the batch were refit exactly on their "
        f"whole history ({s['new_users']:,} of them new, folded in); every other user's "
        "parameters are as trained, and the global mean was not re-estimated.",
    ]
    if s["ratings_replaced"]:
        out.append(
            f"{s['ratings_replaced']:,} batch ratings were of pairs already rated: each "
            f"replaced the saved rating ({s['ratings_replaced_changed']:,} changed value)."
        )
    if s["refresh_items"]:
        out.append(
            f"{s['items_refreshed']:,} touched items were refreshed by the mirror ridge step "
            f"({s['new_items']:,} of them new), and {s['users_refit_for_items']:,} other users "
            "who rated them were refit on the new item side."
        )
    else:
        out.append(
            f"The item side was kept as trained: the {s['items_touched']:,} items with a "
            "rating in the batch were not refreshed, so their biases and factors ignore the "
            "batch."
        )
    if s["new_items_without_item_side"]:
        out.append(
            f"{s['new_items_without_item_side']:,} new items have no bias or factors: they "
            "are predicted mu + b_u (no item effect), and their ratings inform only their "
            "users' biases; refresh items (--refresh-items) or retrain to learn them."
        )
    if s["max_abs_change"] is not None:
        known = s["users_refit"] - s["new_users"]
        out.append(
            f"For each of the {known:,} refit users the model knew before, the largest change "
            "of a prediction over the items it knew before: at most "
            f"{s['max_abs_change']:.3f} stars; the median of these {known:,} largest changes "
            f"is {s['median_abs_change']:.3f}"
            + (f" (the {s['users_refit_for_items']:,} users refit for refreshed items are not "
               "measured)." if s["users_refit_for_items"] else ".")
        )  # fmt: skip
    source = "run" if s["evaluated"] == "source" else "analysis"
    compare = (
        f"To measure the update, compare it with the {source} it came from on later ratings "
        "(python -m engine compare A B --window LATER)."
    )
    if s["evaluated"] == "source":
        after = s["after"]
        out.append(
            f"The model now rests on {after['ratings']:,} ratings of {after['users']:,} users "
            f"and {after['items']:,} items ({after['name']}). The data profile, accuracy and "
            "audit in this report are those of the run kept in Spark that it was updated "
            "from, on the data before the batch: an update does not evaluate or audit again "
            "(run --engine spark --keep-in-spark on the merged data does). " + compare
        )
    else:
        out.append(
            "The accuracy and audit in this report come from an evaluation that retrains on "
            "the merged data: they measure the method on these data, not this update. " + compare
        )
    return out


def update_origin(data_fingerprint: str, model_key: str, record: dict[str, Any]) -> dict[str, Any]:
    """Return the manifest's ``derived_from`` of an update, as ``python -m engine update`` saves it.

    ``data_fingerprint`` and ``model_key``: the analysis updated from; ``record``:
    ``UpdateRecord.to_dict()`` (numpy scalars unwrapped, non-finite numbers as None).
    """
    from engine.report.formats import _plain

    return {"by": "update", "data": str(data_fingerprint), "model": str(model_key),
            "record": _plain(record)}  # fmt: skip


#: What the executive summary of an updated analysis's report says first (``summary_lead``).
SUMMARY_LEAD = (
    "This is the report of an updated analysis, but its accuracy and audit are not of the "
    "updated model: the report's evaluation retrains a model on the merged data (the saved "
    "ratings and the batch), so they measure that retrained model. To measure the updated "
    "model itself (B), compare it with the analysis it came from (A) on later ratings: "
    "python -m engine compare A B --window LATER (or the Compare versions page)."
)


#: ``SUMMARY_LEAD`` for a run kept in Spark and updated: its figures are of the run before.
KEPT_SUMMARY_LEAD = (
    "This is the report of an updated run, but its data profile, accuracy and audit are "
    "those of the run it was updated from, before the batch: an update of a run kept in "
    "Spark refits the touched users and does not evaluate or audit again. To measure the "
    "updated model itself (B), compare it with the run it came from (A) on later ratings: "
    "python -m engine compare A B --window LATER (or the Compare versions page)."
)


def summary_lead(section: dict[str, Any] | None) -> str | None:
    """Return the sentence an update's executive summary starts with (None otherwise).

    ``section``: ``Report.update``.
    """
    if section is None:
        return None
    return KEPT_SUMMARY_LEAD if section.get("evaluated") == "source" else SUMMARY_LEAD


def with_update(report: Report, derived_from: dict[str, Any] | None) -> Report:
    """``report`` with its "Model update" section (unchanged when not an update).

    The executive summary's evaluation item then names the evaluation's protocol
    ("in the 5-fold evaluation"), so that its figures are not read against those of a
    comparison on a temporal window.
    """
    section = update_section(derived_from)
    if section is None:
        return report
    from engine.report.summary import protocol_words, with_protocol

    protocol = protocol_words((report.model or {}).get("evaluation"))
    summary = with_protocol(list(report.summary), protocol)
    return dataclasses.replace(report, update=section, summary=summary)


def _row(label: str, value: object) -> str:
    return f"<tr><th>{escape(label)}</th><td>{escape(str(value))}</td></tr>"


def update_section_html(section: dict[str, Any]) -> str:
    """Return the ``<section id="update">`` HTML of ``Report.update`` (data strings escaped)."""
    reading = "".join(f"<li>{escape(s)}</li>" for s in section["reading"])
    parts = [
        '<section id="update"><h2>Model update</h2>',
        f"<p>This {'run' if section.get('evaluated') == 'source' else 'analysis'}'s model "
        "was brought up to date with new ratings (<code>python -m engine update</code>), not "
        "retrained. What that means:</p>",
        f"<ul>{reading}</ul>",
    ]
    rows = [
        _row("updated from: data fingerprint", section["data_fingerprint"][:16]),
        _row("updated from: model key", section["model_key"][:16]),
    ]
    if section["record"]:
        batch = section["batch"]
        rows += [
            _row("batch", batch["name"]),
            _row("batch fingerprint", batch["fingerprint"][:16]),
            _row("batch rows read / kept / rejected",
                 f"{batch['rows_read']:,} / {batch['rows_kept']:,} / {batch['rows_rejected']:,}"),
            *(_row(f"rejected: {reason}", f"{n:,}") for reason, n in batch["rejected"].items()),
            _row("items refreshed", "yes" if section["refresh_items"] else "no"),
            *(_row(label, f"{section[key]:,}") for key, label in COUNTS.items()),
        ]  # fmt: skip
    parts.append("<table>" + "".join(rows) + "</table>")  # the record's notes: in ``reading``
    return "".join(parts) + "</section>"
