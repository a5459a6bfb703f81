"""Command line: ``python -m engine COMMAND INPUTS ...``.

INPUTS is a single positional path (a MovieLens archive or folder, a folder with
``ratings.*`` and optional ``users.*``/``items.*``, or one rating file), or
``--ratings FILE [--users FILE] [--items FILE]``. Output is JSON on stdout;
unusable input gives one sentence on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from engine.analysis import DEFAULT_MODELS, Analysis, AnalysisSettings, RankingConfig
from engine.audit import AuditConfig
from engine.checks import MAX_SEED
from engine.compare import compare_versions
from engine.compare.versions import open_version_source, scale_of, version_of
from engine.data import ColumnMapping, LoadOptions, RatingData, dataset_profile, load_dataset
from engine.data.types import RatingScale
from engine.errors import EngineError
from engine.evaluate import MODEL_NAMES, EvaluationConfig
from engine.explain import explain_prediction, factor_labels, item_titles, reading_summary
from engine.external.cli import (
    add_external_options,
    kept_systems,
    load_external,
    systems_file,
    with_saved_systems,
    with_systems,
    write_systems,
)
from engine.memory import tune_allocator
from engine.model import PRESETS, ModelConfig
from engine.model.comparators import train_knn_baseline
from engine.model.config import ENGINES
from engine.protocols import SPLITS, require_times
from engine.recommend import UnknownUserError, recommend
from engine.report import ChromiumNotFound, Report, render
from engine.report.comparison import describe_versions, render_comparison
from engine.report.update_section import with_update
from engine.report.write import FORMATS, parse_formats, write_files
from engine.saved import open_analysis, read_saved, save_analysis
from engine.saved.kept import check_kept_target, is_kept, kept_report, open_kept, save_kept
from engine.synth import DEFAULT_SEED, SynthConfig, generate, write_dataset
from engine.update import UpdateRecord, update_analysis

if TYPE_CHECKING:
    import pandas as pd

EXIT_BAD_INPUT = 2
#: Names the CLI accepts for ``--delimiter``.
DELIMITER_NAMES: dict[str, str] = {
    ",": ",", "comma": ",", ";": ";", "semicolon": ";", "tab": "\t", "\\t": "\t",
    "\t": "\t", "|": "|", "pipe": "|", "::": "::", "space": " ", " ": " ",
}  # fmt: skip


class ArgumentError(EngineError):
    """A command-line option outside its allowed values."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr and exit code 2."""

    def error(self, message: str) -> NoReturn:
        """Print ``error: MESSAGE (see --help)`` and exit with code 2."""
        self.exit(EXIT_BAD_INPUT, f"error: {message} (see {self.prog} --help).\n")


