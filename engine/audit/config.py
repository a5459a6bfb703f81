"""Settings of the bias and fairness audit, validated on construction."""

from __future__ import annotations

from dataclasses import dataclass

from engine.checks import check_seed, is_finite_number, is_int
from engine.errors import ConfigError

#: Fewer bootstrap replicates or label permutations than this get a note: the 95%
#: percentile interval and the permutation p-values are coarse below it.
ADVISED_RESAMPLES = 100


@dataclass(frozen=True)
class AuditConfig:
    """What to audit and how strictly.

    Parameters
    ----------
    user_attributes, item_attributes
        Attribute columns to group by; ``None`` takes every suitable column (2 to 1,000
        values). Derived groups (activity, popularity propensity, item popularity) are
        always included; an attribute with the name of a derived grouping is audited as
        ``"<name> (user attribute)"`` / ``"<name> (item attribute)"``.
    k
        Length of the top-N lists audited, >= 1 (capped at the catalogue size).
    threshold
        A held-out rating >= threshold is relevant (PopREO), in rating units. ``None``
        (default) takes it from the data's scale (``RatingScale.relevance_threshold``,
        the top quarter: 4 on 1-5, 8 on 1-10, 75 on 0-100); ``run_audit`` resolves it
        once and the result's ``config.threshold`` is the number used.
    min_group_size
        User groups with fewer users with a value, and item groups with fewer raters
        (distinct users who rated their items), are "insufficient data": never tested,
        flagged or ranked.
    bootstrap
        Bootstrap replicates (resampling users) for confidence intervals; 0 = no
        intervals (and no p-value for item-group rows, whose normal-approximation test
        comes from the bootstrap). An item group whose replicates are all equal (e.g.
        never recommended) has no interval and no test ("no variation").
    permutations
        Label permutations per significance test of a user group; the smallest possible
        p-value is ``1 / (permutations + 1)`` (then reported as that bound, "< 0.0005"
        for 2,000); 0 = no test.
    alpha
        Family-wise significance level after Holm's correction. A family is one
        question, one metric by one grouping (e.g. "does RMSE differ across the gender
        groups?"): a finding then does not depend on how many other attributes or
        metrics were ticked, as it would if the correction ran over every row.
    band
        A ratio to the reference group inside ``[low, high]`` is not a disparity (the
        "four-fifths" rule and its inverse). A model-scope row that is significant is
        "flagged" outside the band and "notable" inside it; data-scope rows (properties
        of the ratings) are context and never flagged.
    max_groups
        Most groups shown per attribute; the smallest others are merged into "other".
    yao_min_ratings
        Yao & Huang metrics use items with at least this many ratings in both groups.
    explanations
        Also audit explanation support and deletion fidelity by user group.
    seed
        Seed of every resampling, an integer in ``[0, 2**32 - 1]``.
    """

    user_attributes: tuple[str, ...] | None = None
    item_attributes: tuple[str, ...] | None = None
    k: int = 10
    threshold: float | None = None
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
        integers = {
            "k": (1, "an integer >= 1 (default 10)"),
            "min_group_size": (1, "an integer >= 1 (default 30)"),
            "bootstrap": (0, "an integer >= 0 (default 200; 0 = no intervals)"),
            "permutations": (0, "an integer >= 0 (default 2000; 0 = no tests)"),
            "max_groups": (2, "an integer >= 2 (default 12)"),
            "yao_min_ratings": (1, "an integer >= 1 (default 5)"),
        }
        for name, (lowest, allowed) in integers.items():
            value = getattr(self, name)
            if not is_int(value) or value < lowest:
                raise ConfigError(f"AuditConfig.{name}={value!r} is not allowed: use {allowed}.")
        check_seed("AuditConfig", self.seed)
        if not (is_finite_number(self.alpha) and 0 < self.alpha < 1):
            raise ConfigError(
                f"AuditConfig.alpha={self.alpha!r} is not allowed: use a number in (0, 1), "
                "e.g. 0.05."
            )
        if self.threshold is not None and not is_finite_number(self.threshold):
            raise ConfigError(
                f"AuditConfig.threshold={self.threshold!r} is not allowed: use a finite "
                "rating, or None to take it from the data's scale (the top quarter)."
            )
        band = self.band
        if isinstance(band, list):  # e.g. read from JSON; kept hashable
            object.__setattr__(self, "band", band := tuple(band))
        if not (
            isinstance(band, tuple)
            and len(band) == 2
            and all(is_finite_number(b) for b in band)
            and 0 < band[0] < 1 < band[1]
        ):
            raise ConfigError(
                f"AuditConfig.band={band!r} must satisfy 0 < low < 1 < high, e.g. (0.8, 1.25)."
            )
