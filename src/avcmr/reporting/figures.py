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
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from avcmr.io.parquet import atomic_path, read_metadata, read_table, vectors_from_column
from avcmr.reporting.tables import (
    REFERENCE_METHOD,
    TABLE2_METHODS,
    TABLE4_METHODS,
    load_evaluations,
    map_by_seed,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

FIGURE_DPI = 150
# (width, height) in inches; PNG pixels = inches × FIGURE_DPI.
FIGURE_SIZES = {
    "fig3": (8.0, 4.5),
    "fig4": (12.0, 4.8),
    "fig5": (12.0, 3.6),
    "fig6": (9.0, 4.8),
    "fig7": (12.0, 4.0),
    "fig8": (11.0, 9.0),
}
DIRECTIONS = {"a2v": "audio → visual (a→v)", "v2a": "visual → audio (v→a)"}
LOSS_LABELS = {"total": "total loss L", "corr": "L_corr (Eq. 2)", "dis": "L_dis (Eq. 3)", "cons": "L_cons (Eqs. 4–5)"}
STYLE = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
}


def expected_pixels(figure: str) -> tuple[int, int]:
    """(width, height) in pixels of a figure's PNG."""
    width, height = FIGURE_SIZES[figure]
    return round(width * FIGURE_DPI), round(height * FIGURE_DPI)


def method_order(methods) -> list[str]:
    """Methods in the tables' order (Table 2, then Table 4's ablations, then others by name)."""
    known = list(TABLE2_METHODS) + [m for m in TABLE4_METHODS if m not in TABLE2_METHODS]
    methods = set(methods)
    return [m for m in known if m in methods] + sorted(methods - set(known))


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(STYLE)
    return plt


def _new_figure(figure: str, nrows: int = 1, ncols: int = 1, **kwargs):
    return _pyplot().subplots(nrows, ncols, figsize=FIGURE_SIZES[figure], dpi=FIGURE_DPI, squeeze=False, **kwargs)


def save_figure(fig, png_out, pdf_out) -> None:
    """PNG + PDF at the figure's fixed size (no tight bounding box: the size is part of the contract)."""
    plt = _pyplot()
    for path in (png_out, pdf_out):
        if path is None:
            continue
        suffix = Path(path).suffix.lstrip(".")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=suffix, dpi=FIGURE_DPI)
    plt.close(fig)


def _message(ax, text: str) -> None:
    ax.set_axis_off()
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, fontsize=10, transform=ax.transAxes)


def _method_colours(methods: Sequence[str]) -> dict[str, tuple]:
    plt = _pyplot()
    palette = plt.get_cmap("tab20").colors
    others = [m for m in methods if m != REFERENCE_METHOD]
    colours = {m: palette[(2 * i) % 20 + (2 * i) // 20 % 2] for i, m in enumerate(others)}
    colours[REFERENCE_METHOD] = (0.0, 0.0, 0.0)
    return colours


# --- Fig. 3: clips per class ----------------------------------------------------------------------


def class_counts(split_path) -> pd.DataFrame:
    """Clips per class (rows) in the train and test splits (columns)."""
    split = read_table(split_path, ["label", "split"]).to_pandas()
    counts = split.groupby(["label", "split"]).size().unstack("split", fill_value=0)
    return counts.reindex(columns=["train", "test"], fill_value=0).sort_index()


def draw_class_counts(split_path, dataset: str = "") -> tuple[Figure, pd.DataFrame]:
    """Fig. 3 (unsaved, for :func:`plot_class_counts` or a test to inspect) and the counts it shows."""
    counts = class_counts(split_path)
    fig, axes = _new_figure("fig3")
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
    colours = _method_colours(methods)
    fig, axes = _new_figure("fig4", 1, 2, sharey=True)
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
    fig, axes = _new_figure("fig5", 1, 4)
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
            _message(ax, f"{term or 'no further loss term'}\nnot recorded")
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


def best_method(per_query: pd.DataFrame, preferred: str = REFERENCE_METHOD, candidates=None) -> str:
    """``preferred`` when evaluated (and a candidate), else the method with the best average MAP."""
    by_seed = map_by_seed(per_query)
    mean_avg = by_seed["avg"].groupby(level="method").mean()
    if candidates is not None:
        mean_avg = mean_avg[mean_avg.index.isin(list(candidates))]
    if mean_avg.empty:
        raise ValueError("no evaluated method to show")
    if preferred in mean_avg.index:
        return preferred
    return str(mean_avg.sort_values(ascending=False, kind="stable").index[0])


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
    fig, axes = _new_figure("fig6")
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
    fig, axes = _new_figure("fig7", 1, 3)
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


# --- Fig. 8: t-SNE -------------------------------------------------------------------------------


MIN_TSNE_POINTS = 5


def pca_2d(x: np.ndarray) -> np.ndarray:
    """The first two principal axes (zero-padded when there are fewer)."""
    centred = np.asarray(x, dtype=np.float64) - np.mean(x, axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    projected = centred @ vt[:2].T
    return np.pad(projected, ((0, 0), (0, 2 - projected.shape[1])))


def tsne_2d(x: np.ndarray, seed: int, perplexity: float) -> np.ndarray:
    """Seeded 2-D t-SNE; the perplexity is capped below (n − 1)/3 for small sets. Fewer than
    :data:`MIN_TSNE_POINTS` points are drawn on their first two principal axes instead."""
    from sklearn.manifold import TSNE

    x = np.asarray(x, dtype=np.float64)
    if len(x) < MIN_TSNE_POINTS:
        return pca_2d(x)
    perplexity = float(min(perplexity, max((len(x) - 1) / 3.0, 1.0)))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed,
                learning_rate="auto").fit_transform(np.asarray(x, dtype=np.float64))


def _standardise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    std = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)


def _unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)


