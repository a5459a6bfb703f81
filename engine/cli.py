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

from engine.audit import AuditConfig, run_audit
from engine.data import ColumnMapping, LoadOptions, RatingData, dataset_profile, load_dataset
from engine.errors import EngineError
from engine.evaluate import MODEL_NAMES, EvaluationConfig, evaluate
from engine.explain import explain_prediction, factor_labels, item_titles
from engine.model import PRESETS, ModelConfig, train
from engine.model.comparators import train_knn_baseline
from engine.recommend import UnknownUserError, recommend
from engine.report import ChromiumNotFound, build_report, write_report
from engine.report.write import FORMATS, parse_formats
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
    parser.add_argument(
        "--max-rows",
        type=int,
        default=LoadOptions.max_rows,
        help=f"most rows read from one table file (default {LoadOptions.max_rows:,})",
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
    options = LoadOptions(
        scale=_parse_scale(args.scale), duplicates=args.duplicates, max_rows=args.max_rows
    )
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


def _model_config(args: argparse.Namespace) -> ModelConfig:
    return ModelConfig.from_preset(
        args.preset, seed=args.seed, refit_users=False if args.no_refit else None
    )


def _evaluate(args: argparse.Namespace) -> dict[str, Any]:
    data = load_inputs(args)
    evaluation = EvaluationConfig(
        folds=args.folds, k=args.k, threshold=args.threshold, seed=args.seed,
        models=tuple(m.strip() for m in args.models.split(",")),
    )  # fmt: skip
    result = evaluate(data, _model_config(args), evaluation)
    return {"dataset": data.name, "fingerprint": data.fingerprint, **result.to_dict()}


def _recommend(args: argparse.Namespace) -> dict[str, Any]:
    data = load_inputs(args)
    config = _model_config(args)
    if not (data.ratings["user_id"] == args.user).any():
        raise UnknownUserError(
            f"User {args.user!r} has no rating in {data.name} ({data.n_users:,} users): check "
            "the id (ids are exact strings, '001' is not '1')."
        )
    model = train(data, config)
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
    return {
        "user_id": args.user,
        "model": model.config.__dict__,
        "source": recs["source"].iat[0] if len(recs) else None,
        "recommendations": entries,
    }


def _explain(args: argparse.Namespace) -> dict[str, Any]:
    data = load_inputs(args)
    model = train(data, _model_config(args))
    labels = factor_labels(model, data.items, item_titles(data))
    knn = train_knn_baseline(data.ratings, model.scale) if args.knn else None
    bundle = explain_prediction(
        model, args.user, args.item, data=data, knn=knn, shapley=args.shapley,
        permutations=args.permutations, seed=args.seed, factor_labels=list(labels["label"]),
        n=args.n,
    )  # fmt: skip
    return {"model": model.config.__dict__, **bundle.to_dict()}


def _audit(args: argparse.Namespace) -> dict[str, Any]:
    formats = parse_formats(args.format)
    data = load_inputs(args)
    config = _model_config(args)
    audit_config = AuditConfig(
        user_attributes=_names(args.user_attrs), item_attributes=_names(args.item_attrs),
        min_group_size=args.min_group_size, seed=args.seed, k=args.k,
        bootstrap=args.bootstrap,
    )  # fmt: skip
    model = train(data, config)
    models = tuple(dict.fromkeys(("SVD", *(_names(args.models) or ()))))
    settings = EvaluationConfig(k=args.k, seed=args.seed, models=models)
    evaluation = evaluate(data, config, settings)
    result = run_audit(data, model, evaluation, audit_config)
    report = build_report(data, model, evaluation, result)
    written = write_report(report, args.out, [f for f in formats if f != "pdf"])
    if "pdf" in formats:
        try:
            written += write_report(report, args.out, ["pdf"])
        except ChromiumNotFound as exc:
            raise ChromiumNotFound(
                f"{', '.join(p.name for p in written)} written to {args.out}, but not the "
                f"PDF: {exc}"
            ) from exc
    return {
        "written": [str(p) for p in written],
        "headline": report.headline,
        "findings": [f.sentence for f in report.findings],
        "notes": result.notes,
    }


def _names(text: str | None) -> tuple[str, ...] | None:
    return None if not text else tuple(n.strip() for n in text.split(",") if n.strip())


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="default",
        help="model settings (default: Surprise defaults + exact refit)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (model and folds)")
    parser.add_argument("--no-refit", action="store_true",
                        help="keep Surprise's SGD user factors (no exact refit)")  # fmt: skip


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
    evaluate_cmd = commands.add_parser(
        "evaluate", help="cross-validate SVD and the comparators on the same folds"
    )
    add_inputs(evaluate_cmd)
    _add_model_options(evaluate_cmd)
    evaluate_cmd.add_argument("--folds", type=int, default=5, help="number of folds (default 5)")
    evaluate_cmd.add_argument("-k", type=int, default=10, help="top-N list length (default 10)")
    evaluate_cmd.add_argument(
        "--threshold",
        type=float,
        default=4.0,
        help="a held-out rating >= this is relevant (default 4)",
    )
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
    recommend_cmd.add_argument("-n", type=int, default=10, help="list length (default 10)")
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
        type=int,
        default=10,
        help="permutations for the Shapley estimate (default 10)",
    )
    explain_cmd.add_argument(
        "--knn", action="store_true", help="add the KNNBaseline comparator's exact split"
    )
    explain_cmd.add_argument(
        "-n", type=int, default=10, help="top-N length for the counterfactual (default 10)"
    )
    explain_cmd.set_defaults(run=_explain)
    audit_cmd = commands.add_parser("audit", help="bias and fairness audit by user/item group")
    add_inputs(audit_cmd)
    _add_model_options(audit_cmd)
    audit_cmd.add_argument("--out", type=Path, required=True, help="folder for the report")
    audit_cmd.add_argument(
        "--format",
        default="html,json,csv",
        help=f"comma-separated subset of {','.join(FORMATS)} (default html,json,csv; pdf "
        "needs Chromium): " + ", ".join(FORMATS.values()),
    )
    audit_cmd.add_argument(
        "--models",
        default="SVD,BaselineOnly,Popularity",
        help=f"models compared in the report, subset of {','.join(MODEL_NAMES)}; SVD is "
        "always included; KNNBaseline is left out by default because its top-N scoring "
        "takes about 4x the rest of the report on the sample",
    )
    audit_cmd.add_argument("--user-attrs", help="user attributes to group by (default: all)")
    audit_cmd.add_argument("--item-attrs", help="item attributes to group by (default: all)")
    audit_cmd.add_argument(
        "--min-group-size",
        type=int,
        default=30,
        help="smaller groups are 'insufficient data' (default 30)",
    )
    audit_cmd.add_argument(
        "--bootstrap", type=int, default=200, help="bootstrap replicates over users (default 200)"
    )
    audit_cmd.add_argument("-k", type=int, default=10, help="top-N length (default 10)")
    audit_cmd.set_defaults(run=_audit)
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
