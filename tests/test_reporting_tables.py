import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy.stats import wilcoxon

from avcmr.io import schemas
from avcmr.io.parquet import write_table
from avcmr.reporting import paper_numbers
from avcmr.reporting.tables import (
    accuracy_table,
    cost_table,
    load_evaluations,
    map_table,
    write_accuracy_tables,
)


def write_eval(path, method, seed, ap_a2v, ap_v2a, fit_seconds=1.0, n_parameters=10, training=None):
    n = len(ap_a2v)
    rows = {
        "direction": ["a2v"] * n + ["v2a"] * n,
        "query_clip_id": [f"q{i}" for i in range(n)] * 2,
        "query_label": ["x"] * (2 * n),
        "ap": np.concatenate([ap_a2v, ap_v2a]),
    }
    summary = {"method": method, "seed": seed, "fit_seconds": fit_seconds, "eval_seconds": 0.1, "device": "cpu",
               "n_train": 80, "n_test": n, "n_parameters": n_parameters, "params": {}, **(training or {})}
    write_table(pa.table(rows, schema=schemas.PER_QUERY_AP), path, schemas.PER_QUERY_AP, summary=summary)
    return str(path)


@pytest.fixture
def evaluations(tmp_path, rng):
    paths = []
    for seed in range(3):
        paths.append(write_eval(tmp_path / f"ours_{seed}.parquet", "ours", seed,
                                rng.uniform(0.6, 1.0, 40), rng.uniform(0.5, 0.9, 40), 2.0 + seed, 500,
                                {"budget": "quick", "epochs_run": 3 + seed, "steps_run": 30 + 10 * seed}))
        paths.append(write_eval(tmp_path / f"cca_{seed}.parquet", "cca", seed,
                                rng.uniform(0.2, 0.6, 40), rng.uniform(0.2, 0.6, 40), 0.5, 50,
                                {"simplifications": "closed form (a note the table must print)"}))
    return paths


def test_accuracy_table_is_mean_and_std_over_seeds(evaluations):
    per_query, _ = load_evaluations(evaluations)
    table = accuracy_table(per_query, ["cca", "ours"], with_test=True).set_index("method")
    seed_maps = [per_query[(per_query.method == "ours") & (per_query.seed == s) & (per_query.direction == "a2v")]
                 ["ap"].mean() for s in range(3)]
    assert table.loc["ours", "map_a2v_mean"] == pytest.approx(np.mean(seed_maps))
    assert table.loc["ours", "map_a2v_std"] == pytest.approx(np.std(seed_maps))
    assert np.isnan(table.loc["ours", "p_value_vs_ours"])
    query_ap = per_query.groupby(["method", "direction", "query_clip_id"])["ap"].mean()
    expected = wilcoxon((query_ap.loc["ours"] - query_ap.loc["cca"]).to_numpy()).pvalue
    assert table.loc["cca", "p_value_vs_ours"] == pytest.approx(expected)
    assert table.loc["cca", "p_value_vs_ours"] < 1e-6


def test_cost_table_takes_the_median_fit_time(evaluations):
    _, summaries = load_evaluations(evaluations)
    table = cost_table(summaries, ["ours", "cca"]).set_index("method")
    assert table.loc["ours", "fit_seconds_median"] == 3.0
    assert table.loc["ours", "n_parameters"] == 500 and table.loc["ours", "device"] == "cpu"


def test_map_table_has_one_row_per_method_and_seed(evaluations):
    table = map_table(evaluations)
    assert len(table) == 6 and list(table["method"][:2]) == ["ours", "cca"]
    row = table.iloc[0]
    assert row["map_avg"] == pytest.approx((row["map_a2v"] + row["map_v2a"]) / 2)


def test_markdown_names_the_test_and_shows_mean_pm_std(evaluations, tmp_path):
    write_accuracy_tables(evaluations, tmp_path / "t.tsv", tmp_path / "t.md", ["ours", "cca"], "Table 2", True,
                          ["dataset: test"])
    text = (tmp_path / "t.md").read_text()
    assert "Wilcoxon signed-rank" in text and " ± " in text and "dataset: test" in text
    tsv = pd.read_csv(tmp_path / "t.tsv", sep="\t", comment="#")
    assert list(tsv["method"]) == ["ours", "cca"]


def test_rows_say_budget_epochs_steps_and_device(evaluations):
    per_query, summaries = load_evaluations(evaluations)
    table = accuracy_table(per_query, ["ours", "cca"], True, summaries).set_index("method")
    assert table.loc["ours", "budget"] == "quick"
    assert table.loc["ours", "epochs"] == 4 and table.loc["ours", "steps"] == 40  # medians of 3..5, 30..50
    assert table.loc["cca", "budget"] == "unrecorded" and table.loc["ours", "device"] == "cpu"
    costs = cost_table(summaries, ["ours", "cca"]).set_index("method")
    assert costs.loc["ours", "steps"] == 40 and costs.loc["ours", "budget"] == "quick"


def test_the_papers_numbers_stand_beside_ours_for_a_reference_dataset(evaluations, tmp_path):
    write_accuracy_tables(evaluations, tmp_path / "t2.tsv", tmp_path / "t2.md", ["ours", "cca"], "Table 2", True,
                          ["dataset: vegas"], reference="vegas", paper_table=paper_numbers.TABLE2)
    tsv = pd.read_csv(tmp_path / "t2.tsv", sep="\t", comment="#").set_index("method")
    # METHODS.md, "The paper's numbers": VEGAS Ours .797 .779 .788, CCA .332 .327 .330.
    assert tuple(tsv.loc["ours", ["paper_vegas_a2v", "paper_vegas_v2a", "paper_vegas_avg"]]) == (0.797, 0.779, 0.788)
    assert tsv.loc["cca", "paper_vegas_avg"] == 0.330
    assert "paper VEGAS a→v" in (tmp_path / "t2.md").read_text()
    assert "- cca: closed form (a note the table must print)" in (tmp_path / "t2.md").read_text()
    _, summaries = load_evaluations(evaluations)
    costs = cost_table(summaries, ["ours", "cca"], reference="vegas").set_index("method")
    assert costs.loc["ours", "paper_vegas_minutes"] == 8.36 and costs.loc["cca", "paper_vegas_minutes"] == 1.08
    # AVE has no Table 3 in the paper; a dataset that is neither gets no paper columns.
    assert np.isnan(cost_table(summaries, ["ours"], reference="ave").set_index("method").loc["ours", "paper_ave_minutes"])
    assert paper_numbers.paper_reference("my_clips") is None
    assert paper_numbers.paper_reference("my_vegas_copy", "vegas") == "vegas"


def test_a_p_value_below_the_smallest_double_prints_as_a_bound():
    from avcmr.reporting.tables import _p_value

    assert _p_value(0.0) == "< 1e-300"  # what scipy returns for thousands of one-sided differences
    assert _p_value(0.0123) == "0.012"
    assert _p_value(float("nan")) == "—"
