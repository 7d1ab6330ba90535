from avcmr.logs import log_to_file

log_to_file(snakemake.log[0])

from avcmr.reporting.figures import write_alpha_beta_table

write_alpha_beta_table(snakemake.input, snakemake.output[0], snakemake.params.header)
