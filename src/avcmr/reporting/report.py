"""What `snakemake --report` shows besides the figures: HTML views of the result tables and a
short description of the run (dataset, sizes, backbone weights, seeds, device).

The tables are TSV files with '# ' header lines (dataset, weights, config hash, warnings); a view
keeps those lines above the table, with the random-weights warning in a red box, and formats
mean ± std the way the Markdown tables do. The run summary is reStructuredText that the report's
workflow description (``workflow/report/workflow.rst``) includes on its landing page.
"""

from __future__ import annotations

import datetime
import html
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from avcmr import __version__
from avcmr.io.parquet import atomic_path, read_metadata, read_table
from avcmr.reporting.tables import CAP_MARK, CAP_NOTE, CAP_REACHED, SANITY_METHODS

RANDOM_WEIGHTS_WARNING = (
    "RANDOM BACKBONE WEIGHTS: the VGGish / InceptionV3 features of this run come from seeded random "
    "networks, not the official weights. Every number here checks the pipeline; none is a paper result."
)
_CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; margin: 1.5em; color: #1f2937; }
h1 { font-size: 1.3em; }
table { border-collapse: collapse; font-size: 0.95em; }
th, td { border: 1px solid #d1d5db; padding: 0.3em 0.7em; text-align: right; }
th { background: #f3f4f6; }
td:first-child, th:first-child { text-align: left; }
ul.notes { color: #4b5563; font-size: 0.9em; }
.warning { border: 2px solid #b91c1c; background: #fee2e2; color: #7f1d1d; padding: 0.6em; font-weight: bold;
           margin: 0.8em 0; }
"""


def read_tsv_with_header(path) -> tuple[list[str], pd.DataFrame]:
    """('# ' header lines without the prefix, table) of a TSV written by the workflow."""
    with open(path) as handle:
        lines = handle.read().splitlines()
    header = [line[2:] for line in lines if line.startswith("# ")]
    return header, pd.read_csv(path, sep="\t", comment="#")


def _mean_std(table: pd.DataFrame, stem: str) -> pd.Series:
    return [f"{m:.3f} ± {s:.3f}" if np.isfinite(s) else f"{m:.3f}"
            for m, s in zip(table[f"{stem}_mean"], table[f"{stem}_std"], strict=True)]


def _method_labels(table: pd.DataFrame) -> list[str]:
    """Method names, ‡ where the step cap ended a seed's training, a sanity row named as such."""
    ended = table["ended"] if "ended" in table else [""] * len(table)
    return [method + (CAP_MARK if CAP_REACHED in str(end) else "")
            + (" (sanity row, not in the paper)" if method in SANITY_METHODS else "")
            for method, end in zip(table["method"], ended, strict=True)]


def capped_rows(table: pd.DataFrame) -> bool:
    return "ended" in table and any(CAP_REACHED in str(end) for end in table["ended"])


def display_table(kind: str, table: pd.DataFrame) -> pd.DataFrame:
    """The table as shown: accuracy tables as 'mean ± std' per direction, others with readable names;
    how training ended beside each row where the table records it."""
    if kind in ("table2", "table4"):
        shown = pd.DataFrame({"method": _method_labels(table)})
        for direction, name in (("a2v", "MAP a→v"), ("v2a", "MAP v→a"), ("avg", "MAP avg")):
            shown[name] = _mean_std(table, f"map_{direction}")
        shown["seeds"] = table["n_seeds"]
        if "p_value_vs_ours" in table:
            shown["p vs ours"] = ["—" if not np.isfinite(p) else f"{p:.2g}" for p in table["p_value_vs_ours"]]
        if "ended" in table:
            shown["how training ended"] = table["ended"]
        return shown
    if kind == "table3":
        shown = pd.DataFrame({
            "method": _method_labels(table),
            "fit seconds (median)": [f"{v:.2f}" for v in table["fit_seconds_median"]],
            "device": table["device"],
            "parameters": [f"{int(v):,}" for v in table["n_parameters"]],
            "seeds": table["n_seeds"],
        })
        if "ended" in table:
            shown["how training ended"] = table["ended"]
        return shown
    if kind == "alpha_beta":
        shown = table.copy()
        for column in ("map_a2v", "map_v2a", "map_avg"):
            shown[column] = [f"{v:.3f}" for v in table[column]]
        return shown.rename(columns={"map_a2v": "MAP a→v", "map_v2a": "MAP v→a", "map_avg": "MAP avg"})
    return table


def table_html(tsv_path, out, title: str, kind: str, note: str = "") -> None:
    """A standalone HTML page of one result table (header lines, warning box, the table)."""
    header, table = read_tsv_with_header(tsv_path)
    warnings = [line for line in header if line.startswith("WARNING")]
    notes = [line for line in header if not line.startswith("WARNING")]
    body = [f"<h1>{html.escape(title)}</h1>"]
    body += [f'<div class="warning">{html.escape(line)}</div>' for line in warnings]
    if notes:
        body.append('<ul class="notes">' + "".join(f"<li>{html.escape(line)}</li>" for line in notes) + "</ul>")
    body.append(display_table(kind, table).to_html(index=False, border=0, escape=True, na_rep="—"))
    if capped_rows(table):
        body.append(f"<p>{html.escape(CAP_NOTE)}</p>")
    if note:
        body.append(f"<p>{html.escape(note)}</p>")
    page = (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{_CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
    with atomic_path(out) as tmp:
        tmp.write_text(page, encoding="utf-8")


def _acquisition_total(path) -> dict:
    if path is None:
        return {}
    _, table = read_tsv_with_header(path)
    total = table[table["label"] == "TOTAL"]
    return total.iloc[0].to_dict() if len(total) else {}


def run_facts(dataset: str, spec: Mapping, eval_paths: Sequence[str], split_path, features_path,
              acquisition_path=None) -> dict:
    """The facts the run summary states, from the run's tables (not from the config alone)."""
    summaries = pd.DataFrame([read_metadata(path)["summary"] for path in eval_paths])
    split = read_table(split_path, ["label", "split"]).to_pandas()
    features_meta = read_metadata(features_path)
    features_schema = read_table(features_path).schema
    acquisition = _acquisition_total(acquisition_path)
    return {
        "dataset": dataset,
        "kind": spec.get("kind", ""),
        "n_listed": acquisition.get("listed"),
        "n_usable": acquisition.get("usable"),
        "n_classes": int(split["label"].nunique()),
        "n_train": int((split["split"] == "train").sum()),
        "n_test": int((split["split"] == "test").sum()),
        "audio_dim": features_schema.field("audio").type.list_size,
        "visual_dim": features_schema.field("visual").type.list_size,
        "backbone_weights": features_meta.get("backbone_weights", {}),
        "random_weights": bool(features_meta.get("random_weights", False)),
        "config_hash": features_meta.get("config_hash", ""),
        "split_seed": spec.get("split", {}).get("seed"),
        "methods": list(dict.fromkeys(summaries["method"])),
        "seeds": sorted({int(s) for s in summaries["seed"]}),
        "devices": sorted(set(summaries["device"])),
        "fit_seconds_total": float(summaries["fit_seconds"].sum()),
    }


def run_summary_rst(facts: Mapping, items: Sequence[str] = ()) -> str:
    """reStructuredText of the run (a section; the workflow description includes it)."""
    title = f"Run: {facts['dataset']}"
    lines = [title, "-" * len(title), ""]
    if facts["random_weights"]:
        lines += [".. raw:: html", "", f'   <div style="border:2px solid #b91c1c;background:#fee2e2;color:#7f1d1d;'
                  f'padding:0.6em;font-weight:bold;margin:0.5em 0">{html.escape(RANDOM_WEIGHTS_WARNING)}</div>', ""]
    weights = "; ".join(f"{k} = {v}" for k, v in sorted(facts["backbone_weights"].items()))
    listed = "" if facts["n_listed"] is None else f"{int(facts['n_listed'])} clips listed, {int(facts['n_usable'])} usable; "
    lines += [
        f"- **Dataset**: {facts['dataset']} ({facts['kind']}); {listed}{facts['n_classes']} classes",
        f"- **Split**: {facts['n_train']} training / {facts['n_test']} test clips (class-balanced, seed "
        f"{facts['split_seed']})",
        f"- **Features**: audio {facts['audio_dim']}-D (VGGish), visual {facts['visual_dim']}-D (InceptionV3 + PCA)",
        f"- **Backbone weights**: {weights}" + (" — **RANDOM (pipeline check only)**" if facts["random_weights"]
                                               else " (official files)"),
        f"- **Methods**: {', '.join(facts['methods'])}",
        f"- **Seeds**: {', '.join(str(s) for s in facts['seeds'])} (tables and curves: mean ± std over seeds)",
        f"- **Device**: {', '.join(facts['devices'])} (total fit time {facts['fit_seconds_total']:.1f} s)",
        f"- **Config hash**: ``{facts['config_hash']}``; avcmr {__version__}; summary written "
        f"{datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
    ]
    if items:
        lines += ["", f"Files: {', '.join(items)}."]
    return "\n".join(lines) + "\n"


def write_run_summary(out, dataset: str, spec: Mapping, eval_paths, split_path, features_path,
                      acquisition_path=None, items: Sequence[str] = ()) -> dict:
    facts = run_facts(dataset, spec, eval_paths, split_path, features_path, acquisition_path)
    with atomic_path(out) as tmp:
        tmp.write_text(run_summary_rst(facts, items), encoding="utf-8")
    return facts
