"""How training ended (the `ended` column, the ‡ mark) and the sanity rows placed after the paper's."""

import numpy as np
import pandas as pd
import pytest
from test_reporting_tables import write_eval

from avcmr.reporting import paper_numbers
from avcmr.reporting.tables import (
    CAP_NOTE,
    SANITY_HEADING,
    SANITY_METHODS,
    TABLE2_METHODS,
    cost_markdown,
    cost_table,
    load_evaluations,
    training_table,
    write_accuracy_tables,
)


def summaries(*runs):
    """One summary row per (method, seed, training_end, steps_run); training_end None = not recorded."""
    rows = []
    for seed, (method, end, steps) in enumerate(runs):
        row = {"method": method, "seed": seed, "device": "cpu", "budget": "quick", "epochs_run": 1,
               "steps_run": steps, "fit_seconds": 1.0, "n_parameters": 10}
        if end is not None:
            row["training_end"] = end
        rows.append(row)
    return pd.DataFrame(rows)


def test_all_seeds_alike_give_one_phrase_with_the_median_steps():
    table = training_table(summaries(
        ("ours", "converged", 1000), ("ours", "converged", 1150), ("ours", "converged", 1300),
        ("ucal", "cap reached", 3000), ("ucal", "cap reached", 3000),
        ("dcca", "full schedule", 4000),
        ("cca", "closed-form", 0), ("cca", "closed-form", 0),
    ))
    assert table.loc["ours", "ended"] == "converged at 1,150 steps"
    assert table.loc["ucal", "ended"] == "cap reached at 3,000 steps"
    assert table.loc["dcca", "ended"] == "full schedule (4,000 steps)"
    assert table.loc["cca", "ended"] == "closed-form"


def test_mixed_seeds_list_each_group_with_its_seed_count():
    table = training_table(summaries(
        ("ours", "cap reached", 3000), ("ours", "converged", 800), ("ours", "converged", 1000),
    ))
    assert table.loc["ours", "ended"] == "converged at 900 steps (2 seeds); cap reached at 3,000 steps (1 seed)"


def test_evaluations_written_before_the_field_existed_say_unrecorded():
    assert training_table(summaries(("ours", None, 30), ("ours", None, 50))).loc["ours", "ended"] == "unrecorded"
    # Mixed old and new files: the old seed is its own group.
    mixed = training_table(summaries(("ours", "converged", 40), ("ours", None, 50)))
    assert mixed.loc["ours", "ended"] == "converged at 40 steps (1 seed); unrecorded (1 seed)"


def test_the_cap_mark_and_its_note_appear_only_when_a_row_was_capped():
    capped = cost_markdown(cost_table(summaries(
        ("ours", "converged", 800), ("ours", "cap reached", 3000), ("cca", "closed-form", 0)), ["cca", "ours"]), [])
    assert "| ours‡ |" in capped and "| cca |" in capped and CAP_NOTE in capped
    assert "| budget | how training ended | epochs |" in capped  # the column right after budget
    clean = cost_markdown(cost_table(summaries(("ours", "converged", 800), ("cca", "closed-form", 0)),
                                     ["cca", "ours"]), [])
    assert "‡" not in clean and CAP_NOTE not in clean


@pytest.fixture
def evaluations_with_a_sanity_row(tmp_path, rng):
    paths = []
    for seed in range(2):
        for method, end, steps in (("logreg", "converged", 40), ("ours", "cap reached", 150),
                                   ("cca", "closed-form", 0), ("random", "closed-form", 0)):
            # logreg is written first: its place in the tables must not depend on the input order.
            paths.append(write_eval(tmp_path / f"{method}_{seed}.parquet", method, seed,
                                    rng.uniform(0.2, 0.9, 30), rng.uniform(0.2, 0.9, 30), 1.0, 10,
                                    {"budget": "quick", "epochs_run": 1, "steps_run": steps, "training_end": end}))
    return paths


