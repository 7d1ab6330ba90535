"""Model files (``avcmr.models_io.save_model``): write and load time and size of an AGAH model at
its default widths (visual 1,024 → 8,192 → 4,096, the largest of the methods), saved the way the
workflow saves it (uncompressed) and, in the same run, the same payload written with joblib's zlib
level 3 (the former setting). The model is fitted for one step on random pooled features: the file's size and cost
depend on the number of weights, not on how far training went.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_model_files.py

Writes ``benchmarks/results/model_files.tsv`` with the machine and the load average.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import joblib
import numpy as np
from machine_info import load_average, machine_description, write_measurements

from avcmr.methods.registry import make_method
from avcmr.models_io import load_model, save_model


def pca_table(folder: Path) -> Path:
    import pyarrow as pa

    from avcmr.io import schemas
    from avcmr.io.parquet import vector_column, write_table

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(1025, 2048))
    table = pa.table({"row": ["mean"] + [f"component_{i}" for i in range(1024)],
                      "explained_variance": np.concatenate([[np.nan], np.linspace(2, 1, 1024)]),
                      "vector": vector_column(vectors, pa.float64())})
    path = folder / "visual_pca.parquet"
    write_table(table, path, schemas.pca_model(2048), {"dataset": "bench"}, whiten=False)
    return path


def main() -> None:
    rng = np.random.default_rng(0)
    n, classes = 256, 8
    labels = rng.integers(0, classes, n)
    audio, visual = rng.normal(size=(n, 128)).astype(np.float32), rng.normal(size=(n, 1024)).astype(np.float32)
    method = make_method("agah", {"epochs": 1, "batches_per_epoch": 1, "device": "cpu"}, random_state=0)
    method.fit(audio, visual, labels)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        pca = pca_table(folder)
        workflow_file = folder / "agah.joblib"
        compressed_file = folder / "agah_zlib3.joblib"

        def save_as_workflow():
            save_model(workflow_file, method, method_name="agah", seed=0, dataset="bench",
                       class_names=list("abcdefgh"), pca_path=pca, feature_settings={}, backbone_weights={})

        def save_compressed():
            joblib.dump(joblib.load(workflow_file), compressed_file, compress=3)

        for setting, write, path in (("uncompressed (the workflow)", save_as_workflow, workflow_file),
                                     ("zlib level 3 (before)", save_compressed, compressed_file)):
            before = load_average()
            started = time.perf_counter()
            write()
            write_s = time.perf_counter() - started
            started = time.perf_counter()
            load_model(path)
            load_s = time.perf_counter() - started
            rows.append({"file": setting, "parameters": method.n_parameters(),
                         "size_mb": f"{path.stat().st_size / 1e6:.1f}", "write_s": f"{write_s:.2f}",
                         "load_s": f"{load_s:.2f}", "load_before_after": f"{before} → {load_average()}"})
            print(rows[-1], flush=True)
        # The compressed write includes reading the uncompressed file back (≈ 0.1 s).
    out = Path(__file__).parent / "results/model_files.tsv"
    write_measurements(out, rows, [f"machine: {machine_description()}", "AGAH at its default widths, one training step",
                                   "write: avcmr.models_io.save_model; load: avcmr.models_io.load_model"])
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
