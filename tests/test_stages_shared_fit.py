"""``ugach_real`` / ``agah_real`` evaluate the fitted ``ugach`` / ``agah`` model of the same seed
(the workflow passes it when both rows are configured alike) instead of training the same networks
again: every table they write equals, value for value, what their own training writes."""

from __future__ import annotations

import numpy as np
import pytest
from test_reporting_figures import write_features
from test_stages_fit_seeds import KINDS, PROVENANCE, model_context, paths_of

from avcmr.io.parquet import read_metadata, read_table
from avcmr.methods.registry import VARIANT_BASES, as_variant, make_method, method_class
from avcmr.stages.train import fit_and_evaluate_seeds

SEEDS = [0, 1]
TINY = {
    "ugach": {"n_bits": 16, "hidden_dim": 32, "queries_per_epoch": 48, "batch_size": 16, "epochs": 2,
              "validation_fraction": 0.2, "device": "cpu"},
    "agah": {"n_bits": 16, "feature_dim": 16, "visual_hidden": [32], "audio_hidden": [32], "batch_size": 32,
             "epochs": 2, "batches_per_epoch": 2, "validation_fraction": 0.2, "device": "cpu"},
}  # fmt: skip


def run(folder, paths, method, params, shared_fits=()):
    folder.mkdir(exist_ok=True)
    files = [paths_of(folder, method, seed) for seed in SEEDS]
    fit_and_evaluate_seeds(paths["features"], method, params, SEEDS, {k: [f[k] for f in files] for k in KINDS},
                           PROVENANCE, model_context(paths), shared_fits=shared_fits)
    return files


def test_variant_table_matches_the_registered_variants():
    for variant, base in VARIANT_BASES.items():
        cls = method_class(variant)
        assert cls.__mro__[1] is method_class(base) and cls.fixed_params == {"output": "real"}


@pytest.mark.parametrize("variant", sorted(VARIANT_BASES))
def test_a_shared_fit_writes_what_the_variants_own_training_writes(tmp_path, variant):
    base = VARIANT_BASES[variant]
    params = TINY[base]
    paths = write_features(tmp_path)
    base_files = run(tmp_path / "base", paths, base, params)
    shared = run(tmp_path / "shared", paths, variant, params, [f["model"] for f in base_files])
    trained = run(tmp_path / "trained", paths, variant, params)
    for seed, ours, reference, base_run in zip(SEEDS, shared, trained, base_files, strict=True):
        for kind in ("evaluation", "precision", "embeddings", "history"):
            left, right = read_table(ours[kind]).to_pandas(), read_table(reference[kind]).to_pandas()
            assert list(left.columns) == list(right.columns) and len(left) == len(right) > 0, kind
            for column in left.columns:
                if column == "seconds":
                    continue  # an epoch's wall time
                a, b = left[column].to_numpy(), right[column].to_numpy()
                if a.dtype == object and isinstance(a[0], np.ndarray):
                    a, b = np.stack(a), np.stack(b)
                np.testing.assert_array_equal(a, b, err_msg=f"{variant} seed {seed}: {kind}.{column}")
        summary = read_metadata(ours["evaluation"])["summary"]
        assert summary["fit_shared_with"] == base
        assert summary["fit_seconds"] == read_metadata(base_run["evaluation"])["summary"]["fit_seconds"]
        # The variant ranks by cosine, its base by Hamming: the rows differ.
        assert not np.array_equal(read_table(ours["evaluation"]).column("ap").to_numpy(),
                                  read_table(base_run["evaluation"]).column("ap").to_numpy())


def test_a_fit_with_other_parameters_or_seed_is_refused(tmp_path):
    paths = write_features(tmp_path)
    base_files = run(tmp_path / "base", paths, "ugach", TINY["ugach"])
    models = [f["model"] for f in base_files]
    with pytest.raises(ValueError, match="trained with other parameters than ugach_real.*hidden_dim"):
        run(tmp_path / "other", paths, "ugach_real", {**TINY["ugach"], "hidden_dim": 16}, models)
    with pytest.raises(ValueError, match="holds ugach seed 1, not the ugach seed 0 fit"):
        run(tmp_path / "swapped", paths, "ugach_real", TINY["ugach"], models[::-1])


def test_as_variant_needs_a_fitted_base():
    with pytest.raises(TypeError, match="not a variant of a fitted CCA"):
        as_variant(make_method("cca"), "ugach_real")
