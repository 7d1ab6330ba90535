from avcmr.logs import start_job

start_job(snakemake)

from avcmr.reporting.figures import plot_per_class_ap

plot_per_class_ap(list(snakemake.input), snakemake.output.png, snakemake.output.pdf)
