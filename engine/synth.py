r"""Synthetic MovieLens-like rating data with planted, documented effects.

The generator draws, from one seed, users with attributes (gender, age band,
region), items with attributes (title, genres, year, provider) and ratings

.. math::

    r_{ui} = \operatorname{clip}\big(\operatorname{round}(\mu + b_u + b_i
             + t_u \cdot \hat g_i + h_u \cdot h_i + \varepsilon_{ui}), 1, 5\big),
    \qquad \varepsilon_{ui} \sim N(0, \sigma^2),

where :math:`\hat g_i` is the item's unit-normalised genre indicator vector,
:math:`t_u` the user's genre tastes and :math:`h_u, h_i` a few hidden factors.
Which items a user rates is drawn without replacement with probability
proportional to :math:`\text{pop}_i \exp(\beta\,(t_u \cdot \hat g_i + h_u \cdot h_i))`.

Planted effects (see ``sample_data/README.md`` and ``ground_truth.json``):

1. **Long tail**: item popularity is log-normal, so a small short head holds most ratings.
2. **Under-served minority**: users aged ``55+`` (about 12%) weigh the hidden factors
   ``MINORITY_HIDDEN_WEIGHT`` times more than the majority, ignore genres, and rate
   what is popular rather than what they like (``MINORITY_SELECTION = 0``). The item
   side of their factors is learned almost only from their few ratings, so a
   recommender trained on everyone predicts them worse.
3. **Under-exposed provider**: items of ``Indie Collective`` are better than average
   (``INDIE_QUALITY_BONUS`` stars) yet their popularity is scaled by ``INDIE_POPULARITY``,
   so they receive less exposure than their quality justifies.
4. **Controls**: ``region`` and ``gender`` carry no effect at all (drawn independently
   of everything else); ``gender`` has a tiny third category (``X``, about 1.5%) to
   exercise minimum-group-size rules.

Planted over time (``ground_truth.json`` key ``over_time``), drawn from a second generator
(``default_rng([seed, 1])``) so that users, items and which items each user rates are the
same as without them:

5. **Time span**: ratings fall in ``START`` .. ``END`` (24 months, 2022-2023). Users of the
   ``regular`` cohort join in the first ``EARLY_JOIN_DAYS`` days, except a share
   ``TRICKLE_SHARE`` of them who join at a uniform time up to ``TRICKLE_LAST_DAYS`` days
   before ``END``; each user's first rating is at their join time, the others uniform
   between it and ``END``.
6. **Late cohort**: ``LATE_SHARE`` of the users (``users.csv`` column ``cohort = late``) join
   in the first ``LATE_JOIN_DAYS`` days of month ``LATE_JOINS``; their ratings in their
   first ``LATE_UNSETTLED_MONTHS`` months carry extra noise (``LATE_EXTRA_NOISE`` stars,
   added before rounding), so a model serves them worse until they have settled.
7. **Decaying provider**: from ``DECAY_FROM`` on, a rating of a ``DECAYING_PROVIDER`` item
   drawn at time ``t`` stays there with probability ``exp(-(t - DECAY_FROM) / DECAY_DAYS)``;
   otherwise it moves to a uniform time between the user's join and ``DECAY_FROM``. Only
   users who joined ``DECAY_MIN_DAYS`` or more days before ``DECAY_FROM`` are thinned (so
   the moved ratings spread over months instead of piling up just before it); the others
   keep theirs. The ratings are the same; the provider's share of each later month's
   ratings decays and levels off near 40% of its earlier level.
8. **Time control**: ``region`` (and ``gender``) have no time structure at all.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.data.movielens import ML100K_GENRES
from engine.errors import ConfigError

GENERATOR_VERSION = 1
DEFAULT_SEED = 20261128
GENRES = ML100K_GENRES[1:]  # the 18 MovieLens genres, without "unknown"
GENRE_WEIGHTS = (9, 6, 3, 3, 12, 5, 2, 14, 3, 1, 4, 2, 3, 7, 5, 8, 2, 1)
#: Mean genre taste of every user (stars per unit of normalised genre vector).
MEAN_TASTE = {
    "Action": 0.35,
    "Adventure": 0.25,
    "Comedy": 0.2,
    "Sci-Fi": 0.3,
    "Thriller": 0.25,
    "Romance": 0.15,
    "Documentary": -0.3,
    "Film-Noir": -0.3,
    "Musical": -0.25,
    "Western": -0.3,
    "War": -0.1,
}
PROVIDERS = ("Northwind Pictures", "Bluefin Studios", "Redwood Films", "Indie Collective")
PROVIDER_SHARES = (0.35, 0.30, 0.20, 0.15)
UNDER_EXPOSED_PROVIDER = "Indie Collective"
INDIE_QUALITY_BONUS = 0.3
INDIE_POPULARITY = 0.3
AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55+")
AGE_SHARES = (0.20, 0.33, 0.20, 0.15, 0.12)
MINORITY_AGE_BAND = "55+"
MINORITY_HIDDEN_WEIGHT = 4.0
MINORITY_GENRE_WEIGHT = 0.0
#: How strongly minority users pick items they like (the majority: ``SynthConfig.selection``).
MINORITY_SELECTION = 0.0
GENDERS = ("M", "F", "X")
GENDER_SHARES = (0.585, 0.40, 0.015)
REGIONS = ("North", "South", "East", "West")
START = 1_640_995_200  # 2022-01-01 UTC
END = 1_704_067_200  # 2024-01-01 UTC
_DAY = 86_400
EARLY_JOIN_DAYS = 90
TRICKLE_SHARE = 0.4
TRICKLE_LAST_DAYS = 30
LATE_SHARE = 0.10
LATE_JOINS = "2023-01"
LATE_JOIN_DAYS = 21
LATE_UNSETTLED_MONTHS = 2
LATE_EXTRA_NOISE = 1.5
DECAYING_PROVIDER = "Redwood Films"
DECAY_FROM = "2023-07"
DECAY_DAYS = 60.0
DECAY_MIN_DAYS = 120


def _month_start(label: str, months: int = 0) -> int:
    """Epoch seconds (UTC) of the first instant of month ``label`` plus ``months``."""
    stamp = pd.Timestamp(f"{label}-01", tz="UTC") + pd.DateOffset(months=months)
    return int(stamp.timestamp())


_ADJECTIVES = (
    "Silent",
    "Crimson",
    "Last",
    "Hidden",
    "Golden",
    "Broken",
    "Midnight",
    "Electric",
    "Lost",
    "Wild",
    "Frozen",
    "Secret",
    "Distant",
    "Burning",
    "Quiet",
    "Naïve",
    "Savage",
    "Gentle",
    "Hollow",
    "Bright",
    "Restless",
    "Velvet",
    "Iron",
    "Paper",
    "Crystal",
)
_NOUNS = (
    "River",
    "Empire",
    "Garden",
    "Signal",
    "Harbor",
    "Witness",
    "Orchard",
    "Frontier",
    "Mirror",
    "Station",
    "Café",
    "Kingdom",
    "Horizon",
    "Lantern",
    "Voyage",
    "Canyon",
    "Fiancée",
    "Echo",
    "Circus",
    "Island",
    "Compass",
    "Tide",
    "Señorita",
    "Carousel",
    "Bridge",
    "Letter",
)
_PLACES = (
    "Avalon",
    "Marseille",
    "São Paulo",
    "Kyoto",
    "Reykjavík",
    "Tangier",
    "Oslo",
    "Montréal",
    "Zürich",
    "Lagos",
    "Dublin",
    "Cairo",
)


@dataclass(frozen=True)
class SynthConfig:
    """Size, noise and seed of the synthetic dataset.

    Parameters
    ----------
    n_users, n_items
        Number of users and items (each user and item gets at least one rating
        only if drawn; every user gets ``min_ratings`` or more).
    n_ratings
        Target total number of ratings (reached within a few hundred).
    min_ratings
        Fewest ratings per user, as in MovieLens (20).
    noise
        Standard deviation of the rating noise, in stars.
    selection
        ``beta``: how strongly users pick items they like (0 = by popularity only).
    seed
        Seed of ``numpy.random.default_rng``; the same seed gives identical files.
    """

    n_users: int = 1000
    n_items: int = 1700
    n_ratings: int = 100_000
    min_ratings: int = 20
    noise: float = 0.75
    selection: float = 1.0
    seed: int = DEFAULT_SEED

    def __post_init__(self) -> None:
        if self.n_users < 2 or self.n_items < 2:
            raise ConfigError("SynthConfig needs n_users >= 2 and n_items >= 2.")
        if not self.min_ratings * self.n_users <= self.n_ratings <= self.n_users * self.n_items:
            raise ConfigError(
                f"n_ratings={self.n_ratings} must lie between min_ratings * n_users "
                f"({self.min_ratings * self.n_users}) and n_users * n_items "
                f"({self.n_users * self.n_items})."
            )
        if self.min_ratings < 1 or self.min_ratings > self.n_items:
            raise ConfigError("min_ratings must lie between 1 and n_items.")
        if self.noise < 0:
            raise ConfigError(f"noise={self.noise} must be >= 0 stars.")


@dataclass(frozen=True)
class SyntheticDataset:
    """Generated tables and the ground truth behind them.

    ``ratings``: ``user_id, item_id, rating, timestamp`` (sorted by user then time);
    ``users``: ``user_id, gender, age_band, region, cohort``;
    ``items``: ``item_id, title, genres`` (``|``-separated), ``year, provider``;
    ``ground_truth``: the JSON-ready description of what was planted.
    """

    ratings: pd.DataFrame
    users: pd.DataFrame
    items: pd.DataFrame
    ground_truth: dict[str, Any]


def _titles(rng: np.random.Generator, years: np.ndarray) -> list[str]:
    titles: list[str] = []
    seen: set[str] = set()
    for year in years:
        form = rng.integers(4)
        adj, noun = _ADJECTIVES[rng.integers(len(_ADJECTIVES))], _NOUNS[rng.integers(len(_NOUNS))]
        place = _PLACES[rng.integers(len(_PLACES))]
        base = (
            f"The {adj} {noun}",
            f"{noun} of {place}",
            f"{adj} {noun}s",
            f"{place}, {adj} {noun}",
        )[form]
        title, n = base, 1
        while title in seen:
            n += 1
            title = f"{base} {n}"
        seen.add(title)
        titles.append(f"{title} ({year})")
    return titles


def _draw_counts(rng: np.random.Generator, config: SynthConfig) -> np.ndarray:
    extra = rng.lognormal(0.0, 1.0, config.n_users)
    budget = config.n_ratings - config.min_ratings * config.n_users
    quota = extra / extra.sum() * budget
    counts = np.floor(quota).astype(np.int64)
    shortfall = budget - int(counts.sum())
    counts[np.argsort(counts - quota, kind="stable")[:shortfall]] += 1
    return np.minimum(config.min_ratings + counts, int(0.6 * config.n_items))


def generate(config: SynthConfig | None = None) -> SyntheticDataset:
    """Generate the dataset described in the module docstring."""
    config = config or SynthConfig()
    rng = np.random.default_rng(config.seed)
    n_u, n_i, n_g, n_h = config.n_users, config.n_items, len(GENRES), 4

    # Items: genres, year, provider, quality, popularity, hidden factors.
    weights = np.array(GENRE_WEIGHTS, float) / sum(GENRE_WEIGHTS)
    genre_flags = np.zeros((n_i, n_g), dtype=bool)
    for i, k in enumerate(rng.choice([1, 2, 3], size=n_i, p=[0.45, 0.4, 0.15])):
        genre_flags[i, rng.choice(n_g, size=k, replace=False, p=weights)] = True
    genre_unit = genre_flags / np.sqrt(genre_flags.sum(axis=1, keepdims=True))
    years = np.clip(np.round(2023 - rng.gamma(2.0, 9.0, n_i)), 1930, 2023).astype(int)
    provider = rng.choice(len(PROVIDERS), size=n_i, p=PROVIDER_SHARES)
    indie = provider == PROVIDERS.index(UNDER_EXPOSED_PROVIDER)
    item_bias = rng.normal(0.0, 0.35, n_i) + INDIE_QUALITY_BONUS * indie
    popularity = rng.lognormal(0.0, 1.3, n_i) * np.where(indie, INDIE_POPULARITY, 1.0)
    item_hidden = rng.normal(0.0, 0.45, (n_i, n_h))

    # Users: attributes (region and gender are controls), tastes.
    age = rng.choice(len(AGE_BANDS), size=n_u, p=AGE_SHARES)
    minority = age == AGE_BANDS.index(MINORITY_AGE_BAND)
    gender = rng.choice(len(GENDERS), size=n_u, p=GENDER_SHARES)
    region = rng.integers(len(REGIONS), size=n_u)
    mean_taste = np.array([MEAN_TASTE.get(g, 0.0) for g in GENRES])
    taste = mean_taste + rng.normal(0.0, 0.3, (n_u, n_g))
    hidden = rng.normal(0.0, 0.45, (n_u, n_h))
    taste[minority] *= MINORITY_GENRE_WEIGHT
    hidden[minority] *= MINORITY_HIDDEN_WEIGHT
    user_bias = rng.normal(0.0, 0.3, n_u)

    affinity = taste @ genre_unit.T + hidden @ item_hidden.T  # (n_u, n_i)
    counts = _draw_counts(rng, config)
    gumbel = rng.gumbel(size=(n_u, n_i))
    selection = np.where(minority, MINORITY_SELECTION, config.selection)[:, None]
    keys = np.log(popularity)[None, :] + selection * affinity + gumbel
    mu = 3.25
    rows = []
    for u in range(n_u):
        chosen = np.sort(np.argpartition(-keys[u], counts[u])[: counts[u]])
        score = mu + user_bias[u] + item_bias[chosen] + affinity[u, chosen]
        noisy = score + rng.normal(0.0, config.noise, chosen.size)
        # Draws kept from the first version so that the later users' ratings stay the same;
        # the times themselves come from ``_times``.
        span = rng.exponential(120 * 86400)
        _ = rng.integers(START, END - int(span) - 1) if span < END - START - 1 else START
        rng.integers(0, int(span) + 1, chosen.size)
        order = rng.permutation(chosen.size)
        rows.append((np.full(chosen.size, u), chosen[order], noisy[order]))

    user_idx = np.concatenate([r[0] for r in rows])
    item_idx = np.concatenate([r[1] for r in rows])
    late, stamps, noisy = _times(
        config, user_idx, item_idx, provider, np.concatenate([r[2] for r in rows])
    )
    stars = np.clip(np.round(noisy), 1, 5).astype(int)
    order = np.lexsort((stamps, user_idx))
    ratings = pd.DataFrame(
        {
            "user_id": [f"u{u + 1:04d}" for u in user_idx[order]],
            "item_id": [f"i{i + 1:04d}" for i in item_idx[order]],
            "rating": stars[order],
            "timestamp": stamps[order],
        }
    )
    users = pd.DataFrame(
        {
            "user_id": [f"u{u + 1:04d}" for u in range(n_u)],
            "gender": np.array(GENDERS)[gender],
            "age_band": np.array(AGE_BANDS)[age],
            "region": np.array(REGIONS)[region],
            "cohort": np.where(late, "late", "regular"),
        }
    )
    items = pd.DataFrame(
        {
            "item_id": [f"i{i + 1:04d}" for i in range(n_i)],
            "title": _titles(rng, years),
            "genres": ["|".join(np.array(GENRES)[f]) for f in genre_flags],
            "year": years,
            "provider": np.array(PROVIDERS)[provider],
        }
    )
    truth = _ground_truth(config, ratings, users, items, item_bias, popularity)
    return SyntheticDataset(ratings, users, items, truth)


def _times(
    config: SynthConfig,
    user_idx: np.ndarray,
    item_idx: np.ndarray,
    provider: np.ndarray,
    noisy: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cohorts, rating times and the late cohort's extra noise (module docstring, 5-7).

    Returns ``late`` (per user), ``stamps`` and ``noisy`` (per rating, in ``rows`` order).
    """
    rng = np.random.default_rng([config.seed, 1])
    n_u = config.n_users
    late = rng.random(n_u) < LATE_SHARE
    joins_late = _month_start(LATE_JOINS)
    join = np.where(
        late,
        joins_late + rng.integers(0, LATE_JOIN_DAYS * _DAY, n_u),
        np.where(
            rng.random(n_u) < TRICKLE_SHARE,
            START + rng.integers(0, END - START - TRICKLE_LAST_DAYS * _DAY, n_u),
            START + rng.integers(0, EARLY_JOIN_DAYS * _DAY, n_u),
        ),
    )
    first = join[user_idx]
    stamps = first + np.floor(rng.random(user_idx.size) * (END - first)).astype(np.int64)
    opens = np.r_[0, np.flatnonzero(np.diff(user_idx)) + 1]  # each user's first row
    stamps[opens] = first[opens]  # a user's first rating is at their join time
    decay_from = _month_start(DECAY_FROM)
    decaying = provider[item_idx] == PROVIDERS.index(DECAYING_PROVIDER)
    after = np.maximum(stamps - decay_from, 0) / (DECAY_DAYS * _DAY)
    stays = rng.random(user_idx.size) < np.exp(-after)
    move = decaying & (stamps >= decay_from) & (first < decay_from - DECAY_MIN_DAYS * _DAY) & ~stays
    earlier = first + np.floor(rng.random(user_idx.size) * (decay_from - first)).astype(np.int64)
    stamps = np.where(move, earlier, stamps)
    settled = _month_start(LATE_JOINS, LATE_UNSETTLED_MONTHS)
    unsettled = late[user_idx] & (stamps < settled)
    extra = rng.normal(0.0, LATE_EXTRA_NOISE, user_idx.size)
    return late, stamps.astype(np.int64), np.where(unsettled, noisy + extra, noisy)


