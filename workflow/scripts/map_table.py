from avcmr.logs import log_to_file

log_to_file(snakemake.log[0])

from avcmr.stages import write_map_table

write_map_table(snakemake.input, snakemake.output[0], snakemake.params.header)