def _int_at_least(low: int, high: int | None = None) -> Callable[[str], int]:
    """Return an argparse type: an integer in ``[low, high]``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low or (high is not None and value > high):
            allowed = f">= {low:,}" if high is None else f"between {low:,} and {high:,}"
            raise argparse.ArgumentTypeError(f"{value:,} is not allowed: use a number {allowed}")
        return value

    return parse


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _number_in(
    low: float, high: float | None = None, *, above: bool = False
) -> Callable[[str], float]:
    """Return an argparse type: a finite number ``>= low`` (``> low`` if ``above``), ``<= high``."""

    def parse(text: str) -> float:
        value = _finite_float(text)
        if value < low or (above and value == low) or (high is not None and value > high):
            allowed = f"{'>' if above else '>='} {low:g}"
            allowed += "" if high is None else f" and <= {high:g}"
            raise argparse.ArgumentTypeError(f"{text} is not allowed: use a number {allowed}")
        return value

    return parse


def add_inputs(parser: argparse.ArgumentParser) -> None:
    """Add the INPUTS arguments shared by every data command."""
    parser.add_argument("path", nargs="?", help="archive, folder or rating file")
    parser.add_argument("--ratings", help="rating file (CSV/TSV/Parquet/...)")
    parser.add_argument("--users", help="user attribute file")
    parser.add_argument("--items", help="item attribute file")
    add_load_options(parser)


def add_load_options(parser: argparse.ArgumentParser) -> None:
    """Add how a rating file is read: columns, scale, duplicates, limits, delimiter, sheet."""
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
    parser.add_argument(
        "--max-rows",
        type=_int_at_least(1),
        default=LoadOptions.max_rows,
        help=f"most rows read from one table file (default {LoadOptions.max_rows:,})",
    )
    parser.add_argument(
        "--delimiter",
        help="field delimiter of text files: , ; tab | :: or space (default: detect)",
    )
    parser.add_argument(
        "--decimal",
        choices=[".", ","],
        help="decimal mark of ratings (default: detect; ',' for e.g. 3,5 with ';' between fields)",
    )
    parser.add_argument("--sheet", help="worksheet of an Excel workbook (default: ratings/first)")


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
        if key.strip() in fields:
            raise ArgumentError(
                f"--columns gives the {key.strip()} field twice ({fields[key.strip()]!r} and "
                f"{value.strip()!r}): give each field one column."
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


def _parse_delimiter(text: str | None) -> str | None:
    if text is None:
        return None
    if text not in DELIMITER_NAMES:
        raise ArgumentError(
            f"--delimiter {text!r} is not supported: use one of , ; tab | :: space."
        )
    return DELIMITER_NAMES[text]


def load_inputs(args: argparse.Namespace) -> RatingData:
    """Load the dataset named by the INPUTS arguments.

    With ``--engine spark`` the rating file is read by Spark (``engine.spark.inputs``:
    the same ``RatingData`` and load report), the attribute tables as always.
    """
    options = _load_options(args)
    load = load_dataset
    if getattr(args, "engine", "surprise") == "spark":
        from engine.spark.inputs import load_inputs as load
    return load(
        args.path,
        ratings=args.ratings,
        users=args.users,
        items=args.items,
        mapping=_parse_columns(args.columns),
        options=options,
    )


def _load_options(args: argparse.Namespace) -> LoadOptions:
    """Check that INPUTS name one rating file; return the load options given."""
    if args.path is None and args.ratings is None:
        raise EngineError("No input given: pass a folder, archive or file, or --ratings FILE.")
    if args.path is not None and args.ratings is not None and not Path(args.path).is_dir():
        raise ArgumentError(
            f"Both {args.path} and --ratings {args.ratings} were given as the rating file: "
            "pass one of them (a folder or archive may come with --ratings to replace its own)."
        )
    return LoadOptions(
        scale=_parse_scale(args.scale), duplicates=args.duplicates, max_rows=args.max_rows,
        delimiter=_parse_delimiter(args.delimiter), decimal=args.decimal, sheet=args.sheet,
    )  # fmt: skip


def _profile(args: argparse.Namespace) -> dict[str, Any]:
    data = load_inputs(args)
    return {
        "fingerprint": data.fingerprint,
        "profile": dataset_profile(data).to_dict(),
        "load_report": data.report.to_dict(),
    }


#: Options that override one setting of ``--preset`` (then the preset reads ``custom``).
_MODEL_OVERRIDES = {"factors": "n_factors", "epochs": "n_epochs", "lr": "lr_all",
                    "reg": "reg_all", "refit_lambda": "refit_lambda"}  # fmt: skip


def _model_config(args: argparse.Namespace) -> ModelConfig:
    overrides = {name: getattr(args, option) for option, name in _MODEL_OVERRIDES.items()}
    if args.engine == "spark":
        for option in ("lr", "reg"):
            if getattr(args, option) is not None:
                raise ArgumentError(
                    f"--{option} is a setting of Surprise's SGD, which the Spark engine does not "
                    "use (it fits the item factors by ALS): leave it out with --engine spark."
                )
    config = ModelConfig.from_preset(
        args.preset, seed=args.seed, refit_users=False if args.no_refit else None, **overrides
    )
    return _with_engine(config, args)


def _with_engine(config: ModelConfig, args: argparse.Namespace) -> ModelConfig:
    """Apply ``--engine`` and, for Spark, set where it runs (``--spark-*``)."""
    from engine.spark.session import SparkSettings, configure

    spark_options = {"master": args.spark_master, "driver_memory": args.spark_driver_memory,
                     "executor_memory": args.spark_executor_memory}  # fmt: skip
    given = {k: v for k, v in spark_options.items() if v is not None}
    if args.engine != "spark":
        if given:
            option = "--spark-" + next(iter(given)).replace("_", "-")
            raise ArgumentError(f"{option} applies to --engine spark only: add --engine spark.")
        return config
    configure(SparkSettings(**given))
    return dataclasses.replace(config, engine="spark")


#: The ``evaluate`` options of each time protocol (``engine.protocols``).
_PROTOCOL_OPTIONS = {"folds": ("kfold",), "test_share": ("temporal", "rolling"),
                     "last_n": ("last-n",), "windows": ("rolling",)}  # fmt: skip


def _protocol(args: argparse.Namespace) -> dict[str, Any]:
    """Return ``split`` and its parameters; refuse a parameter the chosen split does not use."""
    chosen: dict[str, Any] = {"split": args.split}
    for name, splits in _PROTOCOL_OPTIONS.items():
        value = getattr(args, name)
        if value is None:
            continue
        if args.split not in splits:
            option = "--" + name.replace("_", "-")
            raise ArgumentError(
                f"{option} applies to --split {' or '.join(splits)} only, not "
                f"{args.split}: drop {option} or change --split."
            )
        chosen[name] = value
    return chosen


def _share(text: str) -> float:
    value = _finite_float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a share strictly between 0 and 1")
    return value


def _window(text: str) -> str:
    from engine.monitor_windows import check_window

    try:
        return check_window(text)
    except EngineError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _evaluate(args: argparse.Namespace) -> dict[str, Any]:
    settings = AnalysisSettings(
        model=_model_config(args),
        ranking=RankingConfig(k=args.k, threshold=args.threshold),
        evaluation=EvaluationConfig(seed=args.seed,
                                    models=tuple(m.strip() for m in args.models.split(",")),
                                    **_protocol(args)),
    )  # fmt: skip
    data = load_inputs(args)
    result = Analysis(data, settings).evaluation()
    return {"dataset": data.name, "fingerprint": data.fingerprint, **result.to_dict()}


def _recommend(args: argparse.Namespace) -> dict[str, Any]:
    config = _model_config(args)
    data = load_inputs(args)
    if not (data.ratings["user_id"] == args.user).any():
        raise UnknownUserError(
            f"User {args.user!r} has no rating in {data.name} ({data.n_users:,} users): check "
            "the id (ids are exact strings, '001' is not '1')."
        )
    model = Analysis(data, AnalysisSettings(model=config)).model
    recs = recommend(model, args.user, args.n)
    titles = data.items["title"] if data.items is not None and "title" in data.items else None
    entries = []
    for row in recs.itertuples(index=False):
        entry = {
            "rank": int(row.rank),
            "item_id": row.item_id,
            "prediction": float(row.prediction),
            "raw_prediction": float(row.raw_prediction),
        }
        if titles is not None and row.item_id in titles.index:
            entry["title"] = titles[row.item_id]
        entries.append(entry)  # fmt: skip
    out = {
        "user_id": args.user,
        "model": model.config.__dict__,
        "source": recs["source"].iat[0] if len(recs) else None,
        "recommendations": entries,
    }
    if not entries:
        out["reason"] = "the user has rated every item the model knows: nothing is left to rank"
    return out


def _explain(args: argparse.Namespace) -> dict[str, Any]:
    config = _model_config(args)
    data = load_inputs(args)
    model = Analysis(data, AnalysisSettings(model=config)).model
    labels = factor_labels(model, data.items, item_titles(data))
    knn = train_knn_baseline(data.ratings, model.scale) if args.knn else None
    bundle = explain_prediction(
        model, args.user, args.item, data=data, knn=knn, shapley=args.shapley,
        permutations=args.permutations, seed=args.seed, factor_labels=list(labels["label"]),
        n=args.n,
    )  # fmt: skip
    out = {"model": model.config.__dict__, **bundle.to_dict()}
    if bundle.history is not None:  # what a reader needs beside it (engine.explain.summary)
        inter = model.interactions
        vector = model.user_vector(int(inter.user_index([args.user])[0]))
        item = int(inter.item_index([args.item])[0])
        out["reading"] = reading_summary(model, vector, item, data, bundle.shapley)
    return out


def check_writable_folder(folder: Path) -> None:
    """Make sure ``folder`` exists (creating it) and a file can be written in it.

    Checked before any work, so a bad ``--out`` costs no training.

    Raises
    ------
    ArgumentError
        ``folder`` is an existing file, or cannot be created or written to.
    """
    if folder.exists() and not folder.is_dir():
        raise ArgumentError(
            f"--out {folder} is an existing file, not a folder: name a folder for the report."
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise ArgumentError(
            f"--out {folder} cannot be written to ({e.strerror or e}): choose a folder you "
            "can write to."
        ) from e


def _check_attributes(data: RatingData, config: AuditConfig) -> None:
    """Refuse ``--user-attrs``/``--item-attrs`` naming no attribute of the data, before training."""
    _check_attribute_names(data.users, data.items, data.name, config)


def _check_attribute_names(
    users: pd.DataFrame | None, items: pd.DataFrame | None, name: str, config: AuditConfig
) -> None:
    for kind, chosen, table in (
        ("user", config.user_attributes, users),
        ("item", config.item_attributes, items),
    ):
        available = [] if table is None else [str(c) for c in table.columns]
        missing = [column for column in chosen or () if column not in available]
        if missing:
            raise ArgumentError(
                f"--{kind}-attrs names {', '.join(map(repr, missing))}, which the {kind} "
                f"attributes of {name} do not have (they are: "
                f"{', '.join(available) or f'none; load {kind} attributes with --{kind}s'})."
            )


def _settings(args: argparse.Namespace) -> AnalysisSettings:
    """Return the settings of ``audit``/``run`` (one k, threshold and seed for all stages)."""
    return AnalysisSettings(
        model=_model_config(args),
        ranking=RankingConfig(k=args.k, threshold=args.threshold),
        evaluation=EvaluationConfig(seed=args.seed, models=_names(args.models) or (),
                                    **_protocol(args)),
        audit=AuditConfig(
            user_attributes=_names(args.user_attrs), item_attributes=_names(args.item_attrs),
            min_group_size=args.min_group_size, seed=args.seed, bootstrap=args.bootstrap,
        ),
    )  # fmt: skip


def _analysis(args: argparse.Namespace) -> tuple[Analysis, list[str]]:
    """Check ``--out`` and ``--format``, load the inputs and return the analysis to run."""
    formats = parse_formats(args.format)
    check_writable_folder(args.out)
    settings = _settings(args)
    data = load_inputs(args)
    _check_attributes(data, settings.audit)
    require_times(data.ratings, settings.evaluation.split, data.name)
    if args.over_time is not None:
        from engine.monitor import has_times

        if not has_times(data):
            raise ArgumentError(
                f"--over-time needs a time for each rating, and {data.name} has none: load a "
                "timestamp column (--columns timestamp=NAME) or leave --over-time out."
            )
    return Analysis(data, settings), formats


def _render(report: Report, formats: list[str]) -> tuple[dict[str, bytes], ChromiumNotFound | None]:
    """Render ``formats``; a PDF that cannot be made leaves the others and its error."""
    others = [f for f in formats if f != "pdf"]
    files = render(report, others) if others else {}
    if "pdf" in formats:
        try:
            files |= render(report, ["pdf"])
        except ChromiumNotFound as exc:
            if not files:
                raise
            return files, exc
    return files, None


def _missing_pdf(written: list[Path], folder: Path, exc: ChromiumNotFound) -> ChromiumNotFound:
    return ChromiumNotFound(
        f"{', '.join(p.name for p in written)} written to {folder}, but not the PDF: {exc}"
    )


def _summary(notes: list[str], report: Report, written: list[Path]) -> dict[str, Any]:
    return {
        "written": [str(p) for p in written],
        "executive_summary": [
            {"headline": i.headline, "check_next": i.check_next, "kind": i.kind}
            for i in report.summary
        ],
        "headline": report.headline,
        "findings": [f.sentence for f in report.findings],
        "notable": [f.sentence for f in report.notable],
        "notes": notes,
    }


def _write_report(report: Report, formats: list[str], folder: Path) -> list[Path]:
    """Render and write ``formats`` into ``folder``; a missing PDF fails after the others."""
    files, pdf_error = _render(report, formats)
    written = write_files(files, folder)
    if pdf_error is not None:
        raise _missing_pdf(written, folder, pdf_error)
    return written


def _with_over_time(analysis: Analysis, report: Report, args: argparse.Namespace) -> Report:
    """``report`` with the "Over time" section when ``--over-time WINDOW`` was given."""
    if args.over_time is None:
        return report
    from engine.monitor import MonitorConfig, monitor

    settings = analysis.settings
    config = MonitorConfig(
        k=settings.ranking.k, threshold=settings.ranking.threshold,
        min_group_size=settings.audit.min_group_size, bootstrap=settings.audit.bootstrap,
        model=settings.model, seed=settings.audit.seed,
    )  # fmt: skip
    return dataclasses.replace(report, monitoring=monitor(analysis.data, args.over_time, config))


def _audit(args: argparse.Namespace) -> dict[str, Any]:
    analysis, formats = _analysis(args)
    systems = load_external(args, analysis.data)  # fails fast on a bad file (exit 2)
    report = _with_over_time(analysis, analysis.report(), args)
    report, side = with_systems(analysis, report, args, systems)
    written = _write_report(report, formats, args.out) + write_systems(side, args.out)
    return _summary(analysis.audit().notes, report, written) | ({"systems": side} if side else {})


def _run(args: argparse.Namespace) -> dict[str, Any]:
    if args.keep_in_spark:
        return _run_in_spark(args)
    if args.spark_tables is not None:
        raise ArgumentError(
            "--spark-tables names where --keep-in-spark writes the evaluation's Parquet "
            "tables: add --keep-in-spark, or leave --spark-tables out."
        )
    if args.no_user_side:
        raise ArgumentError(
            "--no-user-side leaves out the user side that --keep-in-spark writes (a saved "
            "analysis holds the ratings anyway): add --keep-in-spark, or leave it out."
        )
    analysis, formats = _analysis(args)
    systems = load_external(args, analysis.data)  # fails fast on a bad file (exit 2)
    report = _with_over_time(analysis, analysis.report(), args)
    report, side = with_systems(analysis, report, args, systems)
    files, pdf_error = _render(report, formats)
    files |= systems_file(side)
    folder = save_analysis(analysis, args.out, report_files=files, systems=kept_systems(report))
    written = [folder / "report" / name for name in files]  # save_analysis puts them there
    if pdf_error is not None:
        raise _missing_pdf(written, folder, pdf_error)
    out = {"analysis": str(folder), **_summary(analysis.audit().notes, report, written)}
    return out | ({"systems": side} if side else {})


def _run_in_spark(args: argparse.Namespace) -> dict[str, Any]:
    """``run --engine spark --keep-in-spark``: ``engine.spark.run.run_in_spark``, no saved analysis.

    Writes the evaluation's Parquet tables to ``--out``/evaluation, the report to
    ``--out``/report and what it was assembled from (``engine.saved.kept.save_kept``), so
    ``report --out`` writes it again without Spark.
    """
    _refuse_in_spark(args)
    formats = parse_formats(args.format)
    check_writable_folder(args.out)
    check_kept_target(args.out)  # before Spark starts
    settings = _settings(args)
    from engine.spark.inputs import load_kept_inputs
    from engine.spark.run import run_in_spark

    inputs = load_kept_inputs(
        args.path, ratings=args.ratings, users=args.users, items=args.items,
        mapping=_parse_columns(args.columns), options=_load_options(args),
    )  # fmt: skip
    _check_attribute_names(inputs.users, inputs.items, inputs.name, settings.audit)
    protocol = settings.evaluation
    tables = args.spark_tables or args.out / "evaluation"
    kept = run_in_spark(
        inputs, tables, settings.model, settings.audit,
        split=protocol.split, folds=protocol.folds, test_share=protocol.test_share,
        models=protocol.models, user_side=None if args.no_user_side else args.out,
    )  # fmt: skip
    written = _write_report(kept.report, formats, args.out / "report")
    save_kept(args.out, kept.parts, kept.result, str(tables), kept.user_side)
    return {
        "evaluation": str(tables),
        **_summary(kept.result.notes, kept.report, written),
        "saved_analysis": "none: the ratings stayed in Spark, and a saved analysis holds them "
        "(update reads it; compare reads a kept run's user side); the report's parts are "
        f"saved, so 'python -m engine report {args.out} --out DIR' writes the report again and "
        f"'streamlit run dashboard/app.py -- --analysis {args.out}' shows it.",
    }


def _refuse_in_spark(args: argparse.Namespace) -> None:
    """Refuse what ``--keep-in-spark`` cannot do, one sentence each, before Spark starts."""
    if args.engine != "spark":
        raise ArgumentError("--keep-in-spark keeps the ratings in Spark: add --engine spark.")
    from engine.spark.evaluate import KEPT_MODELS
    from engine.spark.run import KEPT_SPLITS

    refused = {
        "--split " + args.split: args.split not in KEPT_SPLITS,
        "--over-time": args.over_time is not None,
        "--recommendations/--predictions": bool(args.external),
        "--heldout": args.heldout is not None,
    }
    for option, given in refused.items():
        if given:
            raise ArgumentError(
                f"{option} is not available with --keep-in-spark, which evaluates and audits "
                "the SVD where the ratings lie (kfold or temporal split): leave it out, or "
                "leave out --keep-in-spark to analyse in memory."
            )
    not_kept = [m for m in _names(args.models) or () if m not in KEPT_MODELS]
    if not_kept:
        raise ArgumentError(
            f"--models {','.join(not_kept)} is not available with --keep-in-spark: where the "
            f"ratings lie the models are {','.join(KEPT_MODELS)} (KNNBaseline's item-item "
            "similarities need every rating in one process); leave it out, or leave out "
            "--keep-in-spark to analyse in memory."
        )


def _report(args: argparse.Namespace) -> dict[str, Any]:
    formats = parse_formats(args.format)
    check_writable_folder(args.out)
    if is_kept(args.analysis):  # a run kept in Spark: its stored parts, no Spark needed
        report, result = kept_report(args.analysis)
        return _summary(result.notes, report, _write_report(report, formats, args.out))
    saved = read_saved(args.analysis)  # open_analysis, with the manifest's derived_from
    analysis = saved.analysis
    analysis.notes.extend(saved.notes)
    missing = [s for s in ("model", "evaluation", "audit") if s not in analysis.computed()]
    report = with_update(analysis.report(), saved.manifest.get("derived_from"))
    report, side = with_saved_systems(analysis, report, saved.systems)  # no original files
    written = _write_report(report, formats, args.out) + write_systems(side, args.out)
    out = _summary(analysis.audit().notes, report, written) | ({"systems": side} if side else {})
    if missing:
        out["recomputed"] = missing
    return out


def _update(args: argparse.Namespace) -> dict[str, Any]:
    """``update DIR --ratings NEW --out DIR2``: see ``engine.update`` and the README."""
    if args.out.resolve() == args.analysis.resolve():
        raise ArgumentError(
            f"--out {args.out} is the analysis being updated: write the update to another "
            "folder, so the original stays as it was."
        )
    check_writable_folder(args.out.parent if not args.out.exists() else args.out)
    formats = parse_formats(args.format) if args.format else []
    if is_kept(args.analysis):  # a run kept in Spark: its user side, part by part
        return _update_kept(args, formats)
    analysis = open_analysis(args.analysis)
    batch = _load_batch(args, analysis.data.scale, "saved analysis")
    had = [s for s in ("evaluation", "lists", "audit", "report") if s in analysis.computed()]
    updated, record = update_analysis(analysis, batch, refresh_items=args.refresh_items)
    derived = {"by": "update", "data": analysis.data.fingerprint, "model": analysis.key("model"),
               "record": json_safe(record.to_dict())}  # fmt: skip
    files, pdf_error, report = {}, None, None
    if formats:  # the updated analysis's report, with its "Model update" section
        report = with_update(updated.report(), derived)
        files, pdf_error = _render(report, formats)
    folder = save_analysis(updated, args.out, report_files=files, derived_from=derived)
    if pdf_error is not None:
        raise _missing_pdf([folder / "report" / name for name in files], folder, pdf_error)
    _write_record(folder, record)
    out = {"analysis": str(folder), "update": str(folder / "update.json"), **record.to_dict()}
    out["not_carried_over"] = had
    if report is not None:
        out["written"] = [str(folder / "report" / name) for name in files]
        out["report_update"] = report.update["reading"] if report.update else []
    out["notes"] = [*record.notes, *(
        ["The saved evaluation, lists, audit and report rest on the old data: they are not "
         "carried over, and are computed on demand from the updated analysis (e.g. "
         "python -m engine report)."] if had else []
    )]  # fmt: skip
    return out


def _write_record(folder: Path, record: UpdateRecord) -> None:
    """Write an update's record to ``folder/update.json``."""
    (folder / "update.json").write_text(
        json.dumps(json_safe(record.to_dict()), indent=2, ensure_ascii=False, allow_nan=False)
        + "\n",
        encoding="utf-8",
    )


