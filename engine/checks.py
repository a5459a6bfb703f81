"""Value checks shared by the settings objects (``ModelConfig``, ``EvaluationConfig``, ...)."""

from __future__ import annotations

import logging
import math
import numbers
import os

from engine.errors import ConfigError

#: Largest seed numpy (``default_rng`` and the legacy ``RandomState`` Surprise uses) accepts.
MAX_SEED = 2**32 - 1


def is_int(value: object) -> bool:
    """Return True for an integer that is not a bool (numpy integers included)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_finite_number(value: object) -> bool:
    """Return True for a finite real number that is not a bool (NaN, inf and huge ints fail)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an integer beyond the float range
        return False


def check_seed(owner: str, seed: object) -> None:
    """Raise ``ConfigError`` unless ``seed`` is an integer in ``[0, MAX_SEED]``."""
    if not is_int(seed) or not 0 <= seed <= MAX_SEED:  # type: ignore[operator]
        raise ConfigError(
            f"{owner}.seed={seed!r} is not allowed: use an integer in [0, {MAX_SEED}] "
            "(2**32 - 1; default 0)."
        )


def check_count(
    name: str, value: object, default: int, lowest: int = 1, what: str | None = None
) -> int:
    """Return ``value`` as an int if it is an integer >= ``lowest``, else raise ``ConfigError``.

    For counts such as Shapley permutations or a top-N length; the message names the
    argument (``what`` describes it), the allowed range and the default.
    """
    if not is_int(value) or value < lowest:  # type: ignore[operator]
        raise ConfigError(
            f"{name}={value!r} is not allowed: {what or name} must be an integer >= {lowest} "
            f"(default {default})."
        )
    return int(value)  # type: ignore[call-overload]


def blas_threads() -> int:
    """Return the BLAS threads per numpy call: ``RECSYS_BLAS_THREADS``, default 1.

    One thread by default: the exact refit's thousands of small solves run ~300x slower
    with two BLAS threads on a loaded 2-core machine, and the CLI and the dashboard then
    compute bit-identical numbers (more threads change float sums in the last bits). A
    value that is not a whole number >= 1 is ignored with a warning.
    """
    text = os.environ.get("RECSYS_BLAS_THREADS", "1")
    if not text.isdigit() or int(text) < 1:
        logging.getLogger(__name__).warning(
            "RECSYS_BLAS_THREADS=%r is not a whole number >= 1; using 1", text
        )
        return 1
    return int(text)
