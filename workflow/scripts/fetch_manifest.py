from avcmr.logs import start_job

start_job(snakemake)

from avcmr.data.manifests import fetch_source

fetch_source(snakemake.params.url, snakemake.output[0], snakemake.params.sha256)
