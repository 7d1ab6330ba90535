from avcmr.logs import log_to_file

log_to_file(snakemake.log[0])

from avcmr.reporting.figures import plot_per_class_ap

plot_per_class_ap(list(snakemake.input), snakemake.output.png, snakemake.output.pdf)
