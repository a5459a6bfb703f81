from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DIR = ROOT / "sample_data"
ML100K = ROOT.parent / "shared" / "datasets" / "ml-100k"


@pytest.fixture
def ml100k() -> Path:
    if not (ML100K / "u.data").exists():
        pytest.skip(f"MovieLens 100K not found at {ML100K} (licence forbids bundling it)")
    return ML100K


def zip_bytes(files: dict[str, bytes | str]) -> bytes:
    """Return a zip archive holding ``files`` (name -> content)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in files.items():
            zf.writestr(name, content)
    return buffer.getvalue()


def synth_ratings(n_users: int, n_items: int, n_ratings: int, seed: int):
    """Canonical ratings (sorted, float) of a small synthetic dataset."""
    from engine.synth import SynthConfig, generate

    data = generate(SynthConfig(n_users=n_users, n_items=n_items, n_ratings=n_ratings, seed=seed))
    ratings = data.ratings.astype({"rating": float})
    return ratings.sort_values(["user_id", "item_id"], ignore_index=True)
