"""Figures 3–8 from the Parquet tables that `fit_and_evaluate` writes, on a small feature set.

The per-(method, seed) tables come from the real stage function (random, cca and a narrow `ours`,
two seeds), so the figures read exactly what the workflow writes. Each figure is checked for its
pixel size, for not being blank and for the method it chose (`ours`, or the documented fallback), and
for what it plots: the bars, lines, heat-map cells and points of its matplotlib Figure (the ``draw_*``
twin of each ``plot_*`` function) against values computed here from the Parquet tables with pyarrow
and pandas alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from matplotlib.container import BarContainer
from PIL import Image
from sklearn.decomposition import PCA

from avcmr.data.synthetic_features import make_synthetic_features
from avcmr.io import schemas
from avcmr.io.parquet import read_metadata, read_table, vector_column, write_table
from avcmr.reporting import figures, figures_tsne

SMALL_OURS = {"audio_hidden": [32], "visual_hidden": [32], "batch_size": 64, "epochs": 3, "device": "cpu",
              "validation_reference_pairs": 64}
PARAMS = {"random": {}, "cca": {"n_components": 4}, "ours": SMALL_OURS}
SEEDS = (0, 1)
N_TEST = 60


def write_features(folder: Path) -> dict[str, Path]:
    """features.parquet, split.parquet and a small visual PCA table, as the workflow writes them."""
    table = make_synthetic_features(n_clips=240, n_classes=4, visual_dim=24, train_size=240 - N_TEST,
                                    class_separation=1.5, noise=0.8, random_state=5)
    table["label"] = [f"class_{label}" for label in table["label"]]
    audio, visual = np.stack(table["audio"]), np.stack(table["visual"])
    paths = {"features": folder / "features.parquet", "split": folder / "split.parquet",
             "pca": folder / "visual_pca.parquet"}
    provenance = {"dataset": "unit", "config_hash": "0" * 16, "random_weights": True,
                  "backbone_weights": {"vggish": "random(seed=0)", "inception": "random(seed=0)"}}
    features = pa.table({"clip_id": table["clip_id"], "label": table["label"], "split": table["split"],
                         "audio": vector_column(audio), "visual": vector_column(visual)})
    write_table(features, paths["features"], schemas.features(128, 24), provenance)
    write_table(features.select(["clip_id", "label", "split"]), paths["split"], schemas.SPLIT, provenance)
    rng = np.random.default_rng(0)
    components, _ = np.linalg.qr(rng.normal(size=(48, 24)))
    vectors = np.vstack([rng.normal(size=48), components.T])
    pca = pa.table({"row": ["mean"] + [f"component_{i}" for i in range(24)],
                    "explained_variance": np.concatenate([[np.nan], np.linspace(2, 1, 24)]),
                    "vector": vector_column(vectors, pa.float64())})
    write_table(pca, paths["pca"], schemas.pca_model(48), provenance, whiten=False)
    return paths


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A results folder with every per-(method, seed) table for random, cca and ours."""
    from avcmr.stages.train import fit_and_evaluate

    folder = tmp_path_factory.mktemp("figures")
    paths = write_features(folder)
    outputs: dict[str, list[Path]] = {"eval": [], "precision": [], "embeddings": [], "history": [], "model": []}
    for method, params in PARAMS.items():
        for seed in SEEDS:
            stem = f"{method}_seed{seed}"
            files = {"eval": folder / "eval" / f"{stem}.parquet",
                     "precision": folder / "eval" / f"{stem}.precision.parquet",
                     "embeddings": folder / "eval" / f"{stem}.embeddings.parquet",
                     "history": folder / "training" / f"{stem}.parquet",
                     "model": folder / "models" / f"{stem}.joblib"}
            fit_and_evaluate(paths["features"], method, params, seed, files["eval"], files["history"],
                             {"dataset": "unit"}, precision_out=files["precision"],
                             embeddings_out=files["embeddings"], model_out=files["model"],
                             model_context={"dataset": "unit", "pca_path": paths["pca"],
                                            "features": {"fps": 1, "frame_size": 299, "sample_rate": 16000},
                                            "backbone_weights": {"vggish": "random", "inception": "random"}})
            for key, path in files.items():
                outputs[key].append(path)
    return folder, paths, outputs


