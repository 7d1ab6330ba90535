from avcmr.logs import start_job

start_job(snakemake)

from avcmr.stages import vggish_shard

vggish_shard(
    logmel_path=snakemake.input.patches,
    out=snakemake.output.embeddings,
    failures_out=snakemake.output.failures,
    backbone_weights=snakemake.params.backbone_weights,
    batch_size=snakemake.params.batch_size,
    postprocess=snakemake.params.postprocess,
    threads=snakemake.threads,
    provenance=snakemake.params.provenance,
)