def _load_batch(args: argparse.Namespace, scale: RatingScale, what: str) -> RatingData:
    """Load ``update``'s ``--ratings`` on the scale of the ``what`` being updated."""
    given = _parse_scale(args.scale)
    if given is not None and given != (scale.low, scale.high):
        raise ArgumentError(
            f"--scale {args.scale} differs from the {what}'s scale "
            f"{scale.low:g}-{scale.high:g}: new ratings are checked against the saved scale, "
            "so leave --scale out."
        )
    options = LoadOptions(
        scale=(scale.low, scale.high), duplicates=args.duplicates, max_rows=args.max_rows,
        delimiter=_parse_delimiter(args.delimiter), decimal=args.decimal, sheet=args.sheet,
    )  # fmt: skip
    return load_dataset(
        ratings=args.ratings, mapping=_parse_columns(args.columns), options=options, batch=True
    )


def _update_kept(args: argparse.Namespace, formats: list[str]) -> dict[str, Any]:
    """``update KEPT --ratings NEW --out DIR2`` of a kept run (``engine.saved.kept_update``)."""
    from engine.saved.kept_update import update_kept

    source = open_kept(args.analysis)
    batch = _load_batch(args, source.parts.load.scale, "kept run")
    run, record = update_kept(source, batch, args.out, refresh_items=args.refresh_items)
    _write_record(args.out, record)
    out = {"kept_run": str(args.out), "update": str(args.out / "update.json"), **record.to_dict()}
    if formats:  # the source run's report with the "Model update" section
        report = run.report()
        out["written"] = [str(p) for p in _write_report(report, formats, args.out / "report")]
        out["report_update"] = report.update["reading"] if report.update else []
    out["notes"] = [*record.notes, (
        "The kept run's report parts and audit are the run's it was updated from, on the data "
        "before the batch: an update does not evaluate or audit again (run --engine spark "
        "--keep-in-spark on the merged data does). The user pages and compare use the "
        "updated model."
    )]  # fmt: skip
    return out


