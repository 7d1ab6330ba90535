from avcmr.logs import log_to_file

log_to_file(snakemake.log[0])

from avcmr.reporting.figures import plot_alpha_beta

plot_alpha_beta(list(snakemake.input), snakemake.output.png, snakemake.output.pdf)