def test_sanity_rows_come_after_the_papers_rows_and_never_get_paper_values(evaluations_with_a_sanity_row, tmp_path):
    tsv_path, md_path = tmp_path / "t2.tsv", tmp_path / "t2.md"
    write_accuracy_tables(evaluations_with_a_sanity_row, tsv_path, md_path, TABLE2_METHODS + SANITY_METHODS,
                          "Table 2", True, ["dataset: vegas"], reference="vegas", paper_table=paper_numbers.TABLE2)
    tsv = pd.read_csv(tsv_path, sep="\t", comment="#")
    assert list(tsv["method"]) == ["random", "cca", "ours", "logreg"]
    assert list(tsv["row_kind"]) == ["paper", "paper", "paper", "sanity"]
    assert list(tsv["ended"]) == ["closed-form", "closed-form", "cap reached at 150 steps", "converged at 40 steps"]
    logreg = tsv.set_index("method").loc["logreg"]
    assert np.isnan(logreg[["paper_vegas_a2v", "paper_vegas_v2a", "paper_vegas_avg"]].astype(float)).all()
    lines = md_path.read_text().splitlines()
    rows = [line for line in lines if line.startswith("| ") and not line.startswith("| method")]
    assert [row.split(" | ")[0] for row in rows] == ["| random", "| cca", "| ours‡", f"| {SANITY_HEADING}", "| logreg"]
    heading = rows[3]
    assert heading.count("|") == rows[0].count("|") and heading.replace("|", "").strip() == SANITY_HEADING
    assert rows[4].endswith("| — | — | — |")  # no paper values
    assert CAP_NOTE in lines


def test_the_sanity_row_comes_last_whatever_order_the_methods_are_given_in(evaluations_with_a_sanity_row, tmp_path):
    # Even listed first and without the caller's tuple, logreg is printed after every paper row.
    _, runs = load_evaluations(evaluations_with_a_sanity_row)
    table = cost_table(runs, ["logreg", "ours"], reference="vegas")
    assert list(table["method"]) == ["ours", "cca", "random", "logreg"]
    assert list(table["row_kind"]) == ["paper", "paper", "paper", "sanity"]
    assert np.isnan(table.set_index("method").loc["logreg", "paper_vegas_minutes"])
    markdown = cost_markdown(table, [])
    assert markdown.index("| ours‡ |") < markdown.index(SANITY_HEADING) < markdown.index("| logreg |")


def test_without_sanity_rows_there_is_no_heading_row(evaluations_with_a_sanity_row, tmp_path):
    paths = [p for p in evaluations_with_a_sanity_row if "logreg" not in p]
    write_accuracy_tables(paths, tmp_path / "t4.tsv", tmp_path / "t4.md", ["random", "ours"], "Table 4", False, [])
    text = (tmp_path / "t4.md").read_text()
    assert SANITY_HEADING not in text and "| ours‡ |" in text and CAP_NOTE in text


def test_the_report_page_marks_capped_rows_and_names_the_sanity_row(tmp_path):
    from avcmr.reporting.report import table_html

    runs = summaries(("ours", "converged", 900), ("acmr", "cap reached", 3000), ("logreg", "converged", 12))
    table = cost_table(runs, list(TABLE2_METHODS) + list(SANITY_METHODS))
    tsv = tmp_path / "table3.tsv"
    table.to_csv(tsv, sep="\t", index=False)
    table_html(tsv, tmp_path / "table3.html", "Table 3", "table3")
    page = (tmp_path / "table3.html").read_text()
    assert "acmr‡" in page and "ours‡" not in page and "cap reached at 3,000 steps" in page
    assert "logreg (sanity row, not in the paper)" in page
    assert CAP_NOTE.split(":")[0] in page
    # No capped row: no cap note.
    table_html_of_converged = cost_table(summaries(("ours", "converged", 900)), TABLE2_METHODS)
    table_html_of_converged.to_csv(tsv, sep="\t", index=False)
    table_html(tsv, tmp_path / "converged.html", "Table 3", "table3")
    assert CAP_NOTE.split(":")[0] not in (tmp_path / "converged.html").read_text()
