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

import dataclasses
import platform
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from engine.audit.groups import user_attribute_groups
from engine.audit.inputs import ranking_means, user_profile
from engine.audit.registry import Registry
from engine.audit.run import AuditResult, user_groupings_of
from engine.audit.specs import REGISTRY
from engine.audit.tables import (
    RANKING_BY_GROUP_COLUMNS,
    accuracy_of_error_sums,
    error_sums_by_model,
    ranking_by_group,
)
from engine.data.profile import DatasetProfile, dataset_profile
from engine.data.types import LoadReport, RatingData
from engine.errors import ConfigError
from engine.evaluate import Evaluation
from engine.explain.titles import item_titles, titles_for
from engine.model.config import ModelConfig
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

#: 2.4: optional "update"; 2.5: "systems"; 2.6: "over_time" (monitor); 2.7: "ranking_by_group";
#: 2.8: "update.evaluated" and "update.after" (a kept run's update).
SCHEMA_VERSION = "2.8"
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
#: The ranking metric the models are compared on by group (``Report.ranking_by_group``).
GROUP_RANKING_METRIC = "ndcg"
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
    ranking_by_group
        ``grouping, group, model, n_users, value``: each ranking model's NDCG@k over all
        users and per group of every audited user grouping (``ranking_by_group_table``);
        empty with fewer than two ranking models.
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
    ranking_by_group: pd.DataFrame
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
    same data, settings and seed. The in-memory route of ``assemble_report``.
    """
    parts = report_parts(data, model, evaluation, result, created)
    return assemble_report(result, **parts.arguments(), sections=sections)


def report_parts(
    data: RatingData,
    model: TrainedModel,
    evaluation: Evaluation,
    result: AuditResult,
    created: datetime | None = None,
) -> ReportParts:
    """Compute what the report shows next to the audit from in-memory data (``ReportParts``).

    The in-memory counterpart of ``engine.spark.report.report_parts_in_spark``;
    ``created`` as in ``build_report``.
    """
    profile = dataset_profile(data)
    return ReportParts(
        profile=profile,
        load=data.report,
        model=model.config,
        accuracy=model_accuracy(evaluation),
        evaluation=_evaluation_settings(evaluation),
        tradeoff=_tradeoff(data, evaluation, result),
        ranking_by_group=_ranking_by_group(data, evaluation, result),
        top_items=most_recommended(
            audited_lists(result), profile.item_popularity, item_titles(data)
        ),
        provenance=provenance(data, model, evaluation, created),
    )


@dataclass(frozen=True)
class ReportParts:
    """What a ``Report`` shows next to the audit: ``assemble_report``'s keyword arguments.

    ``build_report`` computes them from in-memory data, ``engine.spark.report`` from
    aggregates of ratings kept in Spark; ``engine.saved.kept`` stores them, so a report of
    ratings kept in Spark can be assembled again without Spark.
    """

    profile: DatasetProfile
    load: LoadReport
    model: ModelConfig
    accuracy: pd.DataFrame
    evaluation: dict[str, Any]
    tradeoff: pd.DataFrame
    ranking_by_group: pd.DataFrame
    top_items: pd.DataFrame
    provenance: dict[str, Any]

    def arguments(self) -> dict[str, Any]:
        """Return the fields by name, as they are (not copied, not converted)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def assemble_report(
    result: AuditResult,
    *,
    profile: DatasetProfile,
    load: LoadReport,
    model: ModelConfig,
    accuracy: pd.DataFrame,
    evaluation: dict[str, Any],
    tradeoff: pd.DataFrame,
    ranking_by_group: pd.DataFrame,
    top_items: pd.DataFrame,
    provenance: dict[str, Any],
    sections: tuple[str, ...] | list[str] | None = None,
) -> Report:
    """Assemble a ``Report`` from an audit and what the report shows next to it.

    Each part is what ``build_report`` computes from in-memory data, and what
    ``engine.spark.report`` computes from aggregates of data kept in Spark: ``profile``
    (``DatasetProfile``), ``load`` (the load report), ``model`` (the settings trained
    with), ``accuracy`` (``model_accuracy``'s columns), ``evaluation`` (``evaluation_settings``),
    ``tradeoff`` (``tradeoff_table``), ``ranking_by_group`` (``ranking_by_group_table``),
    ``top_items`` (``most_recommended``) and
    ``provenance`` (``provenance_of``). ``sections`` as in ``build_report``.
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
    return Report(
        title=f"Fairness report: {profile.name}",
        sections=chosen,
        headline=headline(metrics, accuracy, result.config),
        summary=executive_summary(
            metrics,
            accuracy,
            result.config,
            profile.n_users,
            result.registry,
            k=evaluation["k"],
            protocol=protocol_words(evaluation),
            delta_gap=result.delta_gap,
        ),
        findings=findings(metrics, result.registry),
        notable=findings(metrics, result.registry, tier="notable"),
        context=data_context(metrics, result.config, result.registry),
        insufficient_note=insufficient_summary(metrics, minimum),
        dataset=profile.to_dict(),
        load=load_summary(load),
        model={"config": model.settings_in_use(), "evaluation": evaluation},
        accuracy=accuracy,
        tradeoff=tradeoff,
        ranking_by_group=ranking_by_group,
        metrics=metrics,
        catalogue=result.catalogue.reset_index(drop=True),
        yao=withhold_by_size(result.yao, minimum),
        delta_gap=withhold_by_size(result.delta_gap, minimum),
        bias_disparity=_withhold_bias_disparity(result.bias_disparity, result.metrics, minimum),
        top_items=top_items,
        hints=result.hints,
        notes=list(result.notes),
        definitions=definitions(result.registry),
        limitations=limitations(profile, result),
        audit_config={
            **asdict(result.config),  # None attributes = every suitable one; these were:
            "audited_attributes": {k: list(v) for k, v in result.attribute_groupings.items()},
        },
        provenance=provenance,
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


def withhold_by_size(table: pd.DataFrame, minimum: int) -> pd.DataFrame:
    """Blank the values of a per-group table's rows with fewer than ``minimum`` ``n_users``.

    For the audit's Yao and delta-GAP tables, as ``withhold_small_groups`` for its rows.
    """
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

    ``accuracy_table`` of the evaluation's fold metrics, models in the evaluation's order.
    """
    return accuracy_table(evaluation.fold_metrics, evaluation.evaluation.models)


