"""Released feature files (kind: features): real HDF5 files written with h5py in the published
layout of vegas_feature.h5 / AVE_feature_updated_squence.h5, imported into the workflow's tables."""

import hashlib
import re
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml

from avcmr.config import ConfigError, check_dataset, dataset_settings
from avcmr.data.feature_file import FeatureFileError, FeatureFileSpec, import_feature_file
from avcmr.data.split import balanced_split
from avcmr.io.parquet import read_metadata, read_table, vectors_from_column

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]
OUTPUTS = ("features", "split", "manifest", "pca", "acquisition")


def class_structured_part(rng, n_rows, n_classes, audio_dim=128, visual_dim=1024, noise=3.0):
    """Audio and visual features around per-class prototypes (fixed across calls), with noise."""
    prototypes = np.random.default_rng(12345)
    audio_proto = prototypes.normal(size=(n_classes, audio_dim))
    visual_proto = prototypes.normal(size=(n_classes, visual_dim))
    labels = np.arange(n_rows) % n_classes
    rng.shuffle(labels)
    audio = audio_proto[labels] + noise * rng.normal(size=(n_rows, audio_dim))
    visual = visual_proto[labels] + noise * rng.normal(size=(n_rows, visual_dim))
    return audio.astype(np.float32), visual.astype(np.float32), labels


def write_feature_file(path, n_train=60, n_test=24, n_classes=3, seed=0, **replace):
    """The published layout; ``replace`` swaps a dataset's array (None: leave the dataset out)."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for part, n_rows in (("train", n_train), ("test", n_test)):
        audio, visual, labels = class_structured_part(rng, n_rows, n_classes)
        arrays.update({f"visual_{part}": visual, f"audio_{part}": audio, f"lab_{part}": labels})
    arrays.update(replace)
    with h5py.File(path, "w") as handle:
        for name, values in arrays.items():
            if values is not None:
                handle.create_dataset(name, data=values)
    return {name: values for name, values in arrays.items() if values is not None}


def outputs(directory: Path) -> dict:
    names = {"features": "features.parquet", "split": "split.parquet", "manifest": "manifest.parquet",
             "pca": "visual_pca.parquet", "acquisition": "acquisition.tsv"}
    return {f"{key}_out": directory / name for key, name in names.items()}


def run_import(path, out_dir, dataset="released", **settings):
    spec = FeatureFileSpec.from_config(dataset, {"path": str(path), **settings})
    paths = outputs(out_dir)
    clips = import_feature_file(spec, **paths, provenance={"dataset": dataset})
    return clips, paths


def read_acquisition(path):
    return pd.read_csv(path, sep="\t", comment="#").set_index("label")


# --- what the import writes ----------------------------------------------------------------------


def test_the_files_rows_labels_and_split_become_the_features_table(tmp_path):
    path = tmp_path / "vegas_feature.h5"
    arrays = write_feature_file(path, n_train=60, n_test=24, n_classes=3)
    _, paths = run_import(path, tmp_path / "out", class_names=["dog", "drum", "printer"])

    table = read_table(paths["features_out"])
    assert table.column_names == ["clip_id", "label", "split", "audio", "visual"]
    assert table.schema.field("audio").type.list_size == 128 and table.schema.field("visual").type.list_size == 1024
    frame = table.to_pandas()
    audio, visual = vectors_from_column(table["audio"]), vectors_from_column(table["visual"])
    names = np.array(["dog", "drum", "printer"])
    for part in ("train", "test"):
        rows = (frame["split"] == part).to_numpy()
        # Row i of the file's part is clip <part>_<i>, with the file's values and its label's name.
        assert frame.loc[rows, "clip_id"].tolist() == [f"{part}_{i:06d}" for i in range(rows.sum())]
        np.testing.assert_array_equal(audio[rows], arrays[f"audio_{part}"])
        np.testing.assert_array_equal(visual[rows], arrays[f"visual_{part}"])
        assert frame.loc[rows, "label"].tolist() == names[arrays[f"lab_{part}"]].tolist()

    split = read_table(paths["split_out"]).to_pandas()
    assert split[["clip_id", "label", "split"]].equals(frame[["clip_id", "label", "split"]])
    manifest = read_table(paths["manifest_out"]).to_pandas()
    assert manifest["path"].iloc[0] == f"{path}:/visual_train[0]" and manifest["path"].iloc[-1] == f"{path}:/visual_test[23]"

    acquisition = read_acquisition(paths["acquisition_out"])
    expected = np.bincount(np.concatenate([arrays["lab_train"], arrays["lab_test"]]), minlength=3)
    assert acquisition.loc[["dog", "drum", "printer"], "usable"].tolist() == expected.tolist()
    assert acquisition.loc["TOTAL"].tolist() == [84, 84, 84, 84]

    meta = read_metadata(paths["features_out"])
    assert meta["released_features"] is True
    assert meta["feature_file"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert meta["feature_file"]["rows"] == {"train": 60, "test": 24}


def test_the_visual_pca_table_is_the_identity_with_the_training_variances(tmp_path):
    """The file's visual features are already reduced: the model files carry an identity projection."""
    from avcmr.stages.split import load_visual_pca

    path = tmp_path / "f.h5"
    arrays = write_feature_file(path)
    _, paths = run_import(path, tmp_path / "out")
    pca = load_visual_pca(paths["pca_out"])
    np.testing.assert_array_equal(pca.components_, np.eye(1024))
    np.testing.assert_array_equal(pca.mean_, np.zeros(1024))
    np.testing.assert_allclose(pca.explained_variance_, arrays["visual_train"].astype(np.float64).var(axis=0))
    np.testing.assert_allclose(pca.transform(arrays["visual_test"]), arrays["visual_test"], rtol=1e-6)
    assert read_metadata(paths["pca_out"])["released_features"] is True


