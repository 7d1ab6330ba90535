"""Released feature files: the paper group's pooled features as the workflow's tables.

The TNN-C-CCA authors (Zeng, Yu, Oyama; the seed paper's group) publish their extracted features
for VEGAS (``vegas_feature.h5``) and AVE (``AVE_feature_updated_squence.h5``). Each file holds six
HDF5 datasets::

    visual_train  n_train × 1024   InceptionV3 frame features, PCA-reduced, mean over frames
    audio_train   n_train × 128    VGGish embeddings, mean over seconds
    lab_train     n_train          class index 0..C−1 (also seen stored as n × 1, or as floats)
    visual_test, audio_test, lab_test   the same for the test clips

:func:`import_feature_file` checks such a file and writes what the extraction route writes, so
every method, table and figure runs on it unchanged: ``features.parquet`` and ``split.parquet``
(the file's own train/test split, or a class-balanced re-split), ``manifest.parquet`` (one row per
clip, pointing at the file), ``visual_pca.parquet`` and ``acquisition.tsv``.

The file's visual features are already PCA-reduced by its authors, who did not publish the PCA.
``visual_pca.parquet`` (which model files carry for queries on new clips) therefore records the
projection this workflow applies to them: the identity, marked ``released_features`` in its
metadata. A model trained on released features ranks the file's clips; turning a new clip into
the same features would need the authors' PCA.

Every problem with the file stops the import with a one-line :class:`FeatureFileError` naming the
dataset and the HDF5 path: a missing file or dataset, not HDF5, wrong shapes or dimensions, labels
that are not integers in 0..C−1, rows with NaN/Inf values, an empty set, a sha256 mismatch. Nothing
is written before the whole file has passed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from avcmr.io import schemas
from avcmr.io.checksums import file_digest
from avcmr.io.parquet import atomic_path, vector_column, write_table

log = logging.getLogger(__name__)

PARTS = ("train", "test")
MODALITIES = ("audio", "visual")
# Config role → the HDF5 dataset name of the published files (``feature_file.datasets`` renames).
DEFAULT_HDF5_NAMES = {
    "audio_train": "audio_train",
    "visual_train": "visual_train",
    "labels_train": "lab_train",
    "audio_test": "audio_test",
    "visual_test": "visual_test",
    "labels_test": "lab_test",
}
# The published files' widths: VGGish 128-D audio, InceptionV3 + PCA 1024-D visual.
DEFAULT_DIMS = {"audio": 128, "visual": 1024}
# What a features dataset records where extracted datasets record their backbone weights.
RELEASED_FEATURES = "released features"
RELEASED_FEATURES_WEIGHTS = {"vggish": RELEASED_FEATURES, "inception": RELEASED_FEATURES}
# The route name of such a dataset in acquisition.tsv and the tables' headers (avcmr.routes).
ROUTE = "released feature file"
# Rows listed by number in an error message (the count is always given).
ROWS_SHOWN = 5


class FeatureFileError(ValueError):
    """A feature file that cannot be imported; the message is one line naming the HDF5 path."""


@dataclass(frozen=True)
class FeatureFileSpec:
    """``datasets.<name>.feature_file`` of the config (see workflow/schemas/config.schema.yaml)."""

    dataset: str
    path: str
    sha256: str | None = None
    source: str = ""
    hdf5_names: Mapping[str, str] | None = None
    audio_dim: int = DEFAULT_DIMS["audio"]
    visual_dim: int = DEFAULT_DIMS["visual"]
    n_classes: int | None = None
    class_names: Sequence[str] | None = None
    resplit: bool = False

    @classmethod
    def from_config(cls, dataset: str, settings: Mapping) -> FeatureFileSpec:
        settings = dict(settings)
        names = {**DEFAULT_HDF5_NAMES, **(settings.get("datasets") or {})}
        unknown = sorted(set(names) - set(DEFAULT_HDF5_NAMES))
        if unknown:
            raise FeatureFileError(f"dataset {dataset!r}: feature_file.datasets names unknown roles {unknown}; "
                                   f"known: {sorted(DEFAULT_HDF5_NAMES)}")
        spec = cls(dataset=dataset, path=str(settings["path"]), sha256=settings.get("sha256"),
                   source=settings.get("source") or "", hdf5_names=names,
                   audio_dim=int(settings.get("audio_dim") or DEFAULT_DIMS["audio"]),
                   visual_dim=int(settings.get("visual_dim") or DEFAULT_DIMS["visual"]),
                   n_classes=settings.get("n_classes"), class_names=settings.get("class_names"),
                   resplit=bool(settings.get("resplit", False)))
        if spec.class_names is not None and spec.n_classes is not None and len(spec.class_names) != spec.n_classes:
            raise FeatureFileError(f"dataset {dataset!r}: feature_file.class_names lists {len(spec.class_names)} "
                                   f"names but n_classes is {spec.n_classes}")
        if spec.class_names is not None and len(set(spec.class_names)) != len(spec.class_names):
            raise FeatureFileError(f"dataset {dataset!r}: feature_file.class_names repeats a name")
        return spec

    def hdf5_name(self, role: str) -> str:
        return (self.hdf5_names or DEFAULT_HDF5_NAMES)[role]

    def where(self, role: str) -> str:
        """``file:/dataset`` of a role, as error messages name it."""
        return f"{self.path}:/{self.hdf5_name(role)}"

    def missing_file_message(self) -> str:
        source = f" It comes from: {self.source}" if self.source else ""
        return (f"dataset {self.dataset!r}: feature file {self.path} not found (set "
                f"datasets.{self.dataset}.feature_file.path to its location).{source}")


@dataclass
class ReleasedFeatures:
    """The checked content of a feature file, per part: audio, visual (float32), label codes."""

    audio: dict[str, np.ndarray]
    visual: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    n_classes: int
    sha256: str


def _fail(spec: FeatureFileSpec, message: str) -> FeatureFileError:
    return FeatureFileError(f"dataset {spec.dataset!r}: {message}")


def _row_list(rows: np.ndarray) -> str:
    shown = ", ".join(str(int(row)) for row in rows[:ROWS_SHOWN])
    return shown + (", ..." if len(rows) > ROWS_SHOWN else "")


def _read_dataset(spec: FeatureFileSpec, handle, role: str) -> np.ndarray:
    import h5py

    name = spec.hdf5_name(role)
    node = handle.get(name)
    if node is None:
        found = ", ".join(sorted(handle.keys())) or "none"
        raise _fail(spec, f"{spec.where(role)}: no such HDF5 dataset (datasets in the file: {found}); set "
                          f"feature_file.datasets.{role} to the right name")
    if not isinstance(node, h5py.Dataset):
        raise _fail(spec, f"{spec.where(role)} is an HDF5 group, not a dataset")
    if node.dtype.kind not in "iuf":
        raise _fail(spec, f"{spec.where(role)} holds {node.dtype} values, not numbers")
    return node[()]


def _check_vectors(spec: FeatureFileSpec, values: np.ndarray, role: str, dim: int) -> np.ndarray:
    modality, part = role.split("_")
    if values.ndim >= 1 and values.shape[0] == 0:
        raise _fail(spec, f"{spec.where(role)} is empty (0 rows): the file has no {part} clips")
    if values.ndim != 2:
        raise _fail(spec, f"{spec.where(role)} has shape {values.shape}, expected (n, {dim}): one {dim}-D "
                          f"{modality} vector per {part} clip")
    if values.shape[1] != dim:
        raise _fail(spec, f"{spec.where(role)} has {values.shape[1]}-D rows (shape {values.shape}), expected "
                          f"{dim}-D (feature_file.{modality}_dim)")
    bad = np.flatnonzero(~np.isfinite(values).all(axis=1))
    if len(bad):
        raise _fail(spec, f"{spec.where(role)} has {len(bad)} rows with NaN/Inf values (rows {_row_list(bad)})")
    return values.astype(np.float32, copy=False)


def _check_labels(spec: FeatureFileSpec, values: np.ndarray, part: str, n_rows: int) -> np.ndarray:
    role = f"labels_{part}"
    if values.ndim >= 1 and values.shape[0] == 0:
        raise _fail(spec, f"{spec.where(role)} is empty (0 rows): the file has no {part} clips")
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1:
        raise _fail(spec, f"{spec.where(role)} has shape {values.shape}, expected (n,): one class index per clip")
    if len(values) != n_rows:
        raise _fail(spec, f"{spec.where(role)} has {len(values)} labels for {n_rows} {part} clips "
                          f"({spec.where('audio_' + part)}, {spec.where('visual_' + part)})")
    if values.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(values) | (values != np.round(values)))
        if len(bad):
            raise _fail(spec, f"{spec.where(role)} has {len(bad)} labels that are not whole numbers (rows "
                              f"{_row_list(bad)})")
    codes = values.astype(np.int64)
    limit = spec.n_classes if spec.n_classes is not None else (
        len(spec.class_names) if spec.class_names is not None else None)
    bad = np.flatnonzero((codes < 0) | (codes >= limit if limit is not None else False))
    if len(bad):
        expected = f"0..{limit - 1}" if limit is not None else "≥ 0"
        raise _fail(spec, f"{spec.where(role)} has {len(bad)} labels out of range {expected} (rows "
                          f"{_row_list(bad)}: {_row_list(codes[bad])})")
    return codes


def read_feature_file(spec: FeatureFileSpec) -> ReleasedFeatures:
    """Open, check and load a feature file (raises :class:`FeatureFileError` with a one-line reason)."""
    import h5py

    path = Path(spec.path)
    if not path.is_file():
        raise FeatureFileError(spec.missing_file_message())
    sha256 = file_digest(path)
    if spec.sha256 and sha256 != spec.sha256.lower():
        raise _fail(spec, f"{path} has sha256 {sha256}, the config expects {spec.sha256}: a different or damaged "
                          "file (fetch it again, or correct feature_file.sha256)")
    if not h5py.is_hdf5(path):
        raise _fail(spec, f"{path} is not an HDF5 file")
    audio, visual, labels = {}, {}, {}
    try:
        with h5py.File(path, "r") as handle:
            for part in PARTS:
                audio[part] = _check_vectors(spec, _read_dataset(spec, handle, f"audio_{part}"), f"audio_{part}",
                                             spec.audio_dim)
                visual[part] = _check_vectors(spec, _read_dataset(spec, handle, f"visual_{part}"),
                                              f"visual_{part}", spec.visual_dim)
                if len(audio[part]) != len(visual[part]):
                    raise _fail(spec, f"{spec.where('audio_' + part)} has {len(audio[part])} rows but "
                                      f"{spec.where('visual_' + part)} has {len(visual[part])}: the pairs do not match")
                labels[part] = _check_labels(spec, _read_dataset(spec, handle, f"labels_{part}"), part,
                                             len(audio[part]))
    except OSError as error:  # h5py's read errors (truncated or damaged file)
        raise _fail(spec, f"{path}: cannot read the HDF5 file ({' '.join(str(error).split())})") from None
    n_classes = spec.n_classes if spec.n_classes is not None else (
        len(spec.class_names) if spec.class_names is not None
        else int(max(labels["train"].max(), labels["test"].max())) + 1)
    missing = sorted(set(range(n_classes)) - set(labels["train"].tolist()))
    if missing:
        log.warning("classes %s have no training clip in %s", missing, spec.where("labels_train"))
    return ReleasedFeatures(audio, visual, labels, n_classes, sha256)


def file_size(spec: FeatureFileSpec) -> tuple[int, int]:
    """(rows of both parts, classes) of a feature file, read from its shapes and labels only — what
    the workflow needs at parse time to size its jobs' memory (the full checks run in the import)."""
    import h5py

    try:
        with h5py.File(spec.path, "r") as handle:
            n_rows = sum(handle[spec.hdf5_name(f"audio_{part}")].shape[0] for part in PARTS)
            labels = np.concatenate([np.asarray(handle[spec.hdf5_name(f"labels_{part}")]).ravel() for part in PARTS])
    except (OSError, KeyError) as error:
        raise _fail(spec, f"cannot read the row counts of {spec.path}: {error}") from None
    return int(n_rows), int(len(np.unique(labels)))


