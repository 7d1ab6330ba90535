"""The paper's tables from the per-(method, seed) evaluation Parquet files.

- Table 2: MAP a→v, v→a, avg (mean ± std over seeds) for every method, plus a paired test of the
  paper's model (`ours`) against each method over per-query APs: the Wilcoxon signed-rank test,
  pairing each test query (both directions) with its AP averaged over seeds.
- Table 3: training cost: median fit seconds over seeds, device, number of learned parameters.
- Table 4: the ablation (random, explicit, implicit, ex_im_share, ours), as Table 2 without test.

Every row of Tables 2–4 also says how the method was trained: its budget (``paper`` or ``quick``,
see ``avcmr.methods.budgets``), how training ended over its seeds (``ended``: converged, cap
reached, full schedule or closed-form), the epochs and optimiser steps actually run (medians over
seeds) and the device; a row whose step cap stopped any seed is marked ‡. For a dataset compared
with the paper (vegas, ave, or ``paper_reference``), the paper's own values stand beside ours
(``avcmr.reporting.paper_numbers``).

Sanity rows (``SANITY_METHODS``) are not in the paper: they come after all of its rows, under a
heading row in the markdown and with ``row_kind`` "sanity" in the TSV, and never carry paper values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from avcmr.io.parquet import atomic_path, read_metadata, read_table
from avcmr.reporting import paper_numbers

TABLE2_METHODS = ("random", "random_pca", "cca", "cca_nipals", "kcca", "dcca", "c_cca", "c_dcca", "ugach",
                  "agah", "ugach_real", "agah_real", "ucal", "acmr", "dscmr", "tnn_c_cca", "ours")
TABLE4_METHODS = ("random", "explicit", "implicit", "ex_im_share", "ours")
ABLATION_ONLY = ("explicit", "implicit", "ex_im_share")
# Rows that are not in the paper (a supervised floor): listed after all of the paper's rows.
SANITY_METHODS = ("logreg",)
SANITY_HEADING = "*sanity rows (not in the paper)*"
REFERENCE_METHOD = "ours"
SIGNIFICANCE_TEST = "Wilcoxon signed-rank, per-query AP (mean over seeds), both directions"


def load_evaluations(eval_paths: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-query AP of every method and seed, one summary row per method and seed)."""
    per_query, summaries = [], []
    for path in eval_paths:
        summary = read_metadata(path)["summary"]
        summaries.append(summary)
        per_query.append(read_table(path).to_pandas().assign(method=summary["method"], seed=summary["seed"]))
    return pd.concat(per_query, ignore_index=True), pd.DataFrame(summaries)


def map_by_seed(per_query: pd.DataFrame) -> pd.DataFrame:
    """MAP per method, seed and direction (columns a2v, v2a, avg)."""
    table = per_query.pivot_table(index=["method", "seed"], columns="direction", values="ap", aggfunc="mean")
    table["avg"] = (table["a2v"] + table["v2a"]) / 2
    return table


MAP_COLUMNS = ["method", "seed", "map_a2v", "map_v2a", "map_avg", "n_train", "n_test", "fit_seconds", "device",
               "budget", "epochs_run", "steps_run"]
TRAINING_DEFAULTS = {"budget": "unrecorded", "epochs_run": 0, "steps_run": 0, "training_end": "unrecorded"}
# How a (method, seed) training ended (``training_end`` of its summary), in the order a mixed row lists them.
TRAINING_ENDS = ("converged", "cap reached", "full schedule", "closed-form", "unrecorded")
CAP_REACHED = "cap reached"
CAP_MARK = "‡"
CAP_NOTE = (f"{CAP_MARK} the step cap ended training in at least one seed before the validation score stopped "
            "improving: the row may be short of its plateau.")


def chance_level(eval_path) -> float:
    """Σ_c p_c² over the test-class shares p_c: the MAP that `random` approaches on a large test set
    (a small test set biases random's MAP upwards, since a query's first relevant hit comes early)."""
    queries = read_table(eval_path, ["direction", "query_label"]).to_pandas()
    shares = queries.loc[queries["direction"] == "a2v", "query_label"].value_counts(normalize=True)
    return float((shares**2).sum())