def accuracy_table(fold_metrics: pd.DataFrame, models: tuple[str, ...] | list[str]) -> pd.DataFrame:
    """Mean and std over the folds of every metric: ``model, metric, mean, std``.

    ``fold_metrics``: tidy ``model, fold, metric, value``. Wall-time metrics
    (``fit_seconds``) are left out, so the table is reproducible; models keep the order of
    ``models``.
    """
    metrics = fold_metrics[~fold_metrics["metric"].isin(_UNREPRODUCIBLE)]
    table = metrics.groupby(["model", "metric"], sort=False)["value"].agg(["mean", "std"])
    table = table.reset_index()
    order = {name: i for i, name in enumerate(models)}
    table["order"] = table["model"].map(order)
    return table.sort_values(["order", "metric"], kind="stable").drop(columns="order")


def _tradeoff(data: RatingData, evaluation: Evaluation, result: AuditResult) -> pd.DataFrame:
    return tradeoff_table(
        data.users, data.ratings["user_id"].unique(), error_sums_by_model(evaluation), result
    )


def tradeoff_table(
    users: pd.DataFrame | None,
    rated: Iterable[str],
    sums: dict[str, pd.DataFrame],
    result: AuditResult,
) -> pd.DataFrame:
    """Each rating model's overall RMSE and largest gap between groups of each user attribute.

    ``users``: the attribute table (``RatingData.users``); ``rated``: the ids of users with
    a rating; ``sums``: model -> per-user ``se, n`` (``accuracy_of_error_sums``). Columns
    ``grouping, model, overall_rmse, max_gap, groups_compared``, for the attributes the audit
    grouped by (``max_gap`` NaN where fewer than two groups are large enough to compare).
    """
    columns = ["grouping", "model", "overall_rmse", "max_gap", "groups_compared"]
    if users is None:
        return pd.DataFrame(columns=columns)
    audited = result.attribute_groupings.get("user", {})  # column -> grouping name
    attributes = [c for c in users.columns if c in audited]
    groups, _ = user_attribute_groups(users, rated, attributes, result.config.max_groups)
    frames = [
        accuracy_of_error_sums(sums, groups[attribute], result.config.min_group_size).assign(
            grouping=audited[attribute]
        )
        for attribute in attributes
    ]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]


