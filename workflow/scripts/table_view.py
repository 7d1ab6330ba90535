from avcmr.logs import log_to_file

log_to_file(snakemake.log[0])

from avcmr.reporting.report import table_html

table_html(snakemake.input[0], snakemake.output[0], snakemake.params.title, snakemake.wildcards.table)
