"""A saved model is validated before use: the checksum is not a security boundary.

Each crafted file below carries a *recomputed* checksum, so only the validation in
``load_model`` can refuse it; each refusal is one ``ModelFileError`` sentence.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from engine.model import ModelConfig, train_svd
from engine.model.persist import (
    FIX,
    MAX_JSON_BYTES,
    ModelFileError,
    load_model,
    save_model,
)
from tests.conftest import synth_ratings

SCALE = (1.0, 5.0)
N_USERS, N_ITEMS, N_FACTORS = 40, 60, 4


@pytest.fixture(scope="module")
def model():
    ratings = synth_ratings(N_USERS, N_ITEMS, 800, 5)
    items = np.array([f"i{k:04d}" for k in range(1, N_ITEMS + 1)], dtype=object)  # some unrated
    config = ModelConfig(n_factors=N_FACTORS, n_epochs=5)
    trained = train_svd(ratings, SCALE, config, item_ids=items)
    assert (trained.interactions.n_users, trained.interactions.n_items) == (N_USERS, N_ITEMS)
    return trained


@pytest.fixture
def saved(model, tmp_path) -> Path:
    save_model(model, tmp_path / "m")
    return tmp_path / "m"


def read_members(base: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(base.with_suffix(".npz")) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def write_members(base: Path, members: dict[str, bytes]) -> None:
    """Write the ``.npz`` and put its true checksum into the JSON, as a forger would."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    base.with_suffix(".npz").write_bytes(buffer.getvalue())
    meta = json.loads(base.with_suffix(".json").read_text())
    meta["npz_sha256"] = hashlib.sha256(buffer.getvalue()).hexdigest()
    base.with_suffix(".json").write_text(json.dumps(meta))


def edit_arrays(change: Callable[[dict[str, np.ndarray]], None]) -> Callable[[Path], None]:
    """Return a forgery that edits the loaded arrays, re-saves them and fixes the checksum."""

    def forge(base: Path) -> None:
        with np.load(base.with_suffix(".npz")) as arrays:
            data = {name: arrays[name] for name in arrays.files}
        change(data)
        write_members(base, {f"{name}.npy": npy(array) for name, array in data.items()})

    return forge


def edit_meta(change: Callable[[dict], None]) -> Callable[[Path], None]:
    """Return a forgery that edits the JSON description (the checksum stays valid)."""

    def forge(base: Path) -> None:
        meta = json.loads(base.with_suffix(".json").read_text())
        change(meta)
        base.with_suffix(".json").write_text(json.dumps(meta))

    return forge


def write_meta_text(text: str) -> Callable[[Path], None]:
    return lambda base: base.with_suffix(".json").write_text(text)


def set_item(name: str, index: tuple | int, value: object) -> Callable[[dict], None]:
    def change(data: dict) -> None:
        data[name] = data[name].copy()
        data[name][index] = value

    return change


def set_array(name: str, make: Callable[[np.ndarray], np.ndarray]) -> Callable[[dict], None]:
    def change(data: dict) -> None:
        data[name] = make(data[name])

    return change


def set_key(key: str, value: object, inside: str | None = None) -> Callable[[dict], None]:
    def change(meta: dict) -> None:
        (meta[inside] if inside else meta)[key] = value

    return change


def swap_indptr(data: dict) -> None:
    indptr = data["indptr"].copy()
    indptr[2], indptr[3] = indptr[3], indptr[2]
    assert indptr[2] > indptr[3]
    data["indptr"] = indptr


def declare_huge_q(base: Path) -> None:
    """Give ``Q.npy`` a header declaring 200 MB of float64, followed by the real data."""
    members = read_members(base)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (N_ITEMS, 416_667)}
    )
    real = np.load(io.BytesIO(members["Q.npy"]))
    members["Q.npy"] = header.getvalue() + real.tobytes()
    write_members(base, members)


def many_members(base: Path) -> None:
    members = read_members(base)
    members.update({f"extra{i}.npy": npy(np.zeros(1)) for i in range(20)})
    write_members(base, members)


def drop_member(base: Path) -> None:
    members = read_members(base)
    del members["bi.npy"]
    write_members(base, members)


def deep_versions(meta: dict) -> None:
    nested: list = []
    for _ in range(100):
        nested = [nested]
    meta["versions"] = nested