def _share(mask: pd.Series) -> float:
    return round(float(mask.mean()), 6)


def _ground_truth(
    config: SynthConfig,
    ratings: pd.DataFrame,
    users: pd.DataFrame,
    items: pd.DataFrame,
    item_bias: np.ndarray,
    popularity: np.ndarray,
) -> dict[str, Any]:
    """Describe the planted effects and their realised sizes in the generated data."""
    rated_by_age = ratings.merge(users, on="user_id")
    by_provider = ratings.merge(items[["item_id", "provider"]], on="item_id")
    indie_items = items["provider"] == UNDER_EXPOSED_PROVIDER
    counts = ratings["item_id"].value_counts()
    head = np.searchsorted(np.cumsum(counts.to_numpy()), 0.8 * len(ratings)) + 1
    return {
        "synthetic": True,
        "generator": f"engine.synth v{GENERATOR_VERSION}",
        "config": asdict(config),
        "planted_effects": [
            {
                "name": "long_tail_popularity",
                "description": "Item popularity is log-normal (sigma 1.3): a small short head "
                "of items holds 80% of the ratings.",
                "realised": {
                    "short_head_items": int(head),
                    "short_head_item_share": round(head / len(counts), 6),
                },
            },
            {
                "name": "under_served_minority",
                "attribute": "age_band",
                "group": MINORITY_AGE_BAND,
                "description": "Users aged 55+ weigh hidden factors "
                f"{MINORITY_HIDDEN_WEIGHT:g}x more than the majority and genres "
                f"{MINORITY_GENRE_WEIGHT:g}x, and pick the items they rate by popularity "
                "alone, not by taste; the item side of their factors is learned from their "
                "few ratings, so a recommender trained on everyone predicts them worse "
                "(higher RMSE/MAE).",
                "expected": "error(55+) > error(other age bands)",
                "realised": {
                    "user_share": _share(users["age_band"] == MINORITY_AGE_BAND),
                    "rating_share": _share(rated_by_age["age_band"] == MINORITY_AGE_BAND),
                },
            },
            {
                "name": "under_exposed_provider",
                "attribute": "provider",
                "group": UNDER_EXPOSED_PROVIDER,
                "description": f"Items of {UNDER_EXPOSED_PROVIDER} have a quality bonus of "
                f"{INDIE_QUALITY_BONUS:g} stars but {INDIE_POPULARITY:g}x the popularity, so "
                "they get less exposure than their quality justifies.",
                "expected": "mean rating(indie) > mean rating(others) and "
                "rating share(indie) < catalogue share(indie)",
                "realised": {
                    "catalogue_share": _share(indie_items),
                    "rating_share": _share(by_provider["provider"] == UNDER_EXPOSED_PROVIDER),
                    "true_quality_indie": round(float(item_bias[indie_items].mean()), 6),
                    "true_quality_others": round(float(item_bias[~indie_items].mean()), 6),
                    "mean_rating_indie": round(
                        float(
                            by_provider.loc[
                                by_provider["provider"] == UNDER_EXPOSED_PROVIDER, "rating"
                            ].mean()
                        ),
                        6,
                    ),
                    "mean_rating_others": round(
                        float(
                            by_provider.loc[
                                by_provider["provider"] != UNDER_EXPOSED_PROVIDER, "rating"
                            ].mean()
                        ),
                        6,
                    ),
                    "mean_popularity_weight_indie": round(float(popularity[indie_items].mean()), 6),
                    "mean_popularity_weight_others": round(
                        float(popularity[~indie_items].mean()), 6
                    ),
                },
            },
        ],
        "controls": [
            {
                "attribute": "region",
                "description": "Drawn uniformly and independently of tastes, biases and "
                "activity: any disparity found across regions is noise.",
            },
            {
                "attribute": "gender",
                "description": "Drawn independently of everything else; the category 'X' "
                "(about 1.5% of users) is below a 30-user minimum group size.",
            },
        ],
        "over_time": _over_time(ratings, users, items),
        "counts": {
            "users": int(users.shape[0]),
            "items": int(items.shape[0]),
            "ratings": int(ratings.shape[0]),
            "rated_items": int(ratings["item_id"].nunique()),
        },
    }