def _ranking_by_group(
    data: RatingData, evaluation: Evaluation, result: AuditResult
) -> pd.DataFrame:
    """``ranking_by_group_table`` of in-memory data: every ranked model of ``evaluation``."""
    table = evaluation.user_ranking
    means = {
        str(model): ranking_means(table, model, [GROUP_RANKING_METRIC])[GROUP_RANKING_METRIC]
        for model in pd.unique(table["model"])
    }
    profile = user_profile(data.ratings, data.ratings["item_id"].value_counts())
    return ranking_by_group_table(data.users, profile, means, result)


def ranking_by_group_table(
    users: pd.DataFrame | None,
    profile: pd.DataFrame,
    means: dict[str, pd.Series],
    result: AuditResult,
) -> pd.DataFrame:
    """Each ranking model's NDCG@k over all users and per group of the audit's user groupings.

    ``users``: the attribute table; ``profile``: ``n_ratings, mean_popularity`` per user
    with a rating (``engine.audit.inputs.user_profile``), from which the derived groupings
    come; ``means``: model -> per-user NDCG@k (``engine.audit.inputs.ranking_means``).
    ``engine.audit.tables.ranking_by_group`` over the groupings the audit made with
    ``result.config`` (``user_groupings_of``: the chosen attributes, then activity and
    popularity propensity), so a group here is the audit's group and the SVD's value is the
    audit's. Empty (``RANKING_BY_GROUP_COLUMNS``) with fewer than two models: the audit's
    rows already show the one.
    """
    if len(means) < 2:
        return pd.DataFrame(columns=RANKING_BY_GROUP_COLUMNS)
    groupings = user_groupings_of(users, profile, result.config, [])
    return ranking_by_group(means, groupings, result.config.min_group_size)


def audited_lists(result: AuditResult) -> pd.DataFrame:
    """Return the audit's top-k lists (``AuditResult.lists``); refuse a result without them."""
    if result.lists is None:
        raise ConfigError(
            "This audit result carries no top-k lists (AuditResult.lists), so the report "
            "cannot count the most recommended items: run the audit with run_audit."
        )
    return result.lists


def most_recommended(
    lists: pd.DataFrame, popularity: pd.Series, titles: dict[str, str]
) -> pd.DataFrame:
    """Return the ``TOP_ITEMS`` items that appear most often in the audited top-k ``lists``.

    ``lists`` are ``AuditResult.lists`` (the lists the audit measured, not recomputed);
    ``popularity``: ratings per item (index ``item_id``); ``titles``: ``item_titles``.
    Columns ``title`` (the id where there is none), ``recommendations`` (number of
    lists), ``share`` (of all list slots), ``ratings`` (how often the item was rated).
    Ties go to the item id.
    """
    counts = lists.groupby("item_id").size().rename("recommendations").reset_index()
    counts = counts.sort_values(["recommendations", "item_id"], ascending=[False, True])
    top = counts.head(TOP_ITEMS).copy()
    top["share"] = top["recommendations"] / len(lists)
    top["ratings"] = popularity.reindex(top["item_id"]).fillna(0).astype(int).to_numpy()
    top["title"] = titles_for(top["item_id"], titles)
    return top[["title", "recommendations", "share", "ratings"]].reset_index(drop=True)


