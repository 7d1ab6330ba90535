"""The paper's figures (Figs 3–8) from the workflow's Parquet tables, never by re-ranking.

Every figure is written as PNG (for the report) and PDF (for a manuscript) at a fixed size
(:data:`FIGURE_SIZES` inches at :data:`FIGURE_DPI`), so it is readable at the size it is shown.

- Fig. 3 ``class_counts``: clips per class in the training and the test split (``split.parquet``);
- Fig. 4 ``precision_scope``: mean P@K over queries, K = 10, 20, …, 1000 clipped to the test-set
  size, a→v and v→a, one line per method: mean over seeds, band = std over seeds
  (``eval/*.precision.parquet``);
- Fig. 5 ``training_losses``: total, L_corr, L_dis, L_cons per epoch of `ours` (mean over seeds,
  band = std), or of the first method of the tables with a training history
  (``training/*.parquet``);
- Fig. 6 ``per_class_ap``: AP averaged over the queries of each class, both directions, of `ours`
  or of the best configured method by average MAP (``eval/*.parquet``);
- Fig. 7 ``alpha_beta``: MAP of `ours` over the α/β grid (``alpha_beta/*.parquet``);
- Fig. 8 ``tsne``: t-SNE of the test set, original features (one map per modality) vs the learned
  common-space embeddings (one joint map of both modalities), coloured by class
  (``features.parquet`` + ``eval/*.embeddings.parquet``).

Method names are those of the tables; the order is Table 2's, then Table 4's ablations. Each
``plot_*`` function saves the figure that its ``draw_*`` twin returns (a matplotlib Figure, whose
axes hold the plotted data).

Figs 3–7 are here; Fig. 8 is in ``avcmr.reporting.figures_tsne`` and what the figures share (sizes,
style, method order and colours, saving) in ``avcmr.reporting.figures_common``. Both modules' public
names are importable from here too.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from avcmr.io.parquet import read_metadata, read_table

# The names marked F401 are re-exported: they lived here before the split.
from avcmr.reporting.figures_common import (
    DIRECTIONS,
    FIGURE_DPI,  # noqa: F401
    FIGURE_SIZES,  # noqa: F401
    STYLE,  # noqa: F401
    best_method,
    expected_pixels,  # noqa: F401
    method_colours,
    method_order,
    new_figure,
    save_figure,
    show_message,
)
from avcmr.reporting.figures_tsne import (  # noqa: F401 -- Fig. 8, re-exported
    MIN_TSNE_POINTS,
    choose_embedding,
    draw_tsne,
    pca_2d,
    plot_tsne,
    subsample,
    tsne_2d,
)
from avcmr.reporting.tables import REFERENCE_METHOD, load_evaluations

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

LOSS_LABELS = {"total": "total loss L", "corr": "L_corr (Eq. 2)", "dis": "L_dis (Eq. 3)", "cons": "L_cons (Eqs. 4–5)"}


# --- Fig. 3: clips per class ----------------------------------------------------------------------


def class_counts(split_path) -> pd.DataFrame:
    """Clips per class (rows) in the train and test splits (columns)."""
    split = read_table(split_path, ["label", "split"]).to_pandas()
    counts = split.groupby(["label", "split"]).size().unstack("split", fill_value=0)
    return counts.reindex(columns=["train", "test"], fill_value=0).sort_index()


def draw_class_counts(split_path, dataset: str = "") -> tuple[Figure, pd.DataFrame]:
    """Fig. 3 (unsaved, for :func:`plot_class_counts` or a test to inspect) and the counts it shows."""
    counts = class_counts(split_path)
    fig, axes = new_figure("fig3")
    ax = axes[0, 0]
    positions = np.arange(len(counts))
    width = 0.4
    for offset, (part, colour) in zip((-width / 2, width / 2), (("train", "#4477aa"), ("test", "#ee6677")), strict=True):
        bars = ax.bar(positions + offset, counts[part], width, label=f"{part} ({int(counts[part].sum())} clips)",
                      color=colour)
        if len(counts) <= 20:
            ax.bar_label(bars, fontsize=8, padding=1)
    ax.set_xticks(positions, counts.index, rotation=45 if len(counts) > 6 else 0, ha="right" if len(counts) > 6 else "center")
    ax.set_xlabel("class")
    ax.set_ylabel("clips (count)")
    ax.set_title(f"Clips per class in the training and test splits{f' ({dataset})' if dataset else ''}")
    ax.legend()
    ax.margins(y=0.12)
    fig.subplots_adjust(bottom=0.25 if len(counts) > 6 else 0.12, left=0.08, right=0.98, top=0.9)
    return fig, counts


def plot_class_counts(split_path, png_out, pdf_out, dataset: str = "") -> pd.DataFrame:
    fig, counts = draw_class_counts(split_path, dataset)
    save_figure(fig, png_out, pdf_out)
    return counts


# --- Fig. 4: precision-scope ---------------------------------------------------------------------


def load_precision(precision_paths: Sequence[str]) -> pd.DataFrame:
    """Mean P@K over queries per method, seed, direction and K."""
    parts = []
    for path in precision_paths:
        meta = read_metadata(path)
        table = read_table(path, ["direction", "k", "precision"]).to_pandas()
        mean = table.groupby(["direction", "k"], as_index=False)["precision"].mean()
        parts.append(mean.assign(method=meta["method"], seed=int(meta["seed"])))
    return pd.concat(parts, ignore_index=True)


def precision_scope(precision_paths: Sequence[str]) -> pd.DataFrame:
    """Per method, direction and K: mean and std over seeds of the mean P@K over queries."""
    by_seed = load_precision(precision_paths)
    grouped = by_seed.groupby(["method", "direction", "k"])["precision"]
    return pd.DataFrame({"mean": grouped.mean(), "std": grouped.std(ddof=0).fillna(0.0),
                         "n_seeds": grouped.size()}).reset_index()


def draw_precision_scope(precision_paths) -> tuple[Figure, pd.DataFrame]:
    """Fig. 4 (unsaved) and the curves it shows."""
    curves = precision_scope(precision_paths)
    methods = method_order(curves["method"].unique())
    colours = method_colours(methods)
    fig, axes = new_figure("fig4", 1, 2, sharey=True)
    n_seeds = int(curves["n_seeds"].max())
    for ax, (direction, title) in zip(axes[0], DIRECTIONS.items(), strict=True):
        for method in methods:
            curve = curves[(curves["method"] == method) & (curves["direction"] == direction)].sort_values("k")
            is_reference = method == REFERENCE_METHOD
            ax.plot(curve["k"], curve["mean"], color=colours[method], lw=2.4 if is_reference else 1.4,
                    marker="o" if len(curve) <= 20 else None, ms=4, label=method, zorder=3 if is_reference else 2)
            ax.fill_between(curve["k"], curve["mean"] - curve["std"], curve["mean"] + curve["std"],
                            color=colours[method], alpha=0.15, lw=0)
        ax.set_title(title)
        ax.set_xlabel("scope K (number of retrieved items)")
        ax.set_ylim(0, 1.02)
    axes[0, 0].set_ylabel("precision@K (mean over queries)")
    axes[0, 1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), title="method", frameon=False)
    scopes = sorted(curves["k"].unique())
    if len(scopes) <= 2:
        # A test set smaller than the scopes: every K clips to the list length (METHODS.md).
        for ax in axes[0]:
            ax.set_xlim(0, max(scopes) * 1.25 + 1)
        fig.text(0.5, 0.01, f"The test set has {max(scopes)} candidates: every K ≥ {max(scopes)} is clipped to "
                 f"{max(scopes)}, so each method is a single point.", ha="center", va="bottom", fontsize=9)
    fig.suptitle(f"Precision-scope curves (line: mean over {n_seeds} seed{'s' * (n_seeds != 1)}; band: ± std)")
    fig.subplots_adjust(left=0.07, right=0.85, bottom=0.16, top=0.86, wspace=0.08)
    return fig, curves


def plot_precision_scope(precision_paths, png_out, pdf_out) -> pd.DataFrame:
    fig, curves = draw_precision_scope(precision_paths)
    save_figure(fig, png_out, pdf_out)
    return curves


# --- Fig. 5: training losses ---------------------------------------------------------------------


def load_histories(history_paths: Sequence[str]) -> pd.DataFrame:
    """All training histories (method, seed, epoch, loss columns); methods without one are absent."""
    parts = []
    for path in history_paths:
        meta = read_metadata(path)
        table = read_table(path).to_pandas()
        if len(table) and "epoch" in table:
            parts.append(table.assign(method=meta["method"], seed=int(meta["seed"])))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["method", "seed", "epoch"])


def choose_history_method(histories: pd.DataFrame, preferred: str = REFERENCE_METHOD) -> str | None:
    """``preferred`` when it has a history, else the first method (tables' order) with one."""
    methods = method_order(histories["method"].unique())
    if preferred in methods:
        return preferred
    return methods[0] if methods else None


def draw_training_losses(history_paths, preferred: str = REFERENCE_METHOD) -> tuple[Figure, str | None]:
    """Fig. 5 (unsaved) and the method whose losses it shows (None: none has a history)."""
    histories = load_histories(history_paths)
    method = choose_history_method(histories, preferred)
    fig, axes = new_figure("fig5", 1, 4)
    if method is None:
        for ax in axes[0]:
            ax.set_axis_off()
        fig.text(0.5, 0.5, "No configured method records a training history: closed-form methods (random, cca, "
                 "kcca, ...)\ntrain in one step. Configure `ours` (or another neural method) to see its losses.",
                 ha="center", va="center", fontsize=11)
        fig.suptitle("Training losses per epoch: none to show")
        return fig, None
    history = histories[histories["method"] == method]
    numeric = [c for c in history.columns if c not in ("method", "seed", "epoch") and not c.startswith("val_")
               and pd.api.types.is_numeric_dtype(history[c])]
    terms = [t for t in LOSS_LABELS if t in numeric] + [c for c in numeric if c not in LOSS_LABELS]
    terms = (terms + [None] * 4)[:4] if method != REFERENCE_METHOD else list(LOSS_LABELS)
    n_seeds = history["seed"].nunique()
    for ax, term in zip(axes[0], terms, strict=True):
        if term is None or term not in history:
            show_message(ax, f"{term or 'no further loss term'}\nnot recorded")
            continue
        stats = history.groupby("epoch")[term].agg(["mean", "std"]).fillna(0.0)
        ax.plot(stats.index, stats["mean"], color="#222222", lw=1.8, marker="o" if len(stats) <= 30 else None, ms=3)
        ax.fill_between(stats.index, stats["mean"] - stats["std"], stats["mean"] + stats["std"], color="#888888",
                        alpha=0.3, lw=0)
        ax.set_title(LOSS_LABELS.get(term, term))
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss (dimensionless)")
        ax.xaxis.get_major_locator().set_params(integer=True)
    note = "" if method == preferred else f" ({preferred} not configured; first method with a history)"
    seeds_text = f"mean over {n_seeds} seeds, band ± std" if n_seeds > 1 else "1 seed"
    fig.suptitle(f"Training losses per epoch of {method}{note}: {seeds_text}")
    fig.subplots_adjust(left=0.075, right=0.99, bottom=0.17, top=0.8, wspace=0.55)
    return fig, method


def plot_training_losses(history_paths, png_out, pdf_out, preferred: str = REFERENCE_METHOD) -> str | None:
    fig, method = draw_training_losses(history_paths, preferred)
    save_figure(fig, png_out, pdf_out)
    return method


# --- Fig. 6: per-class AP ------------------------------------------------------------------------

def per_class_ap(per_query: pd.DataFrame, method: str) -> pd.DataFrame:
    """Per class and direction: mean over seeds of the class's mean AP, and its std over seeds."""
    rows = per_query[per_query["method"] == method]
    by_seed = rows.groupby(["query_label", "direction", "seed"])["ap"].mean()
    grouped = by_seed.groupby(level=["query_label", "direction"])
    return pd.DataFrame({"mean": grouped.mean(), "std": grouped.std(ddof=0).fillna(0.0)}).reset_index()


def draw_per_class_ap(eval_paths, preferred: str = REFERENCE_METHOD) -> tuple[Figure, str]:
    """Fig. 6 (unsaved) and the method whose per-class AP it shows."""
    per_query, _ = load_evaluations(eval_paths)
    method = best_method(per_query, preferred)
    table = per_class_ap(per_query, method)
    classes = sorted(table["query_label"].unique())
    n_seeds = per_query.loc[per_query["method"] == method, "seed"].nunique()
    fig, axes = new_figure("fig6")
    ax = axes[0, 0]
    positions = np.arange(len(classes))
    width = 0.4
    for offset, (direction, colour) in zip((-width / 2, width / 2), (("a2v", "#4477aa"), ("v2a", "#ccbb44")), strict=True):
        values = table[table["direction"] == direction].set_index("query_label").reindex(classes)
        overall = per_query.loc[(per_query["method"] == method) & (per_query["direction"] == direction), "ap"].mean()
        ax.bar(positions + offset, values["mean"], width, yerr=values["std"] if n_seeds > 1 else None, capsize=2,
               color=colour, label=f"{DIRECTIONS[direction]}: MAP {overall:.3f}")
        ax.axhline(overall, color=colour, ls="--", lw=1)
    ax.set_xticks(positions, classes, rotation=45 if len(classes) > 6 else 0, ha="right" if len(classes) > 6 else "center")
    ax.set_xlabel("query class")
    ax.set_ylabel("AP (mean over the class's queries)")
    ax.set_ylim(0, 1.22)
    ax.set_yticks(np.linspace(0, 1, 6))
    note = "" if method == preferred else f" ({preferred} not configured: best method by average MAP)"
    seeds_text = f"mean over {n_seeds} seeds, error bar ± std" if n_seeds > 1 else "1 seed"
    ax.set_title(f"Per-class AP of {method}{note}\n{seeds_text}; dashed line: the direction's MAP")
    ax.legend(loc="upper center", ncols=2, fontsize=9, frameon=False)
    fig.subplots_adjust(bottom=0.25 if len(classes) > 6 else 0.12, left=0.08, right=0.98, top=0.87)
    return fig, method


def plot_per_class_ap(eval_paths, png_out, pdf_out, preferred: str = REFERENCE_METHOD) -> str:
    fig, method = draw_per_class_ap(eval_paths, preferred)
    save_figure(fig, png_out, pdf_out)
    return method


# --- Fig. 7: the α/β grid ------------------------------------------------------------------------


def alpha_beta_grid(grid_paths: Sequence[str]) -> pd.DataFrame:
    """MAP a→v, v→a, avg of `ours` per (α, β): mean over the grid seeds."""
    rows = []
    for path in grid_paths:
        summary = read_metadata(path)["summary"]
        params = summary["params"]
        ap = read_table(path, ["direction", "ap"]).to_pandas().groupby("direction")["ap"].mean()
        rows.append({"alpha": float(params["alpha"]), "beta": float(params["beta"]), "seed": int(summary["seed"]),
                     "map_a2v": ap["a2v"], "map_v2a": ap["v2a"]})
    table = pd.DataFrame(rows)
    table["map_avg"] = (table["map_a2v"] + table["map_v2a"]) / 2
    grouped = table.groupby(["alpha", "beta"])
    result = grouped[["map_a2v", "map_v2a", "map_avg"]].mean()
    result["n_seeds"] = grouped.size()
    return result.reset_index().sort_values(["alpha", "beta"]).reset_index(drop=True)


def write_alpha_beta_table(grid_paths, out, header_lines: Sequence[str]) -> pd.DataFrame:
    from avcmr.reporting.tables import write_tsv

    table = alpha_beta_grid(grid_paths)
    # α and β as written in the config (0.001, 1e-05), not rounded by the 4-decimal float format.
    shown = table.assign(alpha=table["alpha"].map("{:g}".format), beta=table["beta"].map("{:g}".format))
    write_tsv(shown, out, list(header_lines) + ["MAP of ours over the alpha/beta grid (Fig. 7), mean over seeds"])
    return table


def draw_alpha_beta(grid_paths) -> tuple[Figure, pd.DataFrame]:
    """Fig. 7 (unsaved) and the grid table it shows."""
    table = alpha_beta_grid(grid_paths)
    alphas, betas = sorted(table["alpha"].unique()), sorted(table["beta"].unique())
    fig, axes = new_figure("fig7", 1, 3)
    low, high = table[["map_a2v", "map_v2a", "map_avg"]].to_numpy().min(), table[["map_a2v", "map_v2a", "map_avg"]].to_numpy().max()
    for ax, column, title in zip(axes[0], ("map_a2v", "map_v2a", "map_avg"),
                                 (DIRECTIONS["a2v"], DIRECTIONS["v2a"], "average of both"), strict=True):
        grid = table.pivot(index="alpha", columns="beta", values=column).reindex(index=alphas, columns=betas)
        image = ax.imshow(grid.to_numpy(), cmap="viridis", vmin=low, vmax=high, origin="lower", aspect="auto")
        for i in range(len(alphas)):
            for j in range(len(betas)):
                value = grid.iloc[i, j]
                if np.isfinite(value):
                    ax.text(j, i, f"{value:.3f}", ha="center", va="center", fontsize=7,
                            color="white" if value < (low + high) / 2 else "black")
        ax.set_xticks(range(len(betas)), [f"{b:g}" for b in betas])
        ax.set_yticks(range(len(alphas)), [f"{a:g}" for a in alphas])
        ax.set_xlabel("β (weight of L_cons)")
        ax.set_ylabel("α (weight of L_dis)")
        ax.set_title(title)
        ax.grid(False)
    n_seeds = int(table["n_seeds"].max())
    fig.suptitle(f"MAP of ours over the α/β grid (mean over {n_seeds} seed{'s' * (n_seeds != 1)})")
    fig.subplots_adjust(left=0.06, right=0.88, bottom=0.15, top=0.84, wspace=0.35)
    fig.colorbar(image, cax=fig.add_axes((0.905, 0.15, 0.012, 0.69)), label="MAP")
    return fig, table


def plot_alpha_beta(grid_paths, png_out, pdf_out) -> pd.DataFrame:
    fig, table = draw_alpha_beta(grid_paths)
    save_figure(fig, png_out, pdf_out)
    return table
