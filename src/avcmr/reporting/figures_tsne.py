"""Fig. 8: t-SNE of the test set, the original features (one map per modality) against a method's
learned common-space embeddings (one joint map of both modalities), coloured by class
(``features.parquet`` + ``eval/*.embeddings.parquet``); too few clips for t-SNE are drawn on their
first two principal axes. ``avcmr.reporting.figures`` holds Figs 3–7 and re-exports these names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from avcmr.io.parquet import read_metadata, read_table, vectors_from_column
from avcmr.reporting.figures_common import best_method, new_figure, pyplot, save_figure
from avcmr.reporting.tables import REFERENCE_METHOD, load_evaluations

if TYPE_CHECKING:
    from matplotlib.figure import Figure

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
    plt = pyplot()
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

    fig, axes = new_figure("fig8", 2, 2)
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
