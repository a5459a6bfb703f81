"""The report model: everything a fairness report says, as plain data, before any rendering.

``build_report`` gathers the audit, the evaluation, the dataset profile and the load
report into one ``Report``. Every renderer (HTML, PDF, JSON, CSV) reads only this object,
so the four formats cannot disagree.

Privacy: the report carries aggregates only. No user id and no individual rating is
copied into it (the load report's example rows are left out); groups below the audit's
minimum size keep their size but lose every value (``value``, CI, ratio, p-values), in the
metric table and in the Yao & Huang, bias-disparity and delta-GAP tables.
"""

from __future__ import annotations

import platform
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from engine.audit.groups import user_attribute_groups
from engine.audit.registry import Registry
from engine.audit.run import AuditResult, accuracy_by_model
from engine.audit.specs import REGISTRY
from engine.data.profile import DatasetProfile, dataset_profile
from engine.data.types import RatingData
from engine.errors import ConfigError
from engine.evaluate import Evaluation
from engine.explain.titles import item_titles, titles_for
from engine.model.svd import TrainedModel
from engine.report.findings import Finding, findings, headline
from engine.report.summary import (
    SummaryItem,
    data_context,
    executive_summary,
    insufficient_summary,
    protocol_words,
)

if TYPE_CHECKING:  # the monitor trains models: imported only by the callers that use it
    from engine.external.systems import SystemsComparison
    from engine.monitor import Monitoring

SCHEMA_VERSION = "2.6"  # 2.4: optional "update"; 2.5: "systems"; 2.6: "over_time" (monitor)
#: Sections of the human-readable report, in order. JSON and CSV always carry everything.
SECTIONS: dict[str, str] = {
    "summary": "Summary of findings",
    "data": "What the data shows",
    "dataset": "Dataset and load report",
    "model": "Model and accuracy",
    "audit": "Audit by metric family",
    "explanations": "Explanation fidelity by group",
    "insufficient": "Insufficient-data groups",
    "definitions": "Metric definitions and conventions",
    "limitations": "Limitations",
    "provenance": "Provenance",
}
#: Columns of ``Report.metrics`` (the audit's rows without the repeated definition text).
METRIC_COLUMNS = [
    "family", "metric", "scope", "grouping", "group", "n_users", "n_items", "n_raters",
    "n_ratings", "value", "ci_low", "ci_high", "reference_group", "ratio", "p_value",
    "p_method", "p_is_bound", "p_adjusted", "flag", "tier", "direction", "severity", "status",
    "better",
]  # fmt: skip
_WITHHELD = ["value", "ci_low", "ci_high", "ratio", "p_value", "p_adjusted", "severity"]
#: Metrics excluded from the accuracy table because they differ run to run (wall time).
_UNREPRODUCIBLE = {"fit_seconds"}
TOP_ITEMS = 10
PACKAGES = ("numpy", "pandas", "scikit-surprise", "shap", "plotly", "streamlit")
CONVENTIONS = [
    "Confidence intervals are 95% percentile intervals from bootstrapping users (a user's "
    "ratings are correlated, so users are the unit of resampling).",
    "p-values come from permuting group labels between a group and the reference group "
    "(the largest group); exposure rows use the normal tail of the bootstrap distribution "
    "around the catalogue share.",
    "p-values are adjusted with Holm's step-down method within each question 'does this "
    "metric differ across the groups of this grouping?' (one metric, one grouping); every "
    "row keeps its raw p-value too. A permutation p-value at its floor 1/(1 + permutations) "
    "is shown as a bound ('< 0.0005'); a normal-approximation p-value is never shown below "
    "1e-6.",
    "Rows about the recommender (accuracy, top-N utility, popularity, calibration, exposure, "
    "explanations) are 'flagged' when their ratio to the reference leaves the band and they "
    "are significant after correction, 'notable' when significant but inside the band. The "
    "band's lower edge is the 'four-fifths' rule; a flag is a prompt to look, not a verdict.",
    "Rows about the data (the interaction share of item groups: what users rated, before "
    "any model) are context: shown in 'What the data shows', never flagged.",
    "Severity = |log ratio| x users affected (a group's users; for an item group, the users "
    "who rated its items). The executive summary (at most 7 items) takes the most severe "
    "finding of each metric family first, then the most severe of the rest (at most 2 per "
    "family before any third), and shows them largest first.",
    "Groups with fewer users than the minimum group size are 'insufficient data': they are "
    "never flagged or ranked, and the report withholds their values.",
]
#: References of what no metric spec declares: groupings, the audit's other tables, Holm.
GENERAL_REFERENCES = [
    "Abdollahpouri et al. (2019), The unfairness of popularity bias in recommendation "
    "(popularity propensity groups, delta-GAP).",
    "Yao and Huang (2017), Beyond parity: fairness objectives for collaborative filtering.",
    "Zhu, Wang, Caverlee (2020), Measuring and mitigating item under-recommendation bias "
    "(RSP, REO).",
    "Li et al. (2021), User-oriented fairness in recommendation (UGF, active vs inactive).",
    "Tsintzou, Pitoura, Tsaparas (2019), Bias disparity in recommendation systems.",
    "Holm (1979), A simple sequentially rejective multiple test procedure.",
]


