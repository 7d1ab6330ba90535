"""What the paper's figures share: their fixed sizes and style, the tables' method order and
colours, the choice of the method a figure shows, and saving a figure as PNG + PDF.

Used by ``avcmr.reporting.figures`` (Figs 3–7) and ``avcmr.reporting.figures_tsne`` (Fig. 8).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from avcmr.io.parquet import atomic_path
from avcmr.reporting.tables import REFERENCE_METHOD, TABLE2_METHODS, TABLE4_METHODS, map_by_seed

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


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(STYLE)
    return plt


def new_figure(figure: str, nrows: int = 1, ncols: int = 1, **kwargs):
    return pyplot().subplots(nrows, ncols, figsize=FIGURE_SIZES[figure], dpi=FIGURE_DPI, squeeze=False, **kwargs)


def save_figure(fig, png_out, pdf_out) -> None:
    """PNG + PDF at the figure's fixed size (no tight bounding box: the size is part of the contract)."""
    plt = pyplot()
    for path in (png_out, pdf_out):
        if path is None:
            continue
        suffix = Path(path).suffix.lstrip(".")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=suffix, dpi=FIGURE_DPI)
    plt.close(fig)


def show_message(ax, text: str) -> None:
    ax.set_axis_off()
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, fontsize=10, transform=ax.transAxes)


def method_colours(methods: Sequence[str]) -> dict[str, tuple]:
    plt = pyplot()
    palette = plt.get_cmap("tab20").colors
    others = [m for m in methods if m != REFERENCE_METHOD]
    colours = {m: palette[(2 * i) % 20 + (2 * i) // 20 % 2] for i, m in enumerate(others)}
    colours[REFERENCE_METHOD] = (0.0, 0.0, 0.0)
    return colours


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
