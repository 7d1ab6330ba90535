from avcmr.logs import log_to_file

log_to_file(snakemake.log[0])

from avcmr.stages import concat_manifest

concat_manifest(snakemake.input.clips, snakemake.params.shards, snakemake.output[0], snakemake.params.provenance)