def references(definitions: dict[str, dict[str, Any]]) -> list[str]:
    """List the report's references: those the metric ``definitions`` cite, then the general.

    Each cited reference appears once, with the keys of the metrics citing it in brackets;
    ``GENERAL_REFERENCES`` follow.
    """
    cited: dict[str, list[str]] = {}
    for key, definition in definitions.items():
        for reference in definition["references"]:
            cited.setdefault(reference, []).append(key)
    return [f"{r} [{', '.join(keys)}]." for r, keys in cited.items()] + GENERAL_REFERENCES


def definitions(registry: Registry) -> dict[str, dict[str, Any]]:
    """Describe every spec of ``registry``: ``metric -> MetricSpec.describe()``."""
    return {spec.key: spec.describe() for spec in registry}


#: The references of a report on the audit's own metrics (``REGISTRY``).
REFERENCES = references(definitions(REGISTRY))


@dataclass(frozen=True)
class Report:
    """One fairness report, renderer-independent.

    Attributes
    ----------
    title
        Report title (contains the dataset name, which came from the analyst).
    sections
        Keys of ``SECTIONS`` that the HTML and PDF show.
    headline
        Sentences with the audit's totals (rows about the recommender; data rows apart)
        and the model's accuracy.
    summary
        The executive summary: at most 7 ``SummaryItem`` s about the recommender, the most
        severe (``|log ratio| x users affected``) first (``engine.report.summary``).
    findings
        Flagged disparities of the recommender as ``Finding`` s, user groups served worse
        first.
    notable
        Notable rows (significant after correction, inside the band) as ``Finding`` s.
    context
        What the data shows: sentences on data-scope rows (interaction share), which are
        properties of the ratings, not of the recommender.
    insufficient_note
        One sentence: how many groups are below the minimum size, per grouping.
    dataset
        ``DatasetProfile.to_dict()`` (aggregates: counts, histogram, distribution summaries).
    load
        The load report without example rows: files, row counts, rejected by reason,
        duplicate policy, scale, attribute coverage, warnings.
    model
        ``config`` (the SVD settings), ``evaluation`` (``split``, the protocol and its
        parameters, ``protocol`` in words, ``cold_start`` counts, folds = the number of
        splits, seed, k, ``relevance_threshold`` with its ``threshold_source`` ("given"
        or "scale") and ``relevance_rule`` in words, models, skipped models, ``notes`` such as folds
        whose ranking metrics are undefined).
    accuracy
        ``model, metric, mean, std`` over folds for every model (out-of-fold); NaN where
        undefined (null in JSON, "n/a" with the reason in HTML).
    tradeoff
        ``grouping, model, overall_rmse, max_gap`` per user attribute (accuracy vs fairness).
    metrics
        Audit rows with ``METRIC_COLUMNS``; insufficient-data rows have no values.
    catalogue, yao, delta_gap, bias_disparity
        The audit's other tables (``AuditResult``), small groups withheld likewise.
    top_items
        ``title, recommendations, share, ratings``: the most recommended items
        in the audited top-k lists.
    hints
        Root-cause hints for flagged user groups.
    notes
        The audit's notes (merged groups, skipped families).
    definitions
        ``metric -> {family, level, better, name, definition, formula, references}`` for
        every metric spec of the audit's registry (``MetricSpec.describe``).
    limitations
        Sentences on what the report cannot show.
    audit_config
        The ``AuditConfig`` used, as a dictionary, plus ``audited_attributes``: ``{"user":
        [...], "item": [...]}``, the attribute columns audited (what ``None`` resolved to).
    provenance
        Dataset fingerprint and size, model settings and seed, package versions, ``created``.
    profile
        The ``DatasetProfile`` behind ``dataset`` (for the HTML charts; not serialised).
    monitoring
        An ``engine.monitor.Monitoring`` for the HTML/PDF "Over time" section (``audit``
        and ``run`` with ``--over-time WINDOW``; the dashboard's Over time page), else
        ``None``; in the JSON as ``over_time`` (``engine.report.over_time.over_time_json``,
        aggregates only), not in the CSV (``monitor`` writes ``monitor.csv``).
    update
        The "Model update" section of an analysis made by ``update``
        (``engine.report.update_section``: plain data, in the JSON as ``update``), else
        ``None``.
    systems
        An ``engine.external.SystemsComparison`` for the HTML/PDF "Systems side by side"
        section (``audit``/``run`` with ``--recommendations``/``--predictions``), else
        ``None``; in the JSON as ``systems`` and in the CSV as rows with a ``system``
        column (``engine.report.systems``; the CLI also writes ``systems.json``).
    """

    title: str
    sections: tuple[str, ...]
    headline: list[str]
    summary: list[SummaryItem]
    findings: list[Finding]
    notable: list[Finding]
    context: list[str]
    insufficient_note: str
    dataset: dict[str, Any]
    load: dict[str, Any]
    model: dict[str, Any]
    accuracy: pd.DataFrame
    tradeoff: pd.DataFrame
    metrics: pd.DataFrame
    catalogue: pd.DataFrame
    yao: pd.DataFrame
    delta_gap: pd.DataFrame
    bias_disparity: pd.DataFrame
    top_items: pd.DataFrame
    hints: list[dict[str, Any]]
    notes: list[str]
    definitions: dict[str, dict[str, Any]]
    limitations: list[str]
    audit_config: dict[str, Any]
    provenance: dict[str, Any]
    profile: DatasetProfile | None = field(default=None, repr=False, compare=False)
    monitoring: Monitoring | None = field(default=None, repr=False, compare=False)
    update: dict[str, Any] | None = None
    systems: SystemsComparison | None = field(default=None, repr=False, compare=False)

    @property
    def insufficient(self) -> pd.DataFrame:
        """``grouping, group, n_users, n_raters`` of every group below the minimum size.

        ``n_users`` counts a user group's users, ``n_raters`` an item group's raters.
        """
        rows = self.metrics[self.metrics["status"] == "insufficient data"]
        columns = ["grouping", "group", "n_users", "n_raters"]
        return rows[columns].drop_duplicates(["grouping", "group"]).reset_index(drop=True)