def test_labels_stored_as_a_float_column_and_unnamed_classes(tmp_path):
    """Files seen in the wild store labels as n × 1, sometimes as floats; names default to class_<i>."""
    path = tmp_path / "f.h5"
    labels = np.arange(60) % 3
    write_feature_file(path, lab_train=labels.reshape(-1, 1).astype(np.float64))
    clips, _ = run_import(path, tmp_path / "out")
    train = clips[clips["split"] == "train"]
    assert train["label"].tolist() == [f"class_{code}" for code in labels]


def test_resplit_pools_both_parts_and_uses_the_balanced_split(tmp_path):
    path = tmp_path / "f.h5"
    write_feature_file(path, n_train=60, n_test=24)
    spec = FeatureFileSpec.from_config("released", {"path": str(path), "resplit": True})
    clips = import_feature_file(spec, **outputs(tmp_path / "out"), train_fraction=0.5, seed=7)
    expected = balanced_split(clips["label"], 0.5, 7)
    assert clips["split"].tolist() == expected.tolist()
    assert (clips["split"] == "test").sum() == 42
    # Clip ids still name the file's part and row.
    assert clips["clip_id"].str.startswith("train_").sum() == 60


def test_vegas_size_file_imports(tmp_path):
    """22,482 / 5,621 clips × 1024 / 128 (the published VEGAS file's shape), 10 classes."""
    rng = np.random.default_rng(0)
    path = tmp_path / "vegas_feature.h5"
    with h5py.File(path, "w") as handle:
        for part, n_rows in (("train", 22_482), ("test", 5_621)):
            handle["visual_" + part] = rng.standard_normal((n_rows, 1024), dtype=np.float32)
            handle["audio_" + part] = rng.standard_normal((n_rows, 128), dtype=np.float32)
            handle["lab_" + part] = rng.integers(0, 10, n_rows)
        train_labels = handle["lab_train"][()]
    clips, paths = run_import(path, tmp_path / "out", dataset="vegas", n_classes=10)
    assert (clips["split"] == "train").sum() == 22_482 and (clips["split"] == "test").sum() == 5_621
    table = read_table(paths["features_out"], ["split", "visual"])
    assert table.num_rows == 28_103 and table.schema.field("visual").type.list_size == 1024
    acquisition = read_acquisition(paths["acquisition_out"])
    assert acquisition.loc["TOTAL", "usable"] == 28_103
    split = read_table(paths["split_out"]).to_pandas()
    train_counts = split[split["split"] == "train"]["label"].value_counts().sort_index()
    assert train_counts.tolist() == np.bincount(train_labels, minlength=10).tolist()
    assert read_metadata(paths["pca_out"])["n_training_frames"] == 22_482