FORGERIES = {
    # dtypes
    "complex P": (
        edit_arrays(set_array("P", lambda a: a.astype(np.complex128))),
        r"holds P as complex128, where float64 is expected",
    ),
    "int ratings": (
        edit_arrays(set_array("ratings", lambda a: a.astype(np.int64))),
        r"holds ratings as int64, where float64 is expected",
    ),
    "float32 Q": (
        edit_arrays(set_array("Q", lambda a: a.astype(np.float32))),
        r"holds Q as float32, where float64 is expected",
    ),
    "float item indices": (
        edit_arrays(set_array("items", lambda a: a.astype(np.float64))),
        r"holds items as float64, where an integer dtype is expected",
    ),
    "byte-string ids": (
        edit_arrays(set_array("user_ids", lambda a: a.astype(bytes))),
        r"holds user_ids as \|S\d+, where a unicode string dtype is expected",
    ),
    "object ids need pickle": (
        edit_arrays(set_array("user_ids", lambda a: a.astype(object))),
        r"holds user_ids as an object array, which only pickle can load",
    ),
    # shapes
    "bu one short": (
        edit_arrays(set_array("bu", lambda a: a[:-1])),
        rf"holds bu of shape \({N_USERS - 1},\), where \({N_USERS},\) is expected",
    ),
    "Q transposed": (
        edit_arrays(set_array("Q", lambda a: np.ascontiguousarray(a.T))),
        rf"holds Q of shape \({N_FACTORS}, {N_ITEMS}\), where \({N_ITEMS}, {N_FACTORS}\)",
    ),
    "n_factors does not match P": (
        edit_meta(set_key("n_factors", N_FACTORS + 1, inside="config")),
        rf"holds P of shape \({N_USERS}, {N_FACTORS}\), where \({N_USERS}, {N_FACTORS + 1}\)",
    ),
    "ids matrix": (
        edit_arrays(set_array("item_ids", lambda a: a.reshape(2, -1))),
        r"holds item_ids of shape \(2, 30\), where a vector is expected",
    ),
    "200 MB declared in a .npy header": (
        declare_huge_q,
        r"declares Q of shape \(60, 416667\) \(200,000,160 bytes\) but stores 1,920 bytes",
    ),
    "20 extra members": (many_members, r"declares 29 members where a model has at most 16"),
    "missing member": (drop_member, r"lacks the array\(s\) bi"),
    "rotation of wrong shape": (
        edit_arrays(lambda d: d.update(rotation=np.eye(N_FACTORS + 1))),
        rf"holds rotation of shape \({N_FACTORS + 1}, {N_FACTORS + 1}\)",
    ),
    # values
    "NaN in Q": (
        edit_arrays(set_item("Q", (3, 1), np.nan)),
        r"holds 1 NaN or infinite value\(s\) in Q",
    ),
    "inf in bu": (
        edit_arrays(set_item("bu", 0, np.inf)),
        r"holds 1 NaN or infinite value\(s\) in bu",
    ),
    "indptr not from 0": (
        edit_arrays(set_item("indptr", 0, 1)),
        r"has indptr starting at 1, where 0 is expected",
    ),
    "non-monotone indptr": (
        edit_arrays(swap_indptr),
        r"has indptr decreasing from \d+ to \d+ after user position 2",
    ),
    "indptr end short": (
        edit_arrays(set_item("indptr", -1, 799)),
        r"has indptr ending at 799, where the number of ratings \(800\) is expected",
    ),
    "item index past the end": (
        edit_arrays(set_item("items", 5, N_ITEMS)),
        rf"has item index {N_ITEMS} in items, outside the {N_ITEMS} items",
    ),
    "negative item index": (
        edit_arrays(set_item("items", 5, -1)),
        r"has item index -1 in items, outside the",
    ),
    "duplicate user id": (
        edit_arrays(lambda d: set_item("user_ids", 1, d["user_ids"][0])(d)),
        r"lists the user id '[^']+' more than once in user_ids",
    ),
    "duplicate item id": (
        edit_arrays(lambda d: set_item("item_ids", 7, d["item_ids"][2])(d)),
        r"lists the item id '[^']+' more than once in item_ids",
    ),
    "rotation not orthogonal": (
        edit_arrays(lambda d: d.update(rotation=2 * np.eye(N_FACTORS))),
        r"has a rotation that is not orthogonal",
    ),
    # the JSON
    "mu the string 'nan'": (
        edit_meta(set_key("mu", "nan")),
        r"has mu = 'nan' \(a string\) where a finite number is expected",
    ),
    "mu NaN": (edit_meta(set_key("mu", float("nan"))), r"has mu = nan where a finite number"),
    "mu Infinity": (edit_meta(set_key("mu", float("inf"))), r"has mu = inf where a finite"),
    "mu huge integer": (edit_meta(set_key("mu", 10**400)), r"has mu = \d+\.\.\. where a finite"),
    "mu an array": (edit_meta(set_key("mu", [3.5])), r"has mu = \[3\.5\] \(an array\)"),
    "scale reversed": (
        edit_meta(set_key("scale", [5, 1])),
        r"has the rating scale \(5, 1\), whose low end is not below its high end",
    ),
    "scale equal ends": (edit_meta(set_key("scale", [3, 3])), r"rating scale \(3, 3\)"),
    "scale with a string": (
        edit_meta(set_key("scale", ["1", 5])),
        r"has a scale end = '1' \(a string\) where a finite number is expected",
    ),
    "scale of three": (edit_meta(set_key("scale", [1, 3, 5])), r"where \[low, high\] is expected"),
    "config value a string": (
        edit_meta(set_key("lr_all", "0.005", inside="config")),
        r"holds invalid settings \(ModelConfig\.lr_all='0\.005' is not allowed: use a finite",
    ),
    "config seed negative": (
        edit_meta(set_key("seed", -1, inside="config")),
        r"holds invalid settings \(ModelConfig\.seed=-1 is not allowed",
    ),
    "config unknown field": (
        edit_meta(set_key("backdoor", 1, inside="config")),
        r"has unknown settings \('backdoor'\)",
    ),
    "config not an object": (edit_meta(set_key("config", [1])), r"has config = \[1\] \(an array\)"),
    "fingerprint a number": (
        edit_meta(set_key("fingerprint", 7)),
        r"has fingerprint = 7 where a string is expected",
    ),
    "format version a string": (
        edit_meta(set_key("format_version", "1")),
        r"has format version '1' \(a string\), this tool reads version 1",
    ),
    "missing mu": (edit_meta(lambda meta: meta.pop("mu")), r"lacks the field\(s\) mu"),
    "nested 100 deep": (edit_meta(deep_versions), r"nests 102 levels deep, over the limit of 64"),
    "nested 100,000 deep": (
        write_meta_text("[" * 100_000 + "]" * 100_000),
        r"nests 100,000 levels deep, over the limit of 64",
    ),
    "over the JSON size limit": (
        write_meta_text(" " * (MAX_JSON_BYTES + 1) + "{}"),
        rf"is over {MAX_JSON_BYTES:,} bytes, not a model description",
    ),
    "not JSON": (write_meta_text("{'format': 1}"), r"is not valid JSON"),
    "not UTF-8": (lambda base: base.with_suffix(".json").write_bytes(b"\xff\xfe{}"), r"UTF-8"),
    "a JSON list": (write_meta_text("[]"), r"is not a model saved by this tool"),
}


