"""``engine.memory``: freed heap pages go back (glibc only); tables join column by column."""

from __future__ import annotations

import os
import subprocess
import sys
import tracemalloc
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import pytest

from engine import memory
from engine.memory import ColumnParts, _malloc_trim

ROOT = Path(__file__).resolve().parents[1]

# In a fresh interpreter: this process's allocator may have been tuned by another test (the
# dashboard's janitor fixes glibc's mmap threshold, so freed blocks are unmapped at once).
_HOLES_THEN_TRIM = """
import numpy as np
from engine.memory import release_free_memory

def resident_mib():
    with open("/proc/self/status") as status:
        return int(next(r for r in status if r.startswith("VmRSS:")).split()[1]) / 1024

blocks = [np.ones(100_000) for _ in range(400)]  # 320 MB of 800 KB blocks, touched
del blocks[::2]  # 160 MB freed in holes the heap keeps
before = resident_mib()
released = release_free_memory()
after = resident_mib()
print(before, after, released, all(float(b[-1]) == 1.0 for b in blocks))
"""


@pytest.mark.skipif(_malloc_trim() is None, reason="no glibc malloc_trim on this system")
def test_freed_heap_blocks_go_back_to_the_system():
    # glibc's threshold fixed at 32 MB: the 800 KB blocks come from the heap, as the tables
    # of the evaluation's later folds do once the dynamic threshold has risen
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(32 * 2**20), "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", _HOLES_THEN_TRIM], env=env, cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
    before, after, released, intact = float(out[0]), float(out[1]), out[2], out[3]
    assert released == "True" and intact == "True"  # what is still held is intact
    assert before - after > 100, (before, after)


def _blocks() -> list[pd.DataFrame]:
    """Three row blocks with every kind of column the evaluation's tables hold."""
    labels = pd.CategoricalDtype(["BaselineOnly", "SVD"])
    blocks = []
    for fold, n in enumerate([3, 0, 4]):
        blocks.append(pd.DataFrame({
            "model": pd.Series(["SVD"] * n, dtype=labels),
            "fold": fold,
            "user_id": pd.Series([f"u{j}" for j in range(n)], dtype=object),
            "item_id": pd.Series([f"i{j}" for j in range(n)], dtype="str"),
            "rating": np.arange(n, dtype=float) / 2,
            "was_impossible": np.arange(n) % 2 == 0,
        }))  # fmt: skip
    return blocks


def test_column_parts_join_equals_pandas_concat():
    parts = ColumnParts()
    for block in _blocks():
        parts.append(block)
    joined = parts.concat()
    expected = pd.concat(_blocks(), ignore_index=True)
    pd.testing.assert_frame_equal(joined, expected)
    assert isinstance(joined["model"].dtype, pd.CategoricalDtype)
    assert parts.concat().shape == (0, 0)  # emptied


def test_column_parts_keep_copies_not_the_caller_frames():
    block = _blocks()[0]
    parts = ColumnParts()
    parts.append(block)
    block.loc[0, "rating"] = 99.0
    assert parts.concat()["rating"].tolist() == [0.0, 0.5, 1.0]


def test_column_parts_refuse_other_columns():
    parts = ColumnParts()
    parts.append(_blocks()[0])
    with pytest.raises(ValueError, match="differ"):
        parts.append(_blocks()[0][["fold", "model"]])


def test_holders_joined_one_after_the_other():
    # the evaluation keeps one holder per model and joins them model by model
    first, empty, second = ColumnParts(), ColumnParts(), ColumnParts()
    blocks = _blocks()
    first.append(blocks[2])
    second.append(blocks[0])
    second.append(blocks[2])
    joined = ColumnParts.joined([first, empty, second])
    expected = pd.concat([blocks[2], blocks[0], blocks[2]], ignore_index=True)
    pd.testing.assert_frame_equal(joined, expected)
    assert ColumnParts.joined([first, second]).shape == (0, 0)  # emptied
    other = ColumnParts()
    other.append(blocks[0][["fold", "model"]])
    first.append(blocks[0])
    with pytest.raises(ValueError, match="different columns"):
        ColumnParts.joined([first, other])


def test_column_parts_peak_is_the_table_plus_one_column():
    # four blocks of four 8 MB float columns (128 MB held); pd.concat would hold 256 MB at
    # its peak, the column-wise join the table plus one column's blocks (160 MB)
    tracemalloc.start()  # numpy's buffers are traced
    try:
        parts = ColumnParts()
        for _ in range(4):
            parts.append(pd.DataFrame(np.ones((1_000_000, 4)), columns=list("abcd")))
        tracemalloc.reset_peak()
        joined = parts.concat()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    table = 4 * 4 * 8_000_000
    assert joined.shape == (4_000_000, 4) and float(joined.to_numpy().sum()) == 16_000_000
    assert peak < 1.35 * table, peak / table  # pd.concat: 2x


# --- allocator tuning -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "enabled"),
    [(None, True), ("1", True), ("yes", True), ("0", False), (" OFF ", False),
     ("false", False), ("no", False)],
)  # fmt: skip
def test_allocator_tuning_is_on_unless_the_environment_switches_it_off(value, enabled):
    environ = {} if value is None else {memory.ALLOCATOR_TUNING_ENV: value}
    assert memory.allocator_tuning_enabled(environ) is enabled


def test_allocator_tuning_calls_mallopt_only_when_enabled(monkeypatch):
    libc = mock.Mock()
    monkeypatch.setattr(memory.ctypes, "CDLL", mock.Mock(return_value=libc))
    monkeypatch.setenv(memory.ALLOCATOR_TUNING_ENV, "0")
    assert memory.tune_allocator() is False
    libc.mallopt.assert_not_called()
    monkeypatch.delenv(memory.ALLOCATOR_TUNING_ENV)
    assert memory.tune_allocator() is True
    assert libc.mallopt.call_args_list == [
        mock.call(memory._M_MMAP_THRESHOLD, memory.MMAP_THRESHOLD_BYTES),
        mock.call(memory._M_ARENA_MAX, memory.ARENA_MAX),
    ]


def test_allocator_tuning_is_a_no_op_without_glibc(monkeypatch):
    monkeypatch.delenv(memory.ALLOCATOR_TUNING_ENV, raising=False)
    monkeypatch.setattr(memory.ctypes, "CDLL", mock.Mock(side_effect=OSError("no libc.so.6")))
    assert memory.tune_allocator() is False


def test_the_command_line_tunes_the_allocator_before_it_runs(monkeypatch):
    from engine import cli

    calls = []
    monkeypatch.setattr(cli, "tune_allocator", lambda: calls.append("tuned"))
    monkeypatch.setattr(cli, "_profile", lambda args: calls.append("ran") or {})
    assert cli.main(["profile", str(ROOT / "sample_data")]) == 0
    assert calls == ["tuned", "ran"]
