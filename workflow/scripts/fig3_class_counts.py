from avcmr.logs import start_job

start_job(snakemake)

from avcmr.reporting.figures import plot_class_counts

plot_class_counts(snakemake.input.split, snakemake.output.png, snakemake.output.pdf, snakemake.wildcards.dataset)