def map_table(eval_paths: Sequence[str]) -> pd.DataFrame:
    """One row per (method, seed), in the order given: MAP both ways, sizes, fit time, device."""
    per_query, summaries = load_evaluations(eval_paths)
    summaries = with_training_columns(summaries)
    by_seed = map_by_seed(per_query).reset_index()
    table = summaries.merge(by_seed, on=["method", "seed"]).rename(
        columns={"a2v": "map_a2v", "v2a": "map_v2a", "avg": "map_avg"})
    order = {(s["method"], s["seed"]): i for i, s in summaries.iterrows()}
    table = table.assign(_order=[order[(m, s)] for m, s in zip(table["method"], table["seed"], strict=True)])
    return table.sort_values("_order")[MAP_COLUMNS].reset_index(drop=True)


def _ordered(methods: Sequence[str], available) -> list[str]:
    """``methods`` that are available in their order, then the others by name; sanity rows last."""
    known = [m for m in methods if m in set(available)]
    rows = known + sorted(set(available) - set(methods))
    return [m for m in rows if m not in SANITY_METHODS] + [m for m in rows if m in SANITY_METHODS]


def row_kind(method: str) -> str:
    return "sanity" if method in SANITY_METHODS else "paper"


def with_training_columns(summaries: pd.DataFrame) -> pd.DataFrame:
    """Summaries with budget / epochs / steps / training_end columns (evaluations written before
    these existed say ``unrecorded``); the device of a fit made with its other seeds says "(seeds together)"."""
    summaries = summaries.copy()
    for column, default in TRAINING_DEFAULTS.items():
        summaries[column] = summaries[column].fillna(default) if column in summaries else default
    if "seeds_together" in summaries:  # fit seconds are then a share of one joint fit: say so
        together = summaries["seeds_together"].fillna(False).astype(bool)
        summaries.loc[together, "device"] = summaries.loc[together, "device"] + " (seeds together)"
    return summaries


def _steps(count: float) -> str:
    return f"{count:,.0f} steps" if float(count).is_integer() else f"{count:,.1f} steps"


def _ending(end: str, steps: pd.Series) -> str:
    if end in ("converged", CAP_REACHED):
        return f"{end} at {_steps(steps.median())}"
    if end == "full schedule":
        return f"{end} ({_steps(steps.median())})"
    return end


def training_ended(runs: pd.DataFrame) -> str:
    """How the seeds in ``runs`` (columns training_end, steps_run) ended: one phrase when all alike
    ("converged at 1,150 steps": median steps), else each group with its seed count, joined by "; "."""
    groups = runs.groupby("training_end")["steps_run"]
    order = [end for end in TRAINING_ENDS if end in groups.groups] + sorted(set(groups.groups) - set(TRAINING_ENDS))
    if len(order) == 1:
        return _ending(order[0], runs["steps_run"])
    phrases = []
    for end in order:
        steps = groups.get_group(end)
        phrases.append(f"{_ending(end, steps)} ({len(steps)} seed{'' if len(steps) == 1 else 's'})")
    return "; ".join(phrases)


def training_table(summaries: pd.DataFrame) -> pd.DataFrame:
    """Per method: budget label(s), how training ended, median epochs and steps run, device(s)."""
    runs = with_training_columns(summaries)
    grouped = runs.groupby("method")
    return pd.DataFrame({
        "budget": grouped["budget"].agg(lambda labels: "; ".join(sorted(set(labels)))),
        "ended": pd.Series({method: training_ended(group) for method, group in grouped}, dtype=object),
        "epochs": grouped["epochs_run"].median(),
        "steps": grouped["steps_run"].median(),
        "device": grouped["device"].agg(lambda devices: ",".join(sorted(set(devices)))),
    })


def simplification_notes(summaries: pd.DataFrame | None, methods) -> list[str]:
    """'method: what differs from its paper' for the rows whose method states a simplification."""
    if summaries is None or "simplifications" not in summaries:
        return []
    notes = summaries.dropna(subset=["simplifications"]).groupby("method")["simplifications"].first()
    return [f"{method}: {notes[method]}" for method in methods if method in notes.index and notes[method]]


