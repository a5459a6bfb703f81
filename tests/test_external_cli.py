"""``audit``/``run`` with ``--recommendations``/``--predictions``: the side by side end to end."""

from __future__ import annotations

import json

import pandas as pd

from engine.cli import main
from engine.saved import open_analysis
from engine.synth import SynthConfig, generate, write_dataset


def test_run_with_a_popularity_system_reports_it_side_by_side(tmp_path, capsys):
    folder = tmp_path / "synth"
    write_dataset(generate(SynthConfig(n_users=300, n_items=200, n_ratings=12_000, seed=3)),
                  folder)  # fmt: skip
    ratings = pd.read_csv(folder / "ratings.csv", dtype=str)
    popular = ratings["item_id"].value_counts().index[:10]
    users = sorted(ratings["user_id"].unique())
    lists = pd.DataFrame([(u, i, r + 1) for u in users for r, i in enumerate(popular)],
                         columns=["customer", "movie", "position"])  # fmt: skip
    lists.to_csv(tmp_path / "pop.csv", index=False)
    preds = ratings[["user_id", "item_id"]].assign(predicted_rating=3.5)
    preds.to_csv(tmp_path / "flat.csv", index=False)
    out = tmp_path / "analysis"
    code = main(["run", str(folder), "--recommendations", str(tmp_path / "pop.csv"),
                 "--system-name", "pop", "--predictions", str(tmp_path / "flat.csv"),
                 "--system-name", "flat", "--out", str(out), "--format", "html",
                 "--bootstrap", "20", "--models", "SVD"])  # fmt: skip
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    table = pd.DataFrame(result["systems"]["table"]).set_index("system")
    assert list(table.index) == ["SVD (built-in)", "Popularity (built-in)", "pop", "flat"]
    assert table.loc["pop", "long_tail_exposure"] == 0.0
    assert 0 < table.loc["pop", "coverage"] <= 10 / 190  # 10 items of ~200
    # accuracy on the same held-out pairs: flat predicted every pair, the SVD the known ones
    assert table.loc["flat", "n_pairs"] == table.loc["SVD (built-in)", "n_pairs"] > 0
    assert pd.isna(table.loc["pop", "rmse"]) and pd.isna(table.loc["flat", "ndcg"])
    reports = {r["name"]: r for r in result["systems"]["load_reports"]}
    assert reports["pop.csv"]["detection"] == {"user": "name", "item": "name", "rank": "name"}
    assert reports["flat.csv"]["columns"]["prediction"] == "predicted_rating"
    assert "temporal split" in result["systems"]["heldout"]["description"]
    html = (out / "report" / "report.html").read_text()
    assert 'id="systems"' in html and "pop vs SVD (built-in)" in html
    saved = json.loads((out / "report" / "systems.json").read_text())
    assert saved["table"][2]["system"] == "pop"
    assert open_analysis(out).data.n_ratings == len(ratings)
