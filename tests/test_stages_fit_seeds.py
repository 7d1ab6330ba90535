"""One training job over a method's seeds (the workflow's default, ``evaluation.fit_jobs:
per_method``) writes exactly what one process per (method, seed) wrote: every seed's per-query AP,
P@K, test embeddings and training history are equal, value for value, to those of a fresh
interpreter that fitted that seed alone (the former per-seed jobs)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from report_run import narrow_params
from test_reporting_figures import SMALL_OURS, write_features

from avcmr.io.parquet import read_table
from avcmr.methods import available_methods
from avcmr.stages.train import fit_and_evaluate_seeds

SEEDS = [0, 1]
PROVENANCE = {"dataset": "unit"}
KINDS = ("evaluation", "history", "precision", "embeddings", "model")


def paths_of(folder, method, seed):
    stem = folder / f"{method}_seed{seed}"
    return {kind: f"{stem}.{kind}.{'joblib' if kind == 'model' else 'parquet'}" for kind in KINDS}


def model_context(paths):
    return {"dataset": "unit", "pca_path": str(paths["pca"]), "features": {"fps": 1, "frame_size": 299},
            "backbone_weights": {"vggish": "random", "inception": "random"}}


def fit_alone(paths, method, params, seed, out):
    """The former per-seed job: a fresh interpreter fits one seed."""
    code = (
        "from avcmr.stages.train import fit_and_evaluate\n"
        f"o = {out!r}\n"
        f"fit_and_evaluate({str(paths['features'])!r}, {method!r}, {params!r}, {seed}, o['evaluation'],"
        f" o['history'], {PROVENANCE!r}, precision_out=o['precision'], embeddings_out=o['embeddings'],"
        f" model_out=o['model'], model_context={model_context(paths)!r})\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=300)


@pytest.mark.parametrize(("method", "params"), [("ours", SMALL_OURS), ("cca", {"n_components": 4})])
def test_one_job_over_seeds_writes_what_one_process_per_seed_wrote(tmp_path, method, params):
    paths = write_features(tmp_path)
    (tmp_path / "job").mkdir()
    (tmp_path / "alone").mkdir()
    job = [paths_of(tmp_path / "job", method, seed) for seed in SEEDS]
    fit_and_evaluate_seeds(paths["features"], method, params, SEEDS,
                           {kind: [files[kind] for files in job] for kind in KINDS}, PROVENANCE,
                           model_context(paths))
    for seed, files in zip(SEEDS, job, strict=True):
        alone = paths_of(tmp_path / "alone", method, seed)
        fit_alone(paths, method, params, seed, alone)
        for kind in ("evaluation", "precision", "embeddings", "history"):
            ours, reference = read_table(files[kind]).to_pandas(), read_table(alone[kind]).to_pandas()
            assert list(ours.columns) == list(reference.columns), kind
            assert len(ours) == len(reference) and (len(ours) > 0 or kind == "history"), kind
            for column in ours.columns:
                if column == "seconds":
                    continue  # an epoch's wall time
                left, right = ours[column].to_numpy(), reference[column].to_numpy()
                if left.dtype == object and len(left) and isinstance(left[0], np.ndarray):
                    left, right = np.stack(left), np.stack(right)
                np.testing.assert_array_equal(left, right, err_msg=f"{method} seed {seed}: {kind}.{column}")
    # The seeds differ from each other (each fit got its own seed, not a copy of the first).
    first, second = (read_table(files["evaluation"]).column("ap").to_numpy() for files in job)
    assert method == "cca" or not np.array_equal(first, second)


def fit_every_method(paths, folder, seed) -> subprocess.Popen:
    """A fresh interpreter that fits every registered method (narrow layers, one epoch) with one seed."""
    folder.mkdir()
    params = {method: narrow_params(method) for method in available_methods()}
    code = (
        "from avcmr.stages.train import fit_and_evaluate\n"
        f"for method in {available_methods()!r}:\n"
        f"    o = {str(folder)!r} + '/' + method\n"
        f"    fit_and_evaluate({str(paths['features'])!r}, method, {params!r}[method], {seed},"
        f" o + '.evaluation.parquet', o + '.history.parquet', {PROVENANCE!r},"
        f" embeddings_out=o + '.embeddings.parquet')\n"
    )
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_every_method_fits_alike_in_two_fresh_interpreters(tmp_path):
    """Same seed ⇒ the same per-query AP and test embeddings, for every registered method, from two
    interpreters started apart (their hash seeds, thread pools and import order differ): the
    determinism the workflow's reruns and resumes rely on."""
    paths = write_features(tmp_path)
    runs = [fit_every_method(paths, tmp_path / name, seed=3) for name in ("first", "second")]
    for process in runs:
        _, err = process.communicate(timeout=900)
        assert process.returncode == 0, err[-4000:]
    for method in available_methods():
        for kind, columns in (("evaluation", ("ap",)), ("embeddings", ("audio", "visual"))):
            first = read_table(tmp_path / "first" / f"{method}.{kind}.parquet").to_pandas()
            second = read_table(tmp_path / "second" / f"{method}.{kind}.parquet").to_pandas()
            assert len(first) == len(second) and (len(first) > 0 or kind == "embeddings"), (method, kind)
            for column in columns:
                left, right = first[column].to_numpy(), second[column].to_numpy()
                if left.dtype == object and len(left):
                    left, right = np.stack(left), np.stack(right)
                np.testing.assert_array_equal(left, right, err_msg=f"{method}: {kind}.{column}")


def test_one_output_path_per_seed_is_required(tmp_path):
    outputs = {kind: [str(tmp_path / f"{kind}0")] for kind in KINDS}
    with pytest.raises(ValueError, match="1 evaluation outputs for 2 seeds"):
        fit_and_evaluate_seeds("unused.parquet", "cca", {}, [0, 1], outputs, PROVENANCE)


def test_seeds_together_in_the_job_match_seeds_apart_and_say_so(tmp_path):
    """``seeds_together="always"``: the job's rows match a job that fitted the seeds one by one, up
    to the rounding of batched products, and Table 3's device says the seeds trained together."""
    from avcmr.reporting.tables import map_table

    paths = write_features(tmp_path)
    jobs = {}
    for mode in ("always", "never"):
        (tmp_path / mode).mkdir()
        jobs[mode] = [paths_of(tmp_path / mode, "ours", seed) for seed in SEEDS]
        fit_and_evaluate_seeds(paths["features"], "ours", SMALL_OURS, SEEDS,
                               {kind: [files[kind] for files in jobs[mode]] for kind in KINDS}, PROVENANCE,
                               model_context(paths), seeds_together=mode)  # fmt: skip
    for together, apart in zip(jobs["always"], jobs["never"], strict=True):
        joint, alone = read_table(together["evaluation"]), read_table(apart["evaluation"])
        np.testing.assert_allclose(joint.column("ap").to_numpy(), alone.column("ap").to_numpy(), atol=0.02)
    tables = {mode: map_table([files["evaluation"] for files in jobs[mode]]) for mode in jobs}
    assert set(tables["always"]["device"]) == {"cpu (seeds together)"}
    assert set(tables["never"]["device"]) == {"cpu"}


def test_seeds_together_must_be_a_known_mode(tmp_path):
    paths = write_features(tmp_path)
    outputs = {kind: [str(tmp_path / f"{kind}{seed}") for seed in SEEDS] for kind in KINDS}
    with pytest.raises(ValueError, match="seeds_together must be one of auto, always, never, got 'yes'"):
        fit_and_evaluate_seeds(paths["features"], "ours", SMALL_OURS, SEEDS, outputs, PROVENANCE, seeds_together="yes")
