"""The command line's external-system options of ``audit`` and ``run``.

``--recommendations FILE`` and ``--predictions FILE`` may be repeated, one file per system
(or a file with a ``system`` column for several); ``--system-name NAME`` names the file
given just before it (default: the file name without extension); a lists file and a
predictions file with the same name are one system. ``--heldout FILE`` names held-out
ratings (default: the temporal split of the ratings, ``--test-share`` of the time span);
``--external-columns`` maps columns of every external file (``user=uid,item=iid,rank=pos``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

from engine.errors import EngineError
from engine.external.heldout import HeldOut, heldout_from_file, temporal_heldout
from engine.external.load import load_lists, load_predictions, merge_systems
from engine.external.paired import with_pairs
from engine.external.systems import SystemsComparison, compare_systems
from engine.external.types import ExternalSystem
from engine.saved.systems import SavedSystems

_FIELDS = ("user", "item", "rank", "score", "prediction", "system")


class _File(argparse.Action):
    """Append ``(kind, path, name)`` to ``args.external`` in the order given."""

    def __call__(self, parser, namespace, values, option_string=None):
        files = list(getattr(namespace, "external", None) or [])
        kind = "lists" if option_string == "--recommendations" else "predictions"
        files.append([kind, values, None])
        namespace.external = files


class _Name(argparse.Action):
    """Name the external file given just before ``--system-name``."""

    def __call__(self, parser, namespace, values, option_string=None):
        files = getattr(namespace, "external", None) or []
        if not files:
            parser.error("--system-name names the --recommendations or --predictions file "
                         "given just before it: give the file first")  # fmt: skip
        if files[-1][2] is not None:
            parser.error(f"{files[-1][1]} is named twice by --system-name: give each file "
                         "one name")  # fmt: skip
        files[-1][2] = values


def add_external_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--recommendations``, ``--predictions``, ``--system-name``, ``--heldout``..."""
    parser.set_defaults(external=None)
    parser.add_argument(
        "--recommendations", action=_File, metavar="FILE",
        help="top-N lists of your own system (user, item, rank or score; optional system "
        "column); repeatable, one file per system",
    )  # fmt: skip
    parser.add_argument(
        "--predictions", action=_File, metavar="FILE",
        help="rating predictions of your own system (user, item, prediction); repeatable",
    )  # fmt: skip
    parser.add_argument(
        "--system-name", action=_Name, metavar="NAME",
        help="name of the system of the --recommendations/--predictions file just before it",
    )  # fmt: skip
    parser.add_argument(
        "--heldout", metavar="FILE",
        help="ratings collected after the lists were made, to judge them (default: the "
        "temporal split of the ratings at the last --test-share of time)",
    )  # fmt: skip
    parser.add_argument(
        "--external-columns", metavar="MAP",
        help="columns of the external files, e.g. user=uid,item=iid,rank=pos,score=s",
    )  # fmt: skip


def _mapping(text: str | None) -> dict[str, str] | None:
    if not text:
        return None
    out = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or key.strip() not in _FIELDS or not value.strip():
            raise EngineError(
                f"--external-columns entry {part!r} is not FIELD=COLUMN with FIELD one of "
                f"{', '.join(_FIELDS)}: write e.g. --external-columns user=uid,item=iid,rank=pos."
            )
        out[key.strip()] = value.strip()
    return out


def load_external(args: argparse.Namespace, data) -> list[ExternalSystem]:
    """Load every external file of ``args`` against ``data`` (none: an empty list)."""
    files = getattr(args, "external", None) or []
    mapping = _mapping(getattr(args, "external_columns", None))
    systems: list[ExternalSystem] = []
    for kind, path, name in files:
        if kind == "lists":
            wanted = None if mapping is None else {
                f: c for f, c in mapping.items() if f in ("user", "item", "rank", "score", "system")
            }  # fmt: skip
            systems += load_lists(path, data, name=name, k=args.k, mapping=wanted)
        else:
            wanted = None if mapping is None else {
                f: c for f, c in mapping.items() if f in ("user", "item", "prediction", "system")
            }  # fmt: skip
            systems += load_predictions(path, data, name=name, mapping=wanted)
    return merge_systems(systems)


def heldout_of(args: argparse.Namespace, data) -> HeldOut:
    """Return the held-out ratings of ``args``: ``--heldout FILE`` or the temporal split."""
    if getattr(args, "heldout", None):
        return heldout_from_file(data, args.heldout)
    return temporal_heldout(data, args.test_share or 0.2)


def with_systems(analysis, report, args: argparse.Namespace, systems: list[ExternalSystem]):
    """Return ``(report with the side-by-side section, its JSON dict)``; unchanged without."""
    if not systems:
        return report, None
    return with_saved_systems(
        analysis, report, SavedSystems(tuple(systems), heldout_of(args, analysis.data))
    )


def with_saved_systems(analysis, report, saved: SavedSystems | None):
    """``with_systems`` of systems kept in a saved analysis (``report DIR``): no file needed."""
    if saved is None:
        return report, None
    heldout = saved.heldout
    model = analysis.model if heldout.source != "temporal" else None
    comparison: SystemsComparison = compare_systems(
        heldout, list(saved.systems), model_config=analysis.settings.model,
        config=analysis.settings.audit, model=model,
    )  # fmt: skip
    comparison = with_pairs(comparison)
    return dataclasses.replace(report, systems=comparison), comparison.to_dict()


def kept_systems(report) -> SavedSystems | None:
    """Return the systems of ``report``'s side by side, to keep in a saved analysis (``run``)."""
    comparison = getattr(report, "systems", None)
    if comparison is None:
        return None
    return SavedSystems(tuple(comparison.external), comparison.heldout)


def systems_file(summary: dict[str, Any] | None) -> dict[str, bytes]:
    """``{"systems.json": bytes}`` of the side by side (empty without systems)."""
    if summary is None:
        return {}
    from engine.cli import json_safe

    text = json.dumps(json_safe(summary), indent=2, ensure_ascii=False, allow_nan=False)
    return {"systems.json": text.encode("utf-8")}


def write_systems(summary: dict[str, Any] | None, folder: Path) -> list[Path]:
    """Write ``systems.json`` into ``folder`` (nothing without systems)."""
    written = []
    for name, content in systems_file(summary).items():
        (folder / name).write_bytes(content)
        written.append(folder / name)
    return written