def accuracy_table(per_query: pd.DataFrame, methods: Sequence[str], with_test: bool,
                   summaries: pd.DataFrame | None = None, reference: str | None = None,
                   paper_table: Mapping[str, Mapping[str, tuple]] | None = None) -> pd.DataFrame:
    """MAP mean ± std per method; with ``summaries`` the training columns; with ``reference`` (vegas
    or ave) and ``paper_table`` (``paper_numbers.TABLE2`` or ``TABLE4``) the paper's values."""
    by_seed = map_by_seed(per_query)
    grouped = by_seed.groupby(level="method")
    mean, std = grouped.mean(), grouped.std(ddof=0)
    training = training_table(summaries) if summaries is not None else None
    published = (paper_table or {}).get(reference, {}) if reference else {}
    rows = []
    for method in _ordered(methods, mean.index):
        row = {"method": method, "row_kind": row_kind(method), "n_seeds": int(grouped.size()[method])}
        for direction in ("a2v", "v2a", "avg"):
            row[f"map_{direction}_mean"] = mean.loc[method, direction]
            row[f"map_{direction}_std"] = std.loc[method, direction]
        if with_test:
            row["p_value_vs_ours"] = paired_test(per_query, REFERENCE_METHOD, method)
        if training is not None:
            row.update(training.loc[method].to_dict())
        if reference:
            values = published.get(method, (np.nan,) * 3) if method not in SANITY_METHODS else (np.nan,) * 3
            row.update({f"paper_{reference}_{d}": v for d, v in zip(("a2v", "v2a", "avg"), values, strict=True)})
        rows.append(row)
    return pd.DataFrame(rows)


def paired_test(per_query: pd.DataFrame, reference: str, other: str) -> float:
    """Two-sided Wilcoxon signed-rank p-value of reference vs other over per-query APs (NaN if n/a)."""
    methods = set(per_query["method"])
    if reference not in methods or other not in methods or reference == other:
        return float("nan")
    from scipy.stats import (
        wilcoxon,  # imported here: scipy.stats costs seconds at every Snakemake start
    )

    query_ap = per_query.groupby(["method", "direction", "query_clip_id"])["ap"].mean()
    differences = (query_ap.loc[reference] - query_ap.loc[other]).dropna().to_numpy()
    if len(differences) == 0 or np.allclose(differences, 0):
        return 1.0
    return float(wilcoxon(differences).pvalue)


def cost_table(summaries: pd.DataFrame, methods: Sequence[str], reference: str | None = None) -> pd.DataFrame:
    """Median fit seconds, device, parameters, budget, epochs and steps per method; with a VEGAS
    reference also the paper's Table 3 minutes (the paper gives Table 3 for VEGAS only)."""
    grouped = summaries.groupby("method")
    table = pd.DataFrame({
        "fit_seconds_median": grouped["fit_seconds"].median(),
        "n_parameters": grouped["n_parameters"].max(),
        "n_seeds": grouped.size(),
    }).join(training_table(summaries))
    if reference is not None:
        minutes = paper_numbers.TABLE3_MINUTES.get(reference, {})
        table[f"paper_{reference}_minutes"] = [
            np.nan if method in SANITY_METHODS else minutes.get(method, np.nan) for method in table.index]
    table = table.loc[_ordered(methods, table.index)].reset_index(names="method")
    table.insert(1, "row_kind", [row_kind(method) for method in table["method"]])
    return table


def _mean_std(row: pd.Series, direction: str) -> str:
    return f"{row[f'map_{direction}_mean']:.3f} ± {row[f'map_{direction}_std']:.3f}"


def _paper_columns(table: pd.DataFrame) -> list[str]:
    return [column for column in table.columns if column.startswith("paper_")]


def _number(value, digits: int = 3) -> str:
    return "—" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.{digits}f}"


def _p_value(value: float) -> str:
    # Thousands of paired queries put p below the smallest double: printed as a bound, not as 0.
    if np.isnan(value):
        return "—"
    return "< 1e-300" if value == 0 else f"{value:.2g}"


def _training_cells(row: pd.Series) -> list[str]:
    return [str(row["budget"]), str(row["ended"]), f"{row['epochs']:g}", f"{row['steps']:g}", str(row["device"])]


def _capped(row: pd.Series) -> bool:
    return CAP_REACHED in str(row.get("ended", ""))


def _method_cell(row: pd.Series) -> str:
    return row["method"] + (CAP_MARK if _capped(row) else "")


def _body(table: pd.DataFrame, n_columns: int, cells_of) -> list[str]:
    """The table's rows (``cells_of(row)``), the sanity rows after a heading row; the cap note if due."""
    lines, heading_due = [], True
    for _, row in table.iterrows():
        if row["method"] in SANITY_METHODS and heading_due:
            lines.append(f"| {SANITY_HEADING} |" + " |" * (n_columns - 1))
            heading_due = False
        lines.append("| " + " | ".join(cells_of(row)) + " |")
    if "ended" in table and any(_capped(row) for _, row in table.iterrows()):
        lines += ["", CAP_NOTE]
    return lines


