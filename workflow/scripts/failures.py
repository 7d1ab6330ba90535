from avcmr.logs import start_job

start_job(snakemake)

from avcmr.stages import concat_failures

concat_failures(snakemake.input, snakemake.output[0], snakemake.params.provenance)