def class_names(spec: FeatureFileSpec, n_classes: int) -> list[str]:
    """The configured names, else ``class_00`` … (zero-padded, so that names sort as the codes)."""
    if spec.class_names is not None:
        return [str(name) for name in spec.class_names]
    width = len(str(n_classes - 1))
    return [f"class_{code:0{width}d}" for code in range(n_classes)]


def clip_table(spec: FeatureFileSpec, features: ReleasedFeatures, train_fraction: float = 0.8, seed: int = 0,
               test_size: int | None = None) -> pd.DataFrame:
    """One row per clip: ``clip_id`` (``<part>_<row>``, the part and row of the file it comes from),
    ``label``, ``split`` (the file's own, or a class-balanced re-split when ``spec.resplit``), ``row``."""
    from avcmr.data.split import balanced_split

    names = np.asarray(class_names(spec, features.n_classes), dtype=object)
    parts = []
    for part in PARTS:
        n_rows = len(features.labels[part])
        width = max(6, len(str(n_rows - 1)))
        parts.append(pd.DataFrame({
            "clip_id": [f"{part}_{row:0{width}d}" for row in range(n_rows)],
            "label": names[features.labels[part]],
            "split": part,
            "part": part,
            "row": np.arange(n_rows),
        }))
    clips = pd.concat(parts, ignore_index=True)
    if spec.resplit:
        clips["split"] = balanced_split(clips["label"], train_fraction, seed, test_size).to_numpy()
    return clips


