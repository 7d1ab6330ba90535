from avcmr.logs import start_job

start_job(snakemake)

from avcmr.stages import concat_manifest

concat_manifest(snakemake.input.clips, snakemake.params.shards, snakemake.output[0], snakemake.params.provenance)
