from avcmr.logs import log_to_file

log_to_file(snakemake.log[0])

from avcmr.stages import concat_failures

concat_failures(snakemake.input, snakemake.output[0], snakemake.params.provenance)
