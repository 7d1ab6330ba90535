from avcmr.logs import log_to_file

log_to_file(snakemake.log[0])

from avcmr.reporting.figures import plot_precision_scope

plot_precision_scope(list(snakemake.input), snakemake.output.png, snakemake.output.pdf)
