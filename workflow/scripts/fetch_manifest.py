from avcmr.logs import log_to_file

log_to_file(snakemake.log[0])

from avcmr.data.manifests import fetch_source

fetch_source(snakemake.params.url, snakemake.output[0], snakemake.params.sha256)