def _over_time(ratings: pd.DataFrame, users: pd.DataFrame, items: pd.DataFrame) -> dict[str, Any]:
    """Describe the effects planted over time (module docstring, 5-8) and their sizes."""
    month = pd.to_datetime(ratings["timestamp"], unit="s").dt.strftime("%Y-%m")
    late_users = set(users.loc[users["cohort"] == "late", "user_id"])
    late = ratings["user_id"].isin(late_users)
    settled = pd.Timestamp(f"{LATE_JOINS}-01") + pd.DateOffset(months=LATE_UNSETTLED_MONTHS)
    decaying = ratings["item_id"].isin(set(items.loc[items["provider"] == DECAYING_PROVIDER,
                                                     "item_id"]))  # fmt: skip
    share = decaying.groupby(month).mean()
    return {
        "window": "month",
        "start": pd.Timestamp(START, unit="s").strftime("%Y-%m-%d"),
        "end": pd.Timestamp(END, unit="s").strftime("%Y-%m-%d"),
        "early_join_days": EARLY_JOIN_DAYS,
        "trickle_share": TRICKLE_SHARE,
        "trickle_last_days": TRICKLE_LAST_DAYS,
        "late_cohort": {
            "attribute": "cohort",
            "group": "late",
            "reference": "regular",
            "user_share_planted": LATE_SHARE,
            "joins": LATE_JOINS,
            "join_days": LATE_JOIN_DAYS,
            "unsettled_months": LATE_UNSETTLED_MONTHS,
            "settled": settled.strftime("%Y-%m"),
            "extra_noise": LATE_EXTRA_NOISE,
            "description": f"Users of cohort 'late' have no rating before {LATE_JOINS} and join "
            f"in its first {LATE_JOIN_DAYS} days; their ratings before "
            f"{settled.strftime('%Y-%m')} carry extra noise (sd {LATE_EXTRA_NOISE:g} stars, "
            "before rounding). Monitoring by month: their RMSE is cold start in "
            f"{LATE_JOINS}, well above the regular cohort's in the next month, and falls "
            f"(flagged) in {settled.strftime('%Y-%m')}.",
            "realised": {
                "users": len(late_users),
                "ratings": int(late.sum()),
                "unsettled_ratings": int((late & (month < settled.strftime("%Y-%m"))).sum()),
            },
        },
        "provider_decay": {
            "attribute": "provider",
            "group": DECAYING_PROVIDER,
            "from": DECAY_FROM,
            "decay_days": DECAY_DAYS,
            "thinned_users_joined_days_before": DECAY_MIN_DAYS,
            "description": f"From {DECAY_FROM} on, a rating of a {DECAYING_PROVIDER} item "
            f"stays at its drawn time t with probability exp(-(t - {DECAY_FROM}) / "
            f"{DECAY_DAYS:g} days), else moves to before {DECAY_FROM} (users who joined "
            f"{DECAY_MIN_DAYS} days or more before it): the same ratings, but "
            "the provider's share of each later month's ratings decays.",
            "realised": {
                "rating_share_by_month": {m: round(float(v), 6) for m, v in share.items()}
            },
        },
        "controls": ["region", "gender"],
        "control_description": "region and gender have no time structure: no change over "
        "time should be flagged for them.",
    }


def _csv_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(frame.columns)
    writer.writerows(frame.itertuples(index=False, name=None))
    return buffer.getvalue().encode("utf-8")


def write_dataset(dataset: SyntheticDataset, folder: str | Path) -> list[Path]:
    """Write ``ratings.csv``, ``users.csv``, ``items.csv`` and ``ground_truth.json``.

    The bytes depend only on the dataset, so the same seed writes identical files.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    outputs = {
        "ratings.csv": _csv_bytes(dataset.ratings),
        "users.csv": _csv_bytes(dataset.users),
        "items.csv": _csv_bytes(dataset.items),
        "ground_truth.json": (
            json.dumps(dataset.ground_truth, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        ).encode("utf-8"),
    }
    paths = []
    for name, content in outputs.items():
        path = folder / name
        path.write_bytes(content)
        paths.append(path)
    return paths
