"""Same data, settings and seed: byte-identical reports from two processes; a new seed
changes the numbers, never the data description, the groups or their sizes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT, SAMPLE_DIR

ARGS = ["--bootstrap", "30", "--user-attrs", "age_band,gender", "--item-attrs", "provider",
        "--models", "SVD,BaselineOnly", "--format", "json,csv,html"]  # fmt: skip
SAME = ["schema_version", "title", "sections", "dataset", "load", "definitions", "notes"]
GROUP_KEYS = ("family", "metric", "grouping", "group", "n_users", "n_ratings")


def start_cli(out, seed: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "engine", "audit", str(SAMPLE_DIR), "--out", str(out),
               "--seed", str(seed), *ARGS]  # fmt: skip
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)  # fmt: skip


def without_created(content: bytes) -> bytes:
    lines = content.decode().splitlines()
    return "\n".join(line for line in lines if "created" not in line.lower()).encode()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The reports of three processes run at once: seeds 0, 0 and 1."""
    outs = [tmp_path_factory.mktemp(f"run{k}") for k in range(3)]
    processes = [start_cli(out, seed) for out, seed in zip(outs, (0, 0, 1), strict=True)]
    for process in processes:
        _, err = process.communicate(timeout=600)
        assert process.returncode == 0, err.decode()[-2000:]
    return [{p.name: p.read_bytes() for p in sorted(out.iterdir())} for out in outs]


def test_two_processes_write_identical_reports_but_for_the_creation_time(runs):
    first, second, _ = runs
    assert first.keys() == second.keys() == {"report.json", "metrics.csv", "report.html"}
    assert first["metrics.csv"] == second["metrics.csv"]
    assert without_created(first["report.json"]) == without_created(second["report.json"])
    # The HTML names the creation time twice (header, provenance); nothing else differs.
    a, b = json.loads(first["report.json"]), json.loads(second["report.json"])
    html_a = first["report.html"].decode().replace(a["created"], "T")
    html_b = second["report.html"].decode().replace(b["created"], "T")
    assert html_a == html_b


def test_a_new_seed_changes_the_numbers_and_nothing_that_describes_the_data(runs):
    base, _, other = (json.loads(run["report.json"]) for run in runs)
    for key in SAME:
        assert base[key] == other[key], key
    assert base["provenance"]["dataset"] == other["provenance"]["dataset"]
    assert base["provenance"]["model"]["seed"] == 0 and other["provenance"]["model"]["seed"] == 1
    groups = [[tuple(r[k] for k in GROUP_KEYS) for r in doc["metrics"]] for doc in (base, other)]
    assert groups[0] == groups[1]  # same groups, same sizes, same order
    values = [[r["value"] for r in doc["metrics"]] for doc in (base, other)]
    assert values[0] != values[1]
    rmse = [next(r["value"] for r in doc["metrics"] if r["metric"] == "rmse"
                 and r["group"] == "55+") for doc in (base, other)]  # fmt: skip
    assert rmse[0] == pytest.approx(rmse[1], rel=0.05)  # the planted effect holds either way