def accuracy_markdown(table: pd.DataFrame, title: str, header_lines: Sequence[str], notes: Sequence[str] = ()) -> str:
    with_test = "p_value_vs_ours" in table
    with_training = "budget" in table
    paper = _paper_columns(table)
    lines = [f"# {title}", ""] + [f"{line}  " for line in header_lines] + [""]
    columns = ["method", "MAP a→v", "MAP v→a", "MAP avg", "seeds"] + (["p vs ours"] if with_test else [])
    columns += ["budget", "how training ended", "epochs", "steps", "device"] if with_training else []
    columns += [f"paper {c.split('_', 2)[1].upper()} {c.rsplit('_', 1)[1].replace('2', '→')}" for c in paper]
    lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]

    def cells_of(row: pd.Series) -> list[str]:
        cells = [_method_cell(row), _mean_std(row, "a2v"), _mean_std(row, "v2a"), _mean_std(row, "avg"),
                 str(row["n_seeds"])]
        if with_test:
            cells.append(_p_value(row["p_value_vs_ours"]))
        if with_training:
            cells += _training_cells(row)
        return cells + [_number(row[c]) for c in paper]

    lines += _body(table, len(columns), cells_of)
    if with_test:
        lines += ["", f"p: {SIGNIFICANCE_TEST}."]
    if with_training:
        lines += ["", BUDGET_NOTE]
    if paper:
        lines += ["", PAPER_NOTE]
    lines += ["", *(f"- {note}" for note in notes)] if notes else []
    return "\n".join(lines) + "\n"


BUDGET_NOTE = ("budget: paper = each method's published schedule; quick = each iterative method trains until "
               "its validation score has not improved for a patience counted in optimiser steps, under a step "
               "cap (avcmr.methods.budgets). how training ended: converged = its own stopping rule (patience, "
               "or a solver's tolerance) ended it before the cap; cap reached = the step cap did; full schedule "
               "= the whole published schedule ran; closed-form = no iterative training. epochs / steps: medians "
               "over seeds of what actually ran.")
PAPER_NOTE = "paper: the values the paper publishes (never used to tune anything here)."


def cost_markdown(table: pd.DataFrame, header_lines: Sequence[str]) -> str:
    paper = _paper_columns(table)
    lines = ["# Table 3: training time", ""] + [f"{line}  " for line in header_lines] + [""]
    columns = ["method", "fit seconds (median)", "fit minutes", "budget", "how training ended", "epochs", "steps",
               "device", "parameters", "seeds"] + ["paper minutes (GPU)" for _ in paper]
    lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]

    def cells_of(row: pd.Series) -> list[str]:
        cells = [_method_cell(row), f"{row['fit_seconds_median']:.2f}", f"{row['fit_seconds_median'] / 60:.2f}",
                 *_training_cells(row), f"{int(row['n_parameters']):,}", str(int(row["n_seeds"]))]
        return cells + [_number(row[c], 2) for c in paper]

    lines += _body(table, len(columns), cells_of)
    lines += ["", BUDGET_NOTE]
    if paper:
        lines += ["", PAPER_NOTE]
    return "\n".join(lines) + "\n"


def write_text(path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_tsv(table: pd.DataFrame, path, header_lines: Sequence[str]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w") as handle:
        handle.writelines(f"# {line}\n" for line in header_lines)
        table.to_csv(handle, sep="\t", index=False, float_format="%.4f")


def write_accuracy_tables(eval_paths, tsv_out, md_out, methods, title, with_test, header_lines,
                          reference: str | None = None, paper_table=None) -> pd.DataFrame:
    per_query, summaries = load_evaluations(eval_paths)
    table = accuracy_table(per_query, methods, with_test, summaries, reference, paper_table)
    write_tsv(table, tsv_out, header_lines)
    notes = simplification_notes(summaries, list(table["method"]))
    write_text(md_out, accuracy_markdown(table, title, header_lines, notes))
    return table


def write_cost_tables(eval_paths, tsv_out, md_out, methods, header_lines, reference: str | None = None) -> pd.DataFrame:
    _, summaries = load_evaluations(eval_paths)
    table = cost_table(summaries, methods, reference)
    write_tsv(table, tsv_out, header_lines)
    write_text(md_out, cost_markdown(table, header_lines))
    return table