# --- bad files: one-line errors naming the dataset and the HDF5 path, nothing written ------------


BAD_FILES = {
    "wrong visual width": ({"visual_train": np.zeros((60, 1000), np.float32)},
                           "f.h5:/visual_train has 1000-D rows (shape (60, 1000)), expected 1024-D"),
    "transposed audio": ({"audio_test": np.zeros((128, 24), np.float32)},
                         "f.h5:/audio_test has 24-D rows (shape (128, 24)), expected 128-D"),
    "NaN rows": ("nan", "f.h5:/audio_test has 2 rows with NaN/Inf values (rows 3, 7)"),
    "Inf row": ("inf", "f.h5:/visual_train has 1 rows with NaN/Inf values (rows 59)"),
    "label out of range": ({"lab_train": np.r_[np.zeros(59, int), 3]},
                           "f.h5:/lab_train has 1 labels out of range 0..2 (rows 59: 3)"),
    "negative label": ({"lab_test": np.r_[-1, np.zeros(23, int)]},
                       "f.h5:/lab_test has 1 labels out of range 0..2 (rows 0: -1)"),
    "fractional label": ({"lab_test": np.r_[0.5, np.zeros(23)]},
                         "f.h5:/lab_test has 1 labels that are not whole numbers (rows 0)"),
    "missing dataset": ({"lab_test": None}, "f.h5:/lab_test: no such HDF5 dataset (datasets in the file: "
                                            "audio_test, audio_train, lab_train, visual_test, visual_train)"),
    "empty test set": ({"visual_test": np.zeros((0, 1024), np.float32), "audio_test": np.zeros((0, 128), np.float32),
                        "lab_test": np.zeros(0, int)},
                       "f.h5:/audio_test is empty (0 rows): the file has no test clips"),
    "unpaired rows": ({"audio_train": np.zeros((59, 128), np.float32)},
                      "f.h5:/audio_train has 59 rows but "),
    "label count": ({"lab_train": np.zeros(58, int)}, "f.h5:/lab_train has 58 labels for 60 train clips"),
    "text labels": ({"lab_train": np.array([b"dog"] * 60)}, "f.h5:/lab_train holds |S3 values, not numbers"),
}


@pytest.mark.parametrize("case", BAD_FILES, ids=list(BAD_FILES))
def test_a_bad_file_stops_with_one_line_naming_the_hdf5_path(tmp_path, case):
    change, expected = BAD_FILES[case]
    path = tmp_path / "f.h5"
    if change in ("nan", "inf"):
        rng = np.random.default_rng(0)
        part, rows = ("test", [3, 7]) if change == "nan" else ("train", [59])
        modality = "audio" if change == "nan" else "visual"
        values = class_structured_part(rng, 24 if part == "test" else 60, 3)[0 if modality == "audio" else 1]
        values[rows, 5] = np.nan if change == "nan" else np.inf
        change = {f"{modality}_{part}": values}
    write_feature_file(path, **change)
    with pytest.raises(FeatureFileError) as raised:
        run_import(path, tmp_path / "out", n_classes=3)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("dataset 'released': ") and expected in message, message
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_file_that_is_not_hdf5(tmp_path):
    path = tmp_path / "vegas_feature.h5"
    path.write_text("visual_train,audio_train\n1,2\n")
    with pytest.raises(FeatureFileError, match=r"^dataset 'released': .*vegas_feature\.h5 is not an HDF5 file$"):
        run_import(path, tmp_path / "out")