def _identity_pca_table(train_visual: np.ndarray) -> tuple[pa.Table, float]:
    """``visual_pca.parquet`` for features that are already reduced: zero mean, identity components;
    the explained variances are the training features' per-dimension variances."""
    dim = train_visual.shape[1]
    variance = train_visual.var(axis=0, dtype=np.float64)
    vectors = np.vstack([np.zeros(dim), np.eye(dim)])
    rows = ["mean"] + [f"component_{i}" for i in range(dim)]
    table = pa.table({"row": rows, "explained_variance": np.concatenate([[np.nan], variance]),
                      "vector": vector_column(vectors, pa.float64())})
    return table, float(variance.sum())


def write_acquisition(clips: pd.DataFrame, out, counts: Mapping, route: str | None = None) -> pd.DataFrame:
    """``acquisition.tsv`` in the extraction route's layout: every clip of the file is listed,
    present ("downloaded"), decoded and usable; the header lines carry the file's counts and the
    route (``route: released feature file <path>``)."""
    columns = ["listed", "downloaded", "decoded", "usable"]
    summary = clips.groupby("label", sort=True).size().rename("listed").reset_index()
    for column in columns[1:]:
        summary[column] = summary["listed"]
    total = pd.DataFrame([["TOTAL", *summary[columns].sum().tolist()]], columns=["label", *columns])
    summary = pd.concat([summary, total], ignore_index=True)
    with atomic_path(out) as tmp:
        with open(tmp, "w") as handle:
            handle.write(f"# listing: {json.dumps(dict(counts), sort_keys=True)}\n")
            if route:
                handle.write(f"# {route}\n")
            summary.to_csv(handle, sep="\t", index=False)
    return summary


