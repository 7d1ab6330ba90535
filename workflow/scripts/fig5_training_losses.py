from avcmr.logs import start_job

start_job(snakemake)

from avcmr.reporting.figures import plot_training_losses

plot_training_losses(list(snakemake.input), snakemake.output.png, snakemake.output.pdf)