def subsample(labels: np.ndarray, max_points: int, seed: int) -> np.ndarray:
    """Sorted indices of a seeded random subset of at most ``max_points`` items."""
    if len(labels) <= max_points:
        return np.arange(len(labels))
    return np.sort(np.random.default_rng(seed).choice(len(labels), max_points, replace=False))


def choose_embedding(eval_paths, embeddings_paths, preferred: str = REFERENCE_METHOD) -> tuple[str, str]:
    """(method, embeddings path): ``preferred`` or the best method by MAP among those with embeddings."""
    available = {}
    for path in embeddings_paths:
        meta = read_metadata(path)
        if meta.get("has_embeddings"):
            available.setdefault(meta["method"], path)
    if not available:
        raise ValueError("no configured method has embeddings (only `random`?): Fig. 8 needs one that does")
    per_query, _ = load_evaluations(eval_paths)
    method = best_method(per_query, preferred, candidates=available)
    return method, available[method]


def draw_tsne(features_path, eval_paths, embeddings_paths, preferred: str = REFERENCE_METHOD,
              max_points: int = 2000, perplexity: float = 30.0, seed: int = 0) -> tuple[Figure, str]:
    """Fig. 8 (unsaved) and the method whose embeddings it shows."""
    table = read_table(features_path)
    is_test = np.asarray(table["split"].to_pylist()) == "test"
    clip_ids = np.asarray(table["clip_id"].to_pylist(), dtype=object)[is_test]
    labels = np.asarray(table["label"].to_pylist(), dtype=object)[is_test]
    original = {"audio": vectors_from_column(table["audio"])[is_test],
                "visual": vectors_from_column(table["visual"])[is_test]}
    method, path = choose_embedding(eval_paths, embeddings_paths, preferred)
    meta = read_metadata(path)
    embedded = read_table(path).to_pandas().set_index("clip_id").loc[clip_ids]
    learned = {m: np.stack(embedded[m].to_numpy()) for m in ("audio", "visual")}
    keep = subsample(labels, max_points, seed)
    labels = labels[keep]
    classes = sorted(set(labels))
    plt = _pyplot()
    palette = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20").colors
    colours = np.array([palette[classes.index(label) % len(palette)] for label in labels])

    # Too few clips for t-SNE (a tiny test set): every panel shows its first two principal axes.
    use_tsne = len(keep) >= MIN_TSNE_POINTS
    axis_name = "t-SNE" if use_tsne else "principal axis"
    maps = {f"original {m}": tsne_2d(_standardise(original[m][keep]), seed, perplexity) for m in ("audio", "visual")}
    # The common space is compared by cosine (Hamming for codes, = Euclidean on ±1 codes): one
    # joint map of both modalities on unit-length rows shows whether the two land together.
    prepare = _unit_rows if meta.get("similarity_kind", "cosine") == "cosine" else np.asarray
    stacked = np.vstack([prepare(learned["audio"][keep]), prepare(learned["visual"][keep])])
    joint = tsne_2d(stacked, seed, perplexity) if use_tsne else pca_2d(stacked)
    maps[f"{method}: audio embeddings"] = joint[: len(keep)]
    maps[f"{method}: visual embeddings"] = joint[len(keep):]

    fig, axes = _new_figure("fig8", 2, 2)
    dims = {"audio": original["audio"].shape[1], "visual": original["visual"].shape[1]}
    titles = [f"original audio features (VGGish, {dims['audio']}-D)",
              f"original visual features (InceptionV3 + PCA, {dims['visual']}-D)",
              f"{method}: audio embeddings ({learned['audio'].shape[1]}-D, joint map)",
              f"{method}: visual embeddings ({learned['visual'].shape[1]}-D, joint map)"]
    for ax, points, title in zip(axes.reshape(-1), maps.values(), titles, strict=True):
        ax.scatter(points[:, 0], points[:, 1], c=colours, s=14 if len(keep) <= 500 else 5, lw=0)
        ax.set_title(title)
        ax.set_xlabel(f"{axis_name} 1 (arbitrary units)")
        ax.set_ylabel(f"{axis_name} 2 (arbitrary units)")
        ax.set_xticks([])
        ax.set_yticks([])
    handles = [plt.Line2D([], [], ls="", marker="o", color=palette[i % len(palette)], label=c)
               for i, c in enumerate(classes)]
    fig.legend(handles=handles, title="class", loc="center right", frameon=False, ncols=1 if len(classes) <= 20 else 2)
    note = "" if method == preferred else f" ({preferred} not configured: best method with embeddings by MAP)"
    fig.suptitle(f"{'t-SNE' if use_tsne else 'Principal axes (too few clips for t-SNE)'} of the test set ({len(keep)} of {len(is_test.nonzero()[0])} clips, seed {seed}): "
                 f"original features vs {method} embeddings\n{note.strip(' ()')}".rstrip())
    right = 0.84 if len(classes) <= 20 else 0.76
    fig.subplots_adjust(left=0.05, right=right, bottom=0.06, top=0.89, wspace=0.15, hspace=0.25)
    return fig, method


def plot_tsne(features_path, eval_paths, embeddings_paths, png_out, pdf_out, preferred: str = REFERENCE_METHOD,
              max_points: int = 2000, perplexity: float = 30.0, seed: int = 0) -> str:
    fig, method = draw_tsne(features_path, eval_paths, embeddings_paths, preferred, max_points, perplexity, seed)
    save_figure(fig, png_out, pdf_out)
    return method