def import_feature_file(spec: FeatureFileSpec, *, features_out, split_out, manifest_out, pca_out,
                        acquisition_out, train_fraction: float = 0.8, seed: int = 0,
                        test_size: int | None = None, provenance: Mapping | None = None) -> pd.DataFrame:
    """Check the released file and write the tables the rest of the workflow reads (see the module
    docstring). ``train_fraction, seed, test_size`` (the dataset's ``split``) apply with
    ``spec.resplit`` only. Returns the clip table."""
    features = read_feature_file(spec)
    clips = clip_table(spec, features, train_fraction, seed, test_size)
    audio = np.concatenate([features.audio[part] for part in PARTS])
    visual = np.concatenate([features.visual[part] for part in PARTS])
    source = {
        "path": spec.path, "sha256": features.sha256, "expected_sha256": spec.sha256, "source": spec.source,
        "hdf5_datasets": dict(spec.hdf5_names or DEFAULT_HDF5_NAMES),
        "rows": {part: len(features.labels[part]) for part in PARTS}, "resplit": spec.resplit,
    }
    meta = {"released_features": True, "feature_file": source}
    table = pa.table({
        "clip_id": clips["clip_id"].tolist(), "label": clips["label"].tolist(), "split": clips["split"].tolist(),
        "audio": vector_column(audio), "visual": vector_column(visual),
    })
    write_table(table, features_out, schemas.features(audio.shape[1], visual.shape[1]), provenance, **meta)
    write_table(pa.Table.from_pandas(clips[["clip_id", "label", "split"]], preserve_index=False), split_out,
                schemas.SPLIT, provenance, **meta)
    manifest = pd.DataFrame({
        "clip_id": clips["clip_id"], "label": clips["label"],
        "path": [f"{spec.path}:/{spec.hdf5_name('visual_' + part)}[{row}]"
                 for part, row in zip(clips["part"], clips["row"], strict=True)],
        "duration_s": np.nan, "shard": 0,
    })
    write_table(pa.Table.from_pandas(manifest, preserve_index=False), manifest_out, schemas.MANIFEST, provenance,
                **meta)
    is_train = (clips["split"] == "train").to_numpy()
    pca_table, total_variance = _identity_pca_table(visual[is_train])
    write_table(pca_table, pca_out, schemas.pca_model(visual.shape[1]), provenance, whiten=False,
                n_training_frames=int(is_train.sum()), total_variance=total_variance, **meta)
    counts = {"source": "released feature file", "file": spec.path, "sha256": features.sha256,
              **{f"{part}_rows": len(features.labels[part]) for part in PARTS},
              "split": "re-split (class-balanced)" if spec.resplit else "as in the file"}
    write_acquisition(clips, acquisition_out, counts, route=f"route: {ROUTE} {spec.path}")
    log.info("imported %s: %d train / %d test clips, %d classes, audio %d-D, visual %d-D (sha256 %s)", spec.path,
             int(is_train.sum()), int((~is_train).sum()), features.n_classes, audio.shape[1], visual.shape[1],
             features.sha256)
    return clips


def released_features_line(settings: Mapping) -> str:
    """One line for table headers: which file, and whose features and split these are."""
    feature_file = settings["feature_file"]
    split = "re-split class-balanced" if feature_file.get("resplit") else "train/test split as in the file"
    return f"{feature_file['path']} (VGGish and InceptionV3 + PCA features as released by the file's authors; {split})"
