from avcmr.logs import start_job

start_job(snakemake)

from avcmr.stages import synthesize_shard

synthesize_shard(
    spec_values=snakemake.params.spec,
    shard=int(snakemake.wildcards.shard),
    shard_size=snakemake.params.shard_size,
    media_dir=snakemake.output.media,
    clips_out=snakemake.output.clips,
    provenance=snakemake.params.provenance,
)