@pytest.mark.parametrize("forgery", list(FORGERIES), ids=list(FORGERIES))
def test_crafted_model_file_is_refused_with_its_reason(saved, forgery):
    forge, reason = FORGERIES[forgery]
    forge(saved)
    with pytest.raises(ModelFileError, match=reason) as caught:
        load_model(saved)
    message = str(caught.value)
    assert message.count("\n") == 0
    assert message.endswith(f": {FIX}.")
    assert str(saved) in message


def test_forgeries_keep_a_valid_checksum(saved):
    """The array forgeries above are caught by validation, not by the checksum."""
    edit_arrays(set_item("Q", (3, 1), np.nan))(saved)
    meta = json.loads(saved.with_suffix(".json").read_text())
    content = saved.with_suffix(".npz").read_bytes()
    assert meta["npz_sha256"] == hashlib.sha256(content).hexdigest()


def test_checksum_catches_corruption(saved):
    npz = saved.with_suffix(".npz")
    content = bytearray(npz.read_bytes())
    content[len(content) // 2] ^= 0xFF
    npz.write_bytes(bytes(content))
    with pytest.raises(
        ModelFileError, match=r"does not match the checksum .* truncated or modified"
    ):
        load_model(saved)


def test_round_trip_loads_and_predicts_identically(model, tmp_path):
    rotation = np.linalg.qr(np.random.default_rng(0).normal(size=(N_FACTORS, N_FACTORS)))[0]
    original = replace(model, P=model.P @ rotation, Q=model.Q @ rotation, rotation=rotation)
    save_model(original, tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.json")
    for name in ("bu", "bi", "P", "Q", "rotation"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(original, name))
        assert getattr(loaded, name).dtype == np.float64
    for name in ("user_ids", "item_ids", "indptr", "items", "ratings"):
        np.testing.assert_array_equal(
            getattr(loaded.interactions, name), getattr(original.interactions, name)
        )
    assert (loaded.mu, loaded.scale, loaded.config) == (original.mu, original.scale, model.config)
    users = np.arange(N_USERS)
    np.testing.assert_array_equal(loaded.score_block(users), original.score_block(users))
    pairs = np.array([0, 5, -1, 39]), np.array([3, -1, 7, 59])
    np.testing.assert_array_equal(loaded.predict_pairs(*pairs), original.predict_pairs(*pairs))


def test_arrays_over_the_size_limit_are_refused_before_loading(saved):
    edit_arrays(set_array("Q", np.zeros_like))(saved)  # zeros compress: small file, big arrays
    size = saved.with_suffix(".npz").stat().st_size
    with pytest.raises(ModelFileError, match=rf"holds over {size:,} bytes of arrays, the limit"):
        load_model(saved, max_bytes=size)
    with pytest.raises(ModelFileError, match=r"is over 100 bytes, the limit of load_model"):
        load_model(saved, max_bytes=100)
    assert load_model(saved).Q.shape == (N_ITEMS, N_FACTORS)
