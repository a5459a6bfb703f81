"""Command line: ``python -m engine COMMAND INPUTS ...``.

INPUTS is a single positional path (a MovieLens archive or folder, a folder with
``ratings.*`` and optional ``users.*``/``items.*``, or one rating file), or
``--ratings FILE [--users FILE] [--items FILE]``. Output is JSON on stdout;
unusable input gives one sentence on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.data import ColumnMapping, LoadOptions, RatingData, dataset_profile, load_dataset
from engine.errors import EngineError
from engine.synth import DEFAULT_SEED, SynthConfig, generate, write_dataset

EXIT_BAD_INPUT = 2


def add_inputs(parser: argparse.ArgumentParser) -> None:
    """Add the INPUTS arguments shared by every data command."""
    parser.add_argument("path", nargs="?", help="archive, folder or rating file")
    parser.add_argument("--ratings", help="rating file (CSV/TSV/Parquet/...)")
    parser.add_argument("--users", help="user attribute file")
    parser.add_argument("--items", help="item attribute file")
    parser.add_argument(
        "--columns",
        help="explicit rating columns, e.g. user=uid,item=movie,rating=stars,timestamp=ts",
    )
    parser.add_argument("--scale", help="rating scale as LOW,HIGH, e.g. 1,5 (default: detect)")
    parser.add_argument(
        "--duplicates",
        choices=["latest", "first", "last", "mean"],
        default="latest",
        help="which rating of a repeated (user, item) pair to keep (default: latest)",
    )


def _parse_columns(text: str | None) -> ColumnMapping | None:
    if not text:
        return None
    fields: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or key.strip() not in ("user", "item", "rating", "timestamp"):
            raise EngineError(
                f"--columns entry {part!r} is not FIELD=COLUMN with FIELD one of user, item, "
                "rating, timestamp: write e.g. --columns user=uid,item=movie,rating=stars."
            )
        fields[key.strip()] = value.strip()
    return ColumnMapping(**fields)


def _parse_scale(text: str | None) -> tuple[float, float] | None:
    if not text:
        return None
    try:
        low, high = (float(x) for x in text.split(","))
    except ValueError as e:
        raise EngineError(f"--scale {text!r} is not LOW,HIGH: write e.g. --scale 1,5.") from e
    return low, high


def load_inputs(args: argparse.Namespace) -> RatingData:
    """Load the dataset named by the INPUTS arguments."""
    if args.path is None and args.ratings is None:
        raise EngineError("No input given: pass a folder, archive or file, or --ratings FILE.")
    options = LoadOptions(scale=_parse_scale(args.scale), duplicates=args.duplicates)
    return load_dataset(
        args.path,
        ratings=args.ratings,
        users=args.users,
        items=args.items,
        mapping=_parse_columns(args.columns),
        options=options,
    )


def _profile(args: argparse.Namespace) -> dict[str, Any]:
    data = load_inputs(args)
    return {
        "fingerprint": data.fingerprint,
        "profile": dataset_profile(data).to_dict(),
        "load_report": data.report.to_dict(),
    }


def _synth(args: argparse.Namespace) -> dict[str, Any]:
    dataset = generate(SynthConfig(seed=args.seed))
    paths = write_dataset(dataset, args.out)
    return {"written": [str(p) for p in paths], "counts": dataset.ground_truth["counts"]}


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every sub-command."""
    parser = argparse.ArgumentParser(prog="python -m engine", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    profile = commands.add_parser("profile", help="print the dataset profile and load report")
    add_inputs(profile)
    profile.set_defaults(run=_profile)
    synth = commands.add_parser("synth", help="generate the synthetic sample dataset")
    synth.add_argument("--out", type=Path, default=Path("sample_data"), help="output folder")
    synth.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed")
    synth.set_defaults(run=_synth)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = build_parser().parse_args(argv)
    try:
        result = args.run(args)
    except EngineError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        sys.stdout.write(json.dumps(result, indent=2, ensure_ascii=False, default=str) + "\n")
        sys.stdout.flush()
    except BrokenPipeError:  # e.g. piped into `head`
        sys.stderr.close()
    return 0