def build_report(
    data: RatingData,
    model: TrainedModel,
    evaluation: Evaluation,
    result: AuditResult,
    sections: tuple[str, ...] | list[str] | None = None,
    created: datetime | None = None,
) -> Report:
    """Assemble the ``Report`` of an audit (see the module docstring for what is withheld).

    ``sections`` chooses what the HTML/PDF show (default: all of ``SECTIONS``); ``created``
    defaults to now (UTC) and is the only field that differs between two runs with the
    same data, settings and seed.
    """
    chosen = tuple(SECTIONS) if sections is None else tuple(s for s in SECTIONS if s in sections)
    unknown = sorted(set(sections or ()) - set(SECTIONS))
    if unknown or not chosen:
        raise ConfigError(
            f"Unknown or no report sections {unknown or list(sections or [])}: choose from "
            f"{', '.join(SECTIONS)}."
        )
    minimum = result.config.min_group_size
    metrics = withhold_small_groups(result.metrics[METRIC_COLUMNS], minimum)
    accuracy = model_accuracy(evaluation)
    profile = dataset_profile(data)
    return Report(
        title=f"Fairness report: {data.name}",
        sections=chosen,
        headline=headline(metrics, accuracy, result.config),
        summary=executive_summary(
            metrics,
            accuracy,
            result.config,
            data.n_users,
            result.registry,
            k=evaluation.evaluation.k,
            protocol=protocol_words(_evaluation_settings(evaluation)),
        ),
        findings=findings(metrics, result.registry),
        notable=findings(metrics, result.registry, tier="notable"),
        context=data_context(metrics, result.config, result.registry),
        insufficient_note=insufficient_summary(metrics, minimum),
        dataset=profile.to_dict(),
        load=_load_summary(data),
        model={
            "config": model.config.settings_in_use(),
            "evaluation": _evaluation_settings(evaluation),
        },
        accuracy=accuracy,
        tradeoff=_tradeoff(data, evaluation, result),
        metrics=metrics,
        catalogue=result.catalogue.reset_index(drop=True),
        yao=_withhold_by_size(result.yao, minimum),
        delta_gap=_withhold_by_size(result.delta_gap, minimum),
        bias_disparity=_withhold_bias_disparity(result.bias_disparity, result.metrics, minimum),
        top_items=most_recommended(data, _audited_lists(result)),
        hints=result.hints,
        notes=list(result.notes),
        definitions=definitions(result.registry),
        limitations=_limitations(data, result),
        audit_config={
            **asdict(result.config),  # None attributes = every suitable one; these were:
            "audited_attributes": {k: list(v) for k, v in result.attribute_groupings.items()},
        },
        provenance=provenance(data, model, evaluation, created),
        profile=profile,
    )


