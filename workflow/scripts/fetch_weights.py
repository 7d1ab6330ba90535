from avcmr.logs import log_to_file

log_to_file(snakemake.log[0])

from avcmr.stages import fetch_weights

fetch_weights(snakemake.params.files, snakemake.output.record)