def test_a_truncated_download(tmp_path):
    path = tmp_path / "vegas_feature.h5"
    write_feature_file(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(FeatureFileError, match=r"^dataset 'released': .*vegas_feature\.h5: cannot read the HDF5 file "
                                               r"\(.*truncated file.*\)$"):
        run_import(path, tmp_path / "out")


def test_renamed_datasets_are_read_and_named_in_errors(tmp_path):
    path = tmp_path / "f.h5"
    arrays = write_feature_file(path)
    renamed = tmp_path / "renamed.h5"
    with h5py.File(renamed, "w") as handle:
        for name, values in arrays.items():
            handle[name.replace("lab_", "labels_")] = values
    names = {"labels_train": "labels_train", "labels_test": "labels_test"}
    clips, _ = run_import(renamed, tmp_path / "out", datasets=names)
    assert len(clips) == 84
    with pytest.raises(FeatureFileError, match=r"renamed\.h5:/lab_train: no such HDF5 dataset .*"
                                               r"set feature_file\.datasets\.labels_train"):
        run_import(renamed, tmp_path / "out2")


def test_sha256_is_checked_when_set(tmp_path):
    path = tmp_path / "f.h5"
    write_feature_file(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    run_import(path, tmp_path / "ok", sha256=digest.upper())
    with pytest.raises(FeatureFileError, match=f"has sha256 {digest}, the config expects {'0' * 64}"):
        run_import(path, tmp_path / "bad", sha256="0" * 64)
    assert not (tmp_path / "bad").exists()


# --- config: the file must be there; a features dataset has no backbones to refuse ----------------


def features_config(path, **feature_file):
    return {"datasets": {"vegas": {"kind": "features", "feature_file": {"path": str(path), **feature_file}}},
            "features": {}, "split": {"train_fraction": 0.8, "seed": 0}, "evaluation": {"methods": ["cca"]}}


def test_a_features_dataset_is_not_refused_for_random_backbone_weights(tmp_path):
    path = tmp_path / "f.h5"
    write_feature_file(path)
    settings = dataset_settings(features_config(path), "vegas")
    assert settings["backbone_weights"]["vggish"] == "random"  # the default nobody uses here
    check_dataset(settings)  # passes: no backbones run for a features dataset
    folder = dataset_settings({"datasets": {"mine": {"kind": "folder", "root": str(tmp_path)}}}, "mine")
    with pytest.raises(ConfigError, match="random backbone weights"):
        check_dataset(folder)


def test_a_missing_file_is_named_with_its_source(tmp_path):
    config = features_config(tmp_path / "vegas_feature.h5", source="the authors' Drive folder")
    with pytest.raises(ConfigError) as raised:
        check_dataset(dataset_settings(config, "vegas"))
    message = str(raised.value)
    assert "\n" not in message
    assert f"feature file {tmp_path / 'vegas_feature.h5'} not found" in message
    assert message.endswith("It comes from: the authors' Drive folder")


def test_dry_run_of_the_shipped_config_without_the_file_says_which_file_and_where_it_comes_from(tmp_path):
    result = subprocess.run(
        SNAKEMAKE + ["--directory", str(tmp_path), "--configfile", str(REPO / "config/config.yaml"),
                     str(REPO / "config/vegas_features.yaml"), "-n", "--cores", "1", "results/vegas/map.tsv"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    lines = [line for line in (result.stdout + result.stderr).splitlines() if "vegas_feature.h5 not found" in line]
    assert len(lines) == 1, result.stderr[-3000:]
    assert "resources/features/vegas_feature.h5" in lines[0] and "github.com/ZenzenDatabase/CMR" in lines[0]


def test_shipped_configs_are_complete_entries():
    for name, dataset, n_classes in (("vegas_features.yaml", "vegas", 10), ("ave_features.yaml", "ave", 15)):
        config = yaml.safe_load((REPO / "config" / name).read_text())
        entry = config["datasets"][dataset]
        assert entry["kind"] == "features" and config["default_datasets"] == [dataset]
        feature_file = entry["feature_file"]
        assert feature_file["path"].startswith("resources/features/") and feature_file["sha256"] is None
        assert feature_file["source"] and feature_file["n_classes"] == n_classes
        spec = FeatureFileSpec.from_config(dataset, feature_file)
        assert (spec.audio_dim, spec.visual_dim, spec.resplit) == (128, 1024, False)


# --- the real workflow on a small file -----------------------------------------------------------


@pytest.mark.slow
def test_the_documented_command_builds_map_and_table2_from_a_released_file(tmp_path):
    """`snakemake results/vegas/map.tsv --configfile config/vegas_features.yaml` with a small file in
    the published layout (10 classes) and two fast methods."""
    features = tmp_path / "resources/features"
    features.mkdir(parents=True)
    arrays = write_feature_file(features / "vegas_feature.h5", n_train=200, n_test=60, n_classes=10, seed=3)
    fast = {"evaluation": {"methods": ["random", "cca"], "seeds": [0], "threads_per_fit": 1},
            "method_params": {"cca": {"n_components": 9, "reg": 1.0e-3}}}
    (tmp_path / "fast.yaml").write_text(yaml.safe_dump(fast))
    command = SNAKEMAKE + ["--directory", str(tmp_path), "--cores", "2", "results/vegas/map.tsv",
                           "results/vegas/table2.tsv", "results/vegas/failures.parquet", "--configfile",
                           str(REPO / "config/config.yaml"), str(REPO / "config/vegas_features.yaml"),
                           str(tmp_path / "fast.yaml")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    ran = set(re.findall(r"^(?:local)?rule (\w+):$", result.stdout + result.stderr, re.MULTILINE))
    assert "import_feature_file" in ran and not ran & {"decode", "logmel", "vggish", "inception", "pool", "split"}

    lines = (tmp_path / "results/vegas/map.tsv").read_text().splitlines()
    header = [line[2:] for line in lines if line.startswith("# ")]
    assert "backbone weights: vggish=released features; inception=released features" in header
    assert not any(line.startswith("WARNING") for line in header)
    runs = pd.read_csv(tmp_path / "results/vegas/map.tsv", sep="\t", comment="#").set_index("method")
    assert (runs["n_train"] == 200).all() and (runs["n_test"] == 60).all()
    table2 = pd.read_csv(tmp_path / "results/vegas/table2.tsv", sep="\t", comment="#").set_index("method")
    assert list(table2.index) == ["random", "cca"]
    assert table2.loc["cca", "map_avg_mean"] > table2.loc["random", "map_avg_mean"] + 0.2
    meta = read_metadata(tmp_path / "results/vegas/eval/cca_seed0.parquet")
    assert meta["random_weights"] is False and meta["backbone_weights"]["vggish"] == "released features"
    assert read_table(tmp_path / "results/vegas/failures.parquet").num_rows == 0
    test_labels = pd.Series(arrays["lab_test"]).value_counts()
    evaluation = read_table(tmp_path / "results/vegas/eval/cca_seed0.parquet").to_pandas()
    a2v = evaluation[evaluation["direction"] == "a2v"]
    assert a2v["query_label"].value_counts().sort_index().tolist() == test_labels.sort_index().tolist()


@pytest.mark.slow
def test_a_bad_file_fails_its_import_job_with_the_one_line_reason_in_the_log(tmp_path):
    features = tmp_path / "resources/features"
    features.mkdir(parents=True)
    write_feature_file(features / "AVE_feature_updated_squence.h5", n_classes=15, lab_test=np.full(24, 15))
    result = subprocess.run(
        SNAKEMAKE + ["--directory", str(tmp_path), "--cores", "1", "results/ave/map.tsv", "--configfile",
                     str(REPO / "config/config.yaml"), str(REPO / "config/ave_features.yaml")],
        capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    log_lines = (tmp_path / "logs/ave/import_feature_file.log").read_text().splitlines()
    assert log_lines[-1].endswith(
        "ERROR avcmr.import_feature_file: dataset 'ave': resources/features/AVE_feature_updated_squence.h5:/lab_test "
        "has 24 labels out of range 0..14 (rows 0, 1, 2, 3, 4, ...: 15, 15, 15, 15, 15, ...)")
    assert not (tmp_path / "results/ave/features.parquet").exists()
