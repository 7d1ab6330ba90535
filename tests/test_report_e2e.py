"""The figures, the saved models and `snakemake --report` on the tiny end-to-end run, and the report
as a browser shows it (headless Chromium, installed with apt-get when missing)."""

from __future__ import annotations

import subprocess
import time
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from report_run import DATASET, SUMMARY_TARGET, chromium, ensure_chromium, tiny_report_run

from avcmr.io.parquet import read_metadata, read_table
from avcmr.models_io import load_model
from avcmr.reporting.figures_common import expected_pixels

pytestmark = pytest.mark.slow

FIGURES = {"fig3": "fig3_class_counts", "fig4": "fig4_precision_scope", "fig5": "fig5_training_losses",
           "fig6": "fig6_per_class_ap", "fig8": "fig8_tsne"}
# What the report's landing page must name: every table and figure of the tiny run.
REPORT_ITEMS = ["Fig. 3: clips per class", "Fig. 4: precision-scope curves", "Fig. 5: training losses",
                "Fig. 6: per-class AP", "Fig. 8: t-SNE", "Table 2: MAP of every method", "Table 3: training cost",
                "Acquisition summary", "Retrieval examples"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return tiny_report_run(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def report(tiny_run, tmp_path_factory):
    """`snakemake --report <tmp>/report.html` of the tiny run (its wall time printed)."""
    workdir, command = tiny_run
    out = tmp_path_factory.mktemp("report") / "report.html"
    started = time.monotonic()
    result = subprocess.run(command + ["--report", str(out), SUMMARY_TARGET], capture_output=True, text=True,
                            timeout=900)
    print(f"snakemake --report took {time.monotonic() - started:.1f} s")
    assert result.returncode == 0, result.stderr[-4000:]
    return out


def results(workdir: Path) -> Path:
    return workdir / "results" / DATASET


@pytest.mark.parametrize("figure", sorted(FIGURES))
def test_figure_rules_write_images_of_the_expected_size(tiny_run, figure):
    folder = results(tiny_run[0]) / "figures"
    png, pdf = folder / f"{FIGURES[figure]}.png", folder / f"{FIGURES[figure]}.pdf"
    with Image.open(png) as image:
        assert image.size == expected_pixels(figure)
        pixels = np.asarray(image.convert("L"), dtype=float)
    assert pixels.std() > 10 and (pixels < 200).mean() > 0.003
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 2000


def test_fig7_is_only_built_when_asked_for(tiny_run):
    assert not (results(tiny_run[0]) / "figures" / "fig7_alpha_beta.png").exists()
    assert not (results(tiny_run[0]) / "alpha_beta").exists()


def test_every_trained_model_is_saved_with_its_context(tiny_run):
    folder = results(tiny_run[0])
    features = read_table(folder / "features.parquet")
    for method in ("random", "cca"):
        saved = load_model(folder / "models" / f"{method}_seed0.joblib")
        assert saved.header["method"] == method and saved.header["dataset"] == DATASET
        assert saved.header["features"]["pca_dim"] == 16 and saved.pca.components_.shape == (16, 2048)
        assert saved.random_weights and saved.class_names == sorted(set(features["label"].to_pylist()))
        precision = read_table(folder / "eval" / f"{method}_seed0.precision.parquet").to_pandas()
        # 9 test clips: every K of 10 … 1000 clips to 9; P@9 is the query's class share (3 of 9).
        assert precision["k"].unique().tolist() == [9] and len(precision) == 18
        np.testing.assert_allclose(precision["precision"], 1 / 3)
    assert read_metadata(folder / "eval" / "random_seed0.embeddings.parquet")["has_embeddings"] is False
    embeddings = read_table(folder / "eval" / "cca_seed0.embeddings.parquet")
    assert embeddings.num_rows == 9 and embeddings.schema.field("audio").type.list_size == 2


def test_table_views_carry_the_random_weights_warning(tiny_run):
    folder = results(tiny_run[0]) / "report"
    table2 = (folder / "table2.html").read_text()
    assert 'class="warning"' in table2 and "random backbone weights" in table2
    assert "<td>cca</td>" in table2 and "MAP a→v" in table2
    assert "TOTAL" in (folder / "acquisition.html").read_text()
    summary = (folder / "run_summary.rst").read_text()
    assert "RANDOM BACKBONE WEIGHTS" in summary and "27 training / 9 test clips" in summary
    assert "**Seeds**: 0" in summary and "**Device**: cpu" in summary


def test_snakemake_report_holds_every_table_and_figure(report):
    text = report.read_text()
    assert report.stat().st_size > 100_000
    for name in list(FIGURES.values()) + ["table2", "table3", "acquisition", "run_summary"]:
        assert name in text, name


def test_snakemake_report_as_zip(tiny_run, tmp_path):
    workdir, command = tiny_run
    out = tmp_path / "report.zip"
    result = subprocess.run(command + ["--report", str(out), SUMMARY_TARGET], capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    names = zipfile.ZipFile(out).namelist()
    assert any(name.endswith("report.html") for name in names)
    assert any(name.endswith("fig4_precision_scope.png") for name in names)


class VisibleText(HTMLParser):
    """The text of a rendered DOM without scripts and styles (the report's data lives in scripts)."""

    def __init__(self):
        super().__init__()
        self.skip, self.parts = 0, []

    def handle_starttag(self, tag, attrs):
        self.skip += tag in ("script", "style")

    def handle_endtag(self, tag):
        self.skip -= tag in ("script", "style")

    def handle_data(self, data):
        if not self.skip and data.strip():
            self.parts.append(" ".join(data.split()))

    @property
    def text(self) -> str:
        return " ".join(self.parts)


def squash(text: str) -> str:
    """Text without whitespace: the DOM splits inline elements ("<b>Seeds</b>: 0") into pieces."""
    return "".join(text.split())


def test_chromium_shows_the_report(report, tmp_path):
    executable = ensure_chromium()
    url = report.resolve().as_uri()
    dom = chromium(executable, tmp_path / "profile1", "--virtual-time-budget=15000", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    parser = VisibleText()
    parser.feed(dom.stdout)
    text = squash(parser.text)
    assert squash("avcmr: audio-visual cross-modal retrieval") in text  # the app rendered the description
    for item in REPORT_ITEMS:
        assert squash(item) in text, item
    for fact in ("RANDOM BACKBONE WEIGHTS", f"Run: {DATASET}", "27 training / 9 test clips", "Seeds: 0",
                 "Device: cpu", "Methods: random, cca"):
        assert squash(fact) in text, fact

    shot = tmp_path / "report.png"
    result = chromium(executable, tmp_path / "profile2", "--virtual-time-budget=15000", "--hide-scrollbars",
                      "--window-size=1400,1000", f"--screenshot={shot}", url)
    assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]
    with Image.open(shot) as image:
        assert image.size == (1400, 1000)
        pixels = np.asarray(image.convert("RGB"), dtype=float)
    grey = pixels.mean(axis=2)
    assert grey.std() > 20, "blank screenshot"
    assert (grey < 128).mean() > 0.01  # text and the navigation bar
    # The red random-weights box is on screen.
    red = (pixels[..., 0] > 200) & (pixels[..., 1] < 240) & (pixels[..., 2] < 240) & (pixels[..., 0] - pixels[..., 2] > 10)
    assert red.mean() > 0.005