def _compare(args: argparse.Namespace) -> dict[str, Any]:
    """``compare DIR_A DIR_B --window FILE``: see ``engine.compare`` and the README."""
    formats = parse_formats(args.format or "html,json,csv")
    if args.out is not None:
        check_writable_folder(args.out.parent if not args.out.exists() else args.out)
    elif args.format:
        raise ArgumentError(f"--format {args.format} needs --out: give the folder for the "
                            "comparison report.")  # fmt: skip
    source_a = open_version_source(args.analysis_a)
    source_b = open_version_source(args.analysis_b)
    low, high = scale_of(source_a)
    window = load_dataset(
        ratings=args.window, mapping=_parse_columns(args.columns),
        options=LoadOptions(scale=(low, high), delimiter=_parse_delimiter(args.delimiter)),
        batch=True,
    )  # fmt: skip
    config = AuditConfig(
        k=args.k, threshold=args.threshold, min_group_size=args.min_group_size,
        bootstrap=args.bootstrap, permutations=args.permutations, seed=args.seed,
    )  # fmt: skip
    window_users = window.ratings["user_id"]
    version_a = version_of(source_a, str(args.analysis_a), window_users)
    version_b = version_of(source_b, str(args.analysis_b), window_users)
    comparison = compare_versions(version_a, version_b, window, config)
    compared = describe_versions(version_a, version_b, window)
    out = {"a": str(args.analysis_a), "b": str(args.analysis_b), "window": str(args.window),
           "relation": compared["relation"], **comparison.to_dict()}  # fmt: skip
    if args.out is not None:  # the comparison report (engine.report.comparison)
        rest = [f for f in formats if f != "pdf"]
        files = render_comparison(comparison, compared, rest) if rest else {}
        written = write_files(files, args.out)
        if "pdf" in formats:
            try:
                written += write_files(render_comparison(comparison, compared, ["pdf"]), args.out)
            except ChromiumNotFound as exc:
                raise _missing_pdf(written, args.out, exc) from exc
        out["written"] = [str(p) for p in written]
    return out


