"""Save and load a ``TrainedModel`` as ``NAME.npz`` (arrays) + ``NAME.json`` (metadata).

No pickle anywhere: arrays are loaded with ``allow_pickle=False`` and ids are stored as
fixed-width unicode arrays. The JSON records the SHA-256 of the ``.npz``; a model whose
arrays do not match it, or whose shapes are inconsistent, is refused.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import asdict
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from engine.errors import EngineError
from engine.model.config import ModelConfig
from engine.model.interactions import Interactions
from engine.model.svd import TrainedModel

FORMAT = "recsys-audit-svd"
FORMAT_VERSION = 1
_ARRAYS = ("bu", "bi", "P", "Q", "user_ids", "item_ids", "indptr", "items", "ratings")


class ModelFileError(EngineError):
    """A model file that is missing, truncated, tampered with or not ours."""


def _versions() -> dict[str, str]:
    out = {}
    for package in ("numpy", "scikit-surprise", "pandas"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "unknown"
    return out


def save_model(model: TrainedModel, path: str | Path) -> tuple[Path, Path]:
    """Write ``path.npz`` and ``path.json`` (any suffix of ``path`` is replaced)."""
    base = Path(path).with_suffix("")
    inter = model.interactions
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        bu=model.bu,
        bi=model.bi,
        P=model.P,
        Q=model.Q,
        user_ids=inter.user_ids.astype(str),
        item_ids=inter.item_ids.astype(str),
        indptr=inter.indptr,
        items=inter.items,
        ratings=inter.ratings,
        **({"rotation": model.rotation} if model.rotation is not None else {}),
    )
    content = buffer.getvalue()
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": asdict(model.config),
        "mu": model.mu,
        "scale": list(model.scale),
        "fingerprint": model.fingerprint,
        "npz_sha256": hashlib.sha256(content).hexdigest(),
        "versions": _versions(),
    }
    npz, meta_path = base.with_suffix(".npz"), base.with_suffix(".json")
    npz.write_bytes(content)
    meta_path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return npz, meta_path


def load_model(path: str | Path) -> TrainedModel:
    """Load a model written by ``save_model``.

    Raises
    ------
    ModelFileError
        Missing files, a JSON that is not ours, arrays whose checksum does not match,
        or inconsistent shapes; with the reason and "train and save the model again".
    """
    base = Path(path).with_suffix("")
    npz, meta_path = base.with_suffix(".npz"), base.with_suffix(".json")
    fix = "train and save the model again"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        content = npz.read_bytes()
    except FileNotFoundError as e:
        raise ModelFileError(f"Model file {e.filename} does not exist: {fix}.") from e
    except (OSError, ValueError) as e:
        raise ModelFileError(
            f"{meta_path} is not a readable model description ({e}): {fix}."
        ) from e
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(f"{meta_path} is not a model saved by this tool: {fix}.")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(
            f"{meta_path} has format version {meta.get('format_version')!r}, this tool reads "
            f"version {FORMAT_VERSION}: {fix}."
        )
    if hashlib.sha256(content).hexdigest() != meta.get("npz_sha256"):
        raise ModelFileError(
            f"{npz} does not match the checksum in {meta_path.name}: it was truncated or "
            f"modified; {fix}."
        )
    try:
        with np.load(io.BytesIO(content), allow_pickle=False) as arrays:
            data = {name: arrays[name] for name in _ARRAYS}
            rotation = arrays["rotation"] if "rotation" in arrays.files else None
        config = ModelConfig(**meta["config"])
        mu, scale = float(meta["mu"]), (float(meta["scale"][0]), float(meta["scale"][1]))
    except (KeyError, ValueError, TypeError, zipfile.BadZipFile, EngineError) as e:
        raise ModelFileError(f"{base} holds an incomplete or invalid model ({e}): {fix}.") from e
    n_users, n_items = len(data["user_ids"]), len(data["item_ids"])
    consistent = (
        data["bu"].shape == (n_users,)
        and data["P"].shape == (n_users, config.n_factors)
        and data["bi"].shape == (n_items,)
        and data["Q"].shape == (n_items, config.n_factors)
        and data["indptr"].shape == (n_users + 1,)
        and len(data["items"]) == len(data["ratings"]) == int(data["indptr"][-1])
        and all(np.isfinite(data[k]).all() for k in ("bu", "bi", "P", "Q", "ratings"))
    )
    if not consistent:
        raise ModelFileError(f"{base} has inconsistent array shapes or values: {fix}.")
    interactions = Interactions(
        data["user_ids"].astype(object),
        data["item_ids"].astype(object),
        data["indptr"].astype(np.int64),
        data["items"].astype(np.int64),
        data["ratings"].astype(np.float64),
    )
    if rotation is not None and rotation.shape != (config.n_factors, config.n_factors):
        raise ModelFileError(f"{base} has a rotation of the wrong shape: {fix}.")
    return TrainedModel(
        config, mu, data["bu"], data["bi"], data["P"], data["Q"], interactions, scale,
        str(meta.get("fingerprint", "")), rotation,
    )  # fmt: skip
