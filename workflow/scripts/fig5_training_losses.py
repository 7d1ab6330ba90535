from avcmr.logs import log_to_file

log_to_file(snakemake.log[0])

from avcmr.reporting.figures import plot_training_losses

plot_training_losses(list(snakemake.input), snakemake.output.png, snakemake.output.pdf)