def _names(text: str | None) -> tuple[str, ...] | None:
    return None if not text else tuple(n.strip() for n in text.split(",") if n.strip())


def _add_formats(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format",
        default="html,json,csv",
        help=f"comma-separated subset of {','.join(FORMATS)} (default html,json,csv; pdf "
        "needs Chromium): " + ", ".join(FORMATS.values()),
    )


def _add_protocol_options(parser: argparse.ArgumentParser) -> None:
    """Add the evaluation protocol options (``engine.protocols``): ``--split`` and its own."""
    parser.add_argument(
        "--split", choices=SPLITS, default="kfold",
        help="evaluation protocol: kfold (default; random folds), temporal (train before a "
        "cut, test after), last-n (each user's latest ratings tested) or rolling (expanding "
        "windows over time); the time protocols need timestamps",
    )  # fmt: skip
    parser.add_argument("--folds", type=_int_at_least(2), default=None,
                        help="kfold: number of folds (default 5)")  # fmt: skip
    parser.add_argument(
        "--test-share", type=_share, default=None,
        help="temporal and rolling: share of the time span held out at its end (default 0.2)",
    )  # fmt: skip
    parser.add_argument("--last-n", type=_int_at_least(1), default=None,
                        help="last-n: ratings tested per user (default 1)")  # fmt: skip
    parser.add_argument("--windows", type=_int_at_least(1), default=None,
                        help="rolling: number of windows (default 3)")  # fmt: skip


