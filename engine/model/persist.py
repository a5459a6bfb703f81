"""Save and load a ``TrainedModel`` as ``NAME.npz`` (arrays) + ``NAME.json`` (metadata).

No pickle anywhere: ids are stored as fixed-width unicode arrays and arrays are loaded
with ``allow_pickle=False``. The JSON records the SHA-256 of the ``.npz``. That checksum
detects a truncated or corrupted file, not a crafted one: whoever edits the ``.npz`` can
recompute it in the JSON next to it. So ``load_model`` also checks, before the model is
used, everything a crafted pair of files could get wrong, and refuses each problem with
one ``ModelFileError`` sentence:

- the JSON: at most ``MAX_JSON_BYTES`` bytes and ``MAX_JSON_DEPTH`` levels of nesting
  (checked before parsing); ``mu`` a finite number; ``scale`` two finite numbers, low below
  high; ``config`` known ``ModelConfig`` fields with valid types and ranges;
- the ``.npz``: at most ``MAX_MEMBERS`` members (counted before the zip is parsed), exactly
  the expected ones; every ``.npy`` header read before any data: no object dtype (which
  would need pickle), ``float64`` values, integer indices and unicode ids, shapes
  consistent with each other and with ``config.n_factors``, the declared size equal to the
  stored size and all arrays together at most ``max_bytes``;
- the values: no NaN or infinity; ``indptr`` starts at 0, never decreases and ends at the
  number of ratings; item indices within the item axis; no user or item id twice;
  ``rotation`` orthogonal.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
import struct
import zipfile
from collections.abc import Callable
from dataclasses import asdict, fields
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import IO

import numpy as np

from engine.errors import ConfigError, EngineError
from engine.model.config import ModelConfig
from engine.model.interactions import Interactions
from engine.model.svd import TrainedModel

FORMAT = "recsys-audit-svd"
FORMAT_VERSION = 1
_ARRAYS = ("bu", "bi", "P", "Q", "user_ids", "item_ids", "indptr", "items", "ratings")
_OPTIONAL = ("rotation",)
_FLOATS = ("bu", "bi", "P", "Q", "ratings", "rotation")
_INDICES = ("indptr", "items")
_IDS = ("user_ids", "item_ids")

#: Largest model description (``.json``) read, in bytes; a saved one is about 1 KB.
MAX_JSON_BYTES = 1 << 20
#: Deepest nesting of JSON arrays and objects read; a saved description nests 2 deep.
MAX_JSON_DEPTH = 64
#: Most members of a ``.npz`` read; a saved model has 9 or 10.
MAX_MEMBERS = 16
#: Default limit on the total size of a model's arrays once loaded, in bytes (2 GiB).
MAX_MODEL_BYTES = 2 << 30
#: What to do about a model file that is refused.
FIX = "train and save the model again"

_FLOAT64 = np.dtype(np.float64)
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_END_OF_CENTRAL_DIRECTORY = b"PK\x05\x06"
#: Exceptions that reading a malformed zip or ``.npy`` raises.
_ZIP_ERRORS = (
    zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError, EOFError,
    OSError, ValueError, struct.error,
)  # fmt: skip

Header = tuple[tuple[int, ...], np.dtype]


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


def load_model(path: str | Path, *, max_bytes: int = MAX_MODEL_BYTES) -> TrainedModel:
    """Load a model written by ``save_model``, validating it completely before use.

    Parameters
    ----------
    path
        ``NAME``, ``NAME.npz`` or ``NAME.json``: both files are read.
    max_bytes
        Largest total size of the arrays once loaded; a larger model is refused before
        any array is read (default ``MAX_MODEL_BYTES``, 2 GiB).

    Returns
    -------
    TrainedModel
        The model, identical to the one saved.

    Raises
    ------
    ModelFileError
        A missing file, a JSON that is not ours or breaks a limit, arrays whose checksum
        does not match, or any check of the module docstring failing; one sentence with
        the file, the reason and "train and save the model again".
    """
    base = Path(path).with_suffix("")
    npz, meta_path = base.with_suffix(".npz"), base.with_suffix(".json")
    config, mu, scale, fingerprint, checksum = _check_meta(_read_meta(meta_path), meta_path)
    content = _read_npz(npz, max_bytes)
    if hashlib.sha256(content).hexdigest() != checksum:
        raise ModelFileError(
            f"{npz} does not match the checksum in {meta_path.name}: it was truncated or "
            f"modified; {FIX}."
        )
    headers = _read_headers(npz, content, max_bytes)
    n_items = _check_layout(npz, headers, config.n_factors)
    data = _load_arrays(npz, content, list(headers))
    _check_values(npz, data, n_items)
    interactions = Interactions(
        data["user_ids"].astype(object),
        data["item_ids"].astype(object),
        data["indptr"].astype(np.int64),
        data["items"].astype(np.int64),
        data["ratings"],
    )
    return TrainedModel(
        config, mu, data["bu"], data["bi"], data["P"], data["Q"], interactions, scale,
        fingerprint, data.get("rotation"),
    )  # fmt: skip


def _refuse(file: Path, problem: str) -> ModelFileError:
    return ModelFileError(f"{file} {problem}: {FIX}.")


def _show(value: object) -> str:
    """Short description of a JSON value, with its JSON type."""
    if value is None:
        return "null"
    text = repr(value)
    text = text if len(text) <= 40 else text[:37] + "..."
    kind = {str: "a string", bool: "a boolean", list: "an array", dict: "an object"}
    return f"{text} ({kind[type(value)]})" if type(value) in kind else text


def bounded_json_text(
    raw: bytes, max_bytes: int, refuse: Callable[[str], Exception], too_large: str
) -> str:
    """Return JSON ``raw`` as text after checking its size, encoding and nesting depth.

    Checked before any parsing, so a huge or deeply nested file costs no parser time.
    ``refuse(problem)`` builds the exception for a problem such as ``"is not UTF-8 text"``;
    ``too_large`` ends the size sentence (e.g. ``"not a model description"``).
    """
    if len(raw) > max_bytes:
        raise refuse(f"is over {max_bytes:,} bytes, {too_large}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise refuse("is not UTF-8 text") from e
    depth = json_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise refuse(f"nests {depth:,} levels deep, over the limit of {MAX_JSON_DEPTH}")
    return text


def json_depth(text: str) -> int:
    """Deepest nesting of ``[`` and ``{`` outside strings, without parsing (no recursion)."""
    skeleton = np.frombuffer(_JSON_STRING.sub("", text).encode("utf-8"), dtype=np.uint8)
    steps = (skeleton == ord("[")).astype(np.int64) + (skeleton == ord("{"))
    steps -= (skeleton == ord("]")).astype(np.int64) + (skeleton == ord("}"))
    return int(np.cumsum(steps).max(initial=0))


def _read_meta(meta_path: Path) -> object:
    """Read and parse the JSON description, within its size and depth limits."""
    try:
        with meta_path.open("rb") as handle:
            raw = handle.read(MAX_JSON_BYTES + 1)
    except FileNotFoundError as e:
        raise ModelFileError(f"Model file {meta_path} does not exist: {FIX}.") from e
    except OSError as e:
        raise _refuse(meta_path, f"cannot be read ({e.strerror or e})") from e
    text = bounded_json_text(
        raw, MAX_JSON_BYTES, lambda problem: _refuse(meta_path, problem), "not a model description"
    )
    try:
        return json.loads(text)
    except RecursionError as e:
        raise _refuse(meta_path, "nests too deep to read") from e
    except ValueError as e:
        raise _refuse(meta_path, f"is not valid JSON ({e})") from e


def _number(value: object, field: str, meta_path: Path) -> float:
    """``value`` as a finite float, or a refusal naming ``field``."""
    number = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:
            number = None
    if number is None or not math.isfinite(number):
        raise _refuse(meta_path, f"has {field} = {_show(value)} where a finite number is expected")
    return number


def _check_meta(
    meta: object, meta_path: Path
) -> tuple[ModelConfig, float, tuple[float, float], str, str]:
    """Return ``(config, mu, scale, fingerprint, npz_sha256)`` of a valid description."""
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _refuse(meta_path, "is not a model saved by this tool")
    found = meta.get("format_version")
    if type(found) is not int or found != FORMAT_VERSION:
        raise _refuse(
            meta_path,
            f"has format version {_show(found)}, this tool reads version {FORMAT_VERSION}",
        )
    missing = [key for key in ("config", "mu", "scale", "npz_sha256") if key not in meta]
    if missing:
        raise _refuse(meta_path, f"lacks the field(s) {', '.join(missing)}")
    mu = _number(meta["mu"], "mu", meta_path)
    scale = meta["scale"]
    if not isinstance(scale, list) or len(scale) != 2:
        raise _refuse(meta_path, f"has scale = {_show(scale)} where [low, high] is expected")
    low, high = (_number(end, "a scale end", meta_path) for end in scale)
    if not low < high:
        raise _refuse(
            meta_path,
            f"has the rating scale ({low:g}, {high:g}), whose low end is not below its high end",
        )
    for key in ("fingerprint", "npz_sha256"):
        if not isinstance(meta.get(key, ""), str):
            raise _refuse(meta_path, f"has {key} = {_show(meta[key])} where a string is expected")
    settings = meta["config"]
    if not isinstance(settings, dict):
        raise _refuse(meta_path, f"has config = {_show(settings)} where an object is expected")
    unknown = sorted(set(settings) - {field.name for field in fields(ModelConfig)})
    if unknown:
        raise _refuse(meta_path, f"has unknown settings ({', '.join(map(repr, unknown[:5]))})")
    try:
        config = ModelConfig(**settings)
    except ConfigError as e:
        raise _refuse(meta_path, f"holds invalid settings ({str(e).rstrip('.')})") from e
    return config, mu, (low, high), meta.get("fingerprint", ""), meta["npz_sha256"]


def _read_npz(npz: Path, max_bytes: int) -> bytes:
    """Read the archive, refusing one larger than ``max_bytes`` before reading it."""
    try:
        if npz.stat().st_size > max_bytes:
            raise ModelFileError(
                f"{npz} is over {max_bytes:,} bytes, the limit of load_model(max_bytes=...): "
                f"raise the limit if the model is genuine, or {FIX}."
            )
        return npz.read_bytes()
    except FileNotFoundError as e:
        raise ModelFileError(f"Model file {npz} does not exist: {FIX}.") from e
    except OSError as e:
        raise _refuse(npz, f"cannot be read ({e.strerror or e})") from e


def _member_count(content: bytes) -> int | None:
    """Entries declared by the zip's end record, read before ``zipfile`` parses them all."""
    at = content.rfind(_END_OF_CENTRAL_DIRECTORY, max(0, len(content) - 22 - 0xFFFF))
    if at < 0 or at + 22 > len(content):
        return None
    return struct.unpack_from("<4s4H2LH", content, at)[4]


def _npy_header(handle: IO[bytes]) -> tuple[tuple[int, ...], np.dtype, int]:
    """Return ``(shape, dtype, data offset)`` of a ``.npy`` stream, reading only its header."""
    found = np.lib.format.read_magic(handle)
    if found == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
    elif found == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
    else:
        raise ValueError(f".npy format version {found} is not supported")
    return shape, dtype, handle.tell()


def _check_members(npz: Path, names: list[str]) -> None:
    expected = {f"{name}.npy" for name in _ARRAYS}
    allowed = expected | {f"{name}.npy" for name in _OPTIONAL}
    if len(names) != len(set(names)):
        raise _refuse(npz, "holds the same array twice")
    missing = sorted(name.removesuffix(".npy") for name in expected - set(names))
    if missing:
        raise _refuse(npz, f"lacks the array(s) {', '.join(missing)}")
    extra = sorted(set(names) - allowed)
    if extra:
        raise _refuse(npz, f"holds unexpected members ({', '.join(map(repr, extra[:3]))})")


def _read_headers(npz: Path, content: bytes, max_bytes: int) -> dict[str, Header]:
    """Read every member's ``.npy`` header, checking sizes before any data is loaded."""
    count = _member_count(content)
    if count is not None and count > MAX_MEMBERS:
        raise _refuse(npz, f"declares {count:,} members where a model has at most {MAX_MEMBERS}")
    headers: dict[str, Header] = {}
    total = 0
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            infos = archive.infolist()
            _check_members(npz, [info.filename for info in infos])
            for info in infos:
                name = info.filename.removesuffix(".npy")
                with archive.open(info) as handle:
                    shape, dtype, offset = _npy_header(handle)
                if dtype.hasobject:
                    raise _refuse(
                        npz,
                        f"holds {name} as an object array, which only pickle "
                        "can load and this tool never unpickles",
                    )
                if any(n < 0 for n in shape):
                    raise _refuse(npz, f"declares {name} with the negative shape {shape}")
                size = math.prod(shape) * dtype.itemsize
                if offset + size != info.file_size:
                    raise _refuse(
                        npz,
                        f"declares {name} of shape {shape} ({size:,} bytes) but "
                        f"stores {max(info.file_size - offset, 0):,} bytes of it",
                    )
                total += size
                if total > max_bytes:
                    raise ModelFileError(
                        f"{npz} holds over {max_bytes:,} bytes of arrays, the limit of "
                        f"load_model(max_bytes=...): raise the limit if the model is genuine, "
                        f"or {FIX}."
                    )
                headers[name] = (shape, dtype)
    except ModelFileError:
        raise
    except _ZIP_ERRORS as e:
        raise _refuse(npz, f"is not a valid model archive ({e})") from e
    return headers


def _check_layout(npz: Path, headers: dict[str, Header], n_factors: int) -> int:
    """Check every dtype and shape against the others; return the number of items."""
    for name, (_, dtype) in headers.items():
        if name in _IDS:
            ok, wanted = dtype.kind == "U", "a unicode string dtype"
        elif name in _INDICES:
            ok, wanted = dtype.kind in "iu", "an integer dtype"
        else:
            ok, wanted = dtype == _FLOAT64, "float64"
        if not ok:
            raise _refuse(npz, f"holds {name} as {dtype}, where {wanted} is expected")
    lengths = {}
    for name in ("user_ids", "item_ids", "ratings"):
        shape = headers[name][0]
        if len(shape) != 1:
            raise _refuse(npz, f"holds {name} of shape {shape}, where a vector is expected")
        lengths[name] = shape[0]
    n_users, n_items, n_ratings = lengths["user_ids"], lengths["item_ids"], lengths["ratings"]
    expected = {
        "user_ids": (n_users,), "item_ids": (n_items,), "ratings": (n_ratings,),
        "bu": (n_users,), "P": (n_users, n_factors), "bi": (n_items,), "Q": (n_items, n_factors),
        "indptr": (n_users + 1,), "items": (n_ratings,), "rotation": (n_factors, n_factors),
    }  # fmt: skip
    for name, (shape, _) in headers.items():
        if shape != expected[name]:
            raise _refuse(
                npz,
                f"holds {name} of shape {shape}, where {expected[name]} is expected "
                f"({n_users:,} users, {n_items:,} items, {n_ratings:,} ratings, "
                f"{n_factors} factors)",
            )
    return n_items


def _load_arrays(npz: Path, content: bytes, names: list[str]) -> dict[str, np.ndarray]:
    try:
        with np.load(io.BytesIO(content), allow_pickle=False) as arrays:
            return {name: arrays[name] for name in names}
    except _ZIP_ERRORS as e:
        raise _refuse(npz, f"holds an unreadable array ({e})") from e


def _check_values(npz: Path, data: dict[str, np.ndarray], n_items: int) -> None:
    """Check finiteness, the CSR structure, the index range and unique ids."""
    for name in _FLOATS:
        if name in data:
            bad = int(np.count_nonzero(~np.isfinite(data[name])))
            if bad:
                raise _refuse(npz, f"holds {bad:,} NaN or infinite value(s) in {name}")
    indptr, items = data["indptr"], data["items"]
    if indptr[0] != 0:
        raise _refuse(npz, f"has indptr starting at {indptr[0]}, where 0 is expected")
    drops = np.flatnonzero(indptr[1:] < indptr[:-1])
    if drops.size:
        at = int(drops[0])
        raise _refuse(
            npz,
            f"has indptr decreasing from {indptr[at]} to {indptr[at + 1]} after "
            f"user position {at}, where it must never decrease",
        )
    if indptr[-1] != len(items):
        raise _refuse(
            npz,
            f"has indptr ending at {indptr[-1]}, where the number of ratings "
            f"({len(items):,}) is expected",
        )
    outside = (items < 0) | (items >= n_items)
    if outside.any():
        raise _refuse(
            npz,
            f"has item index {items[outside][0]} in items, outside the "
            f"{n_items:,} items (0 to {n_items - 1})",
        )
    for name, kind in (("user_ids", "user"), ("item_ids", "item")):
        unique, counts = np.unique(data[name], return_counts=True)
        if len(unique) < len(data[name]):
            twice = unique[counts > 1][0]
            raise _refuse(npz, f"lists the {kind} id {str(twice)!r} more than once in {name}")
    rotation = data.get("rotation")
    if rotation is not None and not np.allclose(
        rotation.T @ rotation, np.eye(len(rotation)), rtol=0, atol=1e-6
    ):
        raise _refuse(npz, "has a rotation that is not orthogonal")
