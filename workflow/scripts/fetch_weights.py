from avcmr.logs import start_job

start_job(snakemake)

from avcmr.stages import fetch_weights

fetch_weights(snakemake.params.files, snakemake.output.record)
