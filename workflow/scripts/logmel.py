from avcmr.logs import log_to_file

log_to_file(snakemake.log[0])

from avcmr.stages import logmel_shard

logmel_shard(snakemake.input.audio, snakemake.output.patches, snakemake.output.failures, snakemake.params.provenance)
