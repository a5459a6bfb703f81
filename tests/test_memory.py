"""``engine.memory.release_free_memory`` gives freed heap pages back (glibc only)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.memory import _malloc_trim, release_free_memory


def _resident_mib() -> float:
    with open("/proc/self/status") as status:
        line = next(row for row in status if row.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


@pytest.mark.skipif(_malloc_trim() is None, reason="no glibc malloc_trim on this system")
def test_freed_heap_blocks_go_back_to_the_system():
    # A freed 16 MB block raises glibc's mmap threshold (to 16 MB), so the blocks of 800 KB
    # below come from the heap, as the tables of the evaluation's later folds do.
    large = np.ones(2_000_000)
    del large
    blocks = [np.ones(100_000) for _ in range(400)]  # 320 MB, touched
    del blocks[::2]  # 160 MB freed in holes the heap keeps
    before = _resident_mib()
    assert release_free_memory()
    after = _resident_mib()
    assert before - after > 100, (before, after)
    assert all(float(b[-1]) == 1.0 for b in blocks)  # what is still held is intact
