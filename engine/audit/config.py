"""Settings of the bias and fairness audit, validated on construction."""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import ConfigError


@dataclass(frozen=True)
class AuditConfig:
    """What to audit and how strictly.

    Parameters
    ----------
    user_attributes, item_attributes
        Attribute columns to group by; ``None`` takes every suitable column (2 to 1,000
        values). Derived groups (activity, popularity propensity, item popularity) are
        always included.
    k
        Length of the top-N lists audited, >= 1 (capped at the catalogue size).
    threshold
        A held-out rating >= threshold is relevant (top-N utility, PopREO).
    min_group_size
        Groups with fewer users are "insufficient data": never flagged or ranked.
    bootstrap
        Bootstrap replicates (resampling users) for confidence intervals.
    permutations
        Label permutations per significance test; the smallest possible p-value is
        ``1 / (permutations + 1)``, which must survive the Holm correction.
    alpha
        Family-wise significance level after Holm's correction.
    band
        A ratio to the reference group inside ``[low, high]`` is not a disparity (the
        "four-fifths" rule and its inverse); outside it *and* significant is flagged.
    max_groups
        Most groups shown per attribute; the smallest others are merged into "other".
    yao_min_ratings
        Yao & Huang metrics use items with at least this many ratings in both groups.
    explanations
        Also audit explanation support and deletion fidelity by user group.
    seed
        Seed of every resampling.
    """

    user_attributes: tuple[str, ...] | None = None
    item_attributes: tuple[str, ...] | None = None
    k: int = 10
    threshold: float = 4.0
    min_group_size: int = 30
    bootstrap: int = 200
    permutations: int = 2000
    alpha: float = 0.05
    band: tuple[float, float] = (0.8, 1.25)
    max_groups: int = 12
    yao_min_ratings: int = 5
    explanations: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        checks = {
            "k": (self.k >= 1, "an integer >= 1"),
            "min_group_size": (self.min_group_size >= 1, "an integer >= 1 (default 30)"),
            "bootstrap": (self.bootstrap >= 0, ">= 0 (default 200)"),
            "permutations": (self.permutations >= 0, ">= 0 (default 2000)"),
            "alpha": (0 < self.alpha < 1, "in (0, 1), e.g. 0.05"),
            "max_groups": (self.max_groups >= 2, "an integer >= 2"),
            "yao_min_ratings": (self.yao_min_ratings >= 1, "an integer >= 1"),
        }
        for name, (ok, allowed) in checks.items():
            if not ok:
                raise ConfigError(
                    f"AuditConfig.{name}={getattr(self, name)!r} is not allowed: use {allowed}."
                )
        low, high = self.band
        if not 0 < low < 1 < high:
            raise ConfigError(
                f"AuditConfig.band={self.band!r} must satisfy 0 < low < 1 < high, e.g. (0.8, 1.25)."
            )
