from avcmr.logs import start_job

start_job(snakemake)

from avcmr.stages import inception_shard

inception_shard(
    frames_path=snakemake.input.frames,
    out=snakemake.output.embeddings,
    failures_out=snakemake.output.failures,
    backbone_weights=snakemake.params.backbone_weights,
    batch_size=snakemake.params.batch_size,
    threads=snakemake.threads,
    provenance=snakemake.params.provenance,
)