def of(paths, methods):
    return [p for p in paths if p.name.split("_seed")[0] in methods]


def method_and_seed(path: Path) -> tuple[str, int]:
    """(method, seed) from a per-run file name: ``<method>_seed<seed>[.<kind>].parquet``."""
    method, seed = path.name.split(".")[0].rsplit("_seed", 1)
    return method, int(seed)


def read_runs(paths) -> pd.DataFrame:
    """The rows of per-run tables, read with pyarrow, with their method and seed."""
    return pd.concat([pq.read_table(path).to_pandas().assign(method=method_and_seed(path)[0],
                                                             seed=method_and_seed(path)[1])
                      for path in paths], ignore_index=True)


def close(fig) -> None:
    import matplotlib.pyplot as plt

    plt.close(fig)


def bar_heights(ax) -> list[np.ndarray]:
    return [np.array([bar.get_height() for bar in container]) for container in ax.containers
            if isinstance(container, BarContainer)]


def check_image(path: Path, figure: str) -> np.ndarray:
    assert path.stat().st_size > 5000
    with Image.open(path) as image:
        assert image.size == figures.expected_pixels(figure)
        pixels = np.asarray(image.convert("L"), dtype=float)
    assert pixels.std() > 10, "blank image"
    assert (pixels < 200).mean() > 0.005, "almost nothing drawn"
    return pixels


def check_pdf(path: Path) -> None:
    assert path.read_bytes()[:5] == b"%PDF-" and path.stat().st_size > 2000


