import _avcmr_src  # noqa: F401  (puts this checkout's src/ on sys.path before avcmr is imported)

from avcmr.logs import start_job

start_job(snakemake)

from avcmr.config import dataset_settings
from avcmr.stages.extract import inception_shard

features = dataset_settings(snakemake.config, snakemake.wildcards.dataset)["features"]

inception_shard(
    frames_path=snakemake.input.frames,
    out=snakemake.output.embeddings,
    failures_out=snakemake.output.failures,
    backbone_weights=snakemake.params.backbone_weights,
    batch_size=snakemake.params.batch_size,
    threads=snakemake.threads,
    provenance=snakemake.params.provenance,
    precision=features.get("inference_precision", "float32"),
)
