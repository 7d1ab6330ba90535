from avcmr.logs import start_job

start_job(snakemake)

from avcmr.stages import logmel_shard

logmel_shard(snakemake.input.audio, snakemake.output.patches, snakemake.output.failures, snakemake.params.provenance)
