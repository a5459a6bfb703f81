r"""One declaration per audit metric: the registry the audit, the report and the page read.

A ``MetricSpec`` says everything about one metric: its ``key``, ``family``, ``level``
(``"user group"``: a ratio of sums over each group's users; ``"item group"``: a share of
weighted (user, item) events per item group), which direction is ``better``, its
``display_name`` in sentences, its ``definition`` (one sentence), ``formula`` and
``references``, the shared ``inputs`` it needs (by declared name), the reason used when no
user has a value (``no_value``) and its ``compute`` function. ``run_audit`` audits every
spec of a ``Registry``; the metric table's ``family``/``better``/``definition`` columns,
the findings' wording, the report's definitions and references and the audit page's help
all come from the specs. The audit's own declarations are in ``engine.audit.specs``
(``REGISTRY``, ``SHARED_INPUTS``): adding a metric is one ``REGISTRY.register(MetricSpec(
...))`` there plus its hand-computed test.

Shared inputs are declared once (``InputSpec``): a name, what it is, the inputs it is
built from (declared before it, so there is no cycle) and its builder
(``engine.audit.inputs``). A metric names the inputs it reads and its ``compute`` sees
only those (``InputView``): nothing is inferred. During one audit an ``InputStore`` builds
each input at most once, on first use, and shares it between the metrics and
``run_audit`` itself (the lists, popularity, profile...).

Registering a second spec with a key already taken, an input with a name already taken,
a spec that names an undeclared input or a spec with an empty or unknown field raises
``RegistryError`` (when the declaring module is imported).

Compute contract. A ``"user group"`` spec returns ``Parts(a, b, transform)``: per-user
Series (index ``user_id``) such that a group's value is
:math:`f\big(\sum_{u \in G} a_u / \sum_{u \in G} b_u\big)` (``engine.audit.stats``); a
mean of per-user values has :math:`b_u = 1` (``per_user_mean``). An ``"item group"`` spec
returns ``Events(users, items, weights)``; an item group's value is the share of the total
weight on its items, compared with its catalogue share. A spec whose input is ``None``
(does not exist for this audit) is not audited, with the input's note if it has one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import numpy as np
import pandas as pd

from engine.audit.stats import Transform, identity
from engine.errors import EngineError

if TYPE_CHECKING:
    from engine.audit.config import AuditConfig
    from engine.data.types import RatingData
    from engine.evaluate import Evaluation
    from engine.model.svd import TrainedModel

Level = Literal["user group", "item group"]
Better = Literal["higher", "lower"]
Scope = Literal["model", "data"]
LEVELS: tuple[str, ...] = ("user group", "item group")
BETTER: tuple[str, ...] = ("higher", "lower")
#: What a metric describes: ``"model"``, what the recommender does (accuracy, utility,
#: popularity, calibration, explanations, exposure), or ``"data"``, a property of the
#: ratings themselves (interaction share), reported as context and never flagged.
SCOPES: tuple[str, ...] = ("model", "data")
#: Metric families, in the order the report shows them (the report schema lists the same).
FAMILIES: tuple[str, ...] = ("accuracy", "top-N utility", "popularity", "calibration",
                             "explanations", "exposure")  # fmt: skip
_KEY = re.compile(r"[a-z][a-z0-9_]*")


class RegistryError(EngineError):
    """A metric or input declaration that cannot be registered (raised at import)."""


class Parts(NamedTuple):
    """Ratio-of-sums parts of a user-group metric (see the module docstring)."""

    a: pd.Series
    b: pd.Series
    transform: Transform


class Events(NamedTuple):
    """Weighted (user, item) events of an item-group metric (see the module docstring)."""

    users: pd.Series
    items: pd.Series
    weights: np.ndarray


@dataclass(frozen=True)
class AuditSources:
    """What one audit starts from; inputs are built from these.

    ``config.threshold`` is resolved, ``k`` capped at the catalogue size.
    """

    data: RatingData
    model: TrainedModel
    evaluation: Evaluation
    config: AuditConfig
    k: int


def _text(owner: str, name: str, value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise RegistryError(f"{owner}: '{name}' must be a non-empty sentence, not {value!r}.")


@dataclass(frozen=True)
class InputSpec:
    """A shared input of the audit: built once per audit by ``build(sources, needs)``.

    ``needs`` are the inputs it is built from (declared earlier); ``empty_reason`` is why
    a metric reading it has no value when it is empty (e.g. no list at all);
    ``unavailable_note`` is the audit's note when ``build`` returns ``None`` and a metric
    needed it.
    """

    name: str
    description: str
    build: Callable[[AuditSources, Mapping[str, Any]], Any] = field(repr=False)
    needs: tuple[str, ...] = ()
    empty_reason: str | None = None
    unavailable_note: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _KEY.fullmatch(self.name):
            raise RegistryError(f"Input name {self.name!r} must be lower_snake_case.")
        _text(f"input '{self.name}'", "description", self.description)
        object.__setattr__(self, "needs", tuple(self.needs))
        if not callable(self.build):
            raise RegistryError(f"Input '{self.name}': 'build' must be a function.")


@dataclass(frozen=True)
class MetricSpec:
    """One audit metric, declared once; every other module reads it from here.

    Attributes
    ----------
    key
        The metric's name in the audit table (``metric`` column), lower_snake_case, unique.
    family
        One of ``FAMILIES``; the report groups its sections by it.
    level
        ``"user group"`` (value per user group, compared with the largest group) or
        ``"item group"`` (share per item group, compared with its catalogue share).
    better
        ``"higher"`` or ``"lower"``: which direction serves the group better.
    display_name
        How findings name it in a sentence ("RMSE", "genre miscalibration").
    definition
        One sentence (the table's ``definition`` column, no final period).
    formula
        The formula in plain text, with its symbols explained.
    references
        Where the metric comes from (at least one); the report lists each once.
    inputs
        Names of the shared inputs ``compute`` reads (declared in the registry).
    no_value
        Why the metric is not audited when no user has a value (in the audit's notes).
    compute
        ``compute(view) -> Parts`` (user group) or ``Events`` (item group); ``view``
        holds only the declared ``inputs`` and can add a note (``InputView.note``).
    scope
        ``"model"`` (default; what the recommender does: its rows can be flagged or
        notable) or ``"data"`` (a property of the ratings, not of the model: its rows are
        context, never flagged); see ``SCOPES``.
    """

    key: str
    family: str
    level: Level
    better: Better
    display_name: str
    definition: str
    formula: str
    references: tuple[str, ...]
    inputs: tuple[str, ...]
    no_value: str
    compute: Callable[[InputView], Parts | Events] = field(repr=False)
    scope: Scope = "model"

    def __post_init__(self) -> None:
        owner = f"Metric {self.key!r}"
        if not isinstance(self.key, str) or not _KEY.fullmatch(self.key):
            raise RegistryError(f"{owner}: the key must be lower_snake_case.")
        checked = (("family", FAMILIES), ("level", LEVELS), ("better", BETTER), ("scope", SCOPES))
        for name, allowed in checked:
            if getattr(self, name) not in allowed:
                raise RegistryError(
                    f"{owner}: {name} {getattr(self, name)!r} is not one of {', '.join(allowed)}."
                )
        for name in ("display_name", "definition", "formula", "no_value"):
            _text(owner, name, getattr(self, name))
        for name in ("references", "inputs"):
            values = getattr(self, name)
            values = (values,) if isinstance(values, str) else tuple(values)
            if not values:
                raise RegistryError(f"{owner}: give at least one entry in '{name}'.")
            for value in values:
                _text(owner, name, value)
            object.__setattr__(self, name, values)
        if not callable(self.compute):
            raise RegistryError(f"{owner}: 'compute' must be a function.")

    def describe(self) -> dict[str, Any]:
        """Return the report's definition of this metric (``Report.definitions[key]``)."""
        return {
            "family": self.family,
            "level": self.level,
            "better": self.better,
            "name": self.display_name,
            "definition": self.definition,
            "formula": self.formula,
            "references": list(self.references),
        }

    def help_text(self) -> str:
        """Markdown help for the audit page: definition, formula, direction and reference."""
        direction = direction_words(self.level, self.better)
        return (
            f"**{self.display_name}** ({self.family}, by {self.level}): {self.definition}.\n\n"
            f"Formula: `{self.formula}`\n\n**{direction[0].upper() + direction[1:]}.** "
            f"Reference: {'; '.join(self.references)}"
        )


def direction_words(level: str, better: str) -> str:
    """Say how a metric's value is read (``"lower is better"``).

    An item group's share is compared with the group's catalogue share and flagged when its
    ratio is far from 1 on either side, so neither direction is simply better.
    """
    if level == "item group":
        return ("a ratio of 1 to the catalogue share is exposure in proportion; a group far "
                "from 1 on either side is flagged, over- or under-exposed")  # fmt: skip
    return f"{better} is better"


class Registry:
    """Metric specs in declaration order over a table of declared shared inputs.

    ``registry[key]`` is a spec (``KeyError`` naming the known keys otherwise); iterating
    gives the specs in order; ``at_level("user group")`` the specs of one level.
    """

    def __init__(self, inputs: Iterable[InputSpec] = (), metrics: Iterable[MetricSpec] = ()):
        self._inputs: dict[str, InputSpec] = {}
        self._metrics: dict[str, MetricSpec] = {}
        for spec in inputs:
            self.declare(spec)
        for metric in metrics:
            self.register(metric)

    def declare(self, spec: InputSpec) -> InputSpec:
        """Add a shared input; its ``needs`` must already be declared."""
        if spec.name in self._inputs:
            raise RegistryError(f"Input '{spec.name}' is declared twice.")
        unknown = [n for n in spec.needs if n not in self._inputs]
        if unknown:
            raise RegistryError(
                f"Input '{spec.name}' needs {', '.join(unknown)}, not declared before it."
            )
        self._inputs[spec.name] = spec
        return spec

    def register(self, spec: MetricSpec) -> MetricSpec:
        """Add a metric; its key must be new and every input it names declared."""
        if spec.key in self._metrics:
            raise RegistryError(f"Metric '{spec.key}' is registered twice: keys must be unique.")
        unknown = [n for n in spec.inputs if n not in self._inputs]
        if unknown:
            raise RegistryError(
                f"Metric '{spec.key}' needs undeclared input {', '.join(unknown)}: declare it "
                f"first (known: {', '.join(self._inputs)})."
            )
        self._metrics[spec.key] = spec
        return spec

    @property
    def inputs(self) -> Mapping[str, InputSpec]:
        """The declared shared inputs by name (read-only)."""
        return MappingProxyType(self._inputs)

    def __getitem__(self, key: str) -> MetricSpec:
        try:
            return self._metrics[key]
        except KeyError:
            raise KeyError(f"No metric '{key}': known are {', '.join(self._metrics)}.") from None

    def get(self, key: str) -> MetricSpec | None:
        """Return the spec of ``key``, or ``None``."""
        return self._metrics.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self._metrics

    def __iter__(self) -> Iterator[MetricSpec]:
        return iter(tuple(self._metrics.values()))

    def __len__(self) -> int:
        return len(self._metrics)

    def keys(self) -> tuple[str, ...]:
        """Return the metric keys in declaration order."""
        return tuple(self._metrics)

    def at_level(self, level: Level) -> tuple[MetricSpec, ...]:
        """Return the specs of one level, in declaration order."""
        return tuple(s for s in self._metrics.values() if s.level == level)

    def store(
        self, sources: AuditSources, notes: list[str], given: Mapping[str, Any] | None = None
    ) -> InputStore:
        """Return a fresh ``InputStore`` for one audit (``given``: inputs already built)."""
        return InputStore(self._inputs, sources, notes, given or {})


class InputStore:
    """The shared inputs of one audit, each built at most once, on first use."""

    def __init__(
        self,
        specs: Mapping[str, InputSpec],
        sources: AuditSources,
        notes: list[str],
        given: Mapping[str, Any],
    ):
        unknown = [n for n in given if n not in specs]
        if unknown:
            raise RegistryError(f"Given inputs {', '.join(unknown)} are not declared.")
        self._specs, self._sources, self.notes = specs, sources, notes
        self._values: dict[str, Any] = dict(given)

    def __getitem__(self, name: str) -> Any:
        if name not in self._values:
            if name not in self._specs:
                raise KeyError(f"Input '{name}' is not declared.")
            spec = self._specs[name]
            self._values[name] = spec.build(self._sources, self.view(spec.needs, spec.name))
        return self._values[name]

    def built(self) -> tuple[str, ...]:
        """Names of the inputs built (or given) so far."""
        return tuple(self._values)

    def view(self, names: tuple[str, ...], owner: str) -> InputView:
        """Return a read-only view of the inputs ``names`` (what ``owner`` declared)."""
        return InputView(self, names, owner)

    def empty_reason(self, spec: MetricSpec) -> str:
        """Why ``spec`` has no value: an empty declared input's reason, else ``no_value``."""
        for name in spec.inputs:
            reason = self._specs[name].empty_reason
            if reason and len(self[name]) == 0:
                return reason
        return spec.no_value


class InputView(Mapping[str, Any]):
    """The inputs one spec (or input) declared; reading any other raises ``KeyError``."""

    def __init__(self, store: InputStore, names: tuple[str, ...], owner: str):
        self._store, self._names, self._owner = store, names, owner

    def __getitem__(self, name: str) -> Any:
        if name not in self._names:
            raise KeyError(
                f"'{self._owner}' reads input '{name}' without declaring it (declared: "
                f"{', '.join(self._names)})."
            )
        return self._store[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def note(self, sentence: str) -> None:
        """Add a sentence to the audit's notes."""
        self._store.notes.append(sentence)


def per_user_mean(values: pd.Series) -> Parts:
    """Parts of a mean of per-user values (``b_u = 1``)."""
    return Parts(values, pd.Series(1.0, index=values.index), identity)


def audited(
    registry: Registry, store: InputStore
) -> tuple[dict[str, Parts], list[tuple[MetricSpec, Events]]]:
    """Compute every spec of ``registry`` once: user-group ``Parts`` and item-group ``Events``.

    Returns ``({key: Parts}, [(spec, Events)])`` in declaration order. A spec whose input
    does not exist for this audit (``None``) is left out, with that input's
    ``unavailable_note`` once; a user-group spec no user has a value for is left out with
    a note giving the reason (``InputStore.empty_reason``).
    """
    parts: dict[str, Parts] = {}
    events: list[tuple[MetricSpec, Events]] = []
    missing: list[str] = []
    for spec in registry:
        absent = [n for n in spec.inputs if store[n] is None]
        if absent:
            missing += [n for n in absent if n not in missing]
            continue
        value = spec.compute(store.view(spec.inputs, spec.key))
        if spec.level == "user group":
            parts[spec.key] = Parts(*value)
        else:
            events.append((spec, Events(*value)))
    empty = [k for k, p in parts.items() if p.a.empty]
    reasons = {k: store.empty_reason(registry[k]) for k in empty}
    for reason in dict.fromkeys(reasons.values()):
        names = [k for k in empty if reasons[k] == reason]
        verb = "is" if len(names) == 1 else "are"
        store.notes.append(f"{', '.join(names)} {verb} not audited by group: {reason}.")
    for name in missing:
        note = registry.inputs[name].unavailable_note
        if note:
            store.notes.append(note)
    return {k: p for k, p in parts.items() if k not in empty}, events