def withhold_small_groups(metrics: pd.DataFrame, minimum: int) -> pd.DataFrame:
    """Blank every value of rows whose group has fewer than ``minimum`` users."""
    out = metrics.reset_index(drop=True).copy()
    small = out["status"] == "insufficient data"
    withheld = [c for c in _WITHHELD if c in out]
    out[withheld] = out[withheld].astype(float)
    out.loc[small, withheld] = np.nan
    if "tier" in out:
        out.loc[small, "tier"] = ""
    return out


def _withhold_by_size(table: pd.DataFrame, minimum: int) -> pd.DataFrame:
    out = table.reset_index(drop=True).copy()
    if "n_users" not in out:
        return out
    values = [c for c in out.columns if c not in ("grouping", "group", "n_users", "n_items")]
    out[values] = out[values].astype(float)
    out.loc[out["n_users"] < minimum, values] = np.nan
    return out


def _withhold_bias_disparity(
    table: pd.DataFrame, metrics: pd.DataFrame, minimum: int
) -> pd.DataFrame:
    out = table.reset_index(drop=True).copy()
    if out.empty:
        return out
    sizes = metrics.drop_duplicates(["grouping", "group"]).set_index(["grouping", "group"])
    keys = pd.MultiIndex.from_arrays([out["grouping"], out["user_group"].astype(str)])
    n_users = sizes["n_users"].reindex(keys).to_numpy()
    values = ["b_input", "b_recommended", "bias_disparity"]
    out[values] = out[values].astype(float)
    out.loc[~(n_users >= minimum), values] = np.nan
    return out


def model_accuracy(evaluation: Evaluation) -> pd.DataFrame:
    """Mean and std over the folds of every evaluated metric: ``model, metric, mean, std``.

    Wall-time metrics (``fit_seconds``) are left out, so the table is reproducible; models
    keep the evaluation's order.
    """
    metrics = evaluation.fold_metrics[~evaluation.fold_metrics["metric"].isin(_UNREPRODUCIBLE)]
    table = metrics.groupby(["model", "metric"], sort=False)["value"].agg(["mean", "std"])
    table = table.reset_index()
    order = {name: i for i, name in enumerate(evaluation.evaluation.models)}
    table["order"] = table["model"].map(order)
    return table.sort_values(["order", "metric"], kind="stable").drop(columns="order")


def _tradeoff(data: RatingData, evaluation: Evaluation, result: AuditResult) -> pd.DataFrame:
    if data.users is None:
        return pd.DataFrame(columns=["grouping", "model", "overall_rmse", "max_gap"])
    audited = result.attribute_groupings.get("user", {})  # column -> grouping name
    attributes = [c for c in data.users.columns if c in audited]
    groups, _ = user_attribute_groups(
        data.users, data.ratings["user_id"].unique(), attributes, result.config.max_groups
    )
    frames = []
    for attribute in attributes:
        table = accuracy_by_model(evaluation, groups[attribute], result.config.min_group_size)
        frames.append(table.assign(grouping=audited[attribute]))
    if not frames:
        return pd.DataFrame(columns=["grouping", "model", "overall_rmse", "max_gap"])
    return pd.concat(frames, ignore_index=True)[["grouping", "model", "overall_rmse", "max_gap"]]


def _audited_lists(result: AuditResult) -> pd.DataFrame:
    if result.lists is None:
        raise ConfigError(
            "This audit result carries no top-k lists (AuditResult.lists), so the report "
            "cannot count the most recommended items: run the audit with run_audit."
        )
    return result.lists