def direct_precision_at_k(scores: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """P@K of every row by a plain sort (real-valued scores: no ties)."""
    top = np.argsort(-scores, axis=1)[:, :k]
    return (labels[top] == labels[:, None]).sum(axis=1) / k


def test_precision_at_k_table_equals_direct_numpy_computation(run):
    from avcmr.models_io import load_model
    from avcmr.stages.train import load_feature_arrays

    folder, paths, outputs = run
    test = load_feature_arrays(paths["features"])["test"]
    for method in ("cca", "ours"):
        saved = load_model(folder / "models" / f"{method}_seed0.joblib")
        scores = saved.method.similarity(test["audio"], test["visual"])
        table = read_table(folder / "eval" / f"{method}_seed0.precision.parquet").to_pandas()
        # K = 10, 20, …, 1000 clipped to the 60 test candidates: 10 … 60.
        assert sorted(table["k"].unique()) == [10, 20, 30, 40, 50, 60]
        for direction, matrix in (("a2v", scores), ("v2a", scores.T)):
            rows = table[table["direction"] == direction]
            for k in (10, 30, 60):
                stored = rows[rows["k"] == k].set_index("query_clip_id").loc[test["clip_ids"], "precision"]
                expected = direct_precision_at_k(matrix, test["labels"], k)
                np.testing.assert_allclose(stored.to_numpy(), expected, atol=1e-12)
    # At K = n every query sees all candidates: P@n = the class share of the query's label.
    table = read_table(folder / "eval" / "cca_seed0.precision.parquet").to_pandas()
    at_n = table[table["k"] == N_TEST]
    shares = at_n["query_label"].map(at_n.drop_duplicates("query_clip_id")["query_label"].value_counts() / N_TEST)
    np.testing.assert_allclose(at_n["precision"], shares)


def test_precision_scope_curve_is_mean_over_queries_then_seeds(run):
    _, _, outputs = run
    curves = figures.precision_scope(of(outputs["precision"], {"cca"}))
    per_seed = []
    for path in of(outputs["precision"], {"cca"}):
        table = read_table(path).to_pandas()
        per_seed.append(table[(table["direction"] == "v2a") & (table["k"] == 20)]["precision"].mean())
    row = curves[(curves["method"] == "cca") & (curves["direction"] == "v2a") & (curves["k"] == 20)].iloc[0]
    assert row["mean"] == pytest.approx(np.mean(per_seed))
    assert row["std"] == pytest.approx(np.std(per_seed))
    assert row["n_seeds"] == 2


def test_fig3_class_counts(run, tmp_path):
    _, paths, _ = run
    counts = figures.plot_class_counts(paths["split"], tmp_path / "fig3.png", tmp_path / "fig3.pdf", "unit")
    assert counts["train"].sum() == 180 and counts["test"].sum() == N_TEST
    check_image(tmp_path / "fig3.png", "fig3")
    check_pdf(tmp_path / "fig3.pdf")
    # One bar per class and split, as tall as the split table's count of that class.
    split = pq.read_table(paths["split"]).to_pandas()
    expected = pd.crosstab(split["label"], split["split"])
    fig, _ = figures.draw_class_counts(paths["split"], "unit")
    ax = fig.axes[0]
    classes = [label.get_text() for label in ax.get_xticklabels()]
    assert classes == sorted(expected.index) and len(classes) == 4
    train, test = bar_heights(ax)
    np.testing.assert_array_equal(train, expected.loc[classes, "train"])
    np.testing.assert_array_equal(test, expected.loc[classes, "test"])
    assert [text.get_text() for text in ax.texts] == [str(v) for v in [*train.astype(int), *test.astype(int)]]
    close(fig)


def test_fig4_precision_scope_has_a_line_per_method(run, tmp_path):
    _, _, outputs = run
    curves = figures.plot_precision_scope(outputs["precision"], tmp_path / "fig4.png", tmp_path / "fig4.pdf")
    assert set(curves["method"]) == {"random", "cca", "ours"}
    check_image(tmp_path / "fig4.png", "fig4")
    check_pdf(tmp_path / "fig4.pdf")
    # cca beats chance at the small scopes (a class has ~15 test clips, so P@K ≤ 15/K beyond).
    mean = curves.set_index(["method", "direction", "k"])["mean"]
    assert (mean.loc["cca"] > mean.loc["random"] + 0.1).loc[:, :20].all()
    # Each panel has a line per method through the mean over seeds of the mean P@K over queries.
    rows = read_runs(outputs["precision"])
    per_seed = rows.groupby(["method", "seed", "direction", "k"])["precision"].mean()
    expected = per_seed.groupby(level=["method", "direction", "k"]).mean()
    fig, _ = figures.draw_precision_scope(outputs["precision"])
    for ax, direction in zip(fig.axes, ("a2v", "v2a"), strict=True):
        assert ax.get_title() == figures.DIRECTIONS[direction]
        lines = ax.get_lines()
        assert [line.get_label() for line in lines] == ["random", "cca", "ours"]
        for line in lines:
            curve = expected.loc[line.get_label(), direction]
            np.testing.assert_array_equal(line.get_xdata(), curve.index)
            np.testing.assert_allclose(line.get_ydata(), curve.to_numpy(), rtol=1e-12)
    close(fig)


def test_fig5_shows_the_losses_of_ours_and_says_when_there_is_no_history(run, tmp_path):
    _, _, outputs = run
    method = figures.plot_training_losses(outputs["history"], tmp_path / "fig5.png", tmp_path / "fig5.pdf")
    assert method == "ours"
    check_image(tmp_path / "fig5.png", "fig5")
    histories = figures.load_histories(of(outputs["history"], {"ours"}))
    assert {"total", "corr", "dis", "cons"} <= set(histories.columns)
    none = figures.plot_training_losses(of(outputs["history"], {"random", "cca"}), tmp_path / "none.png", None)
    assert none is None
    check_image(tmp_path / "none.png", "fig5")
    # One panel per loss term, its line the mean over the two seeds at every epoch.
    history = read_runs(of(outputs["history"], {"ours"}))
    assert set(history["seed"]) == {0, 1}
    fig, _ = figures.draw_training_losses(outputs["history"])
    assert len(fig.axes) == 4
    for ax, term in zip(fig.axes, ("total", "corr", "dis", "cons"), strict=True):
        assert ax.get_title() == figures.LOSS_LABELS[term]
        (line,) = ax.get_lines()
        expected = history.groupby("epoch")[term].mean()
        np.testing.assert_array_equal(line.get_xdata(), expected.index)
        np.testing.assert_allclose(line.get_ydata(), expected.to_numpy(), rtol=1e-6)
    close(fig)
    fig, _ = figures.draw_training_losses(of(outputs["history"], {"random", "cca"}))
    assert not any(ax.axison or ax.get_lines() for ax in fig.axes)
    assert fig.texts[0].get_text().startswith("No configured method records a training history")
    close(fig)


def test_fig6_per_class_ap_of_ours_or_the_best_method(run, tmp_path):
    _, _, outputs = run
    assert figures.plot_per_class_ap(outputs["eval"], tmp_path / "fig6.png", tmp_path / "fig6.pdf") == "ours"
    check_image(tmp_path / "fig6.png", "fig6")
    # Without ours: the best configured method by average MAP (cca, far above random).
    fallback = figures.plot_per_class_ap(of(outputs["eval"], {"random", "cca"}), tmp_path / "f.png", None)
    assert fallback == "cca"
    per_query, _ = figures.load_evaluations(of(outputs["eval"], {"cca"}))
    table = figures.per_class_ap(per_query, "cca")
    a2v = per_query[per_query["direction"] == "a2v"]
    expected = a2v.groupby(["query_label", "seed"])["ap"].mean().groupby(level=0).mean()
    np.testing.assert_allclose(table[table["direction"] == "a2v"].set_index("query_label")["mean"],
                               expected.loc[sorted(expected.index)])
    # The bars of ours: per class and direction, the mean over seeds of the class's mean AP (error
    # bar: the std over seeds); the dashed lines: each direction's MAP.
    rows = read_runs(of(outputs["eval"], {"ours"}))
    per_seed = rows.groupby(["direction", "query_label", "seed"])["ap"].mean()
    fig, _ = figures.draw_per_class_ap(outputs["eval"])
    ax = fig.axes[0]
    classes = [label.get_text() for label in ax.get_xticklabels()]
    assert classes == sorted(rows["query_label"].unique())
    bars = [container for container in ax.containers if isinstance(container, BarContainer)]
    assert len(bars) == 2 and all(len(container) == len(classes) for container in bars)
    for container, direction in zip(bars, ("a2v", "v2a"), strict=True):
        by_class = per_seed.loc[direction].groupby(level="query_label")
        np.testing.assert_allclose([bar.get_height() for bar in container], by_class.mean().loc[classes],
                                   rtol=1e-12)
        segments = container.errorbar.lines[2][0].get_segments()
        np.testing.assert_allclose([(top[1] - bottom[1]) / 2 for bottom, top in segments],
                                   by_class.std(ddof=0).loc[classes], rtol=1e-9, atol=1e-12)
    maps = [line.get_ydata()[0] for line in ax.get_lines() if line.get_linestyle() == "--"]
    np.testing.assert_allclose(maps, rows.groupby("direction")["ap"].mean().loc[["a2v", "v2a"]], rtol=1e-12)
    close(fig)


def test_fig7_alpha_beta_heat_map(run, tmp_path):
    from avcmr.stages.train import fit_and_evaluate

    _, paths, _ = run
    grid = []
    for alpha in (0.0, 0.01):
        for beta in (0.0, 0.001):
            out = tmp_path / f"ours_alpha{alpha:g}_beta{beta:g}_seed0.parquet"
            fit_and_evaluate(paths["features"], "ours", {**SMALL_OURS, "epochs": 1, "alpha": alpha, "beta": beta},
                             0, out, tmp_path / f"{out.stem}.history.parquet", {"dataset": "unit"})
            grid.append(out)
    table = figures.plot_alpha_beta(grid, tmp_path / "fig7.png", tmp_path / "fig7.pdf")
    assert len(table) == 4 and set(table["alpha"]) == {0.0, 0.01} and set(table["beta"]) == {0.0, 0.001}
    np.testing.assert_allclose(table["map_avg"], (table["map_a2v"] + table["map_v2a"]) / 2)
    check_image(tmp_path / "fig7.png", "fig7")
    # Each heat map's cells (rows α, columns β, ascending) are the grid's MAP of its direction.
    expected = {}
    for path in grid:
        alpha, beta = (float(part[len(key):]) for part, key in zip(path.stem.split("_")[1:3], ("alpha", "beta"),
                                                                   strict=True))
        ap = pq.read_table(path).to_pandas().groupby("direction")["ap"].mean()
        expected[alpha, beta] = {"a2v": ap["a2v"], "v2a": ap["v2a"], "avg": (ap["a2v"] + ap["v2a"]) / 2}
    fig, _ = figures.draw_alpha_beta(grid)
    for ax, column in zip(fig.axes[:3], ("a2v", "v2a", "avg"), strict=True):
        (image,) = ax.images
        cells = [[expected[alpha, beta][column] for beta in (0.0, 0.001)] for alpha in (0.0, 0.01)]
        np.testing.assert_allclose(image.get_array(), cells, rtol=1e-12)
        assert [text.get_text() for text in ax.texts] == [f"{value:.3f}" for row in cells for value in row]
    close(fig)
    figures.write_alpha_beta_table(grid, tmp_path / "alpha_beta.tsv", ["dataset: unit"])
    text = (tmp_path / "alpha_beta.tsv").read_text()
    assert text.startswith("# dataset: unit") and "map_a2v" in text


def test_fig8_tsne_uses_ours_and_skips_methods_without_embeddings(run, tmp_path):
    _, paths, outputs = run
    assert read_metadata(outputs["embeddings"][0])["has_embeddings"] is False  # random_seed0
    seed0 = [p for p in outputs["embeddings"] if "seed0" in p.name]
    method = figures_tsne.plot_tsne(paths["features"], outputs["eval"], seed0, tmp_path / "fig8.png",
                               tmp_path / "fig8.pdf", max_points=40, perplexity=10, seed=0)
    assert method == "ours"
    first = check_image(tmp_path / "fig8.png", "fig8")
    # Seeded: the same call draws the same picture.
    figures_tsne.plot_tsne(paths["features"], outputs["eval"], seed0, tmp_path / "again.png", None, max_points=40,
                      perplexity=10, seed=0)
    with Image.open(tmp_path / "again.png") as image:
        np.testing.assert_array_equal(np.asarray(image.convert("L"), dtype=float), first)
    fallback = figures_tsne.plot_tsne(paths["features"], of(outputs["eval"], {"random", "cca"}),
                                 of(seed0, {"random", "cca"}), tmp_path / "f.png", None, max_points=40)
    assert fallback == "cca"
    # A test set too small for t-SNE (4 clips) is drawn on principal axes, same picture size.
    figures_tsne.plot_tsne(paths["features"], outputs["eval"], seed0, tmp_path / "small.png", None, max_points=4)
    check_image(tmp_path / "small.png", "fig8")
    # Four maps of the same 40 test clips, each clip coloured by its class in every map.
    fig, _ = figures_tsne.draw_tsne(paths["features"], outputs["eval"], seed0, max_points=40, perplexity=10, seed=0)
    maps = [ax.collections[0] for ax in fig.axes]
    assert len(maps) == 4 and all(points.get_offsets().shape == (40, 2) for points in maps)
    colours = [tuple(map(tuple, points.get_facecolors())) for points in maps]
    assert len(set(colours)) == 1 and len(set(colours[0])) == 4  # 4 classes
    close(fig)
    # Drawn on principal axes (4 clips): the original-feature maps are the PCA of the standardised
    # features of those clips (up to each axis's sign).
    features = pq.read_table(paths["features"]).to_pandas()
    test = features[features["split"] == "test"]
    keep = figures_tsne.subsample(test["label"].to_numpy(), 4, 0)
    fig, _ = figures_tsne.draw_tsne(paths["features"], outputs["eval"], seed0, max_points=4)
    for ax, modality in zip(fig.axes[:2], ("audio", "visual"), strict=True):
        x = np.stack(test[modality].to_numpy())[keep].astype(np.float64)
        x = (x - x.mean(axis=0)) / x.std(axis=0)
        expected = PCA(n_components=2).fit_transform(x)
        drawn = ax.collections[0].get_offsets()
        signs = np.sign((drawn * expected).sum(axis=0))
        np.testing.assert_allclose(drawn, expected * signs, atol=1e-9)
    close(fig)
    with pytest.raises(ValueError, match="no configured method has embeddings"):
        figures_tsne.plot_tsne(paths["features"], of(outputs["eval"], {"random"}), of(seed0, {"random"}),
                          tmp_path / "g.png", None)


def test_method_order_follows_the_tables():
    assert figures.method_order(["ours", "zzz", "cca", "explicit", "random"]) == [
        "random", "cca", "ours", "explicit", "zzz"]


def test_names_moved_out_of_figures_are_still_importable_from_it():
    from avcmr.reporting import figures_common

    assert figures.plot_tsne is figures_tsne.plot_tsne and figures.draw_tsne is figures_tsne.draw_tsne
    assert figures.expected_pixels is figures_common.expected_pixels
    assert figures.FIGURE_SIZES is figures_common.FIGURE_SIZES
