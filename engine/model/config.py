"""Configuration of the SVD engine, validated on construction, and its presets."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Literal, TypeAlias

from engine.checks import check_seed, is_finite_number, is_int
from engine.errors import ConfigError

PresetName: TypeAlias = Literal["default", "tuned"]
#: Engines that train the model: Surprise in this process, or Spark (``engine.spark``).
ENGINES: tuple[str, ...] = ("surprise", "spark")
#: Settings of Surprise's SGD that the Spark engine does not use.
SGD_SETTINGS: tuple[str, ...] = ("lr_all", "reg_all", "init_std_dev")


@dataclass(frozen=True)
class ModelConfig:
    """Settings of the Surprise ``SVD`` engine and of the exact user refit.

    Parameters
    ----------
    n_factors
        Latent factors (Surprise ``n_factors``), >= 1.
    n_epochs
        SGD passes over the training ratings (Surprise ``n_epochs``), >= 1.
    lr_all
        SGD learning rate for all parameters, in (0, 1]. Too large a rate makes the
        factors diverge, which training detects and reports.
    reg_all
        L2 regularisation of all SGD parameters, >= 0.
    init_std_dev
        Standard deviation of the initial factors (Surprise ``init_std_dev``), >= 0.
    refit_users
        Replace Surprise's SGD user side ``(b_u, p_u)`` by the exact ridge solution on
        the user's ratings (see ``engine.model.ridge``); makes every prediction an exact
        linear function of the user's own ratings. On by default.
    refit_lambda
        Ridge strength of the refit, per rating: ``A_u = X^T X + lambda * n_u * I``, > 0.
    seed
        Seed of Surprise's initialisation (``random_state``): same seed, same model; an
        integer in ``[0, 2**32 - 1]`` (numpy's ``RandomState`` range).
    preset
        The preset these settings came from, or ``"custom"``.
    engine
        What trains the model: ``"surprise"`` (default; Surprise's SGD ``SVD`` in this
        process) or ``"spark"`` (``engine.spark``: Surprise's BaselineOnly ALS biases by Spark
        SQL, Spark ALS on the residuals for ``Q`` with ``rank = n_factors``, ``maxIter =
        n_epochs``, ``regParam = refit_lambda``, then the same ridge user refit). ``lr_all``,
        ``reg_all`` and ``init_std_dev`` are SGD settings the Spark engine does not use.
        Left out of the settings' hash when ``"surprise"``, so keys of analyses saved before
        it existed do not change.
    """

    n_factors: int = 100
    n_epochs: int = 20
    lr_all: float = 0.005
    reg_all: float = 0.02
    init_std_dev: float = 0.1
    refit_users: bool = True
    refit_lambda: float = 0.1
    seed: int = 0
    preset: str = "default"
    engine: str = "surprise"

    def __post_init__(self) -> None:
        kinds = {
            "n_factors": (is_int, "an integer"),
            "n_epochs": (is_int, "an integer"),
            "lr_all": (is_finite_number, "a finite number"),
            "reg_all": (is_finite_number, "a finite number"),
            "init_std_dev": (is_finite_number, "a finite number"),
            "refit_lambda": (is_finite_number, "a finite number"),
            "refit_users": (lambda v: isinstance(v, bool), "true or false"),
            "preset": (lambda v: isinstance(v, str), "a string"),
        }
        for name, (ok, kind) in kinds.items():
            if not ok(getattr(self, name)):
                raise ConfigError(
                    f"ModelConfig.{name}={getattr(self, name)!r} is not allowed: use {kind}."
                )
        checks = {
            "n_factors": (self.n_factors >= 1, "an integer >= 1, e.g. 100"),
            "n_epochs": (self.n_epochs >= 1, "an integer >= 1, e.g. 20"),
            "lr_all": (0 < self.lr_all <= 1, "a value in (0, 1], e.g. 0.005"),
            "reg_all": (self.reg_all >= 0, "a value >= 0, e.g. 0.02"),
            "init_std_dev": (self.init_std_dev >= 0, "a value >= 0, e.g. 0.1"),
            "refit_lambda": (self.refit_lambda > 0, "a value > 0, e.g. 0.1"),
        }
        for name, (ok, allowed) in checks.items():
            if not ok:
                raise ConfigError(
                    f"ModelConfig.{name}={getattr(self, name)!r} is not allowed: use {allowed}."
                )
        check_seed("ModelConfig", self.seed)
        if self.engine not in ENGINES:
            raise ConfigError(
                f"ModelConfig.engine={self.engine!r} is not allowed: use one of "
                f"{', '.join(ENGINES)}."
            )

    @classmethod
    def from_preset(cls, name: str, **overrides: object) -> ModelConfig:
        """Return a preset's settings, with any field overridden (then preset is ``custom``)."""
        if name not in PRESETS:
            raise ConfigError(f"Unknown preset {name!r}: use one of {', '.join(PRESETS)}.")
        known = {f.name for f in fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            raise ConfigError(
                f"Unknown ModelConfig field(s) {', '.join(sorted(unknown))}: use "
                f"{', '.join(sorted(known))}."
            )
        config = PRESETS[name]
        changed = {k: v for k, v in overrides.items() if getattr(config, k) != v and v is not None}
        return replace(config, **changed, preset="custom" if changed else name)

    def settings_in_use(self) -> dict[str, object]:
        """Return the settings by name, without the SGD ones (``SGD_SETTINGS``) under Spark.

        What a report shows as the model's settings: the Spark engine does not use
        ``lr_all``, ``reg_all`` or ``init_std_dev``, so listing them would read as if it did.
        """
        settings = asdict(self)
        if self.engine == "spark":
            for name in SGD_SETTINGS:
                del settings[name]
        return settings

    def surprise_params(self) -> dict[str, object]:
        """Return the keyword arguments for ``surprise.SVD``."""
        return {
            "n_factors": self.n_factors,
            "n_epochs": self.n_epochs,
            "lr_all": self.lr_all,
            "reg_all": self.reg_all,
            "init_std_dev": self.init_std_dev,
            "random_state": self.seed,
        }


#: ``default``: Surprise's SVD defaults plus the refit. ``tuned``: found by a grid search on
#: MovieLens 100K, 5-fold (see README, "Model presets").
PRESETS: dict[str, ModelConfig] = {
    "default": ModelConfig(),
    # 5-fold RMSE 0.9092 on ml-100k vs 0.9350 for Surprise's defaults (refit off); the best
    # of the grid (0.9089) needs 200 factors for 0.0003 less. `python -m tests.benchmarks.tune`.
    "tuned": ModelConfig(
        n_factors=100, n_epochs=40, lr_all=0.01, reg_all=0.1, refit_lambda=0.1, preset="tuned"
    ),
}