def load_summary(report: LoadReport) -> dict[str, Any]:
    """Summarise the load report: files, row counts, rejections, scale, warnings.

    The example rows of what was rejected are left out (they are individual ratings).
    """
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
    return evaluation_settings(
        split=settings.split,
        protocol=evaluation.protocol,
        protocol_fields=settings.protocol_fields(),
        cold_start={
            name: int(splits[f"n_cold_{name}"].sum()) for name in ("users", "items", "ratings")
        },
        folds=settings.n_splits,
        seed=settings.seed,
        k=settings.k,
        threshold=settings.threshold,
        threshold_source=evaluation.threshold_source,
        relevance_rule=evaluation.relevance_rule,
        models=list(settings.models),
        skipped=dict(evaluation.skipped),
        notes=list(evaluation.notes),
    )


#: ``fold_assignment`` of an evaluation whose K folds were dealt by hashing each rating
#: (``engine.spark.evaluate``), not by a seeded shuffle (the report schema's definition).
HASHED_FOLDS = "hash"


def evaluation_settings(
    *,
    split: str,
    protocol: str,
    protocol_fields: dict[str, object],
    cold_start: dict[str, int],
    folds: int,
    seed: int,
    k: int,
    threshold: float | None,
    threshold_source: str,
    relevance_rule: str,
    models: list[str],
    skipped: dict[str, str],
    notes: list[str],
) -> dict[str, Any]:
    """Gather the evaluation's settings as ``Report.model["evaluation"]`` holds them.

    ``protocol``: the protocol in words; ``protocol_fields``: the settings its split used
    (``EvaluationConfig.protocol_fields``); ``cold_start``: held-out ``users``, ``items``
    and ``ratings`` without a training rating, summed over the splits; ``skipped``:
    model -> why it was not evaluated.
    """
    return {
        "split": split,
        "protocol": protocol,
        **protocol_fields,
        "cold_start": cold_start,
        "folds": folds,
        "seed": seed,
        "k": k,
        "relevance_threshold": threshold,
        "threshold_source": threshold_source,
        "relevance_rule": relevance_rule,
        "models": models,
        "skipped": skipped,
        "notes": notes,
    }


def limitations(profile: DatasetProfile, result: AuditResult) -> list[str]:
    """List the report's limitations: general, the data's, then the audit's notes.

    The data's: synthetic data, no user attributes (``profile``).
    """
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
    if profile.synthetic:
        out.insert(0, "The dataset is synthetic (generated with planted effects); its "
                   "findings say nothing about real users.")  # fmt: skip
    if not profile.user_attributes:
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

    ``provenance_of`` the in-memory data; ``versions`` adds pyspark's when the model was
    trained by the Spark engine.
    """
    return provenance_of(
        data.name, data.synthetic, data.fingerprint, data.report, data.n_users, data.n_items,
        model.config, None if evaluation is None else evaluation.evaluation.seed, created,
    )  # fmt: skip


def provenance_of(
    name: str,
    synthetic: bool,
    fingerprint: str,
    report: LoadReport,
    n_users: int,
    n_items: int,
    model: ModelConfig,
    evaluation_seed: int | None = None,
    created: datetime | None = None,
) -> dict[str, Any]:
    """Say where the numbers come from: dataset, model and seed, versions, creation time.

    ``provenance`` gives the parts of a ``RatingData``. ``created`` defaults to now (UTC);
    ``versions`` adds pyspark's when ``model.engine`` is ``"spark"``.
    """
    versions = {"python": platform.python_version()}
    for package in PACKAGES + (("pyspark",) if model.engine == "spark" else ()):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "not installed"
    return {
        "dataset": {
            "name": name,
            "synthetic": synthetic,
            "fingerprint": fingerprint,
            "rows_read": report.rows_read,
            "rows_kept": report.rows_kept,
            "rows_rejected": report.rows_rejected,
            "users": n_users,
            "items": n_items,
        },
        "model": {"seed": model.seed, "config": model.settings_in_use()},
        "evaluation_seed": evaluation_seed,
        "versions": versions,
        "created": (created or datetime.now(UTC)).isoformat(timespec="seconds"),
    }