def most_recommended(data: RatingData, lists: pd.DataFrame) -> pd.DataFrame:
    """Return the ``TOP_ITEMS`` items that appear most often in the audited top-k ``lists``.

    ``lists`` are ``AuditResult.lists`` (the lists the audit measured, not recomputed).
    Columns ``title`` (the id where there is none), ``recommendations`` (number of
    lists), ``share`` (of all list slots), ``ratings`` (how often the item was rated).
    Ties go to the item id.
    """
    counts = lists.groupby("item_id").size().rename("recommendations").reset_index()
    counts = counts.sort_values(["recommendations", "item_id"], ascending=[False, True])
    top = counts.head(TOP_ITEMS).copy()
    top["share"] = top["recommendations"] / len(lists)
    popularity = data.ratings.groupby("item_id").size()
    top["ratings"] = popularity.reindex(top["item_id"]).fillna(0).astype(int).to_numpy()
    top["title"] = titles_for(top["item_id"], item_titles(data))
    return top[["title", "recommendations", "share", "ratings"]].reset_index(drop=True)


def _load_summary(data: RatingData) -> dict[str, Any]:
    report = data.report
    return {
        "files": [
            {
                "role": f.role, "name": f.name, "format": f.format, "encoding": f.encoding,
                "delimiter": f.delimiter, "header": f.header, "columns": dict(f.columns),
                "ignored_columns": list(f.ignored_columns),
            }
            for f in report.files
        ],
        "rows_read": report.rows_read,
        "rows_kept": report.rows_kept,
        "rows_rejected": report.rows_rejected,
        "rejected": dict(report.rejected),
        "duplicate_policy": report.duplicate_policy,
        "scale": report.scale.describe(),
        "attribute_coverage": dict(report.attribute_coverage),
        "warnings": list(report.warnings),
    }  # fmt: skip


def _evaluation_settings(evaluation: Evaluation) -> dict[str, Any]:
    settings = evaluation.evaluation
    splits = evaluation.splits
    return {
        "split": settings.split,
        "protocol": evaluation.protocol,
        **settings.protocol_fields(),
        "cold_start": {
            name: int(splits[f"n_cold_{name}"].sum()) for name in ("users", "items", "ratings")
        },
        "folds": settings.n_splits,
        "seed": settings.seed,
        "k": settings.k,
        "relevance_threshold": settings.threshold,
        "threshold_source": evaluation.threshold_source,
        "relevance_rule": evaluation.relevance_rule,
        "models": list(settings.models),
        "skipped": dict(evaluation.skipped),
        "notes": list(evaluation.notes),
    }


def _limitations(data: RatingData, result: AuditResult) -> list[str]:
    out = [
        "The audit is observational: a disparity between groups is measured, not explained. "
        "Root-cause hints list differences between the groups' data, not proven causes.",
        "Accuracy and top-N utility come from out-of-fold predictions; popularity, exposure, "
        "calibration and explanation measures come from the model trained on all data (the "
        "lists users would see). Offline metrics on logged ratings inherit the selection "
        "bias of what users chose to rate.",
        "Groups are only as good as the attributes supplied; intersections of attributes "
        "are not audited, and a group hidden inside 'other' is not audited on its own.",
        f"Groups with fewer than {result.config.min_group_size} users are reported as "
        "insufficient data; a real disparity in a small group can go unflagged.",
        "Significance depends on group size: with many users, small differences are "
        "significant, which is why a flag also needs the ratio to leave the band "
        f"[{result.config.band[0]}, {result.config.band[1]}].",
    ]
    if data.synthetic:
        out.insert(0, "The dataset is synthetic (generated with planted effects); its "
                   "findings say nothing about real users.")  # fmt: skip
    if data.users is None:
        out.append("No user attributes were supplied: only derived user groups (activity, "
                   "popularity propensity) were audited.")  # fmt: skip
    return out + list(result.notes)


def provenance(
    data: RatingData,
    model: TrainedModel,
    evaluation: Evaluation | None = None,
    created: datetime | None = None,
) -> dict[str, Any]:
    """Where the numbers come from: dataset, model and seed, package versions, creation time.

    ``versions`` adds pyspark's when the model was trained by the Spark engine.
    """
    versions = {"python": platform.python_version()}
    for package in PACKAGES + (("pyspark",) if model.config.engine == "spark" else ()):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "not installed"
    report = data.report
    return {
        "dataset": {
            "name": data.name,
            "synthetic": data.synthetic,
            "fingerprint": data.fingerprint,
            "rows_read": report.rows_read,
            "rows_kept": report.rows_kept,
            "rows_rejected": report.rows_rejected,
            "users": data.n_users,
            "items": data.n_items,
        },
        "model": {"seed": model.config.seed, "config": model.config.settings_in_use()},
        "evaluation_seed": None if evaluation is None else evaluation.evaluation.seed,
        "versions": versions,
        "created": (created or datetime.now(UTC)).isoformat(timespec="seconds"),
    }