def _add_analysis_options(parser: argparse.ArgumentParser, out_help: str) -> None:
    """Options of ``audit`` and ``run``: model, ranking, evaluation, audit and output."""
    _add_model_options(parser)
    _add_protocol_options(parser)
    parser.add_argument("--out", type=Path, required=True, help=out_help)
    _add_formats(parser)
    parser.add_argument(
        "--models",
        default=",".join(DEFAULT_MODELS),
        help=f"models compared in the report, subset of {','.join(MODEL_NAMES)}; SVD is "
        "always included; KNNBaseline is left out by default because its top-N scoring "
        "takes about 4x the rest of the report on the sample",
    )
    parser.add_argument("--user-attrs", help="user attributes to group by (default: all)")
    parser.add_argument("--item-attrs", help="item attributes to group by (default: all)")
    parser.add_argument(
        "--over-time", type=_window, default=None, metavar="WINDOW",
        help="add the 'Over time' section (month|week|quarter|year|Nd) to the report (HTML, "
        "PDF and JSON): the monitoring of 'monitor' with this analysis's settings",
    )  # fmt: skip
    _add_statistics(parser)
    parser.add_argument("-k", type=_int_at_least(1), default=10,
                        help="top-N length (default 10)")  # fmt: skip
    _add_threshold(parser)


def _add_statistics(parser: argparse.ArgumentParser, permutations: int | None = None) -> None:
    """``--min-group-size`` and ``--bootstrap`` (and ``--permutations`` with its default)."""
    parser.add_argument("--min-group-size", type=_int_at_least(1), default=30,
                        help="smaller groups are 'insufficient data' (default 30)")  # fmt: skip
    parser.add_argument(
        "--bootstrap", type=_int_at_least(0), default=200,
        help="bootstrap replicates over users (default 200; 0 = no confidence intervals)",
    )  # fmt: skip
    if permutations is not None:
        parser.add_argument(
            "--permutations", type=_int_at_least(0), default=permutations,
            help=f"permutations per test (default {permutations}; 0 = no tests)",
        )  # fmt: skip


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="default",
        help="model settings (default: Surprise defaults + exact refit)",
    )
    parser.add_argument("--seed", type=_int_at_least(0, MAX_SEED), default=0,
                        help="random seed (model and folds), 0 to 2^32-1")  # fmt: skip
    parser.add_argument("--no-refit", action="store_true",
                        help="keep Surprise's SGD user factors (no exact refit)")  # fmt: skip
    parser.add_argument("--factors", type=_int_at_least(1), default=None,
                        help="latent factors (default: the preset's, 100)")  # fmt: skip
    parser.add_argument(
        "--epochs", type=_int_at_least(1), default=None,
        help="SGD passes over the ratings; with --engine spark, ALS iterations (default: the "
        "preset's, 20 for default, 40 for tuned)",
    )  # fmt: skip
    parser.add_argument("--lr", type=_number_in(0, 1, above=True), default=None,
                        help="SGD learning rate, in (0, 1] (Surprise engine only)")  # fmt: skip
    parser.add_argument("--reg", type=_number_in(0), default=None,
                        help="SGD regularisation, >= 0 (Surprise engine only)")  # fmt: skip
    parser.add_argument(
        "--refit-lambda", type=_number_in(0, above=True), default=None,
        help="ridge strength per rating of the exact user refit, > 0; with --engine spark, "
        "also ALS's regParam (default 0.1)",
    )  # fmt: skip
    parser.add_argument("--engine", choices=ENGINES, default="surprise",
                        help="what trains the model: surprise (default, this process) or spark "
                             "(the same model by Spark, which also reads the rating file: see "
                             "README, 'Spark engine')")  # fmt: skip
    parser.add_argument(
        "--spark-master", default=None,
        help="--engine spark: master URL, local[*] | spark://HOST:7077 | yarn | "
        "k8s://https://HOST:PORT (default: $SPARK_MASTER, else local[*])",
    )  # fmt: skip
    parser.add_argument("--spark-driver-memory", default=None,
                        help="--engine spark: driver memory, e.g. 4g (default 2g)")  # fmt: skip
    parser.add_argument(
        "--spark-executor-memory", default=None,
        help="--engine spark: memory per executor, e.g. 8g (default 2g)",
    )  # fmt: skip


def _add_threshold(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threshold",
        type=_finite_float,
        default=None,
        help="a held-out rating >= this is relevant (default: three quarters of the way up "
        "the rating scale, rounded up to its step: 4 on 1-5, 8 on 1-10, 75 on 0-100)",
    )


