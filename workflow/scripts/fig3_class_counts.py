from avcmr.logs import log_to_file

log_to_file(snakemake.log[0])

from avcmr.reporting.figures import plot_class_counts

plot_class_counts(snakemake.input.split, snakemake.output.png, snakemake.output.pdf, snakemake.wildcards.dataset)
