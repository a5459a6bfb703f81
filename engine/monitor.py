"""Monitoring over time: data, model quality and fairness per calendar window, and drift.

``monitor(data, window, config)`` cuts the rating time into calendar windows
(``engine.monitor_windows``) and computes, per window ``w``:

Data (``Monitoring.data``)
    ``n_ratings``; ``n_users`` (active users: with a rating in ``w``); ``new_users`` /
    ``new_items`` (whose first rating in the whole data falls in ``w``); ``rating_mean``;
    ``gini`` (Gini coefficient of the window's item rating counts over the items rated in
    ``w``, in ``[0, 1)``, 0 = every item rated equally often; higher = more concentrated);
    ``short_head_share`` (share of the items rated in ``w`` that hold 80% of its ratings,
    ``engine.data.profile.short_head_size``; in ``(0, 1]``, lower = more concentrated);
    the rating distribution (``Monitoring.distribution``: share of each rating value).
Model quality (``Monitoring.quality``), windows ``w >= 1``
    Rolling origin with an expanding window (as ``engine.protocols``' ``rolling``): an SVD
    with ``config.model`` (seeded) is trained on every rating with ``t < start_w`` and
    tested on the ratings of ``w``. ``train_latest`` records the latest training time
    (always ``< start_w``). RMSE is over the test ratings whose user and item have a
    training rating (``engine.metrics``; lower is better); the others are cold start,
    counted apart (``n_cold_ratings``). NDCG@k (``engine.metrics``; binary relevance,
    rating >= threshold; higher is better) is over the users of ``w`` with a relevant
    rating in ``w`` and a training rating; each list ranks the items known to training
    that the user had not rated before ``w``.
Fairness (``Monitoring.fairness``, ``gap_changes``, ``exposure``; ``engine.monitor_fairness``)
    Per user attribute and window, each group's RMSE and NDCG@k ratio to the reference
    group (the group with most users in that window), tested as the audit does, and
    whether that gap changed vs the previous and the baseline window; per provider (the
    item attribute ``provider``, else the first item attribute) the position-weighted
    exposure share of the window's lists (weights ``1 / log2(1 + rank)``) and the share of
    the window's ratings, both monitored quantities with tested changes
    (``engine.monitor_changes``), the exposure share beside the provider's share of the
    catalogue known to training.

Per-window values with intervals (``Monitoring.values``) and their changes between windows
(``Monitoring.changes``) are defined in ``engine.monitor_changes``.

Conventions: a window with fewer than ``min_ratings`` ratings or fewer than
``min_group_size`` active users is "insufficient data" (its data row is kept; no model,
no test); the first window has no earlier ratings and no model quality. Ratings without a
time take no part. Derived audit groups (activity, popularity propensity) are not
monitored: they would be redefined in every window.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from engine.audit.groups import user_attribute_groups
from engine.checks import check_seed, is_finite_number, is_int
from engine.data.types import RatingData
from engine.errors import ConfigError
from engine.evaluate import held_out_predictions, held_out_ranking
from engine.ids import object_ids
from engine.metrics import resolve_threshold
from engine.model.config import ModelConfig
from engine.model.svd import Progress, train_svd
from engine.monitor_changes import QUANTITIES, change_table, value_table
from engine.monitor_data import data_table, distribution, window_status
from engine.monitor_fairness import (
    EXPOSURE_COLUMNS,
    catalogue_shares,
    exposure_table,
    gap_change_table,
    gap_summary,
    gap_table,
    list_units,
    provider,
    provider_units,
)
from engine.monitor_windows import (
    assign_windows,
    check_window,
    make_windows,
    partial_windows,
    resolve_baseline,
    window_names,
)
from engine.recommend import DEFAULT_BLOCK_BYTES


@dataclass(frozen=True)
class MonitorConfig:
    """How to monitor.

    Parameters
    ----------
    k
        Length of the top-N lists (NDCG@k, exposure), >= 1.
    threshold
        A rating >= threshold is relevant; ``None`` takes the top quarter of the scale.
    min_ratings
        A window with fewer ratings is "insufficient data" (default 100).
    min_group_size
        A window with fewer active users, and a group with fewer users in a window, is
        "insufficient data" (default 30, as the audit).
    bootstrap
        Bootstrap replicates over users for intervals (0 = none).
    permutations
        Label permutations per test (0 = no tests); the smallest p of this first pass is
        ``1 / (B + 1)``; p-values whose Holm decision depends on that resolution are
        redrawn with more (``engine.audit.stats.refine_permutation_p``).
    alpha, band
        A change is flagged when its ratio leaves ``band`` and its Holm-adjusted p is below
        ``alpha`` (the audit's rule, ``engine.audit.config.AuditConfig``).
    baseline
        The baseline window, by label (``"1998-03"``) or index; ``None`` = the first window
        whose test ratings are at most half cold start (``WARM_SHARE``; else the first window
        with a model), so that a warm-up window of new users is not the yardstick.
    user_attributes
        User attributes to group by; ``None`` = every suitable one.
    model
        The SVD settings each window's model is trained with (seeded).
    seed
        Seed of every resampling.
    """

    k: int = 10
    threshold: float | None = None
    min_ratings: int = 100
    min_group_size: int = 30
    bootstrap: int = 200
    permutations: int = 1000
    alpha: float = 0.05
    band: tuple[float, float] = (0.8, 1.25)
    baseline: str | int | None = None
    user_attributes: tuple[str, ...] | None = None
    model: ModelConfig = field(default_factory=ModelConfig)
    seed: int = 0

    def __post_init__(self) -> None:
        lowest = {"k": 1, "min_ratings": 1, "min_group_size": 1, "bootstrap": 0,
                  "permutations": 0}  # fmt: skip
        for name, low in lowest.items():
            value = getattr(self, name)
            if not is_int(value) or value < low:
                raise ConfigError(
                    f"MonitorConfig.{name}={value!r} is not allowed: use a whole number >= {low}."
                )
        check_seed("MonitorConfig", self.seed)
        if not (is_finite_number(self.alpha) and 0 < self.alpha < 1):
            raise ConfigError(f"MonitorConfig.alpha={self.alpha!r} must be in (0, 1), e.g. 0.05.")
        low, high = self.band
        if not (0 < low < 1 < high):
            raise ConfigError(f"MonitorConfig.band={self.band!r} must satisfy 0 < low < 1 < high.")


@dataclass(frozen=True)
class Monitoring:
    """Monitoring tables (tidy DataFrames; times in epoch seconds, UTC).

    Attributes
    ----------
    window
        The window specification used (``"month"``, ``"30d"``, ...).
    windows
        ``window, label, start, end, status`` (``"ok"`` | ``"insufficient data"``),
        ``reason`` (why insufficient, else ``""``), ``partial`` (the first or last window's
        partial coverage, ``"to 1998-03-07"``, else ``""``;
        ``engine.monitor_windows.partial_windows``).
    data
        ``window, label, n_ratings, n_users, new_users, new_items, rating_mean, gini,
        short_head_share`` (module docstring).
    distribution
        ``window, label, rating, share``.
    quality
        ``window, label, n_train, train_latest, n_test, n_cold_ratings, n_cold_users,
        n_users_ranked, rmse, ndcg, fit_seconds`` for windows with a model.
    values
        ``engine.monitor_changes.VALUE_COLUMNS``: each monitored quantity per window and
        group with its bootstrap interval.
    fairness
        ``engine.monitor_fairness.GAP_COLUMNS``: each user group's RMSE / NDCG@k ratio to the
        reference group per window, with CI, p, Holm-adjusted p, tier and sentence (no
        ratio where the group or the reference is insufficient data).
    gap_changes
        ``engine.monitor_fairness.GAP_CHANGE_COLUMNS``: whether each gap changed vs the
        previous and the baseline window.
    exposure
        ``window, label, grouping, group, exposure_share, catalogue_share, ratio``: the
        provider exposure share (tested in ``values`` / ``changes`` as ``exposure``) beside
        its catalogue share.
    changes
        ``engine.monitor_changes.CHANGE_COLUMNS``: each change vs the previous window and
        vs the baseline, with CI, p, Holm-adjusted p, tier and sentence.
    baseline
        The baseline window's index.
    sentences
        The flagged changes (of ``changes`` and ``gap_changes``) in words, most severe first.
    gap_sentences
        The flagged gaps of ``fairness`` in words, most severe first.
    notes
        What a reader must know (ratings without time, attributes left out).
    """

    window: str
    config: MonitorConfig
    windows: pd.DataFrame
    data: pd.DataFrame
    distribution: pd.DataFrame
    quality: pd.DataFrame
    values: pd.DataFrame
    fairness: pd.DataFrame
    gap_changes: pd.DataFrame
    exposure: pd.DataFrame
    changes: pd.DataFrame
    baseline: int
    sentences: list[str]
    gap_sentences: list[str]
    notes: list[str]

    def gap_summary(self) -> list[str]:
        """Per user attribute, what of its gaps was tested and flagged (``gap_summary``)."""
        return gap_summary(self.fairness, self.config.min_group_size)

    def window_names(self) -> list[str]:
        """Each window's label with its partial coverage (``"2020-05 (partial: to ...)"``)."""
        return window_names(self.windows)

    def flag_summary(self) -> list[str]:
        """Return the flagged changes and gap changes, one line per (quantity, group)."""
        names = dict(zip(self.windows["label"], self.window_names(), strict=True))
        return group_flags(self.changes, self.gap_changes, names)

    def gap_flag_summary(self) -> list[str]:
        """Return the flagged gaps, one line per (quantity, group) (``group_flags``)."""
        names = dict(zip(self.windows["label"], self.window_names(), strict=True))
        return group_flags(None, None, names, gaps=self.fairness)

    def tidy(self) -> pd.DataFrame:
        """All per-window quantities as one long table (``monitor.csv``).

        Columns ``table, window, label, grouping, group, quantity, value, ci_low, ci_high,
        status``: the data table's columns (``table`` "data"), the monitored values
        ("values"), fairness ratios ("fairness") and exposure shares ("exposure").
        """
        parts = []
        data = self.data.melt(["window", "label"], var_name="quantity", value_name="value")
        parts.append(data.assign(table="data", grouping="all", group="all"))
        parts.append(self.values.assign(table="values"))
        fair = self.fairness.assign(table="fairness", quantity=self.fairness["quantity"] + " ratio",
                                    value=self.fairness["ratio"])  # fmt: skip
        parts.append(fair)
        for name in ("exposure_share", "catalogue_share"):
            parts.append(self.exposure.assign(table="exposure", quantity=name,
                                              value=self.exposure[name]))  # fmt: skip
        columns = ["table", "window", "label", "grouping", "group", "quantity", "value",
                   "ci_low", "ci_high", "status"]  # fmt: skip
        return pd.concat([p.reindex(columns=columns) for p in parts], ignore_index=True)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: settings, every table as records, the sentences and notes."""
        tables = ("windows", "data", "distribution", "quality", "values", "fairness",
                  "gap_changes", "exposure", "changes")  # fmt: skip
        config = {k: v for k, v in self.config.__dict__.items() if k != "model"}
        return {
            "window": self.window,
            "settings": {**config, "model": self.config.model.__dict__},
            "baseline": str(self.windows["label"].iloc[self.baseline]),
            "flagged_summary": self.flag_summary(),
            "flagged": list(self.sentences),
            "flagged_gaps_summary": self.gap_flag_summary(),
            "flagged_gaps": list(self.gap_sentences),
            "gap_summary": self.gap_summary(),
            "notes": list(self.notes),
            **{name: getattr(self, name).to_dict("records") for name in tables},
        }


def _ratios(values: pd.Series) -> str:
    low, high = float(values.min()), float(values.max())
    if f"{low:.2f}" == f"{high:.2f}":
        return f"ratio {low:.2f}"
    return f"ratios {low:.2f} to {high:.2f}"


def group_flags(
    changes: pd.DataFrame | None, gap_changes: pd.DataFrame | None,
    names: dict[str, str] | None = None, *, gaps: pd.DataFrame | None = None,
) -> list[str]:  # fmt: skip
    """Return the flagged rows in one line per (quantity, group), most severe (summed) first.

    A run over many windows flags the same drift window after window; one sentence each
    buries the few distinct findings. Each line names the quantity and group, then per
    comparison the windows flagged and the range of their ratios: "RMSE for gender = F
    (3 flagged): vs the previous window in 1998-01 (ratio 1.31); vs the baseline window
    1997-10 in 1998-02, 1998-03 (ratios 1.28 to 1.40)". ``changes`` and ``gap_changes`` are
    ``Monitoring.changes`` / ``gap_changes`` (ratio: of the values; of the gap ratios);
    with ``gaps`` (``Monitoring.fairness``) the lines are the flagged gaps instead (ratio:
    to the reference group). ``names`` maps a window label to the name shown (partial
    windows). The full sentences stay in ``Monitoring.sentences`` / ``gap_sentences``.
    """
    from engine.monitor_changes import QUANTITIES

    names = names or {}
    lines: list[tuple[float, str]] = []

    def shown(labels: pd.Series) -> str:
        return ", ".join(names.get(str(x), str(x)) for x in labels)

    def add(frame: pd.DataFrame | None, kind: str, ratio: str) -> None:
        if frame is None or frame.empty:
            return
        flagged = frame[frame["tier"] == "flagged"]
        for (q, grouping, group), part in flagged.groupby(["quantity", "grouping", "group"]):
            who = "" if grouping == "all" else f" for {grouping} = {group}"
            if kind == "gap change":
                head = (f"Gap in {QUANTITIES[q]} of {grouping} = {group} to "
                        f"{part['reference_group'].iloc[0]}")  # fmt: skip
            elif kind == "gap":
                refs = ", ".join(sorted({str(r) for r in part["reference_group"]}))
                head = f"{QUANTITIES[q]} of {grouping} = {group} vs {refs}"
            else:
                head = f"{QUANTITIES[q]}{who}"
            parts = []
            if kind == "gap":
                part = part.sort_values("window")
                parts.append(f"in {shown(part['label'])} ({_ratios(part[ratio])})")
            else:
                for comparison in ("previous", "baseline"):
                    rows = part[part["comparison"] == comparison].sort_values("window")
                    if rows.empty:
                        continue
                    other = str(rows["other_label"].iloc[0])
                    against = ("vs the previous window" if comparison == "previous" else
                               f"vs the baseline window {names.get(other, other)}")  # fmt: skip
                    parts.append(f"{against} in {shown(rows['label'])} "
                                 f"({_ratios(rows[ratio])})")  # fmt: skip
            lines.append((float(part["severity"].sum()),
                          f"{head} ({len(part)} flagged): " + "; ".join(parts)))  # fmt: skip

    add(changes, "change", "ratio")
    add(gap_changes, "gap change", "ratio_change")
    add(gaps, "gap", "ratio")
    return [text for _, text in sorted(lines, key=lambda x: -x[0])]


def has_times(data: RatingData) -> bool:
    """Whether any rating of ``data`` has a time (monitoring needs them)."""
    return bool(data.ratings["timestamp"].notna().any()) if "timestamp" in data.ratings else False


def _user_groups(data: RatingData, config: MonitorConfig) -> tuple[dict[str, pd.Series], list[str]]:
    users = np.sort(data.ratings["user_id"].unique())
    attributes = list(config.user_attributes) if config.user_attributes is not None else None
    return user_attribute_groups(data.users, users, attributes, 12)


def _window_model(
    train: pd.DataFrame, test: pd.DataFrame, w: int, scale: tuple[float, float],
    catalogue: np.ndarray, config: MonitorConfig, k: int, threshold: float,
) -> tuple[list[pd.DataFrame], dict[str, Any], pd.DataFrame, np.ndarray]:  # fmt: skip
    """Train on ``train`` (ratings before window ``w``) and test window ``w``.

    Returns the per-user units (``rmse``: summed squared errors and counts of known
    ratings; ``ndcg``: NDCG@k, count 1), the quality row, the top-k lists and the items
    known to training.
    """
    started = time.perf_counter()
    model = train_svd(train, scale, config.model, item_ids=catalogue)
    fit_seconds = time.perf_counter() - started
    frame, _, _ = held_out_predictions(model, test, w)
    known = frame[~frame["was_impossible"]]
    err = known.assign(sq=(known["prediction"] - known["rating"]) ** 2).groupby("user_id")
    per_user, lists, _ = held_out_ranking(model, test, k, threshold, DEFAULT_BLOCK_BYTES)
    units = [
        pd.DataFrame({"window": w, "quantity": "rmse", "user_id": err["sq"].sum().index,
                      "a": err["sq"].sum().to_numpy(), "b": err.size().to_numpy(float)}),
        pd.DataFrame({"window": w, "quantity": "ndcg", "user_id": per_user["user_id"],
                      "a": per_user["ndcg"].to_numpy(float), "b": np.ones(len(per_user))}),
    ]  # fmt: skip
    cold_users = ~test["user_id"].isin(set(train["user_id"]))
    row = {
        "window": w, "n_train": len(train),
        "train_latest": float(train["timestamp"].astype("float64").max()),
        "n_test": len(test), "n_cold_ratings": int(frame["was_impossible"].sum()),
        "n_cold_users": int(test.loc[cold_users, "user_id"].nunique()),
        "n_users_ranked": len(per_user),
        "rmse": math.sqrt(float(units[0]["a"].sum()) / len(known)) if len(known) else math.nan,
        "ndcg": float(per_user["ndcg"].mean()) if len(per_user) else math.nan,
        "fit_seconds": fit_seconds,
    }  # fmt: skip
    trained = catalogue[model.interactions.counts_per_item() > 0]
    return units, row, lists, trained


#: The default baseline is the first window where at most this share of the test ratings
#: is cold start (user or item without an earlier rating).
WARM_SHARE = 0.5


def _warm_baseline(quality: pd.DataFrame) -> tuple[str, str]:
    """Return the default baseline window's label and the sentence that says why.

    The first windows after the data starts are a warm-up: most of their users and items are
    new, so their RMSE rests on few warm ratings, and every later window would look better
    for every group. The baseline is the first window whose cold-start share of test ratings
    is at most ``WARM_SHARE``; when none is, the first window with a model, and the sentence
    says that every window is mostly cold start.
    """
    cold = (quality["n_cold_ratings"] / quality["n_test"].clip(lower=1)).to_numpy(float)
    warm = np.flatnonzero(cold <= WARM_SHARE)
    row = int(warm[0]) if len(warm) else 0
    label = str(quality["label"].iloc[row])
    if len(warm):
        return label, (
            f"Baseline window {label} ({cold[row]:.0%} of its test ratings cold start): the "
            f"first window where at most {WARM_SHARE:.0%} are; earlier windows are a warm-up "
            "whose users are mostly new."
        )
    return label, (
        f"Baseline window {label}, the first with a model: every window has more than "
        f"{WARM_SHARE:.0%} of its test ratings cold start (its users mostly new), so changes "
        "against any baseline rest on few warm ratings."
    )


def baseline_choices(
    data: RatingData, window: str, config: MonitorConfig | None = None
) -> list[str]:
    """Return the labels of the windows that can be the baseline, before monitoring.

    A baseline needs a model: a window after the first with enough ratings and active users
    (``window_status``; every window after the first has the first's ratings to train
    on). Cheap (no model): the Over time page lists these beside its default rule.
    """
    config = config or MonitorConfig()
    ratings = object_ids(data.ratings)
    times = ratings["timestamp"].to_numpy("float64", na_value=np.nan)
    if np.isnan(times).all():
        return []
    windows = make_windows(times, check_window(window))
    table = data_table(ratings, windows, assign_windows(times, windows))
    status, _ = window_status(table, config.min_ratings, config.min_group_size)
    labels = windows["label"].astype(str).tolist()
    return [label for w, label in enumerate(labels) if w > 0 and status[w] == "ok"]


def monitor(
    data: RatingData,
    window: str = "month",
    config: MonitorConfig | None = None,
    *,
    progress: Progress | None = None,
) -> Monitoring:
    """Monitor ``data`` per calendar ``window`` (module docstring for every definition).

    Raises
    ------
    ConfigError
        An unknown window or baseline, data without any timestamp, or no window with
        enough ratings and earlier ratings to train a model on.
    """
    config = config or MonitorConfig()
    window = check_window(window)
    ratings = object_ids(data.ratings)
    times = ratings["timestamp"].to_numpy("float64", na_value=np.nan)
    if np.isnan(times).all():
        raise ConfigError(
            f"Monitoring over time needs a time for each rating, and {data.name} has none: "
            "load a timestamp column (--columns timestamp=NAME)."
        )
    notes = []
    untimed = int(np.isnan(times).sum())
    if untimed:
        notes.append(f"{untimed:,} ratings have no time and take no part in monitoring.")
    threshold, _, rule, threshold_notes = resolve_threshold(config.threshold, data.scale)
    notes += threshold_notes
    windows = make_windows(times, window)
    of = assign_windows(times, windows)
    table = data_table(ratings, windows, of)
    status, reason = window_status(table, config.min_ratings, config.min_group_size)
    windows = windows.assign(status=status, reason=reason,
                             partial=partial_windows(times, windows))  # fmt: skip
    partial = [name for name, p in zip(window_names(windows), windows["partial"], strict=True)
               if p]  # fmt: skip
    if partial:
        notes.append("Partial windows (the data covers part of their calendar period): "
                     + ", ".join(partial) + ".")  # fmt: skip
    groupings, group_notes = _user_groups(data, config)
    notes += group_notes
    catalogue = np.sort(np.asarray(pd.unique(ratings["item_id"]), dtype=object))
    items = provider(data, catalogue)
    scale = (data.scale.low, data.scale.high)
    k = min(config.k, len(catalogue))
    units, quality, shares = [], [], {}
    for w in windows["window"]:
        test = ratings[of == w]
        by_user = test.groupby("user_id")["rating"]
        units.append(pd.DataFrame({"window": w, "quantity": "rating_mean",
                                   "user_id": by_user.sum().index, "a": by_user.sum().to_numpy(),
                                   "b": by_user.size().to_numpy(float)}))  # fmt: skip
        if items is not None and len(test):
            units.append(provider_units(test, np.ones(len(test)), items[1], items[0], int(w),
                                        "rating_share"))  # fmt: skip
        train = ratings[np.isfinite(times) & (times < windows["start"].iloc[w])]
        if train.empty or status[w] != "ok":
            continue
        if progress:
            progress(w / len(windows), f"window {w + 1}/{len(windows)}: training SVD")
        parts, row, lists, known = _window_model(train, test, int(w), scale, catalogue,
                                                 config, k, threshold)  # fmt: skip
        units += parts
        quality.append(row)
        if items is not None and len(lists):
            units.append(list_units(lists, items[1], items[0], int(w)))
            for group, share in catalogue_shares(items[1], known).items():
                shares[(int(w), group)] = float(share)
    if progress:
        progress(0.95, "testing changes between windows")
    labels = windows.set_index("window")["label"]
    quality_columns = ["window", "label", "n_train", "train_latest", "n_test", "n_cold_ratings",
                       "n_cold_users", "n_users_ranked", "rmse", "ndcg", "fit_seconds"]  # fmt: skip
    quality_frame = pd.DataFrame(quality, columns=[c for c in quality_columns if c != "label"])
    quality_frame.insert(1, "label", labels.reindex(quality_frame["window"]).to_numpy())
    testable = [int(w) for w in quality_frame["window"]]
    chosen = config.baseline
    if chosen is None and len(quality_frame):
        chosen, sentence = _warm_baseline(quality_frame)
        notes.append(sentence)
    baseline = resolve_baseline(chosen, windows, testable)
    unit_frame = pd.concat(units, ignore_index=True)
    values = value_table(unit_frame, groupings, windows, config)
    context = {(w, "exposure", items[0], g): f"catalogue share {share:.3f}"
               for (w, g), share in shares.items()} if items else {}  # fmt: skip
    changes = change_table(unit_frame, groupings, windows, values, baseline, config, context)
    exposure_frame = exposure_table(values, shares)[EXPOSURE_COLUMNS]
    gaps, replicates = gap_table(unit_frame, groupings, windows, config)
    gap_changes = gap_change_table(gaps, replicates, baseline, config)
    flagged = pd.concat(
        [changes[changes["tier"] == "flagged"], gap_changes[gap_changes["tier"] == "flagged"]]
    )
    flagged = flagged.sort_values("severity", ascending=False, kind="stable")
    flagged_gaps = gaps[gaps["tier"] == "flagged"].sort_values("severity", ascending=False,
                                                                kind="stable")  # fmt: skip
    monitored = [name for q, name in QUANTITIES.items() if q in set(unit_frame["quantity"])]
    notes.append(f"Relevance for NDCG@{k}: {rule}. Quantities monitored: "
                 + ", ".join(monitored) + ".")  # fmt: skip
    if items is not None:
        notes.append(f"Exposure share and share of ratings are per {items[0]} (item attribute).")
    if progress:
        progress(1.0, "monitoring done")
    return Monitoring(
        window=window, config=config, windows=windows, data=table,
        distribution=distribution(ratings, windows, of), quality=quality_frame, values=values,
        fairness=gaps, gap_changes=gap_changes, exposure=exposure_frame, changes=changes,
        baseline=baseline, sentences=flagged["sentence"].tolist(),
        gap_sentences=flagged_gaps["sentence"].tolist(), notes=notes,
    )  # fmt: skip