def _monitor(args: argparse.Namespace) -> dict[str, Any]:
    """``monitor INPUTS --window month --out DIR``: see ``engine.monitor`` and the README."""
    from engine.monitor import MonitorConfig, monitor
    from engine.monitor_windows import check_window
    from engine.report import neutralise_formula

    window = check_window(args.window)
    config = MonitorConfig(
        k=args.k, threshold=args.threshold, min_ratings=args.min_ratings,
        min_group_size=args.min_group_size, bootstrap=args.bootstrap,
        permutations=args.permutations, baseline=args.baseline,
        user_attributes=_names(args.user_attrs), model=_model_config(args), seed=args.seed,
    )  # fmt: skip
    check_writable_folder(args.out)
    data = load_inputs(args)
    result = monitor(data, window, config)
    (args.out / "monitor.json").write_text(
        json.dumps(json_safe({"dataset": data.name, "fingerprint": data.fingerprint,
                              **result.to_dict()}), indent=2, ensure_ascii=False,
                   allow_nan=False) + "\n",
        encoding="utf-8",
    )  # fmt: skip
    result.tidy().astype(object).map(neutralise_formula).to_csv(
        args.out / "monitor.csv", index=False
    )
    changes = result.changes
    return {
        "dataset": data.name, "window": window, "windows": len(result.windows),
        "insufficient": result.windows.loc[result.windows["status"] != "ok", "label"].tolist(),
        "baseline": str(result.windows["label"].iloc[result.baseline]),
        "n_changes_tested": int(changes["p_value"].notna().sum()),
        "n_flagged": len(result.sentences), "n_notable": int((changes["tier"] == "notable").sum()),
        "flagged": result.sentences,
        "flagged_exposure": changes[(changes["tier"] == "flagged")
                                    & changes["quantity"].isin(["exposure", "rating_share"])]
        .sort_values("severity", ascending=False, kind="stable")["sentence"].tolist(),
        "flagged_gaps": result.gap_sentences,
        "flagged_summary": result.flag_summary(), "gap_summary": result.gap_summary(),
        "notes": [f"{n} Set --baseline to choose another." if n.startswith("Baseline window ")
                  else n for n in result.notes],
        "written": [str(args.out / "monitor.json"), str(args.out / "monitor.csv")],
    }  # fmt: skip


def _synth(args: argparse.Namespace) -> dict[str, Any]:
    dataset = generate(SynthConfig(seed=args.seed))
    paths = write_dataset(dataset, args.out)
    return {"written": [str(p) for p in paths], "counts": dataset.ground_truth["counts"]}


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every sub-command."""
    parser = _Parser(prog="python -m engine", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    profile = commands.add_parser("profile", help="print the dataset profile and load report")
    add_inputs(profile)
    profile.set_defaults(run=_profile)
    evaluate_cmd = commands.add_parser(
        "evaluate", help="cross-validate SVD and the comparators on the same folds"
    )
    add_inputs(evaluate_cmd)
    _add_model_options(evaluate_cmd)
    _add_protocol_options(evaluate_cmd)
    evaluate_cmd.add_argument("-k", type=_int_at_least(1), default=10,
                              help="top-N list length (default 10)")  # fmt: skip
    _add_threshold(evaluate_cmd)
    evaluate_cmd.add_argument(
        "--models",
        default=",".join(MODEL_NAMES),
        help=f"comma-separated subset of {','.join(MODEL_NAMES)}",
    )
    evaluate_cmd.set_defaults(run=_evaluate)
    recommend_cmd = commands.add_parser("recommend", help="top-N for one user")
    add_inputs(recommend_cmd)
    _add_model_options(recommend_cmd)
    recommend_cmd.add_argument("--user", required=True, help="user id (exact string)")
    recommend_cmd.add_argument("-n", type=_int_at_least(1), default=10,
                               help="list length (default 10)")  # fmt: skip
    recommend_cmd.set_defaults(run=_recommend)
    explain_cmd = commands.add_parser("explain", help="explain one prediction in every view")
    add_inputs(explain_cmd)
    _add_model_options(explain_cmd)
    explain_cmd.add_argument("--user", required=True, help="user id (exact string)")
    explain_cmd.add_argument("--item", required=True, help="item id (exact string)")
    explain_cmd.add_argument(
        "--shapley",
        action="store_true",
        help="add presence/absence Shapley values of the user's ratings",
    )
    explain_cmd.add_argument(
        "--permutations",
        type=_int_at_least(1),
        default=10,
        help="permutations for the Shapley estimate (default 10)",
    )
    explain_cmd.add_argument(
        "--knn", action="store_true", help="add the KNNBaseline comparator's exact split"
    )
    explain_cmd.add_argument(
        "-n",
        type=_int_at_least(1),
        default=10,
        help="top-N length for the counterfactual (default 10)",
    )
    explain_cmd.set_defaults(run=_explain)
    audit_cmd = commands.add_parser("audit", help="bias and fairness audit by user/item group")
    add_inputs(audit_cmd)
    _add_analysis_options(audit_cmd, "folder for the report")
    add_external_options(audit_cmd)
    audit_cmd.set_defaults(run=_audit)
    run_cmd = commands.add_parser(
        "run", help="the whole analysis (model, evaluation, audit, report) saved to a folder"
    )
    add_inputs(run_cmd)
    _add_analysis_options(run_cmd, "folder for the saved analysis (report files in report/)")
    add_external_options(run_cmd)
    run_cmd.add_argument(
        "--keep-in-spark", action="store_true",
        help="with --engine spark: the ratings are analysed in Spark, never held by the "
        "driver (for data beyond its memory): hashed kfold or temporal split, SVD, "
        "BaselineOnly and Popularity, audit from aggregates; writes the report, the "
        "evaluation's Parquet and, for the dashboard's user pages, the final fit with a copy "
        "of the ratings sorted by user (OUT/user_side); no saved analysis",
    )  # fmt: skip
    run_cmd.add_argument(
        "--no-user-side", action="store_true",
        help="with --keep-in-spark: do not write OUT/user_side (the final fit and a copy of "
        "the ratings), when no copy of the ratings may be kept; the dashboard then has no "
        "User profile or Recommendations page for the run",
    )  # fmt: skip
    run_cmd.add_argument(
        "--spark-tables", default=None, metavar="PATH_OR_URI",
        help="with --keep-in-spark: where Spark writes the evaluation's Parquet tables "
        "(default OUT/evaluation); on a cluster of several machines, a URI every executor "
        "reaches, such as hdfs://namenode/tmp/evaluation",
    )  # fmt: skip
    run_cmd.set_defaults(run=_run)
    report_cmd = commands.add_parser(
        "report", help="render the report of a saved analysis again, without retraining"
    )
    report_cmd.add_argument("analysis", type=Path, help="saved analysis folder or .zip, or "
                            "the --out folder of run --keep-in-spark")  # fmt: skip
    report_cmd.add_argument("--out", type=Path, required=True, help="folder for the report")
    _add_formats(report_cmd)
    report_cmd.set_defaults(run=_report)
    update_cmd = commands.add_parser(
        "update",
        help="add new ratings to a saved analysis or a run kept in Spark: touched "
        "users refit, no retraining",
    )
    update_cmd.add_argument("analysis", type=Path, help="saved analysis folder or .zip, or the "
                            "--out folder (or .zip) of run --keep-in-spark; the updated kept "
                            "run keeps the source's report parts and audit")  # fmt: skip
    update_cmd.add_argument("--ratings", required=True, help="file of new ratings")
    update_cmd.add_argument("--out", type=Path, required=True,
                            help="folder for the updated analysis or kept run (with "
                            "update.json)")  # fmt: skip
    update_cmd.add_argument(
        "--refresh-items",
        action="store_true",
        help="also refresh the touched items by the mirror ridge step (and refit their users)",
    )
    add_load_options(update_cmd)
    update_cmd.add_argument(
        "--format", default=None,
        help=f"also save the report with its Model update section: a subset of "
        f"{','.join(FORMATS)} (an analysis's evaluation and audit are computed on the merged "
        "data; a kept run's are the source run's)",
    )  # fmt: skip
    update_cmd.set_defaults(run=_update)
    compare_cmd = commands.add_parser(
        "compare",
        help="score two saved analyses or kept runs (e.g. before and after update, "
        "last month's run and this month's) on one window",
    )
    compare_cmd.add_argument("analysis_a", type=Path, help="version A: a saved analysis, or the "
                             "--out of run --keep-in-spark with its user side (folder or "
                             ".zip)")  # fmt: skip
    compare_cmd.add_argument("analysis_b", type=Path, help="version B, as A")
    compare_cmd.add_argument(
        "--window", required=True, help="file of ratings given after both versions' training data"
    )
    compare_cmd.add_argument(
        "--out", type=Path, default=None, help="folder for the comparison report"
    )
    compare_cmd.add_argument(
        "--format", default=None,
        help="with --out: comma-separated subset of html,json,csv,pdf (default html,json,csv; "
        "pdf needs Chromium): comparison.html, .json, .csv, .pdf",
    )  # fmt: skip
    compare_cmd.add_argument(
        "-k", "--k", type=_int_at_least(1), default=10, help="top-N length (default 10)"
    )
    _add_statistics(compare_cmd, permutations=2000)
    compare_cmd.add_argument(
        "--seed",
        type=_int_at_least(0, MAX_SEED),
        default=0,
        help="seed of the resampling (default 0)",
    )
    compare_cmd.add_argument("--columns", help="column mapping of the window file")
    compare_cmd.add_argument("--delimiter", help="delimiter of the window file")
    _add_threshold(compare_cmd)
    compare_cmd.set_defaults(run=_compare)
    monitor_cmd = commands.add_parser(
        "monitor", help="data, model quality and fairness per time window, with drift flags"
    )
    add_inputs(monitor_cmd)
    _add_model_options(monitor_cmd)
    monitor_cmd.add_argument(
        "--window", default="month", help="week, month, quarter, year or Nd (N days; default month)"
    )
    monitor_cmd.add_argument(
        "--out", type=Path, required=True, help="folder for monitor.json and monitor.csv"
    )
    monitor_cmd.add_argument(
        "--baseline",
        default=None,
        help="baseline window label (e.g. 1998-01) or index "
        "(default: the first window with model quality)",
    )
    monitor_cmd.add_argument(
        "-k", "--k", type=_int_at_least(1), default=10, help="top-N length (default 10)"
    )
    _add_threshold(monitor_cmd)
    monitor_cmd.add_argument("--user-attrs", help="user attributes to group by (default: all)")
    monitor_cmd.add_argument(
        "--min-ratings",
        type=_int_at_least(1),
        default=100,
        help="windows with fewer ratings are 'insufficient data' (100)",
    )
    _add_statistics(monitor_cmd, permutations=1000)
    monitor_cmd.set_defaults(run=_monitor)  # fmt: skip
    synth = commands.add_parser("synth", help="generate the synthetic sample dataset")
    synth.add_argument("--out", type=Path, default=Path("sample_data"), help="output folder")
    synth.add_argument("--seed", type=_int_at_least(0, MAX_SEED), default=DEFAULT_SEED,
                       help="random seed")  # fmt: skip
    synth.set_defaults(run=_synth)
    return parser


def json_safe(value: Any) -> Any:
    """Return ``value`` with non-finite floats as ``None`` and unknown objects as text.

    JSON has no NaN or Infinity: ``json.dumps`` would write ``NaN``, which strict parsers
    refuse.
    """
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, (str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "item"):  # numpy scalars
        return json_safe(value.item())
    return str(value)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = build_parser().parse_args(argv)
    tune_allocator()  # large freed tables go back to the system at once (engine.memory)
    try:
        result = args.run(args)
    except EngineError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    finally:
        if "engine.spark.session" in sys.modules:  # --engine spark: its JVM exits now
            sys.modules["engine.spark.session"].stop_session()
    try:
        text = json.dumps(json_safe(result), indent=2, ensure_ascii=False, allow_nan=False)
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except BrokenPipeError:  # e.g. piped into `head`
        sys.stderr.close()
    return 0
